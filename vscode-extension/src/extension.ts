// Entry point: the status bar item, the language client and the commands. Every edit and every
// answer comes from the language server; this file only asks the user and shows results.

import * as vscode from "vscode";
import { SERVER_COMMANDS, editSelectionRequest, explainRequest, screenshotRequest } from "./commandArgs";
import { ServerController } from "./controller";
import { newFileOf } from "./diffPaths";
import { renderExplanation } from "./explain";
import { askInstruction, pickImage } from "./ui";

const EXPLAIN_SCHEME = "cromwell-explain";

let controller: ServerController | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("Cromwell", { log: true });
  const status = vscode.window.createStatusBarItem("cromwell.status", vscode.StatusBarAlignment.Right, 100);
  status.name = "Cromwell";
  const ctrl = new ServerController(output, status);
  controller = ctrl;

  const explanations = new Map<string, string>();
  const explainChanged = new vscode.EventEmitter<vscode.Uri>();
  context.subscriptions.push(
    output,
    status,
    ctrl,
    explainChanged,
    vscode.workspace.registerTextDocumentContentProvider(EXPLAIN_SCHEME, {
      onDidChange: explainChanged.event,
      provideTextDocumentContent: (uri) => explanations.get(uri.toString()) ?? "",
    }),
    command("cromwell.editor.editSelection", () => editSelection(ctrl)),
    command("cromwell.editor.generateFromScreenshot", (uri?: vscode.Uri) => generateFromScreenshot(ctrl, uri)),
    command("cromwell.editor.explainContext", async () => {
      const shown = await explainContext(ctrl, explanations);
      if (shown !== undefined) {
        explainChanged.fire(shown);
      }
    }),
    command("cromwell.editor.restartServer", () => ctrl.restart()),
    command("cromwell.editor.cancelGeneration", () => ctrl.cancelGeneration()),
    command("cromwell.editor.showOutput", () => output.show()),
  );
  await ctrl.start();
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}

/** A command whose failures reach the user as a message, not a silent log line. */
function command(id: string, run: (...args: any[]) => unknown): vscode.Disposable {
  return vscode.commands.registerCommand(id, async (...args: unknown[]) => {
    try {
      return await run(...args);
    } catch (e) {
      void vscode.window.showErrorMessage(`Cromwell: ${(e as Error).message ?? String(e)}`);
      return undefined;
    }
  });
}

function docRef(doc: vscode.TextDocument) {
  return { uri: doc.uri.toString(), version: doc.version, lineCount: doc.lineCount };
}

function activeEditor(purpose: string): vscode.TextEditor {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) {
    throw new Error(`open a file first: ${purpose}`);
  }
  return editor;
}

async function editSelection(ctrl: ServerController): Promise<void> {
  const editor = activeEditor("Edit Selection works on the code selected in an editor");
  const instruction = await askInstruction();
  if (instruction === undefined) {
    return;
  }
  const request = editSelectionRequest(docRef(editor.document), editor.selection, instruction);
  // The server answers with a WorkspaceEdit through workspace/applyEdit; its change
  // annotation asks for confirmation, so the editor shows the diff before applying it.
  await ctrl.executeServerCommand(SERVER_COMMANDS.editSelection, [request]);
}

async function generateFromScreenshot(ctrl: ServerController, image?: vscode.Uri): Promise<void> {
  const picked = image instanceof vscode.Uri ? image : await pickImage();
  if (picked === undefined) {
    return;
  }
  // From the Explorer, focus is off the editors: take the active one, else a visible one.
  const isFile = (e: vscode.TextEditor | undefined) => e?.document.uri.scheme === "file";
  const active = vscode.window.activeTextEditor;
  const editor = isFile(active) ? active : vscode.window.visibleTextEditors.find(isFile);
  if (editor === undefined) {
    throw new Error("open a file in the language to generate (the new file takes its language), then run this again");
  }
  const request = screenshotRequest(docRef(editor.document), editor.selection.active.line, picked.fsPath);
  const result = (await ctrl.executeServerCommand(SERVER_COMMANDS.run, [request])) as { applied?: boolean; diff?: string } | null;
  const created = result?.applied ? newFileOf(result.diff ?? "") : undefined;
  const folder = vscode.workspace.getWorkspaceFolder(picked) ?? vscode.workspace.workspaceFolders?.[0];
  if (created !== undefined && folder !== undefined) {
    await vscode.window.showTextDocument(vscode.Uri.joinPath(folder.uri, created));
  }
}

async function explainContext(ctrl: ServerController, store: Map<string, string>): Promise<vscode.Uri | undefined> {
  const editor = activeEditor("Explain Context shows what the server would send the model for that file");
  const request = explainRequest(docRef(editor.document), editor.selection);
  const result = await ctrl.executeServerCommand(SERVER_COMMANDS.explain, [request]);
  const name = vscode.workspace.asRelativePath(editor.document.uri);
  const uri = vscode.Uri.from({ scheme: EXPLAIN_SCHEME, path: `/${name}.context.md` });
  store.set(uri.toString(), renderExplanation(result, name));
  try {
    await vscode.commands.executeCommand("markdown.showPreviewToSide", uri);
  } catch {
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true });
  }
  return uri;
}
