// bitnet serve with the official openai client: chat, streaming, completions, responses, models,
// errors; 16 concurrent greedy requests on 4 slots equal their sequential answers; a client that
// goes away, mid-stream or waiting for a whole reply, frees its slot at once; a stream waiting in
// the queue gets SSE keepalive comments and still parses; a conversation with the shipped demo
// model reads as text, streamed and not.
// Usage: node openai.test.mjs BASE_URL KEYED_BASE_URL KEY DEMO_URL DEMO_WORDS_FILE
// (KEYED_BASE_URL: one slot, the key KEY, --sse-keepalive 0.2)
import OpenAI from "openai";
import { check, checkWords, finish, getJson, waitIdle } from "./lib.mjs";

const [base, keyedBase, key, demoBase, wordsFile] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
const model = "tiny";
const greedy = { model, temperature: 0 };

async function expectError(name, status, promise, pattern) {
  try {
    await promise;
    check(name, false, "no error");
  } catch (e) {
    check(name, e instanceof OpenAI.APIError && e.status === status && pattern.test(e.message),
          `${e.constructor.name} ${e.status} ${e.message}`);
  }
}

// ---- chat ----
const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello there" }];
const chat = await client.chat.completions.create({ ...greedy, messages, max_tokens: 12 });
check("chat object", chat.object === "chat.completion");
check("chat content", typeof chat.choices[0].message.content === "string" && chat.choices[0].message.role === "assistant");
check("chat finish_reason", chat.choices[0].finish_reason === "length", chat.choices[0].finish_reason);
check("chat usage", chat.usage.completion_tokens === 12 && chat.usage.total_tokens === chat.usage.prompt_tokens + 12);
check("chat model echoed", chat.model === model);

// The same request streamed: the deltas add up to the same text; usage arrives last.
const stream = await client.chat.completions.create({ ...greedy, messages, max_tokens: 12, stream: true,
                                                      stream_options: { include_usage: true } });
let text = "";
let usage = null;
let finishReason = null;
for await (const chunk of stream) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.delta?.content ?? "";
    if (c.finish_reason) finishReason = c.finish_reason;
  }
}
check("stream text equals the whole reply", text === chat.choices[0].message.content, JSON.stringify([text, chat.choices[0].message.content]));
check("stream finish_reason", finishReason === "length");
check("stream usage", usage?.completion_tokens === 12, JSON.stringify(usage));
check("second identical request reuses the cached prompt", usage?.prompt_tokens_details?.cached_tokens > 0, JSON.stringify(usage));

// Stop strings end the reply before them.
const stopAt = chat.choices[0].message.content.slice(3, 6);
if (stopAt.length === 3) {
  const stopped = await client.chat.completions.create({ ...greedy, messages, max_tokens: 12, stop: [stopAt] });
  check("stop string", stopped.choices[0].finish_reason === "stop" && !stopped.choices[0].message.content.includes(stopAt),
        JSON.stringify(stopped.choices[0]));
}
const withLogprobs = await client.chat.completions.create({ ...greedy, messages, max_tokens: 3, logprobs: true, top_logprobs: 2 });
const lp = withLogprobs.choices[0].logprobs?.content;
check("logprobs", lp?.length === 3 && lp[0].top_logprobs.length === 2 && lp[0].logprob <= 0, JSON.stringify(lp?.[0]));
check("greedy token is the most likely", lp?.[0].token === lp?.[0].top_logprobs[0].token);

// ---- completions, responses, models ----
const comp = await client.completions.create({ ...greedy, prompt: "Once upon a time", max_tokens: 6 });
check("completions", comp.object === "text_completion" && comp.usage.completion_tokens === 6);
let compText = "";
for await (const chunk of await client.completions.create({ ...greedy, prompt: "Once upon a time", max_tokens: 6, stream: true }))
  compText += chunk.choices[0]?.text ?? "";
check("completions stream equals", compText === comp.choices[0].text, JSON.stringify([compText, comp.choices[0].text]));

const resp = await client.responses.create({ model, input: "Hello there", max_output_tokens: 5, temperature: 0 });
check("responses", resp.object === "response" && typeof resp.output_text === "string" && resp.usage.output_tokens === 5,
      JSON.stringify(resp).slice(0, 300));
const events = [];
let respText = "";
for await (const e of await client.responses.create({ model, input: "Hello there", max_output_tokens: 5, temperature: 0, stream: true })) {
  events.push(e.type);
  if (e.type === "response.output_text.delta") respText += e.delta;
}
check("responses stream events", events[0] === "response.created" && events.at(-1).startsWith("response.") &&
      events.includes("response.output_text.delta"), events.join(","));
check("responses stream text", respText === resp.output_text);

const models = await client.models.list();
check("models", models.data.length === 1 && models.data[0].id === model);

// ---- the demo model: a conversation that reads as text ----
const demo = new OpenAI({ baseURL: `${demoBase}/v1`, apiKey: "unused", maxRetries: 0 });
const story = [{ role: "user", content: "Tell me a story about a dog and a ball." }];
const told = await demo.chat.completions.create({ model: "demo-stories", messages: story, temperature: 0, max_tokens: 60 });
const toldText = told.choices[0].message.content;
checkWords("demo chat", toldText, wordsFile);
let streamedStory = "";
for await (const c of await demo.chat.completions.create({ model: "demo-stories", messages: story, temperature: 0, max_tokens: 60, stream: true }))
  streamedStory += c.choices[0]?.delta?.content ?? "";
check("demo stream equals the whole reply", streamedStory === toldText, JSON.stringify([streamedStory, toldText]));
const followUp = await demo.chat.completions.create({ model: "demo-stories", temperature: 0.8, seed: 3, max_tokens: 40,
  messages: [...story, { role: "assistant", content: toldText }, { role: "user", content: "What did the dog do next?" }] });
checkWords("demo follow-up (sampled)", followUp.choices[0].message.content, wordsFile);
const continued = await demo.completions.create({ model: "demo-stories", prompt: "Once upon a time", temperature: 0, max_tokens: 60 });
checkWords("demo completion", continued.choices[0].text, wordsFile);
console.log(`demo model says: ${JSON.stringify(toldText.slice(0, 160))}`);

// ---- errors ----
await expectError("n > 1", 400, client.chat.completions.create({ ...greedy, messages, n: 2 }), /'n' must be 1/);
await expectError("tools", 400, client.chat.completions.create({ ...greedy, messages,
  tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }] }), /tools/);
await expectError("wrong type", 400, client.chat.completions.create({ ...greedy, messages, temperature: "x" }), /temperature/);
await expectError("missing messages", 400, client.chat.completions.create({ model }), /messages/);
await expectError("too long", 400, client.completions.create({ ...greedy, prompt: "word ".repeat(9000), max_tokens: 1 }), /context/);
const keyed = new OpenAI({ baseURL: `${keyedBase}/v1`, apiKey: "wrong", maxRetries: 0 });
await expectError("wrong key", 401, keyed.chat.completions.create({ ...greedy, messages }), /API key/);
const rightKey = new OpenAI({ baseURL: `${keyedBase}/v1`, apiKey: key, maxRetries: 0 });
check("right key", (await rightKey.chat.completions.create({ ...greedy, messages, max_tokens: 2 })).usage.completion_tokens === 2);

// ---- 16 concurrent requests on 4 slots give their sequential greedy answers ----
const prompts = Array.from({ length: 16 }, (_, i) => `Request ${i}: ${"abcdefghijklmnop".slice(0, i + 1)} ${i * 7919}`);
const ask = (p) => client.chat.completions.create({ ...greedy, messages: [{ role: "user", content: p }], max_tokens: 24 });
const sequential = [];
for (const p of prompts) sequential.push((await ask(p)).choices[0].message.content);
const askStreaming = async (p) => {
  let out = "";
  for await (const c of await client.chat.completions.create({ ...greedy, messages: [{ role: "user", content: p }], max_tokens: 24, stream: true }))
    out += c.choices[0]?.delta?.content ?? "";
  return out;
};
const concurrent = await Promise.all(prompts.map((p, i) => (i % 2 ? ask(p).then((r) => r.choices[0].message.content) : askStreaming(p))));
let same = 0;
prompts.forEach((_, i) => { if (concurrent[i] === sequential[i]) same++; else console.error(`differs #${i}: ${JSON.stringify(sequential[i])} vs ${JSON.stringify(concurrent[i])}`); });
check("16 concurrent answers equal the sequential ones", same === 16, `${same}/16`);
check("the answers differ between prompts", new Set(sequential).size > 1);

// ---- a client that goes away mid-stream frees its slot at once ----
// ignore_eos: a random model may otherwise end the reply on its own.
const controller = new AbortController();
const long = await client.chat.completions.create({ ...greedy, messages, max_tokens: 8000, ignore_eos: true, stream: true },
                                                  { signal: controller.signal });
let chunks = 0;
try {
  for await (const _ of long) if (++chunks === 5) controller.abort();
} catch (e) { /* the abort */ }
const busy = (await getJson(`${base}/slots`)).body.filter((s) => s.is_processing).length;
const idleMs = await waitIdle(base, 5000);  // noticed at the next token write: fast, but load slows tokens
check("disconnect frees the slot", idleMs >= 0 && idleMs < 3000, `idle after ${idleMs} ms (busy right after the abort: ${busy})`);
console.log(`disconnect: slot idle ${idleMs} ms after the client went away`);
const metrics = await (await fetch(`${base}/metrics`)).text();
check("metrics after the disconnect", /llamacpp:requests_processing 0/.test(metrics));

// ---- a client that gives up waiting for a whole (non-streaming) reply frees its slot too ----
async function until(condition, timeoutMs) {
  for (const start = Date.now(); Date.now() - start < timeoutMs; await new Promise((r) => setTimeout(r, 10)))
    if (await condition()) return true;
  return false;
}
const predicted = async () =>
  Number((await (await fetch(`${base}/metrics`)).text()).match(/^llamacpp:tokens_predicted_total (\S+)$/m)[1]);
const predictedBefore = await predicted();
const giveUp = new AbortController();
const whole = client.chat.completions.create({ ...greedy, messages, max_tokens: 8000, ignore_eos: true },
                                             { signal: giveUp.signal }).catch((e) => e);
const decoding = await until(async () => (await getJson(`${base}/slots`)).body.some((s) => s.is_processing && s.n_decoded > 0), 10000);
check("the whole reply is being decoded", decoding);
giveUp.abort();
check("the client gave up", (await whole) instanceof OpenAI.APIUserAbortError);
const wholeIdleMs = await waitIdle(base, 3000);
check("giving up on a whole reply frees the slot", wholeIdleMs >= 0 && wholeIdleMs < 500, `${wholeIdleMs} ms`);
const spent = (await predicted()) - predictedBefore;
check("the abandoned reply stopped early", spent < 4000, `${spent} of 8000 tokens decoded`);
console.log(`non-streaming disconnect: slot idle ${wholeIdleMs} ms after the client went away, ${spent} of 8000 tokens decoded`);

// ---- a stream waiting in the queue gets SSE keepalive comments; the openai client still parses ----
const keyHeaders = { "Content-Type": "application/json", Authorization: `Bearer ${key}` };
const blockerControl = new AbortController();
const blocker = await rightKey.chat.completions.create({ ...greedy, messages, max_tokens: 8000, ignore_eos: true, stream: true },
                                                       { signal: blockerControl.signal });
const blockerDone = (async () => { try { for await (const _ of blocker); } catch (e) { /* the abort */ } })();
const short = { ...greedy, messages, max_tokens: 8 };
const queuedStart = Date.now();
const raw = await fetch(`${keyedBase}/v1/chat/completions`, { method: "POST", headers: keyHeaders,
                                                              body: JSON.stringify({ ...short, stream: true }) });
const queued = rightKey.chat.completions.create({ ...short, stream: true }).then(async (st) => {
  let out = "";
  for await (const c of st) out += c.choices[0]?.delta?.content ?? "";
  return out;
});
const reader = raw.body.getReader();
const decoder = new TextDecoder();
let rawText = "";
const keepalives = () => (rawText.match(/^: keepalive$/gm) ?? []).length;
while (keepalives() < 3 && Date.now() - queuedStart < 10000) {
  const { value, done } = await reader.read();
  if (done) break;
  rawText += decoder.decode(value, { stream: true });
}
const waitedS = (Date.now() - queuedStart) / 1000;
check("a queued stream gets keepalive comments", keepalives() >= 3, JSON.stringify(rawText.slice(0, 300)));
check("keepalives come at the interval, not faster", keepalives() <= waitedS / 0.2 + 2, `${keepalives()} in ${waitedS} s`);
check("no tokens while queued", !/"content":"[^"]/.test(rawText), JSON.stringify(rawText.slice(0, 300)));
blockerControl.abort();
await blockerDone;
for (;;) {
  const { value, done } = await reader.read();
  if (done) break;
  rawText += decoder.decode(value, { stream: true });
}
check("the queued stream ends with [DONE]", rawText.trimEnd().endsWith("data: [DONE]"), JSON.stringify(rawText.slice(-200)));
const expected = (await rightKey.chat.completions.create(short)).choices[0].message.content;
check("the openai client parses a stream with keepalives", (await queued) === expected, JSON.stringify([await queued, expected]));
console.log(`keepalive: ${keepalives()} comments in ${waitedS.toFixed(2)} s while queued`);

finish("openai client");
