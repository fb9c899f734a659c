// Steady-state streaming throughput of a bitnet serve: N clients each stream one long chat reply
// (ignore_eos, so none ends early); once every stream has its first token and WARMUP seconds
// more have passed, the tokens arriving in the next WINDOW seconds are counted; then all are
// aborted. Prints one line: `clients N tokens T seconds S tokens/s R`.
// Usage: node server_throughput.mjs BASE_URL CLIENTS [WARMUP_S] [WINDOW_S]
const [base, clientsArg, warmupArg = "3", windowArg = "30"] = process.argv.slice(2);
const clients = Number(clientsArg), warmup = Number(warmupArg) * 1000, window = Number(windowArg) * 1000;

const controller = new AbortController();
const arrivals = [];  // the time of every token, all streams
let started = 0;
let markFirst;
const allStarted = new Promise((r) => { markFirst = r; });

async function stream(i) {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST", headers: { "Content-Type": "application/json" }, signal: controller.signal,
    body: JSON.stringify({ messages: [{ role: "user", content: `Client ${i}: tell me a long story.` }],
                           max_tokens: 100000, ignore_eos: true, temperature: 0.8, seed: i, stream: true }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", first = true;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ${i} ended early (slot context too small?)`);
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const chunk = JSON.parse(event.slice(6));
      if (chunk.error) throw new Error(chunk.error.message);
      if (!chunk.choices?.[0]?.delta?.content) continue;
      arrivals.push(performance.now());
      if (first && ++started === clients) markFirst();
      first = false;
    }
  }
}

const streams = Array.from({ length: clients }, (_, i) => stream(i).catch((e) => {
  if (e.name !== "AbortError") { console.error(`error: ${e.message}`); process.exit(1); }
}));
await allStarted;
await new Promise((r) => setTimeout(r, warmup));
const from = performance.now();
await new Promise((r) => setTimeout(r, window));
const to = performance.now();
const tokens = arrivals.filter((t) => t >= from && t < to).length;
controller.abort();
await Promise.all(streams);
console.log(`clients ${clients} tokens ${tokens} seconds ${((to - from) / 1000).toFixed(2)} tokens/s ${(tokens / ((to - from) / 1000)).toFixed(3)}`);
