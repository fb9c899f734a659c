// A bounded load test on loopback: N clients each send streaming chat requests back to back for
// a fixed time. Reports latency p50/p99 (whole request) and time to first token, aggregate
// generated tokens/s, the error count and the server's resident memory before and after.
// Usage: node load.mjs BASE_URL --clients N --seconds S --max-tokens M [--pid PID]
//        [--max-rss-growth-mib X] [--kill PID --kill-after S [--kill-once-served LOG]]
// --kill SIGKILLs a process (a replica behind a balancer) after S seconds, or later once its LOG
// shows a served chat request (on a slow machine, e.g. under the sanitizers, the first may take
// longer than S); the load then goes on for the rest of its time after the kill: requests already
// running then may fail, requests started after it must not.
// Exits 1 on any error (other than those) or when RSS grew more than the bound.
import { readdirSync, readFileSync } from "node:fs";

const args = process.argv.slice(2);
const base = args[0];
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const clients = Number(opt("--clients", 4));
const seconds = Number(opt("--seconds", 10));
const maxTokens = Number(opt("--max-tokens", 32));
const pid = opt("--pid", null);
const maxGrowth = Number(opt("--max-rss-growth-mib", 64));
const killPid = opt("--kill", null);
const killAfter = Number(opt("--kill-after", 0));
const killOnceServed = opt("--kill-once-served", null);

const rssMiB = () => {
  if (!pid) return NaN;
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
};

// One streaming request; resolves { ms, ttftMs, tokens } or throws.
async function one(i, n) {
  const start = performance.now();
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content: `client ${i} request ${n}: say something` }],
                           max_tokens: maxTokens, temperature: 0.8, seed: i * 1000 + n, stream: true,
                           stream_options: { include_usage: true } }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", ttft = -1, tokens = -1, done = false;
  while (!done) {
    const r = await reader.read();
    if (r.done) break;
    buffer += decoder.decode(r.value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (line.startsWith(":")) continue;  // an SSE comment: the server's keepalive
      if (!line.startsWith("data: ")) throw new Error(`bad event: ${line.slice(0, 80)}`);
      const data = line.slice(6);
      if (data === "[DONE]") { done = true; break; }
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      if (ttft < 0 && chunk.choices?.[0]?.delta?.content) ttft = performance.now() - start;
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
    }
  }
  if (!done || tokens < 0) throw new Error("stream ended without [DONE] and usage");
  return { ms: performance.now() - start, ttftMs: ttft, tokens };
}

const rssBefore = rssMiB();
const results = [];
const errors = [];     // of requests started after the kill (or all, without --kill)
const inFlight = [];   // errors of requests that were running when the replica was killed
let killedAt = Infinity;
// A killed process takes a moment to die; until its sockets are closed a balancer may still hand it
// a request, so "after the kill" starts when it is gone, or a zombie whose other threads have all
// exited: the leader turns zombie first, and the listening socket stays open (accepting into its
// backlog) until the last thread releases the file table (a request nginx sent then got a reset).
const dead = (p) => {
  try {
    return readdirSync(`/proc/${p}/task`).length <= 1 && /^State:\s+Z/m.test(readFileSync(`/proc/${p}/status`, "utf8"));
  } catch { return true; }
};
const served = () => readFileSync(killOnceServed, "utf8").includes("request: POST /v1/chat/completions 200");
const t0 = performance.now();
let deadline = t0 + seconds * 1000;
let killPending = Boolean(killPid);  // the clients go on until the kill and the time after it
if (killPid) setTimeout(async () => {
  const giveUp = performance.now() + 60000;
  while (killOnceServed && !served()) {
    if (performance.now() > giveUp) { killPending = false; return; }  // fails below: no kill
    await new Promise((r) => setTimeout(r, 20));
  }
  process.kill(Number(killPid), "SIGKILL");
  while (!dead(killPid)) await new Promise((r) => setTimeout(r, 2));
  killedAt = performance.now();
  deadline = Math.max(deadline, killedAt + (seconds - killAfter) * 1000);
  killPending = false;
}, killAfter * 1000);
await Promise.all(Array.from({ length: clients }, async (_, i) => {
  for (let n = 0; performance.now() < deadline || killPending; n++) {
    const started = performance.now();
    try { results.push(await one(i, n)); } catch (e) { (started < killedAt && killPid ? inFlight : errors).push(e.message); }
  }
}));
const elapsed = (performance.now() - t0) / 1000;
const rssAfter = rssMiB();

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};
const lat = results.map((r) => r.ms), ttft = results.map((r) => r.ttftMs).filter((x) => x >= 0);
const tokens = results.reduce((a, r) => a + r.tokens, 0);
console.log(`load: ${clients} streaming clients, ${elapsed.toFixed(1)} s, ${results.length} requests, ${errors.length} errors`);
if (killPid) console.log(`load: killed ${killPid} after ${((killedAt - t0) / 1000).toFixed(1)} s: ${inFlight.length} requests running on it failed, ` +
                        `${errors.length} started later failed`);
console.log(`load: latency p50 ${pct(lat, 50).toFixed(0)} ms, p99 ${pct(lat, 99).toFixed(0)} ms; ` +
            `time to first token p50 ${pct(ttft, 50).toFixed(0)} ms, p99 ${pct(ttft, 99).toFixed(0)} ms`);
console.log(`load: aggregate ${(tokens / elapsed).toFixed(1)} generated tokens/s (${tokens} tokens)`);
if (pid) console.log(`load: server RSS ${rssBefore.toFixed(1)} MiB before, ${rssAfter.toFixed(1)} MiB after`);
for (const e of errors.slice(0, 5)) console.error(`error: ${e}`);
let ok = results.length > 0 && errors.length === 0;
if (killPid && killedAt === Infinity) { console.error("FAIL: the kill did not happen"); ok = false; }
if (pid && rssAfter - rssBefore > maxGrowth) {
  console.error(`FAIL: RSS grew by ${(rssAfter - rssBefore).toFixed(1)} MiB (bound ${maxGrowth})`);
  ok = false;
}
process.exit(ok ? 0 : 1);
