/**
 * The throughput chart: messages copied per interval, drawn by uPlot (1.6.32, MIT), which the
 * build copies next to the page (app/uplot.js, loaded by index.html before the page's module:
 * no CDN, about 50 KB). uPlot sets its few styles through the CSSOM, which the console's
 * Content-Security-Policy allows (it refuses only inline style attributes and elements).
 */
import type uPlot from 'uplot';
import type { Throughput } from './api.js';
import { el, fmt } from './dom.js';

const UPlot = (globalThis as unknown as { uPlot?: typeof uPlot }).uPlot;

/** The chart for `t`, `width` CSS pixels wide. */
export function throughputChart(t: Throughput, width = 1000, height = 160): HTMLElement {
  const per = t.bucketSeconds >= 3600 ? `${t.bucketSeconds / 3600} h` : t.bucketSeconds >= 60 ? `${t.bucketSeconds / 60} min` : `${t.bucketSeconds} s`;
  const max = Math.max(0, ...t.counts);
  const total = t.counts.reduce((a, b) => a + b, 0);
  const box = el('div', { class: 'chart', id: 'throughput', role: 'img', 'data-total': String(total), 'aria-label': `messages copied per ${per}: ${fmt(total)} in all, at most ${fmt(max)} in one ${per}` });
  if (!UPlot) {
    box.append(el('p', { class: 'muted' }, `The chart could not be drawn; ${fmt(total)} messages copied, at most ${fmt(max)} per ${per}.`));
    return box;
  }
  const t0 = Date.parse(t.start) / 1000;
  const xs = t.counts.map((_, i) => t0 + i * t.bucketSeconds);
  const bars = UPlot.paths.bars?.({ size: [0.9, 400], align: 1 });
  new UPlot(
    {
      width,
      height,
      // The whole span of the buckets, also for one bucket (uPlot would otherwise widen it to years).
      scales: { x: { time: true, range: () => [t0, t0 + xs.length * t.bucketSeconds] }, y: { range: (_u, _min, hi) => [0, Math.max(1, hi)] } },
      series: [{}, { label: `messages per ${per}`, stroke: '#1a5fb4', fill: 'rgba(26, 95, 180, 0.35)', ...(bars ? { paths: bars } : {}), points: { show: false } }],
      axes: [{}, { label: 'messages', size: 60 }],
      cursor: { drag: { x: false, y: false } },
    },
    [xs, t.counts],
    box,
  );
  return box;
}
