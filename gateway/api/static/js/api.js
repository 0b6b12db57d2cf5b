// The gateway's HTTP API as the pages use it: a key kept in this tab's
// sessionStorage only (never in localStorage, a cookie or the URL), errors
// turned into the API's own message, and server-sent events read as they arrive.

/** An error the API answered with (or the network failure that stood in for one). */
export class ApiError extends Error {
  constructor(message, status = 0, type = null, code = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
    this.code = code;
  }
}

/** One value kept in this tab's sessionStorage (gone when the tab closes). */
export class SessionValue {
  constructor(name) {
    this.name = name;
  }

  get() {
    try {
      return sessionStorage.getItem(this.name) || "";
    } catch {
      return ""; // storage disabled: the value lives only in the page
    }
  }

  set(value) {
    try {
      if (value) sessionStorage.setItem(this.name, value);
      else sessionStorage.removeItem(this.name);
    } catch {
      // storage disabled: nothing to keep
    }
  }
}

export function authHeaders(key, extra = {}) {
  const headers = { ...extra };
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

/** The ApiError of a failed response: OpenAI's error.message when there is one. */
export async function errorFrom(response) {
  let text = "";
  try {
    text = await response.text();
  } catch {
    // the body is gone: the status must do
  }
  try {
    const error = JSON.parse(text).error;
    if (error && typeof error.message === "string") {
      return new ApiError(error.message, response.status, error.type, error.code);
    }
  } catch {
    // not JSON (a proxy's page, say): shown as text below
  }
  const detail = text.trim().slice(0, 300);
  const reason = `${response.status} ${response.statusText || "error"}`;
  return new ApiError(detail ? `${reason}: ${detail}` : reason, response.status);
}

/** fetch() whose network failure is an ApiError; an abort stays an AbortError. */
export async function request(path, { key = "", method = "GET", body, signal, headers } = {}) {
  const init = { method, signal, cache: "no-store", headers: authHeaders(key, headers) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  try {
    return await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(`The gateway could not be reached (${error.message}).`);
  }
}

/** GET a JSON document; ``accept`` lists non-2xx statuses whose body is still wanted. */
export async function getJson(path, { key = "", signal, accept = [] } = {}) {
  const response = await request(path, { key, signal });
  if (!response.ok && !accept.includes(response.status)) throw await errorFrom(response);
  return response.json();
}

/** The data of each server-sent event of a response, as it arrives. */
export async function* sseData(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5));
        if (data.length) yield data.join("\n");
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/** A DOM element built from text, attributes and children: never from HTML. */
export function element(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}
