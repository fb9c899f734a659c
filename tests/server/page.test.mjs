// The chat page in Debian's Chromium through playwright-core: it loads, a message gets a streamed
// reply, the stop button ends a long reply (and the server frees the slot), conversations survive
// a reload (localStorage), settings are kept, and a phone-sized viewport has no sideways scroll.
// Usage: node page.test.mjs BASE_URL PROFILE_DIR
import { chromium } from "playwright-core";
import { check, finish, getJson, waitIdle } from "./lib.mjs";

const [base, profile] = process.argv.slice(2);
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // The page must not reach beyond the server.
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });

  await page.goto(base + "/");
  check("title", (await page.title()).includes("bitnet chat"));
  await page.waitForFunction(() => document.getElementById("model-name").textContent === "tiny");
  check("model name shown", true);

  // Settings: a system prompt, temperature 0 and a token limit.
  await page.click("#settings summary");
  await page.fill("#system-prompt", "You are terse.");
  await page.locator("#temperature").fill("0");
  await page.fill("#max-tokens", "20");

  // Send and watch the reply stream in.
  await page.fill("#input", "Hello page");
  await page.keyboard.press("Enter");
  await page.waitForSelector(".message.user");
  const reply = page.locator(".message.assistant").last();
  await page.waitForFunction(() => document.querySelector(".message.assistant")?.dataset.done === "1", null, { timeout: 20000 });
  const pageText = await reply.textContent();
  check("reply arrived", pageText.length > 0, JSON.stringify(pageText));
  // The same conversation through the API (greedy, same system prompt) gives the same text.
  const api = await getJson(`${base}/v1/chat/completions`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "system", content: "You are terse." }, { role: "user", content: "Hello page" }],
                           temperature: 0, max_tokens: 20 }) });
  check("page reply equals the API's", api.body.choices[0].message.content === pageText,
        JSON.stringify([pageText, api.body.choices[0].message.content]));

  // A long reply: it grows while streaming, stop ends it, the server frees the slot.
  await page.fill("#max-tokens", "");
  await page.fill("#input", "Tell me everything");
  await page.click("#send");
  const long = page.locator(".message.assistant").last();
  await page.waitForFunction(() => {
    const all = document.querySelectorAll(".message.assistant");
    return all[all.length - 1].textContent.length > 40;
  }, null, { timeout: 20000 });
  check("streaming indicator while streaming", await long.evaluate((e) => e.classList.contains("streaming")));
  const before = (await long.textContent()).length;
  await page.waitForTimeout(100);
  const later = (await long.textContent()).length;
  check("reply grows while streaming", later > before, `${before} -> ${later}`);
  check("stop button visible", await page.isVisible("#stop"));
  await page.click("#stop");
  await page.waitForSelector("#send", { state: "visible" });
  const stoppedAt = (await long.textContent()).length;
  const idleMs = await waitIdle(base, 2000);
  check("stop frees the server's slot", idleMs >= 0 && idleMs < 500, `${idleMs} ms`);
  await page.waitForTimeout(300);
  check("reply stops growing after stop", (await long.textContent()).length === stoppedAt);

  // Reload: the conversation comes back from localStorage, settings too.
  await page.reload();
  await page.waitForSelector(".message.assistant");
  check("conversation kept", (await page.locator(".message").count()) === 4);
  check("conversation listed", (await page.locator("#conversations li").count()) === 1);
  check("system prompt kept", (await page.inputValue("#system-prompt")) === "You are terse.");
  check("temperature kept", (await page.inputValue("#temperature")) === "0");
  await page.click("#new-chat");
  check("new chat is empty", (await page.locator(".message").count()) === 0);
  check("two conversations", (await page.locator("#conversations li").count()) === 2);

  // A phone: nothing wider than the screen, the composer reachable.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check("no sideways scroll on a phone", wide <= 0, `${wide}px`);
  const box = await page.locator("#input").boundingBox();
  check("composer on screen on a phone", box && box.y + box.height <= 844 && box.width > 200, JSON.stringify(box));

  check("no script errors", errors.length === 0, errors.join("; "));
  check("no requests beyond the server", foreign.length === 0, foreign.join(", "));
} finally {
  await context.close();
}
finish("chat page");
