// A small live line chart in inline SVG: the last N values of one series,
// scaled to its peak, with the current value and the peak in words for screen
// readers (the SVG's aria-label) and for everyone (the caption and the note).

const SVG_NS = "http://www.w3.org/2000/svg";
const WIDTH = 300;
const HEIGHT = 100;

function svgNode(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

/** A value's scale rounded up to 1, 2 or 5 times a power of ten. */
function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((step) => step * power).find((ceiling) => ceiling >= value);
}

export class LineChart {
  /**
   * ``figure`` holds an <svg>, a ``.now`` element and a ``.peak`` element;
   * ``format`` turns a value into text; ``points`` values are kept.
   */
  constructor(figure, { title, format, points = 90, every = () => 2 }) {
    this.title = title;
    this.format = format;
    this.points = points;
    this.every = every;
    this.values = [];
    this.svg = figure.querySelector("svg");
    this.now = figure.querySelector(".now");
    this.peak = figure.querySelector(".peak");
    this.svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
    this.svg.setAttribute("preserveAspectRatio", "none");
    this.line = svgNode("path", { class: "line", d: "" });
    for (const y of [0.5, HEIGHT / 2, HEIGHT - 0.5]) {
      this.svg.append(svgNode("line", { class: "grid", x1: 0, x2: WIDTH, y1: y, y2: y }));
    }
    this.svg.append(this.line);
    this.render();
  }

  /** Add a value (null: nothing was measured in that interval, drawn as a gap). */
  push(value) {
    this.values.push(value);
    if (this.values.length > this.points) this.values.shift();
    this.render();
  }

  render() {
    const measured = this.values.filter((value) => value !== null);
    const peak = measured.length ? Math.max(...measured) : 0;
    const ceiling = niceCeiling(peak);
    const step = WIDTH / (this.points - 1);
    const offset = this.points - this.values.length;
    let path = "";
    let drawing = false;
    this.values.forEach((value, index) => {
      if (value === null) {
        drawing = false;
        return;
      }
      const x = (offset + index) * step;
      const y = HEIGHT - (value / ceiling) * (HEIGHT - 2) - 1;
      path += `${drawing ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
      drawing = true;
    });
    this.line.setAttribute("d", path);
    const last = this.values.at(-1);
    const now = last === undefined || last === null ? "no data" : this.format(last);
    const span = Math.round((this.values.length * this.every()) / 60);
    const peakText = measured.length ? `peak ${this.format(peak)}` : "no data yet";
    this.now.textContent = now;
    this.peak.textContent = `${peakText}${span ? `, last ${span} min` : ""}; scale 0 to ${this.format(ceiling)}`;
    this.svg.setAttribute("aria-label", `${this.title}: now ${now}, ${peakText}.`);
  }
}
