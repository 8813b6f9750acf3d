// Renders the server's `cromwell.explainContext` answer (what it would send the model, and
// why each file was or was not chosen) as Markdown a person can read.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A 0-based, end-exclusive [start, end) pair as the 1-based lines a person reads. */
function lines(v: Json | undefined): string {
  if (!Array.isArray(v) || v.length !== 2) {
    return "—";
  }
  const first = Number(v[0]) + 1;
  const last = Number(v[1]);
  return last <= first ? `line ${first}` : `lines ${first}–${last}`;
}

function fmt(v: Json | undefined): string {
  if (v === undefined || v === null) {
    return "—";
  }
  if (typeof v === "number") {
    return Number.isInteger(v) ? String(v) : v.toFixed(3);
  }
  return typeof v === "string" ? v : JSON.stringify(v);
}

function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

export function renderExplanation(result: unknown, documentName: string): string {
  const out: string[] = [`# Cromwell context for ${documentName}`, ""];
  if (typeof result === "string") {
    out.push(result);
    return out.join("\n") + "\n";
  }
  if (!isObject(result)) {
    out.push("The server sent no explanation.");
    return out.join("\n") + "\n";
  }
  const known = new Set(["target", "budget", "promptTokens", "region", "surroundings", "files", "prompt"]);
  out.push("| | |", "|---|---|");
  out.push(`| Target | ${cell(fmt(result.target))} |`);
  out.push(`| Token budget | ${fmt(result.budget)} |`);
  out.push(`| Prompt tokens | ${fmt(result.promptTokens)} |`);
  if (isObject(result.region)) {
    out.push(`| Region | ${lines(result.region.lines)}, ${fmt(result.region.tokens)} tokens |`);
  }
  if (isObject(result.surroundings)) {
    out.push(`| Surroundings | ${lines(result.surroundings.lines)}, ${fmt(result.surroundings.tokens)} tokens |`);
  }
  out.push("");
  if (Array.isArray(result.files)) {
    out.push("## Files ranked for the window", "");
    out.push("| File | Score | Chosen | Lines | Tokens | Signals |", "|---|---:|:---:|---|---:|---|");
    for (const f of result.files) {
      if (!isObject(f)) {
        continue;
      }
      const signals = isObject(f.signals)
        ? Object.entries(f.signals).map(([k, v]) => `${k} ${fmt(v)}`).join(", ")
        : fmt(f.signals);
      out.push(
        `| ${cell(fmt(f.path))} | ${fmt(f.score)} | ${f.chosen ? "yes" : "no"} | ${f.chosen ? lines(f.lines) : "—"} | ${fmt(f.tokens)} | ${cell(signals)} |`,
      );
    }
    out.push("");
  }
  if (typeof result.prompt === "string") {
    out.push("## Prompt", "", "````text", result.prompt, "````", "");
  }
  const rest = Object.fromEntries(Object.entries(result).filter(([k]) => !known.has(k)));
  if (Object.keys(rest).length > 0) {
    out.push("## More", "", "```json", JSON.stringify(rest, null, 2), "```", "");
  }
  return out.join("\n");
}
