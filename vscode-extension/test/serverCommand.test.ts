import { describe, expect, test } from "vitest";
import { candidates, resolveServerCommand } from "../src/serverCommand";

const base = { args: ["lsp"], workspaceFolders: ["/w"], envPath: "/usr/local/bin:/usr/bin", home: "/home/ada" };

describe("resolveServerCommand", () => {
  test("the workspace's .venv comes before PATH", () => {
    const exists = new Set(["/w/.venv/bin/cromwell", "/usr/bin/cromwell"]);
    const r = resolveServerCommand({ ...base, configured: "", isExecutable: (f) => exists.has(f) });
    expect(r).toEqual({ ok: true, server: { command: "/w/.venv/bin/cromwell", args: ["lsp"] } });
  });

  test("PATH in order, then pip's --user folder", () => {
    expect(resolveServerCommand({ ...base, configured: "", isExecutable: (f) => f === "/usr/bin/cromwell" }))
      .toEqual({ ok: true, server: { command: "/usr/bin/cromwell", args: ["lsp"] } });
    expect(resolveServerCommand({ ...base, configured: "", isExecutable: (f) => f === "/home/ada/.local/bin/cromwell" }))
      .toEqual({ ok: true, server: { command: "/home/ada/.local/bin/cromwell", args: ["lsp"] } });
  });

  test("a configured path wins, and is not replaced by a search when it is wrong", () => {
    const everywhere = () => true;
    expect(resolveServerCommand({ ...base, configured: "/opt/c/cromwell", isExecutable: everywhere }))
      .toEqual({ ok: true, server: { command: "/opt/c/cromwell", args: ["lsp"] } });
    const r = resolveServerCommand({ ...base, configured: "/opt/c/cromwell", isExecutable: (f) => f !== "/opt/c/cromwell" });
    expect(r).toEqual({ ok: false, configured: true, tried: ["/opt/c/cromwell"] });
  });

  test("nothing found lists every place tried", () => {
    const r = resolveServerCommand({ ...base, configured: "", isExecutable: () => false });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.configured).toBe(false);
      expect(r.tried).toEqual(candidates(base));
      expect(r.tried).toContain("/w/.venv/bin/cromwell");
      expect(r.tried).toContain("/usr/local/bin/cromwell");
      expect(r.tried[r.tried.length - 1]).toBe("/home/ada/.local/bin/cromwell");
    }
  });

  test("empty PATH entries are not the current directory", () => {
    expect(candidates({ ...base, envPath: ":/usr/bin:" })).not.toContain("cromwell");
  });
});
