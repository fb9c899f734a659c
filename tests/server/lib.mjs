// Shared by the server tests: counted checks and small HTTP helpers (Node 18's global fetch).
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

export function finish(name) {
  console.log(`${name}: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}
