// Shared by the server tests: counted checks and small HTTP helpers (Node's global fetch).
import { readFileSync } from "node:fs";

export let passed = 0;
export let failed = 0;

export function check(name, condition, detail = "") {
  if (condition) passed++;
  else {
    failed++;
    console.error(`FAIL: ${name}${detail ? ": " + detail : ""}`);
  }
}

export async function getJson(url, init) {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.json() };
}

// Waits until every slot of the server is idle; returns the milliseconds it took (or -1).
export async function waitIdle(base, timeoutMs = 5000) {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const { body } = await getJson(`${base}/slots`);
    if (body.every((s) => !s.is_processing)) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 10));
  }
  return -1;
}

// Checks that a reply of the demo model reads as text: at least `min` words, 80% of them words of
// its training corpus (models/bitnet-demo-stories.words, one lower-case word a line).
export function checkWords(name, text, wordsFile, min = 8) {
  const vocabulary = new Set(readFileSync(wordsFile, "utf8").split("\n"));
  const words = (text.match(/[A-Za-z]+/g) ?? []).map((w) => w.toLowerCase());
  const known = words.filter((w) => vocabulary.has(w)).length;
  check(`${name} reads as text`, words.length >= min && known >= 0.8 * words.length,
        `${known} of ${words.length} words known: ${JSON.stringify(text.slice(0, 200))}`);
}

export function finish(name) {
  console.log(`${name}: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}
