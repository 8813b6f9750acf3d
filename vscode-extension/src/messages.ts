// Recognises the server's messages that a settings change or a command can fix, so the
// notification can offer that fix as a button.

export type Fix = "chooseModel" | "fetchModel" | "setServerPath" | "install" | "restart" | "showOutput";

const MODEL_TROUBLE = /model (file not found|unavailable)|could not load the model|cromwell\.modelPath/i;
const RUNTIME_MISSING = /engine\.runtime\) is not installed|No module named ['"]?(cromwell_cli|cromwell_lsp|engine)/i;

/** The fixes worth offering for a message from the server (or its last output). */
export function diagnose(message: string): Fix[] {
  if (RUNTIME_MISSING.test(message)) {
    return ["setServerPath"];
  }
  if (MODEL_TROUBLE.test(message)) {
    return ["chooseModel", "fetchModel"];
  }
  return [];
}

/** The last lines of the server's stderr, for a failed start's message. */
export function tail(text: string, maxLines = 6): string {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  return lines.slice(-maxLines).join("\n");
}
