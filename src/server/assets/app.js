// The chat page: conversations in localStorage, replies streamed from /v1/chat/completions as
// server-sent events, a stop button that aborts the request (the server then frees its slot).
"use strict";

const $ = (id) => document.getElementById(id);
const STORE = "bitnet-chat";
const state = load();
let controller = null;  // AbortController of the reply being streamed

function load() {
  const blank = { conversations: [], current: null,
                  settings: { system: "", temperature: 0.8, maxTokens: "", apiKey: "" } };
  try {
    const saved = JSON.parse(localStorage.getItem(STORE));
    if (saved && Array.isArray(saved.conversations)) return { ...blank, ...saved, settings: { ...blank.settings, ...saved.settings } };
  } catch (e) { /* a damaged store starts over */ }
  return blank;
}
function save() { localStorage.setItem(STORE, JSON.stringify(state)); }

function current() { return state.conversations.find((c) => c.id === state.current); }

function newConversation() {
  const c = { id: Date.now().toString(36) + Math.random().toString(36).slice(2, 6), title: "New chat", messages: [] };
  state.conversations.unshift(c);
  state.current = c.id;
  save();
  render();
}

function renderList() {
  const list = $("conversations");
  list.replaceChildren();
  for (const c of state.conversations) {
    const li = document.createElement("li");
    li.className = c.id === state.current ? "active" : "";
    const title = document.createElement("span");
    title.textContent = c.title;
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "\u00d7";
    del.title = "Delete";
    del.onclick = (ev) => {
      ev.stopPropagation();
      state.conversations = state.conversations.filter((x) => x.id !== c.id);
      if (state.current === c.id) state.current = state.conversations[0]?.id ?? null;
      save();
      render();
    };
    li.onclick = () => { if (!controller) { state.current = c.id; save(); render(); $("sidebar").classList.remove("open"); } };
    li.append(title, del);
    list.append(li);
  }
}

function messageDiv(m) {
  const div = document.createElement("div");
  div.className = "message " + m.role;
  div.textContent = m.content;
  return div;
}

function renderMessages() {
  const box = $("messages");
  box.replaceChildren(...(current()?.messages ?? []).map(messageDiv));
  box.scrollTop = box.scrollHeight;
}

function render() { renderList(); renderMessages(); }

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
}

// Reads the SSE stream, calling onData with each parsed `data:` payload until [DONE].
async function readEvents(response, onData) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onData(JSON.parse(data));
      }
    }
  }
}

async function send(text) {
  let conv = current();
  if (!conv) { newConversation(); conv = current(); }
  conv.messages.push({ role: "user", content: text });
  if (conv.title === "New chat") conv.title = text.slice(0, 40);
  const reply = { role: "assistant", content: "" };
  conv.messages.push(reply);
  save();
  render();
  const div = $("messages").lastElementChild;
  div.classList.add("streaming");
  showError("");
  setBusy(true);

  const s = state.settings;
  const messages = conv.messages.slice(0, -1);
  if (s.system.trim()) messages.unshift({ role: "system", content: s.system });
  const body = { messages, stream: true, temperature: Number(s.temperature) };
  if (s.maxTokens) body.max_tokens = Number(s.maxTokens);
  const headers = { "Content-Type": "application/json" };
  if (s.apiKey) headers.Authorization = "Bearer " + s.apiKey;
  // The text is drawn at most once a frame: a fast model sends thousands of tokens a second.
  let painting = false;
  const paint = () => {
    painting = false;
    div.textContent = reply.content;
    $("messages").scrollTop = $("messages").scrollHeight;
  };
  controller = new AbortController();
  try {
    const res = await fetch("/v1/chat/completions", { method: "POST", headers, body: JSON.stringify(body), signal: controller.signal });
    if (!res.ok) {
      let message = res.status + " " + res.statusText;
      try { message = (await res.json()).error.message; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    await readEvents(res, (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices?.[0]?.delta?.content;
      if (delta) {
        reply.content += delta;
        if (!painting) { painting = true; requestAnimationFrame(paint); }
      }
    });
  } catch (e) {
    if (e.name !== "AbortError") showError(e.message);
  } finally {
    controller = null;
    paint();
    div.classList.remove("streaming");
    div.dataset.done = "1";
    setBusy(false);
    save();
  }
}

function initSettings() {
  const s = state.settings;
  $("system-prompt").value = s.system;
  $("temperature").value = s.temperature;
  $("temperature-value").textContent = s.temperature;
  $("max-tokens").value = s.maxTokens;
  $("api-key").value = s.apiKey;
  $("system-prompt").oninput = (e) => { s.system = e.target.value; save(); };
  $("temperature").oninput = (e) => { s.temperature = Number(e.target.value); $("temperature-value").textContent = s.temperature; save(); };
  $("max-tokens").oninput = (e) => { s.maxTokens = e.target.value; save(); };
  $("api-key").oninput = (e) => { s.apiKey = e.target.value; save(); };
}

$("composer").onsubmit = (e) => {
  e.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
};
$("input").onkeydown = (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("composer").requestSubmit(); }
};
$("stop").onclick = () => controller?.abort();
$("new-chat").onclick = () => { if (!controller) newConversation(); };
$("toggle-sidebar").onclick = () => $("sidebar").classList.toggle("open");

initSettings();
render();
fetch("/v1/models", { headers: state.settings.apiKey ? { Authorization: "Bearer " + state.settings.apiKey } : {} })
  .then((r) => r.json())
  .then((j) => { const name = j.data?.[0]?.id; if (name) { $("model-name").textContent = name; document.title = name + " - bitnet chat"; } })
  .catch(() => {});
