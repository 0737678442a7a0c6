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
