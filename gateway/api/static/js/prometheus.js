// Prometheus' text exposition format, read in the browser: enough to turn two
// scrapes of the gateway's /metrics into rates (requests/s, tokens/s) and means
// (latency, time to first token) over the time between them.

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const UNESCAPE = { "\\\\": "\\", '\\"': '"', "\\n": "\n" };

/** Samples of a scrape: [{ name, labels, value }], comments and bad lines skipped. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = SAMPLE.exec(line.trim());
    if (!match) continue;
    const labels = {};
    for (const [, name, raw] of (match[2] || "").matchAll(LABEL)) {
      labels[name] = raw.replace(/\\[\\"n]/g, (escape) => UNESCAPE[escape]);
    }
    samples.push({ name: match[1], labels, value: parseValue(match[3]) });
  }
  return samples;
}

function parseValue(raw) {
  if (raw === "+Inf") return Infinity;
  if (raw === "-Inf") return -Infinity;
  return Number(raw);
}

/** The sum of every sample of ``name`` whose labels include ``match``. */
export function total(samples, name, match = {}) {
  let sum = 0;
  for (const sample of samples) {
    if (sample.name !== name) continue;
    if (Object.entries(match).every(([key, value]) => sample.labels[key] === value)) sum += sample.value;
  }
  return sum;
}

/** The gateway's totals that the console charts, from one scrape. */
export function gatewayTotals(samples) {
  const prefix = "vllm_gateway_";
  return {
    requests: total(samples, `${prefix}requests_total`),
    durationSum: total(samples, `${prefix}request_duration_seconds_sum`),
    durationCount: total(samples, `${prefix}request_duration_seconds_count`),
    ttftSum: total(samples, `${prefix}time_to_first_token_seconds_sum`),
    ttftCount: total(samples, `${prefix}time_to_first_token_seconds_count`),
    completionTokens: total(samples, `${prefix}tokens_total`, { type: "completion" }),
  };
}

/**
 * Rates and means between two scrapes ``seconds`` apart. A counter that went
 * down was reset (the gateway restarted): its new value is what was counted
 * since. A mean over no observations is null (nothing to show, not zero).
 */
export function between(before, after, seconds) {
  const grew = (key) => (after[key] >= before[key] ? after[key] - before[key] : after[key]);
  const mean = (sum, count) => (grew(count) > 0 ? grew(sum) / grew(count) : null);
  return {
    requestsPerSecond: grew("requests") / seconds,
    latencySeconds: mean("durationSum", "durationCount"),
    ttftSeconds: mean("ttftSum", "ttftCount"),
    tokensPerSecond: grew("completionTokens") / seconds,
  };
}
