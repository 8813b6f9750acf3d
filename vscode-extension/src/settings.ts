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
  inlineCompletion: boolean;
  inlineDebounceMs: number;
  inlineMaxTokens: number;
  inlineMaxLines: number;
  inlineMaxMs: number;
  inlinePrefixLines: number;
  inlineSuffixLines: number;
  inlineExtraChunks: number;
  fimFormat: string | null;
  completionItems: CompletionItemsMode;
  maxFileBytes: number;
}

export const SECTION = "cromwell";

/** Keys that configure the client itself (how to start the server). */
export const CLIENT_ONLY_KEYS = ["serverPath", "serverArgs"] as const;

export const ACTION_IDS = ["editSelection", "fix", "completeBody", "addDocstring", "fromScreenshot"];

/** Fill-in-the-middle formats the server knows (its fim_format.FAMILY_NAMES); "" in the editor
 * travels as null, which reads the format from the model file. */
export const FIM_FORMATS = ["qwen", "codegemma", "starcoder", "codellama", "deepseek", "codestral", "gguf", "none"];

/** When the server offers its ghost-text suggestion as a `textDocument/completion` item. */
export const COMPLETION_ITEMS_MODES = ["auto", "always", "never"] as const;
export type CompletionItemsMode = (typeof COMPLETION_ITEMS_MODES)[number];

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

function integerIn(name: string, value: unknown, lo: number, hi: number): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= lo && value <= hi) {
    return value;
  }
  const range = hi === Infinity ? (lo === 1 ? "a positive integer" : `an integer of at least ${lo}`) : `an integer in [${lo}, ${hi}]`;
  throw new SettingsError(`cromwell.${name} must be ${range}, got ${JSON.stringify(value)}`);
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

  const maxNewTokens = attempt(() => integerIn("maxNewTokens", read("maxNewTokens") ?? 512, 1, Infinity), 512);

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

  const inlineCompletion = attempt(() => {
    const v = read("inlineCompletion") ?? true;
    if (typeof v !== "boolean") {
      throw new SettingsError(`cromwell.inlineCompletion must be true or false, got ${JSON.stringify(v)}`);
    }
    return v;
  }, true);
  const inlineDebounceMs = attempt(() => integerIn("inlineDebounceMs", read("inlineDebounceMs") ?? 0, 0, 10000), 0);
  const inlineMaxTokens = attempt(() => integerIn("inlineMaxTokens", read("inlineMaxTokens") ?? 64, 1, Infinity), 64);
  const inlineMaxLines = attempt(() => integerIn("inlineMaxLines", read("inlineMaxLines") ?? 8, 1, Infinity), 8);
  const inlineMaxMs = attempt(() => integerIn("inlineMaxMs", read("inlineMaxMs") ?? 1000, 1, Infinity), 1000);
  const inlinePrefixLines = attempt(() => integerIn("inlinePrefixLines", read("inlinePrefixLines") ?? 128, 1, Infinity), 128);
  const inlineSuffixLines = attempt(() => integerIn("inlineSuffixLines", read("inlineSuffixLines") ?? 32, 0, 100000), 32);
  const inlineExtraChunks = attempt(() => integerIn("inlineExtraChunks", read("inlineExtraChunks") ?? 8, 0, 100000), 8);

  const fimFormat = attempt(() => {
    const v = read("fimFormat");
    if (v === undefined || v === null || v === "") {
      return null;
    }
    if (typeof v !== "string" || !FIM_FORMATS.includes(v)) {
      throw new SettingsError(
        `cromwell.fimFormat must be "" (read from the model) or one of ${FIM_FORMATS.join(", ")}, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  }, null);

  const completionItems = attempt((): CompletionItemsMode => {
    const v = read("completionItems") ?? "auto";
    if (!COMPLETION_ITEMS_MODES.includes(v as CompletionItemsMode)) {
      throw new SettingsError(`cromwell.completionItems must be auto, always or never, got ${JSON.stringify(v)}`);
    }
    return v as CompletionItemsMode;
  }, "auto");

  const maxFileBytes = attempt(() => integerIn("maxFileBytes", read("maxFileBytes") ?? 1000000, 1, Infinity), 1000000);

  if (problems.length > 0) {
    throw new SettingsError(problems.join("; "));
  }
  return {
    modelPath, threads, temperature, maxNewTokens, contextBudget, actions,
    inlineCompletion, inlineDebounceMs, inlineMaxTokens, inlineMaxLines, inlineMaxMs,
    inlinePrefixLines, inlineSuffixLines, inlineExtraChunks, fimFormat, completionItems, maxFileBytes,
  };
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
  return {
    modelPath: null, threads: null, temperature: 0, maxNewTokens: 0, contextBudget: null, actions: [],
    inlineCompletion: true, inlineDebounceMs: 0, inlineMaxTokens: 0, inlineMaxLines: 0, inlineMaxMs: 0,
    inlinePrefixLines: 0, inlineSuffixLines: 0, inlineExtraChunks: 0, fimFormat: null, completionItems: "auto",
    maxFileBytes: 0,
  };
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
