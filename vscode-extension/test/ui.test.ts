// The editor UI pieces, against jest-mock-vscode's VS Code API.
import * as vscode from "vscode";
import { afterEach, describe, expect, test, vi } from "vitest";
import { FIX_LABELS, offerFixes, runFix, shellQuote } from "../src/fixes";
import { askInstruction, pickImage } from "../src/ui";

afterEach(() => {
  vi.clearAllMocks();
});

describe("askInstruction", () => {
  test("returns the trimmed instruction, and refuses a blank one in the box", async () => {
    vi.mocked(vscode.window.showInputBox).mockResolvedValueOnce("  use a comprehension ");
    await expect(askInstruction()).resolves.toBe("use a comprehension");
    const options = vi.mocked(vscode.window.showInputBox).mock.calls[0][0]!;
    expect(options.prompt).toBe("How should Cromwell change the selected code?");
    expect(options.validateInput!("   ")).toBe("Say what to change.");
    expect(options.validateInput!("x")).toBeUndefined();
  });

  test("dismissing the box cancels", async () => {
    vi.mocked(vscode.window.showInputBox).mockResolvedValueOnce(undefined);
    await expect(askInstruction()).resolves.toBeUndefined();
  });
});

describe("pickImage", () => {
  test("offers image files only", async () => {
    const uri = vscode.Uri.file("/w/ui/login.png");
    vi.mocked(vscode.window.showOpenDialog).mockResolvedValueOnce([uri]);
    await expect(pickImage()).resolves.toBe(uri);
    const options = vi.mocked(vscode.window.showOpenDialog).mock.calls[0][0]!;
    expect(options.canSelectMany).toBe(false);
    expect(options.filters).toEqual({ Images: ["png", "jpg", "jpeg", "gif", "webp", "bmp"] });
  });
});

describe("fixes", () => {
  const ctx = () => ({ serverCommand: "/opt/my tools/cromwell", restart: vi.fn(), showOutput: vi.fn() });

  test("Choose Model File… writes cromwell.modelPath", async () => {
    vi.mocked(vscode.window.showErrorMessage).mockResolvedValueOnce(FIX_LABELS.chooseModel as never);
    vi.mocked(vscode.window.showOpenDialog).mockResolvedValueOnce([vscode.Uri.file("/models/m.gguf")]);
    const picked = await offerFixes("Cromwell: model file not found", ["chooseModel", "fetchModel"], "error", ctx());
    expect(picked).toBe("chooseModel");
    expect(vi.mocked(vscode.window.showErrorMessage).mock.calls[0]).toEqual([
      "Cromwell: model file not found", "Choose Model File…", "Fetch Default Model",
    ]);
    expect(vscode.workspace.getConfiguration("cromwell").get("modelPath")).toBe("/models/m.gguf");
  });

  test("Fetch Default Model clears the path and runs the server's own fetch", async () => {
    const terminal = { show: vi.fn(), sendText: vi.fn() };
    vi.mocked(vscode.window.createTerminal).mockReturnValueOnce(terminal as never);
    await vscode.workspace.getConfiguration("cromwell").update("modelPath", "/gone.gguf", vscode.ConfigurationTarget.Global);
    await runFix("fetchModel", ctx());
    expect(vscode.workspace.getConfiguration("cromwell").get("modelPath")).toBe("");
    expect(terminal.sendText).toHaveBeenCalledWith("'/opt/my tools/cromwell' models fetch");
  });

  test("Set Server Path… writes cromwell.serverPath; dismissing does nothing", async () => {
    vi.mocked(vscode.window.showOpenDialog).mockResolvedValueOnce([vscode.Uri.file("/venv/bin/cromwell")]);
    await runFix("setServerPath", ctx());
    expect(vscode.workspace.getConfiguration("cromwell").get("serverPath")).toBe("/venv/bin/cromwell");
    vi.mocked(vscode.window.showOpenDialog).mockResolvedValueOnce(undefined);
    await runFix("setServerPath", ctx());
    expect(vscode.workspace.getConfiguration("cromwell").get("serverPath")).toBe("/venv/bin/cromwell");
  });

  test("Restart and Show Output call back; no pick runs nothing", async () => {
    const c = ctx();
    vi.mocked(vscode.window.showWarningMessage).mockResolvedValueOnce(FIX_LABELS.restart as never);
    await offerFixes("down", ["restart", "showOutput"], "warning", c);
    expect(c.restart).toHaveBeenCalledOnce();
    expect(c.showOutput).not.toHaveBeenCalled();
    vi.mocked(vscode.window.showInformationMessage).mockResolvedValueOnce(undefined);
    await expect(offerFixes("fyi", ["showOutput"], "info", c)).resolves.toBeUndefined();
    expect(c.showOutput).not.toHaveBeenCalled();
  });

  test("shell quoting of a path with spaces and quotes", () => {
    expect(shellQuote("/usr/bin/cromwell")).toBe("/usr/bin/cromwell");
    expect(shellQuote("/a b/it's")).toBe("'/a b/it'\\''s'");
  });
});
