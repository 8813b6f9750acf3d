// Reads file names out of the server's unified diffs.

/** The path a creating diff writes (`+++ b/path`), relative to the workspace. */
export function newFileOf(diff: string): string | undefined {
  const line = diff.split("\n").find((l) => l.startsWith("+++ "));
  if (line === undefined) {
    return undefined;
  }
  const path = line.slice(4).split("\t")[0].trim();
  return path.replace(/^b\//, "") || undefined;
}
