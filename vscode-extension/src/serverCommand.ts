// Finds the `cromwell` executable that runs the language server. An explicit setting wins;
// otherwise the places a Python install puts it, most specific first: the workspace's own
// virtual environment (the project's `make setup`), then PATH, then pip's `--user` folder.

import * as path from "path";

export interface ServerCommand {
  command: string;
  args: string[];
}

export interface Lookup {
  /** `cromwell.serverPath`, already `~`-expanded; "" for none. */
  configured: string;
  args: string[];
  workspaceFolders: readonly string[];
  /** The PATH environment variable. */
  envPath: string;
  home: string;
  isExecutable: (file: string) => boolean;
}

export type Resolution =
  | { ok: true; server: ServerCommand }
  | { ok: false; configured: boolean; tried: string[] };

const EXE = process.platform === "win32" ? "cromwell.exe" : "cromwell";
const VENV_BIN = process.platform === "win32" ? "Scripts" : "bin";

export function candidates(l: Omit<Lookup, "isExecutable" | "configured" | "args">): string[] {
  const out: string[] = [];
  for (const folder of l.workspaceFolders) {
    out.push(path.join(folder, ".venv", VENV_BIN, EXE));
    out.push(path.join(folder, "venv", VENV_BIN, EXE));
  }
  for (const dir of l.envPath.split(path.delimiter)) {
    if (dir !== "") {
      out.push(path.join(dir, EXE));
    }
  }
  out.push(path.join(l.home, ".local", "bin", EXE));
  return [...new Set(out)];
}

export function resolveServerCommand(l: Lookup): Resolution {
  if (l.configured.trim() !== "") {
    const file = l.configured.trim();
    return l.isExecutable(file)
      ? { ok: true, server: { command: file, args: l.args } }
      : { ok: false, configured: true, tried: [file] };
  }
  const tried = candidates(l);
  const found = tried.find((file) => l.isExecutable(file));
  return found !== undefined
    ? { ok: true, server: { command: found, args: l.args } }
    : { ok: false, configured: false, tried };
}
