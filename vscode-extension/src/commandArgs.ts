// The arguments of the server's commands (cromwell_lsp/actions.py `ActionRequest`): one JSON
// object with 0-based lines, `start_line`..`end_line` end-exclusive, the region an edit may
// rewrite.

export const SERVER_COMMANDS = {
  run: "cromwell.runAction",
  editSelection: "cromwell.editSelection",
  explain: "cromwell.explainContext",
} as const;

export interface Pos {
  line: number;
  character: number;
}

export interface Sel {
  start: Pos;
  end: Pos;
}

export interface DocRef {
  uri: string;
  version: number | null;
  lineCount: number;
}

export interface ActionRequest {
  action: "editSelection" | "fix" | "completeBody" | "addDocstring" | "fromScreenshot";
  uri: string;
  version: number | null;
  start_line: number;
  end_line: number;
  instruction?: string;
  image?: string;
}

/**
 * The lines a selection covers. A selection that ends at column 0 of a line does not take that
 * line (as when whole lines are selected); an empty selection takes the cursor's line.
 */
export function selectedLines(sel: Sel, lineCount: number): [number, number] {
  const start = sel.start.line;
  let end = sel.end.line + (sel.end.character > 0 ? 1 : 0);
  end = Math.max(end, start + 1);
  return [start, Math.min(end, Math.max(lineCount, start + 1))];
}

export function editSelectionRequest(doc: DocRef, sel: Sel, instruction: string): ActionRequest {
  const text = instruction.trim();
  if (text === "") {
    throw new Error("Edit Selection needs an instruction: say what to change");
  }
  const [start_line, end_line] = selectedLines(sel, doc.lineCount);
  return { action: "editSelection", uri: doc.uri, version: doc.version, start_line, end_line, instruction: text };
}

/** Code is generated into a new file beside the image, in the language of `doc`. */
export function screenshotRequest(doc: DocRef, cursorLine: number, imagePath: string): ActionRequest {
  if (imagePath === "") {
    throw new Error("Generate Code from Screenshot needs an image file");
  }
  return {
    action: "fromScreenshot",
    uri: doc.uri,
    version: doc.version,
    start_line: cursorLine,
    end_line: cursorLine,
    image: imagePath,
  };
}

export function explainRequest(doc: DocRef, sel: Sel): { uri: string; start_line: number; end_line: number } {
  const [start_line, end_line] = selectedLines(sel, doc.lineCount);
  return { uri: doc.uri, start_line, end_line };
}

/**
 * An `editSelection` request from a light-bulb action still needs its instruction: true when
 * the arguments are that request with no instruction in it.
 */
export function needsInstruction(command: string, args: unknown[]): boolean {
  if (command !== SERVER_COMMANDS.editSelection || args.length !== 1) {
    return false;
  }
  const data = args[0];
  if (typeof data !== "object" || data === null) {
    return false;
  }
  const instruction = (data as { instruction?: unknown }).instruction;
  return typeof instruction !== "string" || instruction.trim() === "";
}

export function withInstruction(args: unknown[], instruction: string): unknown[] {
  return [{ ...(args[0] as object), instruction: instruction.trim() }];
}
