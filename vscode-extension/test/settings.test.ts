import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import {
  ACTION_IDS,
  COMPLETION_ITEMS_MODES,
  FIM_FORMATS,
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
      inlineCompletion: true, inlineDebounceMs: 0, inlineMaxTokens: 64, inlineMaxLines: 8, inlineMaxMs: 1000,
      inlinePrefixLines: 128, inlineSuffixLines: 32, inlineExtraChunks: 8, fimFormat: null, completionItems: "auto",
      maxFileBytes: 1000000,
    });
  });

  test("the ghost-text settings travel as set, and 0 is allowed where the server allows it", () => {
    const wire = toWire(reader({
      inlineDebounceMs: 40, inlineMaxLines: 1, inlineMaxMs: 250, inlinePrefixLines: 16,
      inlineSuffixLines: 0, inlineExtraChunks: 0, fimFormat: "starcoder", completionItems: "always",
    }));
    expect(wire).toMatchObject({
      inlineDebounceMs: 40, inlineMaxLines: 1, inlineMaxMs: 250, inlinePrefixLines: 16,
      inlineSuffixLines: 0, inlineExtraChunks: 0, fimFormat: "starcoder", completionItems: "always",
    });
  });

  test("an empty fimFormat reads the format from the model; every named format is accepted", () => {
    expect(toWire(reader({ fimFormat: "" })).fimFormat).toBeNull();
    for (const name of FIM_FORMATS) {
      expect(toWire(reader({ fimFormat: name })).fimFormat).toBe(name);
    }
    expect(FIM_FORMATS).toContain("none");
    expect(FIM_FORMATS).not.toContain("");
  });

  test("bad ghost-text values are each named in one error", () => {
    const bad = reader({
      inlineMaxLines: 0, inlineMaxMs: -5, inlinePrefixLines: 2.5, inlineSuffixLines: -1,
      inlineExtraChunks: 200000, fimFormat: "llama", completionItems: "sometimes",
    });
    let msg = "";
    try {
      toWire(bad);
    } catch (e) {
      expect(e).toBeInstanceOf(SettingsError);
      msg = (e as Error).message;
    }
    expect(msg).toContain("cromwell.inlineMaxLines must be a positive integer, got 0");
    expect(msg).toContain("cromwell.inlineMaxMs must be a positive integer, got -5");
    expect(msg).toContain("cromwell.inlinePrefixLines must be a positive integer, got 2.5");
    expect(msg).toContain("cromwell.inlineSuffixLines must be an integer in [0, 100000], got -1");
    expect(msg).toContain("cromwell.inlineExtraChunks must be an integer in [0, 100000], got 200000");
    expect(msg).toContain('cromwell.fimFormat must be "" (read from the model) or one of qwen, codegemma, starcoder');
    expect(msg).toContain('got "llama"');
    expect(msg).toContain('cromwell.completionItems must be auto, always or never, got "sometimes"');
  });

  test("a fimFormat or completionItems of the wrong type is refused", () => {
    expect(() => toWire(reader({ fimFormat: 3 }))).toThrow(/cromwell.fimFormat must be .* got 3/);
    expect(() => toWire(reader({ completionItems: true }))).toThrow(/cromwell.completionItems must be auto, always or never, got true/);
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
      "actions", "completionItems", "contextBudget", "fimFormat", "inlineCompletion", "inlineDebounceMs",
      "inlineExtraChunks", "inlineMaxLines", "inlineMaxMs", "inlineMaxTokens", "inlinePrefixLines",
      "inlineSuffixLines", "maxFileBytes", "maxNewTokens", "modelPath", "temperature", "threads",
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

describe("the manifest", () => {
  // tests/vscode/test_vscode_extension.py holds package.json to the server's settings.py; this
  // holds settings.ts to package.json, so the three cannot drift apart.
  type Property = { default: unknown; enum?: unknown[] };
  const manifest = JSON.parse(readFileSync(join(__dirname, "..", "package.json"), "utf8"));
  const properties = manifest.contributes.configuration.properties as Record<string, Property>;
  const defaults = Object.fromEntries(
    Object.entries(properties).map(([key, p]) => [key.slice("cromwell.".length), p.default]),
  );

  test("its defaults, as VS Code reports them, mean what an unset setting means", () => {
    expect(toWire(reader(defaults))).toEqual(toWire(reader({})));
  });

  test("every server setting is contributed, and only those and the client's own", () => {
    const wireKeys = Object.keys(toWire(reader({})));
    expect(Object.keys(defaults).sort()).toEqual([...wireKeys, "serverArgs", "serverPath"].sort());
  });

  test("the enums are the values settings.ts accepts", () => {
    expect(properties["cromwell.fimFormat"].enum).toEqual(["", ...FIM_FORMATS]);
    expect(properties["cromwell.completionItems"].enum).toEqual([...COMPLETION_ITEMS_MODES]);
  });
});

describe("which changes matter", () => {
  const changed = (...keys: string[]) => (section: string) => keys.some((k) => k === section || k.startsWith(section + "."));

  test("server settings are re-sent, client settings restart the server", () => {
    expect(affectsServerSettings(changed("cromwell.temperature"))).toBe(true);
    expect(affectsServerSettings(changed("cromwell.fimFormat"))).toBe(true);
    expect(affectsServerSettings(changed("cromwell.completionItems"))).toBe(true);
    expect(affectsServerSettings(changed("cromwell.inlineMaxMs"))).toBe(true);
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
