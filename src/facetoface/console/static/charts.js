// Bar charts as inline SVG, from JSON, with no library: every label is an SVG text node
// (textContent), and the figure carries a text summary for screen readers.

const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    node.setAttribute(key, String(value));
  }
  if (text !== null) {
    node.textContent = String(text);
  }
  return node;
}

function niceMax(value) {
  if (value <= 4) {
    return 4;
  }
  const step = 10 ** Math.floor(Math.log10(value));
  return Math.ceil(value / step) * step;
}

/**
 * A (stacked) bar chart.
 * @param {object} options
 * @param {string} options.title      the figure caption
 * @param {{label: string, parts: number[]}[]} options.bars
 * @param {{name: string, color: string}[]} options.series  one per part
 * @param {string} options.summary    the text alternative
 */
export function barChart({ title, bars, series, summary }) {
  const width = 520;
  const height = 240;
  const left = 34;
  const bottom = 40;
  const top = 10;
  const plotHeight = height - top - bottom;
  const plotWidth = width - left - 8;
  const max = niceMax(Math.max(0, ...bars.map((bar) => bar.parts.reduce((a, b) => a + b, 0))));
  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `${title}. ${summary}`,
  });
  svg.append(el("title", {}, title));
  for (const tick of [0, max / 2, max]) {
    const y = top + plotHeight - (tick / max) * plotHeight;
    svg.append(el("line", { x1: left, x2: width - 8, y1: y, y2: y, stroke: "#d5dae3" }));
    svg.append(el("text", { x: left - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#4a5568" }, Math.round(tick)));
  }
  const slot = plotWidth / Math.max(1, bars.length);
  const barWidth = Math.max(4, Math.min(42, slot * 0.7));
  const labelEvery = Math.ceil(bars.length / 10);
  bars.forEach((bar, index) => {
    const x = left + index * slot + (slot - barWidth) / 2;
    let y = top + plotHeight;
    const total = bar.parts.reduce((a, b) => a + b, 0);
    bar.parts.forEach((value, part) => {
      if (!value) {
        return;
      }
      const h = (value / max) * plotHeight;
      y -= h;
      const rect = el("rect", { x, y, width: barWidth, height: h, fill: series[part].color, rx: 2 });
      rect.append(el("title", {}, `${bar.label}: ${value} ${series[part].name}`));
      svg.append(rect);
    });
    if (total) {
      svg.append(el("text", { x: x + barWidth / 2, y: y - 3, "text-anchor": "middle", "font-size": 11, fill: "#1b2430" }, total));
    }
    // Counted back from the last bar, so the newest (today, the open bucket) is always named.
    if ((bars.length - 1 - index) % labelEvery === 0) {
      svg.append(el("text", { class: "axis-label", x: x + barWidth / 2, y: height - bottom + 16, "text-anchor": "middle", "font-size": 11, fill: "#4a5568" }, bar.label));
    }
  });
  svg.append(el("line", { x1: left, x2: width - 8, y1: top + plotHeight, y2: top + plotHeight, stroke: "#8a93a6" }));
  return svg;
}

/** A legend for `series` (colour swatches with names). */
export function legend(series) {
  const box = document.createElement("div");
  box.className = "legend";
  for (const item of series) {
    const entry = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = item.color;
    entry.append(swatch, item.name);
    box.append(entry);
  }
  return box;
}
