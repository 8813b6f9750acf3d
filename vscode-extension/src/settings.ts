// Maps the editor's `cromwell.*` settings to the keys the language server reads (its
// settings.py, camelCase on the wire). The editor cannot say "unset" for a number, so 0 and ""
// mean "let the server choose" and travel as null; keys only the client uses never travel,
// because the server refuses keys it does not know.

/** What the server accepts, in the server's own names. */
export interface WireSettings {
  modelPath: string | null;
  threads: number | null;
  temperature: number;
  maxNewTokens: number;
  contextBudget: number | null;
  actions: string[];
}

export const SECTION = "cromwell";

/** Keys that configure the client itself (how to start the server). */
export const CLIENT_ONLY_KEYS = ["serverPath", "serverArgs"] as const;

export const ACTION_IDS = ["editSelection", "fix", "completeBody", "addDocstring", "fromScreenshot"];

/** Reads one key of the `cromwell` section, as `WorkspaceConfiguration.get` does. */
export type SettingReader = (key: string) => unknown;

export class SettingsError extends Error {}

function optionalPositiveInt(name: string, value: unknown): number | null {
  if (value === undefined || value === null || value === 0) {
    return null;
  }
  if (typeof value === "number" && Number.isInteger(value) && value > 0) {
    return value;
  }
  throw new SettingsError(`cromwell.${name} must be a positive integer or 0 (automatic), got ${JSON.stringify(value)}`);
}

/**
 * The settings payload for `initializationOptions`, `workspace/configuration` answers and
 * `workspace/didChangeConfiguration`. `expandPath` resolves `~` and `${workspaceFolder}`.
 */
export function toWire(read: SettingReader, expandPath: (p: string) => string = (p) => p): WireSettings {
  const problems: string[] = [];
  const attempt = <T>(f: () => T, fallback: T): T => {
    try {
      return f();
    } catch (e) {
      problems.push((e as Error).message);
      return fallback;
    }
  };

  const model = read("modelPath");
  const modelPath = attempt(() => {
    if (model === undefined || model === null || (typeof model === "string" && model.trim() === "")) {
      return null;
    }
    if (typeof model !== "string") {
      throw new SettingsError(`cromwell.modelPath must be a file path, got ${JSON.stringify(model)}`);
    }
    return expandPath(model.trim());
  }, null);

  const threads = attempt(() => optionalPositiveInt("threads", read("threads")), null);
  const contextBudget = attempt(() => optionalPositiveInt("contextBudget", read("contextBudget")), null);

  const temperature = attempt(() => {
    const t = read("temperature") ?? 0;
    if (typeof t !== "number" || !(t >= 0 && t <= 2)) {
      throw new SettingsError(`cromwell.temperature must be a number in [0, 2], got ${JSON.stringify(t)}`);
    }
    return t;
  }, 0);

  const maxNewTokens = attempt(() => {
    const n = read("maxNewTokens") ?? 512;
    if (typeof n !== "number" || !Number.isInteger(n) || n <= 0) {
      throw new SettingsError(`cromwell.maxNewTokens must be a positive integer, got ${JSON.stringify(n)}`);
    }
    return n;
  }, 512);

  const actions = attempt(() => {
    const a = read("actions") ?? ACTION_IDS;
    if (!Array.isArray(a) || !a.every((x) => typeof x === "string")) {
      throw new SettingsError(`cromwell.actions must be a list of action names, got ${JSON.stringify(a)}`);
    }
    const unknown = a.filter((x) => !ACTION_IDS.includes(x));
    if (unknown.length > 0) {
      throw new SettingsError(`cromwell.actions: unknown ${unknown.join(", ")}; choose from ${ACTION_IDS.join(", ")}`);
    }
    return [...new Set(a as string[])];
  }, [...ACTION_IDS]);

  if (problems.length > 0) {
    throw new SettingsError(problems.join("; "));
  }
  return { modelPath, threads, temperature, maxNewTokens, contextBudget, actions };
}

/** Whether a configuration change touches what the server must hear about. */
export function affectsServerSettings(affects: (section: string) => boolean): boolean {
  return Object.keys(emptyWire()).some((key) => affects(`${SECTION}.${key}`));
}

/** Whether a configuration change means the server process must be started anew. */
export function affectsServerProcess(affects: (section: string) => boolean): boolean {
  return CLIENT_ONLY_KEYS.some((key) => affects(`${SECTION}.${key}`));
}

function emptyWire(): WireSettings {
  return { modelPath: null, threads: null, temperature: 0, maxNewTokens: 0, contextBudget: null, actions: [] };
}

/** `~` and `${workspaceFolder}` in a path setting, as users write them in settings.json. */
export function expandPathWith(home: string, workspaceFolder: string | undefined): (p: string) => string {
  return (p: string) => {
    let out = p;
    if (out === "~" || out.startsWith("~/")) {
      out = home + out.slice(1);
    }
    if (workspaceFolder !== undefined) {
      out = out.split("${workspaceFolder}").join(workspaceFolder);
    }
    return out;
  };
}
