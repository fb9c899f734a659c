// The chat page in Debian's Chromium through playwright-core.
// On a server with the demo model (readable text): the page loads, messages get streamed replies
// that read as text and equal the API's greedy answers, conversations and settings survive a reload
// (localStorage), and a phone-sized viewport has no sideways scroll.
// On a server with a slower random model: a long reply grows while streaming, the stop button ends
// it, the server frees the slot, and the stopped reply is kept.
// Every wait is for an event with a timeout, never a fixed sleep that a loaded machine could miss.
// Usage: node page.test.mjs DEMO_URL SLOW_URL PROFILE_DIR DEMO_WORDS_FILE
import { chromium } from "playwright-core";
import { check, checkWords, finish, getJson, waitIdle } from "./lib.mjs";

const [demo, slow, profile, wordsFile] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const errors = [];
const foreign = [];
// A page on one server; it must not reach beyond it.
async function open(base, page) {
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });
  await page.goto(base + "/");
  return page;
}
const assistant = (page, n) => page.waitForFunction(
  (n) => document.querySelectorAll(".message.assistant")[n - 1]?.dataset.done === "1", n, { timeout: 20000 });
const chatApi = (base, body) => getJson(`${base}/v1/chat/completions`, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

try {
  // ---- the demo model: readable replies, kept conversations, a phone ----
  const page = await open(demo, context.pages()[0] ?? (await context.newPage()));
  check("title", (await page.title()).includes("bitnet chat"));
  await page.waitForFunction(() => document.getElementById("model-name").textContent === "demo-stories");
  check("model name shown", true);

  await page.click("#settings summary");
  await page.fill("#system-prompt", "You are terse.");
  await page.locator("#temperature").fill("0");
  await page.fill("#max-tokens", "40");

  await page.fill("#input", "Tell me a story about a cat.");
  await page.keyboard.press("Enter");
  await page.waitForSelector(".message.user");
  await assistant(page, 1);
  const first = await page.locator(".message.assistant").nth(0).textContent();
  checkWords("page reply", first, wordsFile);
  const api = await chatApi(demo, { messages: [{ role: "system", content: "You are terse." },
                                               { role: "user", content: "Tell me a story about a cat." }],
                                    temperature: 0, max_tokens: 40 });
  check("page reply equals the API's", api.body.choices?.[0].message.content === first,
        JSON.stringify([first, api.body]));

  await page.fill("#input", "What happened next?");
  await page.click("#send");
  await assistant(page, 2);
  const second = await page.locator(".message.assistant").nth(1).textContent();
  checkWords("second reply", second, wordsFile);
  check("four messages", (await page.locator(".message").count()) === 4);

  await page.reload();
  await page.waitForSelector(".message.assistant");
  check("conversation kept", (await page.locator(".message").count()) === 4);
  check("replies kept", (await page.locator(".message.assistant").nth(1).textContent()) === second);
  check("conversation listed", (await page.locator("#conversations li").count()) === 1);
  check("system prompt kept", (await page.inputValue("#system-prompt")) === "You are terse.");
  check("temperature kept", (await page.inputValue("#temperature")) === "0");
  await page.click("#new-chat");
  check("new chat is empty", (await page.locator(".message").count()) === 0);
  check("two conversations", (await page.locator("#conversations li").count()) === 2);

  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check("no sideways scroll on a phone", wide <= 0, `${wide}px`);
  const box = await page.locator("#input").boundingBox();
  check("composer on screen on a phone", box && box.y + box.height <= 844 && box.width > 200, JSON.stringify(box));

  // ---- the slow model: a long reply, stopped ----
  // A random model may end a reply early (EOS); take a prompt whose greedy reply runs to the limit.
  let prompt = null;
  for (const p of ["Tell me everything", "Write a long letter", "Go on and on", "Count to a thousand"]) {
    const r = await chatApi(slow, { messages: [{ role: "user", content: p }], temperature: 0, max_tokens: 16 });
    if (r.body.choices?.[0].finish_reason === "length" && r.body.choices[0].message.content.length > 40) { prompt = p; break; }
  }
  check("a prompt with a long reply", prompt !== null);
  const slowPage = await open(slow, await context.newPage());
  await slowPage.click("#settings summary");
  await slowPage.locator("#temperature").fill("0");
  await slowPage.fill("#input", prompt ?? "Tell me everything");
  await slowPage.click("#send");
  // Waits until the last reply is longer than n characters.
  const longerThan = (n, timeout) => slowPage.waitForFunction((n) => {
    const all = document.querySelectorAll(".message.assistant");
    return all[all.length - 1].textContent.length > n;
  }, n, { timeout });
  await longerThan(40, 20000);
  const long = slowPage.locator(".message.assistant").last();
  check("streaming indicator while streaming", await long.evaluate((e) => e.classList.contains("streaming")));
  const before = (await long.textContent()).length;
  await longerThan(before, 10000);
  check("reply grows while streaming", true);
  check("stop button visible", await slowPage.isVisible("#stop"));
  await slowPage.click("#stop");
  await slowPage.waitForSelector("#send", { state: "visible" });
  const stopped = await long.textContent();
  // The server notices at its next token write; under load one token of this model can take
  // hundreds of ms (500 ms failed on the shared 2-core machine), while the uncancelled reply
  // would run for many seconds more.
  const idleMs = await waitIdle(slow, 5000);
  check("stop frees the server's slot", idleMs >= 0 && idleMs < 3000, `${idleMs} ms`);
  check("stopped reply is marked done", (await long.getAttribute("data-done")) === "1");
  await slowPage.waitForTimeout(300);
  check("reply stops growing after stop", (await long.textContent()) === stopped);
  await slowPage.reload();
  await slowPage.waitForSelector(".message.assistant");
  check("stopped reply kept", (await slowPage.locator(".message.assistant").last().textContent()) === stopped);

  check("no script errors", errors.length === 0, errors.join("; "));
  check("no requests beyond the page's server", foreign.length === 0, foreign.join(", "));
} finally {
  await context.close();
}
finish("chat page");
