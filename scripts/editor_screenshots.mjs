// Screenshots of source files open in a real VS Code (code-server, driven through headless
// Chromium by playwright-core), for measuring the screenshot code reader on an editor's own
// pixels. scripts/editor_screenshots.py starts code-server and writes the plan this script
// follows; this script only drives the browser.
//
// Usage: node editor_screenshots.mjs PLAN.json
//
// PLAN.json: {url, workspace, out, chromium, playwright (a package.json next to
// node_modules/playwright-core), settings_files, base_settings, variants: [{name, settings}],
// shots: [{name, file, first_line, count, variant, margin}]}.
//
// For each variant it writes the settings, loads the workbench afresh, and for each of that
// variant's shots opens the file, puts the cursor at the end of the shot's last line, scrolls
// (a line at a time) until the shot's first line is the editor's top line, and screenshots the
// editor from its top down to the end of the shot's last line. Beside NAME.png it writes
// NAME.view.json: what the editor's DOM showed (each fully visible line's number, text and right
// edge, the line height, the theme, the font) for the Python side to check against the file.
// Writes $out/run.json ({shots: {name: "ok" | error}}) at the end; exit status 1 if a shot failed.

import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";

const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
// playwright-core is installed with the VS Code extension's npm tooling, not next to this file.
const { chromium } = createRequire(plan.playwright)("playwright-core");

function log(msg) {
  process.stdout.write(`[shots ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function runCommand(page, title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible" });
  await input.fill(`>${title}`);
  const row = page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first();
  await row.waitFor({ state: "visible" });
  await page.keyboard.press("Enter");
  await input.waitFor({ state: "hidden" });
}

async function openFile(page, name) {
  await page.keyboard.press("Control+P");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible" });
  await input.fill(name);
  // Enter opens the focused row: wait until that is the file (the list first shows the recently
  // opened ones, and filters a moment later).
  await page.locator(".quick-input-list .monaco-list-row.focused", { hasText: name }).waitFor();
  await page.keyboard.press("Enter");
  await input.waitFor({ state: "hidden" });
  await page.locator(".tab.active", { hasText: name }).waitFor();
  await page.locator(".part.editor .monaco-editor .view-lines").first().waitFor();
}

async function goToLine(page, line, column) {
  await page.keyboard.press("Control+G");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible" });
  // Go to Line is Quick Open with a ":" prefix: the fill replaces the prefix, so write it.
  await input.fill(`:${line}:${column}`);
  await page.keyboard.press("Enter");
  await input.waitFor({ state: "hidden" });
}

/** Two animation frames: the editor renders its DOM on the next one. */
async function frames(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

/**
 * The active editor as the DOM shows it. A view line's number comes from its `top` inside the
 * scrolled content (line n sits at (n - 1) * lineHeight); the cursor's own `top` and the status
 * bar's "Ln" vouch for that reading.
 */
function readEditor() {
  const editors = [...document.querySelectorAll(".part.editor .monaco-editor")].filter(
    (e) => e.getBoundingClientRect().width > 100 && e.querySelector(".view-lines"));
  const ed = editors.find((e) => e.classList.contains("focused")) ?? editors[0];
  if (!ed) {
    return null;
  }
  const box = ed.getBoundingClientRect();
  const viewLines = ed.querySelector(".view-lines");
  const lh = parseFloat(getComputedStyle(viewLines).lineHeight);
  const content = ed.querySelector(".lines-content");
  const lineOf = (el) => Math.round(parseFloat(el.style.top) / lh) + 1;
  const lines = [];
  for (const el of viewLines.querySelectorAll(":scope > .view-line")) {
    const r = el.getBoundingClientRect();
    const span = el.firstElementChild;
    lines.push({
      line: lineOf(el),
      top: r.top - box.top,
      bottom: r.bottom - box.top,
      right: (span ? span.getBoundingClientRect().right : r.left) - box.left,
      // Monaco writes spaces (and tabs, expanded) as no-break spaces.
      text: el.textContent.replace(/\u00a0/g, " "),
    });
  }
  lines.sort((a, b) => a.top - b.top);
  const numbers = [...ed.querySelectorAll(".margin-view-overlays .line-numbers")].map((el) => ({
    top: el.getBoundingClientRect().top - box.top,
    text: el.textContent.trim(),
  })).sort((a, b) => a.top - b.top);
  const cursor = ed.querySelector(".cursors-layer .cursor");
  const status = [...document.querySelectorAll(".statusbar-item")]
    .map((el) => /Ln (\d+), Col (\d+)/.exec(el.textContent ?? ""))
    .find((m) => m !== null);
  const toasts = [...document.querySelectorAll(".notification-toast")].filter(
    (el) => el.getBoundingClientRect().height > 0).length;
  return {
    box: { x: box.x, y: box.y, width: box.width, height: box.height },
    lineHeight: lh,
    scrollTop: -parseFloat(content.style.top),
    scrollLeft: -parseFloat(content.style.left),
    lines,
    numbers,
    cursor: cursor ? { line: lineOf(cursor), top: cursor.getBoundingClientRect().top - box.top } : null,
    status: status ? { line: Number(status[1]), column: Number(status[2]) } : null,
    dark: ed.classList.contains("vs-dark"),
    fontFamily: getComputedStyle(viewLines).fontFamily,
    fontSize: parseFloat(getComputedStyle(viewLines).fontSize),
    marginWidth: ed.querySelector(".margin")?.getBoundingClientRect().width ?? 0,
    // Where column 1 starts (the editor is never scrolled sideways when a shot is taken).
    textLeft: viewLines.getBoundingClientRect().left - box.left,
    toasts,
    html: viewLines.innerHTML,
  };
}

/** Scroll a line at a time until `first` is the top line, exactly. The keys are bound (by the
 * Python side's keybindings.json) to `editorScroll` by model line, which puts a line's top at the
 * editor's top; Ctrl+Up/Down scroll by a line's height from wherever the view is. Neither moves
 * the cursor. */
async function scrollToTop(page, first) {
  const seen = [];
  for (let i = 0; i < 400; i++) {
    const s = await page.evaluate(readEditor);
    const target = (first - 1) * s.lineHeight;
    seen.push(s.scrollTop);
    if (Math.abs(s.scrollTop - target) < 0.5) {
      return;
    }
    await page.keyboard.press(s.scrollTop < target ? plan.scroll_keys.down : plan.scroll_keys.up);
    await frames(page);
  }
  throw new Error(`could not scroll line ${first} to the top (scrollTop ${seen.slice(0, 5)}..${seen.slice(-3)})`);
}

/** The DOM once it stops changing: syntax colouring may land a moment after the text. */
async function settled(page) {
  let last = await page.evaluate(readEditor);
  for (let i = 0; i < 20; i++) {
    await page.waitForTimeout(250);
    const now = await page.evaluate(readEditor);
    if (now.html === last.html && now.scrollTop === last.scrollTop) {
      return now;
    }
    last = now;
  }
  throw new Error("the editor kept changing");
}

async function shoot(page, shot) {
  await openFile(page, shot.file);
  const last = shot.first_line + shot.count - 1;
  // A column past the end lands at the end of the line.
  await goToLine(page, last, 100000);
  await scrollToTop(page, shot.first_line);
  let view = await settled(page);
  if (view.toasts > 0) {
    await runCommand(page, "Notifications: Clear All Notifications");
    view = await settled(page);
  }
  const lh = view.lineHeight;
  if (view.status?.line !== last || view.cursor?.line !== last) {
    throw new Error(`the cursor is not on line ${last}: ${JSON.stringify([view.status, view.cursor])}`);
  }
  const cursorRow = view.lines.find((l) => l.line === last);
  if (!cursorRow || Math.abs(cursorRow.top - view.cursor.top) > 0.5) {
    throw new Error("the cursor's line and the view line numbered like it are not at the same height");
  }
  if (Math.abs(view.scrollLeft) > 0.5) {
    throw new Error(`the editor is scrolled sideways by ${view.scrollLeft}px`);
  }
  const visible = view.lines.filter((l) => l.top >= -0.5 && l.bottom <= view.box.height + 0.5);
  const rows = visible.filter((l) => l.line >= shot.first_line && l.line <= last);
  if (rows.length !== shot.count || rows[0].line !== shot.first_line || Math.abs(rows[0].top) > 0.5) {
    throw new Error(`lines ${shot.first_line}-${last} are not all fully visible from the top`);
  }
  const widest = Math.max(...rows.map((l) => l.right));
  const width = Math.min(view.box.width, Math.ceil(widest + shot.margin));
  if (widest > view.box.width - 1) {
    throw new Error(`a line runs past the editor's right edge (${widest} > ${view.box.width})`);
  }
  const clip = { x: view.box.x, y: view.box.y, width, height: shot.count * lh };
  const png = path.join(plan.out, `${shot.name}.png`);
  await page.screenshot({ path: png, clip, animations: "disabled" });
  // Taken again should the DOM have changed while the picture was taken.
  const after = await page.evaluate(readEditor);
  if (after.html !== view.html) {
    throw new Error("the editor changed while the screenshot was taken");
  }
  const record = {
    first_line: rows[0].line,
    lines: rows.map(({ line, text, right }) => ({ line, text, right })),
    numbers: view.numbers.filter((n) => n.top >= -0.5 && n.top < shot.count * lh - 0.5).map((n) => n.text),
    line_height: lh,
    dark: view.dark,
    font_family: view.fontFamily,
    font_size: view.fontSize,
    margin_width: view.marginWidth,
    text_left: view.textLeft,
    cursor: view.status,
    clip,
  };
  fs.writeFileSync(path.join(plan.out, `${shot.name}.view.json`), JSON.stringify(record, null, 1));
}

async function loadWorkbench(page, variant) {
  const settings = { ...plan.base_settings, ...variant.settings };
  for (const file of plan.settings_files) {
    fs.writeFileSync(file, JSON.stringify(settings, null, 2));
  }
  await page.goto(`${plan.url}/?folder=${encodeURIComponent(plan.workspace)}`);
  await page.locator(".monaco-workbench").waitFor({ timeout: 120000 });
  // Wait until the workbench has read the settings: its theme class says so.
  const dark = variant.dark;
  await page.waitForFunction((d) => {
    const wb = document.querySelector(".monaco-workbench");
    return wb !== null && wb.classList.contains("vs-dark") === d && wb.classList.contains("vs") === !d;
  }, dark, { timeout: 60000 });
  // Only the editor part on screen: its width then fits the longest lines.
  const parts = [
    [".part.sidebar", "View: Close Primary Side Bar"],
    [".part.auxiliarybar", "View: Close Secondary Side Bar"],
    [".part.panel", "View: Close Panel"],
  ];
  for (const [selector, title] of parts) {
    if (await page.locator(selector).isVisible()) {
      await runCommand(page, title);
    }
  }
}

async function main() {
  const outcome = {};
  const browser = await chromium.launch({
    executablePath: plan.chromium,
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  let failed = false;
  try {
    const page = await browser.newPage({ viewport: plan.viewport, deviceScaleFactor: 1 });
    page.setDefaultTimeout(30000);
    for (const [index, variant] of plan.variants.entries()) {
      const shots = plan.shots.filter((s) => s.variant === index);
      if (shots.length === 0) {
        continue;
      }
      log(`variant ${variant.name}: ${shots.length} shots`);
      await loadWorkbench(page, variant);
      for (const shot of shots) {
        try {
          await shoot(page, shot);
          outcome[shot.name] = "ok";
          log(`${shot.name}: ok`);
        } catch (e) {
          failed = true;
          outcome[shot.name] = String(e?.message ?? e);
          log(`${shot.name}: FAILED ${outcome[shot.name]}`);
          await page.screenshot({ path: path.join(plan.out, `${shot.name}.failed.png`) }).catch(() => undefined);
          await page.keyboard.press("Escape").catch(() => undefined);
        }
      }
    }
  } catch (e) {
    failed = true;
    outcome.error = String(e?.stack ?? e);
    log(`FAILED: ${outcome.error}`);
  } finally {
    await browser.close().catch(() => undefined);
    fs.writeFileSync(path.join(plan.out, "run.json"), JSON.stringify({ shots: outcome }, null, 1));
  }
  process.exitCode = failed ? 1 : 0;
}

await main();
