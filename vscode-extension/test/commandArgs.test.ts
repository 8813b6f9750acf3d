import { describe, expect, test } from "vitest";
import {
  SERVER_COMMANDS,
  editSelectionRequest,
  explainRequest,
  needsInstruction,
  screenshotRequest,
  selectedLines,
  withInstruction,
} from "../src/commandArgs";

const doc = { uri: "file:///w/shapes.py", version: 7, lineCount: 10 };
const sel = (l0: number, c0: number, l1: number, c1: number) => ({ start: { line: l0, character: c0 }, end: { line: l1, character: c1 } });

describe("selectedLines", () => {
  test("a selection ending at column 0 leaves that line out", () => {
    expect(selectedLines(sel(7, 0, 9, 0), 10)).toEqual([7, 9]);
  });
  test("a selection ending inside a line takes it", () => {
    expect(selectedLines(sel(7, 4, 8, 3), 10)).toEqual([7, 9]);
  });
  test("an empty selection takes the cursor's line", () => {
    expect(selectedLines(sel(3, 5, 3, 5), 10)).toEqual([3, 4]);
  });
  test("never past the end of the document", () => {
    expect(selectedLines(sel(9, 0, 9, 12), 10)).toEqual([9, 10]);
  });
});

describe("server command arguments", () => {
  test("editSelection carries the server's ActionRequest fields", () => {
    expect(editSelectionRequest(doc, sel(7, 0, 9, 0), "  rename w  ")).toEqual({
      action: "editSelection",
      uri: "file:///w/shapes.py",
      version: 7,
      start_line: 7,
      end_line: 9,
      instruction: "rename w",
    });
  });

  test("an empty instruction is refused before reaching the server", () => {
    expect(() => editSelectionRequest(doc, sel(0, 0, 1, 0), "   ")).toThrow(/needs an instruction/);
  });

  test("fromScreenshot names the image and the cursor line", () => {
    expect(screenshotRequest(doc, 4, "/w/ui/login.png")).toEqual({
      action: "fromScreenshot", uri: doc.uri, version: 7, start_line: 4, end_line: 4, image: "/w/ui/login.png",
    });
    expect(() => screenshotRequest(doc, 0, "")).toThrow(/needs an image/);
  });

  test("explainContext takes the region only", () => {
    expect(explainRequest(doc, sel(2, 1, 2, 1))).toEqual({ uri: doc.uri, start_line: 2, end_line: 3 });
  });
});

describe("light-bulb Edit selection", () => {
  const listed = { action: "editSelection", uri: doc.uri, version: 7, start_line: 1, end_line: 2 };

  test("asks for an instruction only when the action has none", () => {
    expect(needsInstruction(SERVER_COMMANDS.editSelection, [listed])).toBe(true);
    expect(needsInstruction(SERVER_COMMANDS.editSelection, [{ ...listed, instruction: " " }])).toBe(true);
    expect(needsInstruction(SERVER_COMMANDS.editSelection, [{ ...listed, instruction: "x" }])).toBe(false);
    expect(needsInstruction(SERVER_COMMANDS.run, [listed])).toBe(false);
    expect(needsInstruction(SERVER_COMMANDS.editSelection, [])).toBe(false);
  });

  test("the instruction is added, the rest kept", () => {
    expect(withInstruction([listed], " tidy ")).toEqual([{ ...listed, instruction: "tidy" }]);
  });
});
