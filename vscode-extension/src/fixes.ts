// The buttons on Cromwell's notifications, and what each one does to fix the cause.

import * as vscode from "vscode";
import { Fix } from "./messages";
import { SECTION } from "./settings";

export const FIX_LABELS: Record<Fix, string> = {
  chooseModel: "Choose Model File…",
  fetchModel: "Fetch Default Model",
  setServerPath: "Set Server Path…",
  install: "Install Cromwell",
  restart: "Restart Server",
  showOutput: "Show Output",
};

export interface FixContext {
  /** The executable that runs the server, when one was found. */
  serverCommand?: string;
  restart(): void;
  showOutput(): void;
}

export type Severity = "error" | "warning" | "info";

export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

/** Show `message` with one button per fix; run the one picked. Returns it. */
export async function offerFixes(message: string, fixes: Fix[], severity: Severity, ctx: FixContext): Promise<Fix | undefined> {
  const show = {
    error: vscode.window.showErrorMessage,
    warning: vscode.window.showWarningMessage,
    info: vscode.window.showInformationMessage,
  }[severity];
  const pick = await show(message, ...fixes.map((f) => FIX_LABELS[f]));
  const fix = fixes.find((f) => FIX_LABELS[f] === pick);
  if (fix !== undefined) {
    await runFix(fix, ctx);
  }
  return fix;
}

export async function runFix(fix: Fix, ctx: FixContext): Promise<void> {
  const config = () => vscode.workspace.getConfiguration(SECTION);
  switch (fix) {
    case "chooseModel": {
      const files = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { "GGUF model": ["gguf"] }, title: "A Cromwell model file" });
      if (files?.[0]) {
        await config().update("modelPath", files[0].fsPath, vscode.ConfigurationTarget.Global);
      }
      return;
    }
    case "fetchModel": {
      // The default model: clear any path that points elsewhere, and put it in the cache.
      await config().update("modelPath", "", vscode.ConfigurationTarget.Global);
      const terminal = vscode.window.createTerminal("Cromwell model");
      terminal.show();
      terminal.sendText(`${shellQuote(ctx.serverCommand ?? "cromwell")} models fetch`);
      return;
    }
    case "setServerPath": {
      const files = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: "Use as cromwell", title: "The cromwell executable" });
      if (files?.[0]) {
        // A new server path restarts the server (the configuration listener sees it).
        await config().update("serverPath", files[0].fsPath, vscode.ConfigurationTarget.Global);
      }
      return;
    }
    case "install": {
      const terminal = vscode.window.createTerminal("Cromwell install");
      terminal.show();
      // Typed, not run: the user picks the Python it goes into.
      terminal.sendText("python3 -m pip install --user cromwell", false);
      return;
    }
    case "restart":
      ctx.restart();
      return;
    case "showOutput":
      ctx.showOutput();
      return;
  }
}
