// A table refreshed in place: rows are kept by key and a cell is rebuilt only
// when its value changed, so a refresh every few seconds neither flickers nor
// takes the keyboard focus or a screen reader's place away.
//
// A column's value(row) is a cell: text (a string or number), null (shown as
// a dash), or { text, sub, badge, tone, progress: [value, max], lines: [cells] }.

import { element } from "./api.js";

function fillCell(td, cell) {
  if (cell === null || cell === undefined || cell === "") {
    td.textContent = "—";
    return;
  }
  if (typeof cell !== "object") {
    td.textContent = String(cell);
    return;
  }
  const parts = [];
  if (cell.badge !== undefined) parts.push(element("span", { className: `badge ${cell.tone || ""}`, text: cell.badge }));
  if (cell.text !== undefined) parts.push(document.createTextNode(String(cell.text)));
  if (cell.progress) {
    const [value, max] = cell.progress;
    parts.push(
      document.createTextNode(" "),
      element("progress", { attrs: { value, max, "aria-label": `step ${value} of ${max}` } }),
    );
  }
  if (cell.sub) parts.push(element("span", { className: "sub", text: cell.sub }));
  for (const line of cell.lines || []) {
    const holder = element("div");
    fillCell(holder, line);
    parts.push(holder);
  }
  td.replaceChildren(...parts);
}

export class LiveTable {
  /** ``columns``: [{ title, field, value(row), numeric }]; ``key(row)``: the row's identity. */
  constructor(container, { caption, columns, key }) {
    this.columns = columns;
    this.key = key;
    this.rows = new Map();
    this.body = element("tbody");
    const head = element("tr", {}, columns.map((column) => element("th", { text: column.title, attrs: { scope: "col" } })));
    this.table = element("table", {}, [element("caption", { text: caption }), element("thead", {}, [head]), this.body]);
    // A table wider than a phone scrolls sideways, and the keyboard can scroll it too.
    container.setAttribute("role", "region");
    container.setAttribute("tabindex", "0");
    container.setAttribute("aria-label", caption);
    container.replaceChildren(this.table);
    this.container = container;
  }

  update(rows) {
    this.container.hidden = rows.length === 0;
    const seen = new Set();
    rows.forEach((row, index) => {
      const key = this.key(row);
      seen.add(key);
      let tr = this.rows.get(key);
      if (!tr) {
        tr = element("tr", { attrs: { "data-key": key } });
        for (const column of this.columns) {
          tr.append(element("td", { className: column.numeric ? "num" : undefined, attrs: { "data-field": column.field } }));
        }
        this.rows.set(key, tr);
      }
      this.columns.forEach((column, position) => {
        const cell = column.value(row);
        const signature = JSON.stringify(cell ?? null);
        const td = tr.children[position];
        if (td.dataset.value !== signature) {
          td.dataset.value = signature;
          fillCell(td, cell);
        }
      });
      if (this.body.children[index] !== tr) this.body.insertBefore(tr, this.body.children[index] || null);
    });
    for (const [key, tr] of this.rows) {
      if (!seen.has(key)) {
        tr.remove();
        this.rows.delete(key);
      }
    }
  }
}
