// The playground: pick a model, chat with it, watch the answer stream in.
// The key typed here stays in this tab's sessionStorage; the server never
// renders anything into the page.

import { SessionValue, element, getJson } from "./api.js";
import { ChatCompletionsConversation } from "./conversation.js";
import { renderMarkdown } from "./markdown.js";

const $ = (id) => document.getElementById(id);
const ui = {
  key: $("api-key"),
  forgetKey: $("forget-key"),
  model: $("model"),
  reloadModels: $("reload-models"),
  system: $("system"),
  temperature: $("temperature"),
  maxTokens: $("max-tokens"),
  extra: $("extra"),
  status: $("status"),
  log: $("log"),
  empty: $("empty"),
  composer: $("composer"),
  prompt: $("prompt"),
  send: $("send"),
  stop: $("stop"),
  newChat: $("new-chat"),
};
const savedKey = new SessionValue("vllm-gateway.api-key");
const savedModel = new SessionValue("vllm-gateway.model");

/** Where the conversation's turns go: switch to the Responses API here. */
function newConversation() {
  return new ChatCompletionsConversation();
}

let conversation = newConversation();
let running = null; // the AbortController of the answer being streamed

function showStatus(message) {
  ui.status.textContent = message;
  ui.status.hidden = false;
}

function clearStatus() {
  ui.status.hidden = true;
  ui.status.textContent = "";
}

async function loadModels() {
  const wanted = ui.model.value || savedModel.get();
  ui.model.replaceChildren(element("option", { text: "Loading…", attrs: { value: "" } }));
  try {
    const listing = await getJson("/v1/models", { key: ui.key.value.trim() });
    const names = listing.data.map((model) => model.id).sort();
    ui.model.replaceChildren(...names.map((name) => element("option", { text: name, attrs: { value: name } })));
    if (!names.length) {
      ui.model.replaceChildren(element("option", { text: "No models", attrs: { value: "" } }));
      showStatus("This gateway has no model this key may use.");
      return;
    }
    if (wanted && names.includes(wanted)) ui.model.value = wanted;
    clearStatus();
  } catch (error) {
    ui.model.replaceChildren(element("option", { text: "Not loaded", attrs: { value: "" } }));
    showStatus(error.message);
  }
}

class SettingsError extends Error {
  constructor(message, field) {
    super(message);
    this.field = field;
  }
}

function numberField(input, { min, max, integer }) {
  const raw = input.value.trim();
  if (!raw) return null;
  const value = Number(raw);
  const bad = !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value));
  if (bad) {
    const label = document.querySelector(`label[for="${input.id}"]`).textContent;
    const kind = integer ? "a whole number" : "a number";
    throw new SettingsError(`${label} must be ${kind} from ${min} to ${max}.`, input);
  }
  return value;
}

function readSettings() {
  for (const input of [ui.temperature, ui.maxTokens, ui.extra]) input.removeAttribute("aria-invalid");
  let extra = {};
  if (ui.extra.value.trim()) {
    try {
      extra = JSON.parse(ui.extra.value);
    } catch (error) {
      throw new SettingsError(`Extra fields are not valid JSON: ${error.message}`, ui.extra);
    }
    if (extra === null || typeof extra !== "object" || Array.isArray(extra)) {
      throw new SettingsError("Extra fields must be a JSON object, like {\"seed\": 7}.", ui.extra);
    }
  }
  return {
    system: ui.system.value.trim(),
    temperature: numberField(ui.temperature, { min: 0, max: 2, integer: false }),
    maxTokens: numberField(ui.maxTokens, { min: 1, max: 10_000_000, integer: true }),
    extra,
  };
}

function formatMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** One answer on screen: reasoning apart (collapsible), the answer as Markdown, its figures. */
class AnswerView {
  constructor(model) {
    this.content = "";
    this.reasoning = "";
    this.chunks = 0;
    this.started = performance.now();
    this.firstAt = null;
    this.lastAt = null;
    this.usage = null;
    this.finishReason = null;
    this.pending = false; // a render is scheduled for the next frame
    this.reasoningText = element("div", { className: "reasoning-text" });
    this.reasoningBox = element("details", { className: "reasoning", attrs: { open: true, hidden: true } }, [
      element("summary", { text: "Reasoning" }),
      this.reasoningText,
    ]);
    this.answer = element("div", { className: "answer markdown" });
    this.meta = element("dl", { className: "meta" });
    this.node = element("article", { className: "msg assistant", attrs: { "aria-busy": "true" } }, [
      element("p", { className: "who", text: model }),
      this.reasoningBox,
      this.answer,
      this.meta,
    ]);
  }

  stat(name, value) {
    const key = name.toLowerCase().replace(/[^a-z]+/g, "-");
    let cell = this.meta.querySelector(`[data-stat="${key}"]`);
    if (!cell) {
      cell = element("dd", { attrs: { "data-stat": key } });
      this.meta.append(element("div", {}, [element("dt", { text: name }), cell]));
    }
    cell.textContent = value;
  }

  onEvent(event) {
    if (event.type === "open") {
      this.stat("Target", event.target || "unknown");
      return;
    }
    if (event.type === "usage") {
      this.usage = event.usage;
      return;
    }
    if (event.type === "finish") {
      this.finishReason = event.reason;
      return;
    }
    const now = performance.now();
    if (this.firstAt === null) {
      this.firstAt = now;
      this.stat("Time to first token", formatMs(now - this.started));
    }
    this.lastAt = now;
    this.chunks += 1;
    if (event.type === "reasoning") {
      this.reasoning += event.text;
      this.reasoningBox.hidden = false;
    } else {
      this.content += event.text;
    }
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  render() {
    const atBottom = innerHeight + scrollY >= document.body.scrollHeight - 80;
    this.reasoningText.textContent = this.reasoning;
    this.answer.replaceChildren(renderMarkdown(this.content));
    if (atBottom) scrollTo(0, document.body.scrollHeight);
  }

  end(note, className) {
    this.render();
    const usage = this.usage;
    const seconds = this.firstAt !== null && this.lastAt > this.firstAt ? (this.lastAt - this.firstAt) / 1000 : 0;
    // Generation speed: from the first token to the last (time to first token apart).
    const rate = (count) => {
      const value = count / seconds;
      return value >= 100 ? String(Math.round(value)) : value.toFixed(1);
    };
    if (usage) {
      this.stat("Tokens", `${usage.prompt_tokens} prompt, ${usage.completion_tokens} completion`);
      if (seconds) this.stat("Tokens/s", rate(usage.completion_tokens));
    } else if (seconds) {
      this.stat("Tokens/s", `≈ ${rate(this.chunks)} (chunks)`);
    }
    if (this.finishReason) this.stat("Finish", this.finishReason);
    if (note) this.node.append(element("p", { className, text: note }));
    this.node.setAttribute("aria-busy", "false");
  }
}

function setRunning(controller) {
  running = controller;
  ui.stop.disabled = controller === null;
  ui.send.disabled = controller !== null;
}

async function send() {
  const text = ui.prompt.value.trim();
  if (!text || running) return;
  let settings;
  try {
    settings = readSettings();
  } catch (error) {
    showStatus(error.message);
    error.field.setAttribute("aria-invalid", "true");
    error.field.focus();
    return;
  }
  const model = ui.model.value;
  if (!model) {
    // The list did not load: its error (a wrong key, say) stays on screen.
    if (ui.status.hidden) showStatus("No model is selected: the model list is empty.");
    ui.model.focus();
    return;
  }
  clearStatus();
  ui.empty.hidden = true;
  ui.log.append(
    element("article", { className: "msg user" }, [
      element("p", { className: "who", text: "You" }),
      element("div", { className: "text", text }),
    ]),
  );
  ui.prompt.value = "";
  const view = new AnswerView(model);
  ui.log.append(view.node);
  const controller = new AbortController();
  setRunning(controller);
  try {
    await conversation.send({
      model,
      text,
      settings,
      key: ui.key.value.trim(),
      signal: controller.signal,
      onEvent: (event) => view.onEvent(event),
    });
    view.end();
  } catch (error) {
    if (error.name === "AbortError") {
      view.end("Stopped.", "stopped");
    } else {
      view.end(error.message, "error");
      showStatus(error.message);
    }
  } finally {
    setRunning(null);
  }
}

function stop() {
  if (running) running.abort();
}

function newChat() {
  stop();
  conversation = newConversation();
  ui.log.replaceChildren(ui.empty);
  ui.empty.hidden = false;
  clearStatus();
  ui.prompt.focus();
}

ui.key.value = savedKey.get();
ui.key.addEventListener("change", () => {
  savedKey.set(ui.key.value.trim());
  loadModels();
});
ui.forgetKey.addEventListener("click", () => {
  ui.key.value = "";
  savedKey.set("");
  loadModels();
});
ui.reloadModels.addEventListener("click", loadModels);
ui.model.addEventListener("change", () => savedModel.set(ui.model.value));
ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  send();
});
ui.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && running) stop();
});
ui.stop.addEventListener("click", stop);
ui.newChat.addEventListener("click", newChat);
loadModels();
