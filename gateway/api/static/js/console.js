// The console: engines, targets, models and their routing, keys, and live
// charts from /metrics, refreshed every few seconds. /ready and /metrics are
// open; the rest needs an admin key once the gateway has keys (keys and engine
// logs: always). The key is kept in this tab's sessionStorage only.

import { SessionValue, element, errorFrom, getJson, request } from "./api.js";
import { LineChart } from "./charts.js";
import { between, gatewayTotals, parseMetrics } from "./prometheus.js";
import { LiveTable } from "./table.js";

const $ = (id) => document.getElementById(id);
const savedKey = new SessionValue("vllm-gateway.admin-key");
const LOG_LINES = 60;
// An engine's loading phases in order, as gateway/engines/logfile.py words them
// (tests/gateway/api/test_pages.py keeps the two in step): the step it is at,
// for a progress bar while it loads.
const PHASES = [
  "launching",
  "resolved architecture",
  "loading weights",
  "weights loaded in",
  "KV cache allocated, warm-up done in",
  "starting the HTTP server",
];
const TONES = {
  ready: "ok",
  degraded: "warn",
  not_ready: "bad",
  starting: "warn",
  restarting: "warn",
  failed: "bad",
  stopped: "bad",
  closed: "ok",
  "half-open": "warn",
  open: "bad",
};

const ms = (seconds) => (seconds === null ? "—" : `${Math.round(seconds * 1000)} ms`);
const perSecond = (value) => (value < 10 ? value.toFixed(2) : value.toFixed(0));
const every = () => Number($("every").value);

const charts = {
  requests: new LineChart($("chart-requests"), { title: "Requests per second", format: perSecond, every }),
  latency: new LineChart($("chart-latency"), { title: "Mean latency", format: ms, every }),
  ttft: new LineChart($("chart-ttft"), { title: "Mean time to first token", format: ms, every }),
  tokens: new LineChart($("chart-tokens"), { title: "Completion tokens per second", format: perSecond, every }),
};

function loading(engine) {
  if (engine.state === "ready") {
    return { text: engine.phase, sub: engine.load_seconds ? `loaded in ${engine.load_seconds} s` : undefined };
  }
  if (engine.state !== "starting" && engine.state !== "restarting") return engine.phase;
  const step = PHASES.findIndex((phase) => engine.phase.startsWith(phase)) + 1;
  return step ? { text: engine.phase, progress: [step, PHASES.length + 1] } : engine.phase;
}

function engineLoad(engine) {
  const load = engine.load;
  if (!load) return undefined;
  const cache = `KV cache ${Math.round(100 * load.kv_cache_usage)}%`;
  return { text: `${load.running} running · ${load.waiting} waiting`, sub: cache };
}

const tables = {
  engines: new LiveTable($("engines"), {
    caption: "Local vLLM engines: state, loading, restarts (from /ready)",
    key: (engine) => engine.name,
    columns: [
      { title: "Engine", field: "name", value: (e) => ({ text: e.name, sub: [e.model, e.family].filter(Boolean).join(" · ") }) },
      { title: "State", field: "state", value: (e) => ({ badge: e.state, tone: TONES[e.state] }) },
      { title: "Loading", field: "phase", value: loading },
      { title: "Restarts", field: "restarts", value: (e) => e.restarts, numeric: true },
      { title: "PID", field: "pid", value: (e) => e.pid, numeric: true },
      // The engine's own last report on its /metrics (none while it is down or silent).
      { title: "Load", field: "load", value: engineLoad },
      { title: "Error", field: "error", value: (e) => e.error },
    ],
  }),
  targets: new LiveTable($("targets"), {
    caption: "Backends: breaker, load, latency, last error (from /v1/gateway/targets)",
    key: (target) => target.id,
    columns: [
      { title: "Target", field: "id", value: (t) => t.id },
      { title: "Breaker", field: "state", value: (t) => ({ badge: t.state, tone: TONES[t.state] }) },
      // Whether the backend itself can take requests (a loading engine cannot); the breaker apart.
      { title: "Ready", field: "available", value: (t) => (t.available ? "yes" : "no") },
      { title: "In flight", field: "in_flight", value: (t) => t.in_flight, numeric: true },
      { title: "Queued", field: "queued", value: (t) => t.queued, numeric: true },
      { title: "Requests", field: "requests", value: (t) => t.requests, numeric: true },
      { title: "Failures", field: "failures", value: (t) => ({ text: t.failures, sub: `${t.consecutive_failures} in a row` }), numeric: true },
      { title: "TTFT (avg)", field: "ttft", value: (t) => (t.ewma_ttft_ms === null ? null : `${t.ewma_ttft_ms} ms`), numeric: true },
      { title: "Last error", field: "last_error", value: (t) => t.last_error },
    ],
  }),
  models: new LiveTable($("models"), {
    caption: "Public models: readiness, strategy, targets in order of preference",
    key: (model) => model.id,
    columns: [
      { title: "Model", field: "id", value: (m) => m.id },
      { title: "Ready", field: "ready", value: (m) => ({ badge: m.ready ? "ready" : "down", tone: m.ready ? "ok" : "bad" }) },
      { title: "Strategy", field: "strategy", value: (m) => m.strategy },
      { title: "Targets", field: "targets", value: (m) => ({ lines: m.targets }) },
      { title: "Fallbacks", field: "fallbacks", value: (m) => (m.fallbacks || []).join(" → ") },
    ],
  }),
  keys: new LiveTable($("keys"), {
    caption: "API keys, admin keys and tokens: names, models, limits, usage (never secrets)",
    key: (key) => `${key.kind}:${key.name}`,
    columns: [
      { title: "Name", field: "name", value: (k) => k.name },
      { title: "Kind", field: "kind", value: (k) => k.kind },
      { title: "Models", field: "models", value: (k) => k.models.join(", ") },
      { title: "Limits", field: "limits", value: (k) => limitsText(k.limits) },
      { title: "Usage", field: "usage", value: usageText },
      { title: "Expires", field: "expires", value: (k) => k.expires },
    ],
  }),
};

function limitsText(limits) {
  const parts = Object.entries(limits || {})
    .filter(([, value]) => value !== null)
    .map(([name, value]) => `${name} ${value}`);
  return parts.length ? parts.join(", ") : "unlimited";
}

function usageText(key) {
  const usage = key.usage || {};
  return `${usage.requests ?? 0} requests, ${usage.tokens ?? 0} tokens, ${usage.in_flight ?? 0} in flight`;
}

function note(id, text) {
  $(id).textContent = text || "";
}

function showEngines(ready) {
  const engines = Object.entries(ready.engines || {}).map(([name, engine]) => ({ name, ...engine }));
  tables.engines.update(engines);
  note("engines-note", engines.length ? "" : "No local engines in this gateway process.");
  return engines;
}

function targetLine(target, up) {
  const where = up === undefined ? "" : up === "up" ? ", up" : ", down";
  return `${target.id}: weight ${target.weight}, tier ${target.tier}${where}`;
}

function showModels(ready, routing) {
  const readiness = ready ? ready.models : {};
  let models;
  if (routing.status === "fulfilled") {
    models = routing.value.data.map((model) => ({
      ...model,
      ready: readiness[model.id]?.ready ?? model.targets.some((t) => t.available),
      targets: model.targets.map((t) => targetLine(t, readiness[model.id]?.targets[t.id])),
    }));
    note("models-note", "");
  } else {
    // Without the routing table (it needs an admin key here), /ready still tells what is up.
    models = Object.entries(readiness).map(([id, model]) => ({
      id,
      ready: model.ready,
      strategy: null,
      targets: Object.entries(model.targets).map(([name, up]) => `${name}: ${up}`),
    }));
    note("models-note", `Weights, tiers and fallbacks: ${routing.reason.message}`);
  }
  tables.models.update(models);
}

function showAdminTable(name, outcome, rows) {
  if (outcome.status === "fulfilled") {
    tables[name].update(rows(outcome.value));
    note(`${name}-note`, "");
  } else {
    tables[name].update([]);
    note(`${name}-note`, outcome.reason.message);
  }
}

// ---- admin endpoints ----------------------------------------------------------

// Endpoints that refused the current key (401, 403): not asked again until the
// key changes, so a console left open does not fill logs with refusals.
const refused = new Map();

/** GET an endpoint that may need the admin key; ``adminOnly``: nobody else may, ever. */
async function adminJson(path, { adminOnly = false } = {}) {
  const key = savedKey.get();
  if (refused.has(path)) throw refused.get(path);
  if (!key && adminOnly) throw new Error("Enter an admin key to see them.");
  try {
    return await getJson(path, { key });
  } catch (error) {
    if (error.status === 401 || error.status === 403) refused.set(path, error);
    throw error;
  }
}

// ---- engine logs (admins) ---------------------------------------------------

async function loadLog(name, pre) {
  const path = `/v1/gateway/engines/${encodeURIComponent(name)}/log?lines=${LOG_LINES}`;
  try {
    const log = await adminJson(path, { adminOnly: true });
    pre.textContent = log.lines.length ? log.lines.join("\n") : "(the log is empty)";
  } catch (error) {
    pre.textContent = error.message;
  }
}

/** A <details> per engine with its log tail, for admins (the keys listing answered them). */
function showEngineLogs(engines, keys) {
  const holder = $("engine-logs");
  if (keys.status !== "fulfilled") {
    const text = engines.length ? `Engine logs: ${keys.reason.message}` : "";
    holder.replaceChildren(element("p", { className: "note", text }));
    return;
  }
  const open = new Set([...holder.querySelectorAll("details[open]")].map((node) => node.dataset.engine));
  const existing = new Map([...holder.querySelectorAll("details")].map((node) => [node.dataset.engine, node]));
  const wanted = engines.map((engine) => {
    let details = existing.get(engine.name);
    if (!details) {
      const pre = element("pre", { className: "log-tail", attrs: { tabindex: "0" } });
      details = element("details", { attrs: { "data-engine": engine.name } }, [
        element("summary", { text: `Log of ${engine.name} (last ${LOG_LINES} lines)` }),
        pre,
      ]);
      details.addEventListener("toggle", () => details.open && loadLog(engine.name, pre));
    }
    if (open.has(engine.name)) loadLog(engine.name, details.querySelector("pre"));
    return details;
  });
  if (wanted.some((node, index) => holder.children[index] !== node) || holder.children.length !== wanted.length) {
    holder.replaceChildren(...wanted);
  }
}

// ---- the refresh loop -------------------------------------------------------

let previous = null; // the last scrape's totals and when it was taken
let timer = null;
async function metricsText() {
  const response = await request("/metrics");
  if (!response.ok) throw await errorFrom(response);
  return response.text();
}

function showMetrics(text) {
  const totals = gatewayTotals(parseMetrics(text));
  const now = performance.now();
  if (previous) {
    const seconds = (now - previous.at) / 1000;
    const rates = between(previous.totals, totals, seconds);
    charts.requests.push(rates.requestsPerSecond);
    charts.latency.push(rates.latencySeconds);
    charts.ttft.push(rates.ttftSeconds);
    charts.tokens.push(rates.tokensPerSecond);
  }
  previous = { totals, at: now };
}

function showOverall(ready) {
  const badge = $("overall");
  const status = ready ? ready.status : "unreachable";
  badge.textContent = status.replace("_", " ");
  badge.className = `badge ${TONES[status] || "bad"}`;
}

async function refresh() {
  const [ready, metrics, targets, routing, keys] = await Promise.allSettled([
    getJson("/ready", { accept: [503] }),
    metricsText(),
    adminJson("/v1/gateway/targets"),
    adminJson("/v1/gateway/routing"),
    adminJson("/v1/gateway/keys", { adminOnly: true }),
  ]);
  const readyData = ready.status === "fulfilled" ? ready.value : null;
  showOverall(readyData);
  if (readyData) {
    $("status").hidden = true;
    const engines = showEngines(readyData);
    showEngineLogs(engines, keys);
  } else {
    $("status").textContent = `The gateway did not answer /ready: ${ready.reason.message}`;
    $("status").hidden = false;
  }
  if (metrics.status === "fulfilled") showMetrics(metrics.value);
  showAdminTable("targets", targets, (payload) => payload.data);
  showModels(readyData, routing);
  showAdminTable("keys", keys, (payload) => payload.data);
  $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

async function loop() {
  clearTimeout(timer);
  timer = null;
  try {
    await refresh();
  } finally {
    if (every() > 0 && timer === null) timer = setTimeout(loop, every() * 1000);
  }
}

$("admin-key").value = savedKey.get();
function useKey(key) {
  $("admin-key").value = key;
  savedKey.set(key);
  refused.clear();
  loop();
}

$("admin-key").addEventListener("change", () => useKey($("admin-key").value.trim()));
$("forget-key").addEventListener("click", () => useKey(""));
$("every").addEventListener("change", loop);
$("toolbar").addEventListener("submit", (event) => event.preventDefault());
loop();
