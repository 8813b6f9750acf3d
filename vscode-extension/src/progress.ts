// What the status bar says: the server's state, or the generation it is reporting through
// `$/progress` (work-done progress the server creates with `window/workDoneProgress/create`).

export type ServerState = "starting" | "running" | "stopped" | "failed";

export type ProgressToken = number | string;

export interface ProgressValue {
  kind: "begin" | "report" | "end";
  title?: string;
  message?: string;
  percentage?: number;
  cancellable?: boolean;
}

interface Entry {
  title: string;
  message?: string;
  percentage?: number;
  cancellable: boolean;
}

/** The generations in flight, by progress token, in the order they began. */
export class ProgressBoard {
  private readonly entries = new Map<ProgressToken, Entry>();

  update(token: ProgressToken, value: ProgressValue): void {
    if (value.kind === "end") {
      this.entries.delete(token);
      return;
    }
    const prior = this.entries.get(token);
    if (value.kind === "begin" || prior === undefined) {
      this.entries.set(token, {
        title: value.title ?? prior?.title ?? "Generating",
        message: value.message,
        percentage: value.percentage,
        cancellable: value.cancellable ?? false,
      });
      return;
    }
    this.entries.set(token, {
      ...prior,
      message: value.message ?? prior.message,
      percentage: value.percentage ?? prior.percentage,
      cancellable: value.cancellable ?? prior.cancellable,
    });
  }

  forget(token: ProgressToken): void {
    this.entries.delete(token);
  }

  clear(): void {
    this.entries.clear();
  }

  get active(): boolean {
    return this.entries.size > 0;
  }

  /** Tokens whose work the user may cancel. */
  cancellable(): ProgressToken[] {
    return [...this.entries].filter(([, e]) => e.cancellable).map(([t]) => t);
  }

  /** The most recent generation: the one the user is waiting on. */
  latest(): Entry | undefined {
    let last: Entry | undefined;
    for (const e of this.entries.values()) {
      last = e;
    }
    return last;
  }
}

export interface StatusView {
  text: string;
  tooltip: string;
  /** Which command a click runs. */
  click: "cancel" | "restart" | "output";
}

export function statusView(state: ServerState, board: ProgressBoard, detail?: string): StatusView {
  const job = board.latest();
  if (state === "running" && job !== undefined) {
    const pct = job.percentage !== undefined ? ` ${Math.round(job.percentage)}%` : "";
    const msg = job.message ? ` — ${job.message}` : "";
    // The server's titles name Cromwell already ("Cromwell: Add docstring").
    const title = /^cromwell\b/i.test(job.title) ? job.title : `Cromwell: ${job.title}`;
    return {
      text: `$(sync~spin) ${title}${pct}`,
      tooltip: `${job.title}${msg}${job.cancellable ? "\nClick to cancel." : ""}`,
      click: job.cancellable ? "cancel" : "output",
    };
  }
  switch (state) {
    case "starting":
      return { text: "$(loading~spin) Cromwell", tooltip: "Cromwell: starting the language server…", click: "output" };
    case "running":
      return { text: "$(check) Cromwell", tooltip: "Cromwell: language server running. Click for its output.", click: "output" };
    case "stopped":
      return { text: "$(circle-slash) Cromwell", tooltip: `Cromwell: server stopped${detail ? ` — ${detail}` : ""}. Click to restart.`, click: "restart" };
    case "failed":
      return { text: "$(error) Cromwell", tooltip: `Cromwell: ${detail ?? "the server could not start"}. Click to restart.`, click: "restart" };
  }
}
