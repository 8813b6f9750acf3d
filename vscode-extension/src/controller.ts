// Owns the language client: finds and starts `cromwell lsp`, says why when it cannot, restarts
// it with back-off when it dies, keeps the server's settings current, and feeds the status bar.

import * as fs from "fs";
import * as os from "os";
import * as readline from "readline";
import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  MessageType,
  ShowMessageNotification,
  State,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
  WorkDoneProgressCreateRequest,
} from "vscode-languageclient/node";
import { RestartPolicy } from "./backoff";
import { SERVER_COMMANDS, needsInstruction, withInstruction } from "./commandArgs";
import { FixContext, offerFixes } from "./fixes";
import { diagnose, tail } from "./messages";
import { ProgressBoard, ServerState, statusView } from "./progress";
import { resolveServerCommand } from "./serverCommand";
import { SECTION, WireSettings, affectsServerProcess, affectsServerSettings, expandPathWith, toWire } from "./settings";
import { askInstruction } from "./ui";

const STDERR_KEEP = 64 * 1024;

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export class ServerController implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private readonly policy = new RestartPolicy();
  private state: ServerState = "stopped";
  private detail: string | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private stderr = "";
  private starting: Promise<void> | undefined;
  private serverCommand: string | undefined;
  /** Bumped by every start and stop, so a late event from an old client is ignored. */
  private epoch = 0;
  private readonly board = new ProgressBoard();
  private readonly showing = new Set<string>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly output: vscode.LogOutputChannel,
    private readonly status: vscode.StatusBarItem,
  ) {
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigurationChanged(e)),
    );
    this.refreshStatus();
  }

  get languageClient(): LanguageClient | undefined {
    return this.client?.state === State.Running ? this.client : undefined;
  }

  // --- settings ---------------------------------------------------------------------------
  private workspaceFolder(): string | undefined {
    return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  }

  private expand = (p: string): string => expandPathWith(os.homedir(), this.workspaceFolder())(p);

  /** The settings for the server, or undefined (after telling the user) when invalid. */
  wireSettings(): WireSettings | undefined {
    const config = vscode.workspace.getConfiguration(SECTION);
    try {
      return toWire((key) => config.get(key), this.expand);
    } catch (e) {
      void vscode.window.showErrorMessage((e as Error).message, "Open Settings").then((pick) => {
        if (pick) {
          void vscode.commands.executeCommand("workbench.action.openSettings", "cromwell");
        }
      });
      return undefined;
    }
  }

  private onConfigurationChanged(e: vscode.ConfigurationChangeEvent): void {
    const affects = (s: string) => e.affectsConfiguration(s);
    if (affectsServerProcess(affects)) {
      this.output.info("server command changed: restarting");
      void this.restart();
      return;
    }
    if (!affectsServerSettings(affects)) {
      return;
    }
    const wire = this.wireSettings();
    const client = this.languageClient;
    if (wire !== undefined && client !== undefined) {
      this.checkModelPath(wire);
      void client.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: wire } });
    }
  }

  private checkModelPath(wire: WireSettings): void {
    if (wire.modelPath !== null && !fs.existsSync(wire.modelPath)) {
      void offerFixes(`Cromwell: model file not found: ${wire.modelPath}`, diagnose("model file not found"), "warning", this.fixContext());
    }
  }

  // --- lifecycle --------------------------------------------------------------------------
  start(): Promise<void> {
    if (this.starting === undefined) {
      this.starting = this.doStart().finally(() => {
        this.starting = undefined;
      });
    }
    return this.starting;
  }

  private async doStart(): Promise<void> {
    clearTimeout(this.restartTimer);
    const epoch = ++this.epoch;
    const config = vscode.workspace.getConfiguration(SECTION);
    const found = resolveServerCommand({
      configured: this.expand(config.get<string>("serverPath") ?? ""),
      args: config.get<string[]>("serverArgs") ?? ["lsp"],
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
      envPath: process.env.PATH ?? "",
      home: os.homedir(),
      isExecutable,
    });
    if (!found.ok) {
      const why = found.configured
        ? `cromwell.serverPath is not an executable file: ${found.tried[0]}`
        : "the `cromwell` executable was not found (looked in the workspace's .venv, PATH and ~/.local/bin)";
      this.output.error(`cannot start: ${why}`);
      this.setState("failed", why);
      void offerFixes(`Cromwell: ${why}.`, ["setServerPath", "install", "showOutput"], "error", this.fixContext());
      return;
    }
    const wire = this.wireSettings();
    if (wire === undefined) {
      this.setState("failed", "invalid settings");
      return;
    }
    this.checkModelPath(wire);
    this.stderr = "";
    this.setState("starting");
    const { command, args } = found.server;
    this.serverCommand = command;
    this.output.info(`starting ${command} ${args.join(" ")}`);
    const client = new LanguageClient(
      "cromwell",
      "Cromwell",
      // No `transport`: the client would add `--stdio`, which `cromwell lsp` does not take (stdio is its default).
      { command, args, options: { cwd: this.workspaceFolder() } },
      this.clientOptions(epoch, wire),
    );
    this.client = client;
    try {
      await client.start();
    } catch (e) {
      if (epoch !== this.epoch) {
        return;
      }
      await this.onDied(epoch, `the server did not start: ${(e as Error).message ?? e}`);
      return;
    }
    if (epoch !== this.epoch) {
      return;
    }
    this.policy.started(Date.now());
    this.hookServerRequests(client);
    this.setState("running");
  }

  private clientOptions(epoch: number, wire: WireSettings): LanguageClientOptions {
    return {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      outputChannel: this.output,
      initializationOptions: wire,
      stdioOptions: {
        stdout: (input, channel) => {
          readline.createInterface({ input, terminal: false }).on("line", (l) => channel.info(l));
        },
        stderr: (input, channel) => {
          readline.createInterface({ input, terminal: false }).on("line", (l) => {
            channel.error(l);
            this.stderr = (this.stderr + l + "\n").slice(-STDERR_KEEP);
          });
        },
      },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => {
          void this.onDied(epoch, "the server stopped");
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
      initializationFailedHandler: () => false,
      middleware: {
        workspace: {
          // The server pulls section "cromwell": answer with its own keys, never the client's.
          configuration: async (params, token, next) => {
            const answers = await next(params, token);
            if (!Array.isArray(answers)) {
              return answers;
            }
            return params.items.map((item, i) =>
              item.section === SECTION ? (this.wireSettings() ?? null) : answers[i],
            );
          },
        },
        // A light-bulb "Edit selection…" carries no instruction yet: ask for it here.
        executeCommand: async (command, args, next) => {
          if (needsInstruction(command, args)) {
            const instruction = await askInstruction();
            if (instruction === undefined) {
              return undefined;
            }
            return next(command, withInstruction(args, instruction));
          }
          return next(command, args);
        },
      },
    };
  }

  /** Generation progress goes to the status bar (with cancel), and the server's messages that
   * name a fixable cause get a button that fixes it. */
  private hookServerRequests(client: LanguageClient): void {
    client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      const sub = client.onProgress(WorkDoneProgress.type, token, (value) => {
        this.board.update(token, value);
        if (value.kind === "end") {
          sub.dispose();
        }
        this.refreshStatus();
      });
    });
    client.onNotification(ShowMessageNotification.type, ({ type, message }) => {
      const severity = type === MessageType.Error ? "error" : type === MessageType.Warning ? "warning" : "info";
      // The same message again while it is still on screen (say, each inline completion
      // failing for want of a model) adds nothing.
      if (this.showing.has(message)) {
        return;
      }
      this.showing.add(message);
      void offerFixes(message, diagnose(message), severity, this.fixContext()).finally(() => this.showing.delete(message));
    });
  }

  private async onDied(epoch: number, why: string): Promise<void> {
    if (epoch !== this.epoch) {
      return;
    }
    this.epoch++;
    this.board.clear();
    const last = tail(this.stderr);
    this.output.error(`${why}${last ? `\n${last}` : ""}`);
    const delay = this.policy.crashed(Date.now());
    const client = this.client;
    this.client = undefined;
    void client?.dispose().catch(() => undefined);
    if (delay === undefined) {
      this.setState("failed", `${why} (${this.policy.crashCount} times in a row)`);
      const fixes = [...diagnose(this.stderr), "restart", "showOutput"] as const;
      const lastLine = last ? ` Last output: ${last.split("\n").pop()}` : "";
      void offerFixes(`Cromwell: ${why}, ${this.policy.crashCount} times in a row.${lastLine}`, [...fixes], "error", this.fixContext());
      return;
    }
    this.setState("stopped", `${why}; restarting in ${Math.round(delay / 1000)} s`);
    this.restartTimer = setTimeout(() => void this.start(), delay);
  }

  async stop(): Promise<void> {
    clearTimeout(this.restartTimer);
    this.epoch++;
    const client = this.client;
    this.client = undefined;
    this.board.clear();
    if (client !== undefined) {
      try {
        await client.stop(2000);
      } catch (e) {
        this.output.warn(`stopping the server: ${(e as Error).message}`);
      }
      await client.dispose().catch(() => undefined);
    }
    this.setState("stopped");
  }

  async restart(): Promise<void> {
    this.policy.reset();
    // A start in flight would answer the start() below with itself (for a client about to
    // be stopped): let it finish first.
    await this.starting;
    await this.stop();
    await this.start();
  }

  // --- requests ---------------------------------------------------------------------------
  async executeServerCommand(command: string, args: unknown[]): Promise<unknown> {
    if (this.starting !== undefined) {
      await this.starting;
    }
    const client = this.languageClient;
    if (client === undefined) {
      throw new Error(`the Cromwell server is not running (${this.detail ?? this.state})`);
    }
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
  }

  cancelGeneration(): void {
    const client = this.languageClient;
    const tokens = this.board.cancellable();
    if (client === undefined || tokens.length === 0) {
      return;
    }
    for (const token of tokens) {
      void client.sendNotification(WorkDoneProgressCancelNotification.type, { token });
    }
    this.output.info(`cancelling ${tokens.length} generation(s)`);
  }

  // --- UI ---------------------------------------------------------------------------------
  private setState(state: ServerState, detail?: string): void {
    this.state = state;
    this.detail = detail;
    this.refreshStatus();
  }

  private refreshStatus(): void {
    const view = statusView(this.state, this.board, this.detail);
    this.status.text = view.text;
    this.status.tooltip = view.tooltip;
    this.status.command = {
      cancel: "cromwell.editor.cancelGeneration",
      restart: "cromwell.editor.restartServer",
      output: "cromwell.editor.showOutput",
    }[view.click];
    this.status.show();
    void vscode.commands.executeCommand("setContext", "cromwell.generating", this.board.active);
    void vscode.commands.executeCommand("setContext", "cromwell.serverState", this.state);
  }

  private fixContext(): FixContext {
    return { serverCommand: this.serverCommand, restart: () => void this.restart(), showOutput: () => this.output.show() };
  }

  dispose(): void {
    clearTimeout(this.restartTimer);
    for (const d of this.disposables) {
      d.dispose();
    }
    void this.stop();
  }
}
