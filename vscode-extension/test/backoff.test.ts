import { describe, expect, test } from "vitest";
import { RestartPolicy } from "../src/backoff";

describe("RestartPolicy", () => {
  const opts = { initialMs: 1000, maxMs: 5000, maxAttempts: 4, stableMs: 60000 };

  test("delays double up to the cap, then it gives up", () => {
    const p = new RestartPolicy(opts);
    const delays = [];
    for (let i = 0; i < 5; i++) {
      p.started(i * 10);
      delays.push(p.crashed(i * 10 + 5));
    }
    expect(delays).toEqual([1000, 2000, 4000, 5000, undefined]);
  });

  test("a run that stayed up resets the count", () => {
    const p = new RestartPolicy(opts);
    p.started(0);
    expect(p.crashed(10)).toBe(1000);
    p.started(20);
    expect(p.crashed(30)).toBe(2000);
    p.started(100);
    expect(p.crashed(100 + 60000)).toBe(1000);
  });

  test("a crash before the server ever started still counts", () => {
    const p = new RestartPolicy(opts);
    expect(p.crashed(0)).toBe(1000);
    expect(p.crashed(1)).toBe(2000);
    p.reset();
    expect(p.crashCount).toBe(0);
    expect(p.crashed(2)).toBe(1000);
  });
});
