import { describe, expect, test } from "vitest";
import { renderExplanation } from "../src/explain";
import { diagnose, tail } from "../src/messages";
import { newFileOf } from "../src/diffPaths";

describe("renderExplanation", () => {
  test("the server's plan as tables", () => {
    const md = renderExplanation(
      {
        target: "shapes.py",
        budget: 3584,
        promptTokens: 911,
        region: { lines: [3, 5], tokens: 20 },
        surroundingsNote: "kept",
        surroundings: { lines: [0, 10], tokens: 60 },
        files: [
          { path: "geo|util.py", score: 0.8125, signals: { imports: 1, recency: 0.5 }, chosen: true, lines: [0, 40], tokens: 300 },
          { path: "README.md", score: 0.1, signals: {}, chosen: false, lines: null, tokens: 0 },
        ],
        extra: 1,
      },
      "shapes.py",
    );
    expect(md).toContain("# Cromwell context for shapes.py");
    expect(md).toContain("| Prompt tokens | 911 |");
    expect(md).toContain("| Region | lines 4–5, 20 tokens |");
    expect(md).toContain("| geo\\|util.py | 0.813 | yes | lines 1–40 | 300 | imports 1, recency 0.500 |");
    expect(md).toContain("| README.md | 0.100 | no | — | 0 |");
    expect(md).toContain('"extra": 1');
    expect(renderExplanation({ region: { lines: [25, 26], tokens: 4 } }, "s.py")).toContain("| Region | line 26, 4 tokens |");
  });

  test("a plain string or nothing", () => {
    expect(renderExplanation("just text", "a.py")).toContain("just text");
    expect(renderExplanation(null, "a.py")).toContain("The server sent no explanation.");
  });
});

describe("server messages", () => {
  test("a missing model offers to choose or fetch one", () => {
    expect(diagnose("Cromwell: model file not found: /m.gguf; set cromwell.modelPath")).toEqual(["chooseModel", "fetchModel"]);
    expect(diagnose("model unavailable: could not load the model (embedded default)")).toEqual(["chooseModel", "fetchModel"]);
  });
  test("a broken install offers a server path", () => {
    expect(diagnose("the Cromwell model runtime (engine.runtime) is not installed in this Python")).toEqual(["setServerPath"]);
    expect(diagnose("ModuleNotFoundError: No module named 'cromwell_lsp'")).toEqual(["setServerPath"]);
    expect(diagnose("ModuleNotFoundError: No module named 'cromwell_cli'")).toEqual(["setServerPath"]);
  });
  test("other messages offer nothing", () => {
    expect(diagnose("the edit was not applied")).toEqual([]);
  });
  test("tail keeps the last non-empty lines", () => {
    expect(tail("a\n\nb\nc\n", 2)).toBe("b\nc");
  });
});

describe("newFileOf", () => {
  test("the created file of a diff", () => {
    expect(newFileOf("--- /dev/null\n+++ b/ui/login.py\n@@ -0,0 +1 @@\n+x\n")).toBe("ui/login.py");
    expect(newFileOf("+++ ui/login.py\t2026-01-01\n")).toBe("ui/login.py");
    expect(newFileOf("no diff")).toBeUndefined();
  });
});
