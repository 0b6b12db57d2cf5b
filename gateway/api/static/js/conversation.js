// One conversation with a model, behind the small interface the playground uses:
//
//   conversation.send({ model, text, settings, key, signal, onEvent }) -> Promise<turn>
//   conversation.reset()
//
// onEvent gets, in order: { type: "open", target }, then any number of
// { type: "reasoning", text } and { type: "content", text }, then
// { type: "finish", reason } and { type: "usage", usage }. The promise resolves
// with the turn ({ content, reasoning, finishReason, usage }), or rejects with an
// ApiError (the API's message), or an AbortError when the signal stopped it.
//
// ChatCompletionsConversation sends the whole history with each turn
// (POST /v1/chat/completions, streamed). A Responses API conversation keeps only
// the last response's id (previous_response_id) and sends the new input: the
// same two methods in another class, chosen in one place (playground.js,
// newConversation); the playground's rendering does not change.

import { ApiError, errorFrom, request, sseData } from "./api.js";

export class ChatCompletionsConversation {
  constructor() {
    this.history = [];
  }

  reset() {
    this.history = [];
  }

  /** The request body: extra fields first, so the form's own settings win. */
  body(model, text, settings) {
    const messages = [];
    if (settings.system) messages.push({ role: "system", content: settings.system });
    messages.push(...this.history, { role: "user", content: text });
    const body = { ...settings.extra, model, messages, stream: true };
    body.stream_options = { ...(settings.extra.stream_options || {}), include_usage: true };
    if (settings.temperature !== null) body.temperature = settings.temperature;
    if (settings.maxTokens !== null) body.max_tokens = settings.maxTokens;
    return body;
  }

  async send({ model, text, settings, key, signal, onEvent }) {
    const body = this.body(model, text, settings);
    const response = await request("/v1/chat/completions", { key, method: "POST", body, signal });
    if (!response.ok) throw await errorFrom(response);
    onEvent({ type: "open", target: response.headers.get("X-Gateway-Target") });
    const turn = { content: "", reasoning: "", finishReason: null, usage: null };
    try {
      for await (const data of sseData(response)) {
        if (data === "[DONE]") break;
        readChunk(JSON.parse(data), turn, onEvent);
      }
    } catch (error) {
      // A stopped answer stays in the history, as far as it got.
      if (error.name === "AbortError") this.remember(text, turn);
      throw error;
    }
    this.remember(text, turn);
    return turn;
  }

  remember(text, turn) {
    // Earlier reasoning is not sent back: DeepSeek-R1's template drops it anyway.
    this.history.push({ role: "user", content: text }, { role: "assistant", content: turn.content });
  }
}

/** One chunk of a chat completion stream: the first choice's deltas, usage, or a late error. */
function readChunk(chunk, turn, onEvent) {
  if (chunk.error) {
    // The gateway ends a stream that failed after it started with an error event.
    const { message, type, code } = chunk.error;
    throw new ApiError(message || "The stream failed.", 0, type, code);
  }
  for (const choice of chunk.choices || []) {
    if (choice.index) continue; // n > 1: the playground shows the first choice
    const delta = choice.delta || {};
    // reasoning_content (DeepSeek, and vLLM through the gateway); a remote vLLM may say reasoning.
    const reasoning = delta.reasoning_content ?? delta.reasoning;
    if (reasoning) {
      turn.reasoning += reasoning;
      onEvent({ type: "reasoning", text: reasoning });
    }
    if (delta.content) {
      turn.content += delta.content;
      onEvent({ type: "content", text: delta.content });
    }
    if (choice.finish_reason) {
      turn.finishReason = choice.finish_reason;
      onEvent({ type: "finish", reason: choice.finish_reason });
    }
  }
  if (chunk.usage) {
    turn.usage = chunk.usage;
    onEvent({ type: "usage", usage: chunk.usage });
  }
}
