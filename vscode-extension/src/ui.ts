// Small pieces of the editor's UI that the commands share.

import * as vscode from "vscode";

export const IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "gif", "webp", "bmp"];

/** The instruction for an edit, or undefined when the user dismissed the box. */
export async function askInstruction(): Promise<string | undefined> {
  const text = await vscode.window.showInputBox({
    title: "Cromwell: Edit Selection",
    prompt: "How should Cromwell change the selected code?",
    placeHolder: "e.g. use a list comprehension; handle an empty list",
    ignoreFocusOut: true,
    validateInput: (value) => (value.trim() === "" ? "Say what to change." : undefined),
  });
  return text === undefined || text.trim() === "" ? undefined : text.trim();
}

export async function pickImage(): Promise<vscode.Uri | undefined> {
  const files = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: "Generate Code",
    title: "Cromwell: a screenshot to turn into code",
    filters: { Images: IMAGE_EXTENSIONS },
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
  });
  return files?.[0];
}
