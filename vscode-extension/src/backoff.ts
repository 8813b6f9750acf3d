// When the server dies, start it again after a growing delay, so a server that crashes at
// start-up does not spin; a run that stayed up long enough wipes the slate clean.

export interface BackoffOptions {
  /** First delay, milliseconds. */
  initialMs: number;
  /** The delay doubles up to this. */
  maxMs: number;
  /** Give up after this many crashes in a row. */
  maxAttempts: number;
  /** A run at least this long resets the count. */
  stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 30000, maxAttempts: 5, stableMs: 60000 };

export class RestartPolicy {
  private crashes = 0;
  private startedAt: number | undefined;

  constructor(private readonly opts: BackoffOptions = DEFAULT_BACKOFF) {}

  /** Call when a server process has started. */
  started(now: number): void {
    this.startedAt = now;
  }

  /**
   * Call when the server died without being asked to. Returns the delay before the next start,
   * or undefined when it has crashed too often and should stay down until the user acts.
   */
  crashed(now: number): number | undefined {
    if (this.startedAt !== undefined && now - this.startedAt >= this.opts.stableMs) {
      this.crashes = 0;
    }
    this.startedAt = undefined;
    this.crashes += 1;
    if (this.crashes > this.opts.maxAttempts) {
      return undefined;
    }
    return Math.min(this.opts.maxMs, this.opts.initialMs * 2 ** (this.crashes - 1));
  }

  get crashCount(): number {
    return this.crashes;
  }

  /** The user restarted by hand: forget past crashes. */
  reset(): void {
    this.crashes = 0;
    this.startedAt = undefined;
  }
}
