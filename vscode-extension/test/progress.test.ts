import { describe, expect, test } from "vitest";
import { ProgressBoard, statusView } from "../src/progress";

describe("status bar", () => {
  test("server states", () => {
    const board = new ProgressBoard();
    expect(statusView("running", board)).toMatchObject({ text: "$(check) Cromwell", click: "output" });
    expect(statusView("starting", board).text).toContain("Cromwell");
    expect(statusView("failed", board, "no executable")).toMatchObject({ click: "restart" });
    expect(statusView("failed", board, "no executable").tooltip).toContain("no executable");
  });

  test("a generation shows its title and percentage and a click cancels it", () => {
    const board = new ProgressBoard();
    board.update("cromwell-1", { kind: "begin", title: "Cromwell: Add docstring", cancellable: true, percentage: 0 });
    board.update("cromwell-1", { kind: "report", message: "12 tokens", percentage: 37.4 });
    const view = statusView("running", board);
    expect(view.text).toBe("$(sync~spin) Cromwell: Add docstring 37%");
    expect(view.tooltip).toContain("12 tokens");
    expect(view.click).toBe("cancel");
    expect(board.cancellable()).toEqual(["cromwell-1"]);
    board.update("cromwell-1", { kind: "end", message: "done" });
    expect(board.active).toBe(false);
    expect(statusView("running", board).text).toBe("$(check) Cromwell");
  });

  test("the latest of two generations is shown; only cancellable ones are cancelled", () => {
    const board = new ProgressBoard();
    board.update(1, { kind: "begin", title: "first", cancellable: false });
    board.update(2, { kind: "begin", title: "second", cancellable: true });
    expect(statusView("running", board).text).toBe("$(sync~spin) Cromwell: second");
    expect(board.cancellable()).toEqual([2]);
    board.update(2, { kind: "end" });
    expect(statusView("running", board)).toMatchObject({ click: "output" });
  });

  test("a report for an unknown token still shows", () => {
    const board = new ProgressBoard();
    board.update("x", { kind: "report", message: "late" });
    expect(board.latest()).toMatchObject({ title: "Generating", message: "late" });
  });
});
