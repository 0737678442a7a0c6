/** Minimal SVG charts for benchmark results: no browser, no dependency, readable anywhere. */

/** One bar of a bar chart. */
export interface Bar {
  label: string;
  value: number;
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A horizontal bar chart with a title and a unit on each value. */
export function barChart(title: string, unit: string, bars: Bar[]): string {
  const rowH = 34;
  const left = 230;
  const width = 760;
  const plotW = width - left - 120;
  const height = 60 + bars.length * rowH;
  const max = Math.max(...bars.map((b) => b.value), 1e-9);
  const rows = bars
    .map((b, i) => {
      const y = 45 + i * rowH;
      const w = Math.max(1, (b.value / max) * plotW);
      return [
        `<text x="${left - 10}" y="${y + 17}" text-anchor="end">${esc(b.label)}</text>`,
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="24" fill="${i === 0 ? '#2b6cb0' : '#a0aec0'}"/>`,
        `<text x="${left + w + 6}" y="${y + 17}">${b.value.toFixed(2)} ${esc(unit)}</text>`,
      ].join('');
    })
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>
${rows}
</svg>
`;
}

/** One line of a line chart: points joined in order of x. */
export interface Series {
  label: string;
  points: Array<{ x: number; y: number }>;
  /** Dashed stroke, for peers and reference lines. */
  dashed?: boolean;
}

const PALETTE = ['#2b6cb0', '#2f855a', '#c05621', '#6b46c1', '#718096', '#c53030', '#b7791f', '#319795'];

/** Powers of ten covering [lo, hi], for the ticks of a logarithmic axis. */
function decades(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
}

/** Tick label: 0.001, 0.1, 1, 10, 1000 without float noise. */
const tick = (v: number, format?: (v: number) => string): string => (format ? format(v) : v >= 1 ? String(Math.round(v)) : String(Number(v.toPrecision(1))));

/**
 * A line chart with both axes logarithmic (values must be positive), a legend on the
 * right and one marker per point: for quantities that span decades, such as the time
 * of a resync of 0.1% to 100% of a volume.
 */
export function logLineChart(title: string, axes: { x: string; y: string; xTick?: (v: number) => string; yTick?: (v: number) => string }, series: Series[]): string {
  const width = 860;
  const height = 480;
  const plot = { left: 80, top: 50, right: width - 230, bottom: height - 60 };
  const pts = series.flatMap((s) => s.points).filter((p) => p.x > 0 && p.y > 0);
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  let [x0, x1] = [Math.min(...xs, 1), Math.max(...xs, 1e-9)];
  let [y0, y1] = [Math.min(...ys, 1), Math.max(...ys, 1e-9)];
  if (pts.length === 0) [x0, x1, y0, y1] = [1, 10, 1, 10];
  // Pad half a decade so no point sits on the frame and a single value still spans.
  [x0, x1] = [x0 / 10 ** 0.25, x1 * 10 ** 0.25];
  [y0, y1] = [y0 / 10 ** 0.5, y1 * 10 ** 0.5];
  const px = (x: number): number => plot.left + ((Math.log10(x) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * (plot.right - plot.left);
  const py = (y: number): number => plot.bottom - ((Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * (plot.bottom - plot.top);
  const f = (n: number): string => n.toFixed(1);
  const grid: string[] = [];
  for (const v of decades(x0, x1).filter((v) => v >= x0 && v <= x1)) {
    grid.push(`<line x1="${f(px(v))}" y1="${plot.top}" x2="${f(px(v))}" y2="${plot.bottom}" stroke="#e2e8f0"/>`);
    grid.push(`<text x="${f(px(v))}" y="${plot.bottom + 18}" text-anchor="middle">${esc(tick(v, axes.xTick))}</text>`);
  }
  for (const v of decades(y0, y1).filter((v) => v >= y0 && v <= y1)) {
    grid.push(`<line x1="${plot.left}" y1="${f(py(v))}" x2="${plot.right}" y2="${f(py(v))}" stroke="#e2e8f0"/>`);
    grid.push(`<text x="${plot.left - 8}" y="${f(py(v) + 4)}" text-anchor="end">${esc(tick(v, axes.yTick))}</text>`);
  }
  const lines = series.map((s, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const ok = [...s.points].filter((p) => p.x > 0 && p.y > 0).sort((a, b) => a.x - b.x);
    const d = ok.map((p, j) => `${j === 0 ? 'M' : 'L'}${f(px(p.x))},${f(py(p.y))}`).join(' ');
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    const marks = ok.map((p) => `<circle cx="${f(px(p.x))}" cy="${f(py(p.y))}" r="3.5" fill="${colour}"/>`).join('');
    const ly = plot.top + 10 + i * 22;
    const legend = `<line x1="${plot.right + 20}" y1="${ly}" x2="${plot.right + 50}" y2="${ly}" stroke="${colour}" stroke-width="2.5"${dash}/><text x="${plot.right + 58}" y="${ly + 4}">${esc(s.label)}</text>`;
    return `${ok.length > 1 ? `<path d="${d}" fill="none" stroke="${colour}" stroke-width="2.5"${dash}/>` : ''}${marks}${legend}`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="26" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>
${grid.join('\n')}
<rect x="${plot.left}" y="${plot.top}" width="${plot.right - plot.left}" height="${plot.bottom - plot.top}" fill="none" stroke="#4a5568"/>
<text x="${(plot.left + plot.right) / 2}" y="${height - 18}" text-anchor="middle">${esc(axes.x)}</text>
<text x="20" y="${(plot.top + plot.bottom) / 2}" text-anchor="middle" transform="rotate(-90 20 ${(plot.top + plot.bottom) / 2})">${esc(axes.y)}</text>
${lines.join('\n')}
</svg>
`;
}
