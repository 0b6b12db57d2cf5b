// Markdown to DOM nodes, safely: every piece of model text becomes a text node
// (never HTML), and links keep only http(s) and mailto URLs. It covers what chat
// answers use: paragraphs, headings, lists, block quotes, fenced code, rules,
// tables, and inline code, bold, italic, strikethrough and links. A fence that is still
// streaming (not closed yet) shows as code already.

import { element } from "./api.js";

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const BULLET = /^(\s*)([-*+])\s+(.*)$/;
const NUMBERED = /^(\s*)(\d{1,9})[.)]\s+(.*)$/;
const TABLE_RULE = /^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$/;
// Groups: 1-2 code span, 3 bold, 4 bold, 5 strikethrough, 6 italic, 7 italic,
// 8-9 link text and URL, 10 a bare URL.
const INLINE = new RegExp(
  [
    "(`+)([^`]|[^`][\\s\\S]*?[^`])\\1(?!`)",
    "\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*",
    "__(?=\\S)([\\s\\S]*?\\S)__",
    "~~(?=\\S)([\\s\\S]*?\\S)~~",
    "\\*(?=[^\\s*])([\\s\\S]*?[^\\s*])\\*",
    "(?<![\\p{L}\\p{N}_])_(?=[^\\s_])([\\s\\S]*?[^\\s_])_(?![\\p{L}\\p{N}_])",
    "\\[([^\\]\\n]+)\\]\\(\\s*<?([^\\s)>]+)>?\\s*\\)",
    "(https?:\\/\\/[^\\s<>()]*[^\\s<>().,;:!?'\"])",
  ].join("|"),
  "gu",
);
const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

/** The DOM of a Markdown text, as a fragment. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  fragment.append(...blocks(text.replace(/\r\n?/g, "\n").split("\n")));
  return fragment;
}

function startsBlock(line) {
  return [FENCE, HEADING, RULE, QUOTE, BULLET, NUMBERED].some((pattern) => pattern.test(line));
}

/** Whether a table starts at ``lines[i]``: a row of cells, then a |---|---| rule. */
function startsTable(lines, i) {
  const rule = lines[i + 1];
  return lines[i].includes("|") && rule !== undefined && rule.includes("|") && TABLE_RULE.test(rule);
}

function tableCells(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((cell) => cell.trim());
}

/** A table starting at ``lines[start]`` and the next line. */
function tableBlock(lines, start) {
  const row = (line, tag) => element("tr", {}, tableCells(line).map((cell) => element(tag, {}, [inline(cell)])));
  const head = element("thead", {}, [row(lines[start], "th")]);
  const body = element("tbody");
  let i = start + 2;
  for (; i < lines.length && lines[i].includes("|") && lines[i].trim(); i += 1) body.append(row(lines[i], "td"));
  return [element("div", { className: "table-wrap" }, [element("table", {}, [head, body])]), i];
}

function blocks(lines) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let match;
    if (!line.trim()) {
      i += 1;
    } else if ((match = FENCE.exec(line))) {
      const body = [];
      for (i += 1; i < lines.length && !lines[i].trimStart().startsWith(match[1]); i += 1) {
        body.push(lines[i]);
      }
      i += 1; // the closing fence
      out.push(codeBlock(body.join("\n"), match[2]));
    } else if ((match = HEADING.exec(line))) {
      out.push(element(`h${match[1].length}`, {}, [inline(match[2])]));
      i += 1;
    } else if (RULE.test(line)) {
      out.push(element("hr"));
      i += 1;
    } else if (QUOTE.test(line)) {
      const body = [];
      for (; i < lines.length && (match = QUOTE.exec(lines[i])); i += 1) body.push(match[1]);
      out.push(element("blockquote", {}, blocks(body)));
    } else if (startsTable(lines, i)) {
      const [table, next] = tableBlock(lines, i);
      out.push(table);
      i = next;
    } else if (BULLET.test(line) || NUMBERED.test(line)) {
      const [list, next] = listBlock(lines, i);
      out.push(list);
      i = next;
    } else {
      const body = [line];
      for (i += 1; i < lines.length && lines[i].trim() && !startsBlock(lines[i]) && !startsTable(lines, i); i += 1) {
        body.push(lines[i]);
      }
      out.push(element("p", {}, [inline(body.join("\n"))]));
    }
  }
  return out;
}

function indentOf(line) {
  return line.length - line.trimStart().length;
}

/** A list starting at ``lines[start]`` (items, continuations, nested lists) and the next line. */
function listBlock(lines, start) {
  const ordered = !BULLET.test(lines[start]);
  const pattern = ordered ? NUMBERED : BULLET;
  const first = pattern.exec(lines[start]);
  const indent = first[1].length;
  const list = element(ordered ? "ol" : "ul");
  if (ordered && Number(first[2]) !== 1) list.start = Number(first[2]);
  const items = [];
  let contentIndent = 0;
  let i = start;
  while (i < lines.length) {
    const line = lines[i];
    const match = pattern.exec(line);
    if (match && match[1].length === indent) {
      items.push([match[3]]);
      contentIndent = line.length - match[3].length;
    } else if (!line.trim()) {
      const next = lines[i + 1];
      const goesOn = next !== undefined && (indentOf(next) > indent || pattern.test(next));
      if (!goesOn) break;
      items.at(-1).push("");
    } else if (indentOf(line) > indent || !startsBlock(line)) {
      items.at(-1).push(line.slice(Math.min(indentOf(line), contentIndent)));
    } else {
      break;
    }
    i += 1;
  }
  for (const itemLines of items) {
    const content = blocks(itemLines);
    // A one-paragraph item shows its text without the paragraph's margins.
    const children = content.length === 1 && content[0].tagName === "P" ? [...content[0].childNodes] : content;
    list.append(element("li", {}, children));
  }
  return [list, i];
}

function codeBlock(code, language) {
  const codeNode = element("code", { text: code, className: language ? `language-${language}` : undefined });
  const copy = element("button", {
    text: "Copy",
    attrs: { type: "button", "aria-label": language ? `Copy the ${language} code` : "Copy the code" },
  });
  copy.addEventListener("click", () => copyText(code, codeNode, copy));
  const bar = element("div", { className: "code-bar" }, [element("span", { text: language || "code" }), copy]);
  return element("div", { className: "code-block" }, [bar, element("pre", {}, [codeNode])]);
}

async function copyText(code, codeNode, button) {
  try {
    await navigator.clipboard.writeText(code);
    button.textContent = "Copied";
  } catch {
    // No clipboard API (a page served over plain HTTP to another host): select it instead.
    const range = document.createRange();
    range.selectNodeContents(codeNode);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    button.textContent = "Selected: press Ctrl+C";
  }
  setTimeout(() => {
    button.textContent = "Copy";
  }, 2000);
}

function safeUrl(raw) {
  try {
    const url = new URL(raw, location.href);
    return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

/** A link, or plain text when the URL is not one a page may open. */
function link(label, raw, labelNode) {
  const href = safeUrl(raw);
  if (href === null) return document.createTextNode(label === raw ? raw : `${label} (${raw})`);
  return element("a", { attrs: { href, target: "_blank", rel: "noopener noreferrer nofollow" } }, [labelNode]);
}

function inlineNode(match) {
  if (match[2] !== undefined) return element("code", { text: match[2] });
  if (match[3] !== undefined || match[4] !== undefined) return element("strong", {}, [inline(match[3] ?? match[4])]);
  if (match[5] !== undefined) return element("del", {}, [inline(match[5])]);
  if (match[6] !== undefined || match[7] !== undefined) return element("em", {}, [inline(match[6] ?? match[7])]);
  if (match[8] !== undefined) return link(match[8], match[9], inline(match[8]));
  return link(match[10], match[10], document.createTextNode(match[10]));
}

/** Inline Markdown as nodes; a newline inside a paragraph is a line break, as chat shows it. */
function inline(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  const plain = (part) => {
    part.split("\n").forEach((piece, index) => {
      if (index) fragment.append(element("br"));
      if (piece) fragment.append(document.createTextNode(piece));
    });
  };
  for (const match of text.matchAll(INLINE)) {
    plain(text.slice(last, match.index));
    fragment.append(inlineNode(match));
    last = match.index + match[0].length;
  }
  plain(text.slice(last));
  return fragment;
}
