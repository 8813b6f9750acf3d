import { describe, expect, test } from "vitest";
import {
  ACTION_IDS,
  SettingsError,
  affectsServerProcess,
  affectsServerSettings,
  expandPathWith,
  toWire,
} from "../src/settings";

const reader = (values: Record<string, unknown>) => (key: string) => values[key];

describe("toWire", () => {
  test("the defaults VS Code reports become the server's defaults", () => {
    const wire = toWire(reader({ modelPath: "", threads: 0, temperature: 0, maxNewTokens: 512, contextBudget: 0, actions: ACTION_IDS }));
    expect(wire).toEqual({
      modelPath: null, threads: null, temperature: 0, maxNewTokens: 512, contextBudget: null, actions: ACTION_IDS,
      inlineCompletion: true, inlineDebounceMs: 150, inlineMaxTokens: 64, maxFileBytes: 1000000,
    });
  });

  test("set values travel as they are, with paths expanded", () => {
    const expand = expandPathWith("/home/ada", "/work/proj");
    const wire = toWire(
      reader({ modelPath: " ~/models/m.gguf ", threads: 4, temperature: 0.7, maxNewTokens: 64, contextBudget: 2048, actions: ["fix", "fix", "addDocstring"] }),
      expand,
    );
    expect(wire).toMatchObject({ modelPath: "/home/ada/models/m.gguf", threads: 4, temperature: 0.7, maxNewTokens: 64, contextBudget: 2048, actions: ["fix", "addDocstring"] });
  });

  test("keys that only the client reads never reach the server", () => {
    const wire = toWire(reader({ serverPath: "/usr/bin/cromwell", serverArgs: ["lsp"] }));
    // Exactly the keys of the server's settings.py (_WIRE_NAMES).
    expect(Object.keys(wire).sort()).toEqual([
      "actions", "contextBudget", "inlineCompletion", "inlineDebounceMs", "inlineMaxTokens",
      "maxFileBytes", "maxNewTokens", "modelPath", "temperature", "threads",
    ]);
  });

  test("every bad value is named in one error", () => {
    const bad = reader({
      threads: -2, temperature: 3, maxNewTokens: 1.5, actions: ["fix", "refactorEverything"],
      inlineCompletion: "yes", inlineDebounceMs: 20000, maxFileBytes: 0,
    });
    expect(() => toWire(bad)).toThrow(SettingsError);
    try {
      toWire(bad);
    } catch (e) {
      const msg = (e as Error).message;
      expect(msg).toContain("cromwell.threads must be a positive integer");
      expect(msg).toContain("cromwell.temperature must be a number in [0, 2], got 3");
      expect(msg).toContain("cromwell.maxNewTokens must be a positive integer, got 1.5");
      expect(msg).toContain("unknown refactorEverything");
      expect(msg).toContain('cromwell.inlineCompletion must be true or false, got "yes"');
      expect(msg).toContain("cromwell.inlineDebounceMs must be an integer in [0, 10000], got 20000");
      expect(msg).toContain("cromwell.maxFileBytes must be a positive integer, got 0");
    }
  });

  test("a model path that is not a string is refused", () => {
    expect(() => toWire(reader({ modelPath: 42 }))).toThrow(/cromwell.modelPath must be a file path, got 42/);
  });
});

describe("which changes matter", () => {
  const changed = (...keys: string[]) => (section: string) => keys.some((k) => k === section || k.startsWith(section + "."));

  test("server settings are re-sent, client settings restart the server", () => {
    expect(affectsServerSettings(changed("cromwell.temperature"))).toBe(true);
    expect(affectsServerProcess(changed("cromwell.temperature"))).toBe(false);
    expect(affectsServerProcess(changed("cromwell.serverPath"))).toBe(true);
    expect(affectsServerSettings(changed("cromwell.serverPath"))).toBe(false);
    expect(affectsServerSettings(changed("editor.fontSize"))).toBe(false);
  });
});

describe("expandPathWith", () => {
  test("tilde and workspace folder", () => {
    const expand = expandPathWith("/home/ada", "/work/proj");
    expect(expand("~")).toBe("/home/ada");
    expect(expand("${workspaceFolder}/.venv/bin/cromwell")).toBe("/work/proj/.venv/bin/cromwell");
    expect(expand("/abs/~x")).toBe("/abs/~x");
  });

  test("no workspace leaves the variable for the user to see", () => {
    expect(expandPathWith("/h", undefined)("${workspaceFolder}/m.gguf")).toBe("${workspaceFolder}/m.gguf");
  });
});
