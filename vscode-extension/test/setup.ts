// Every test file sees the same VS Code API mock from jest-mock-vscode in place of `vscode`.
import { vi } from "vitest";

vi.mock("vscode", async () => (await import("jest-mock-vscode")).createVSCodeMock(vi));
