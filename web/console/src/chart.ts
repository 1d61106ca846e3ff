/**
 * The throughput chart: bars of messages copied per time bucket, as inline SVG built node by
 * node. Not a chart library: one bar chart is some forty lines here, where a library would add
 * far more script than the whole page to the first load, a dependency to keep up to date, and
 * often inline styles the console's Content-Security-Policy refuses.
 */
import type { Throughput } from './api.js';
import { fmt } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The chart for `t`, `width` x `height` user units (scaled to the element's box by CSS). */
export function throughputChart(t: Throughput, width = 800, height = 140): SVGSVGElement {
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img' });
  const max = Math.max(1, ...t.counts);
  const left = 48;
  const bottom = height - 18;
  const slot = (width - left) / Math.max(1, t.counts.length);
  const per = t.bucketSeconds >= 3600 ? `${t.bucketSeconds / 3600} h` : `${t.bucketSeconds / 60} min`;
  root.append(svg('title', {}, `messages copied per ${per}; highest ${fmt(max)}`));
  root.append(svg('line', { x1: left, y1: bottom, x2: width, y2: bottom }));
  root.append(svg('text', { x: 0, y: 10 }, fmt(max)));
  root.append(svg('text', { x: 0, y: bottom }, '0'));
  t.counts.forEach((n, i) => {
    const h = Math.round(((bottom - 4) * n) / max);
    const bar = svg('rect', { x: left + i * slot + 1, y: bottom - h, width: Math.max(1, slot - 2), height: h });
    bar.append(svg('title', {}, `${new Date(Date.parse(t.start) + i * t.bucketSeconds * 1000).toLocaleString('en-GB')}: ${fmt(n)} messages`));
    root.append(bar);
  });
  const start = new Date(t.start);
  const end = new Date(Date.parse(t.start) + t.counts.length * t.bucketSeconds * 1000);
  root.append(svg('text', { x: left, y: height - 4 }, start.toLocaleString('en-GB')));
  root.append(svg('text', { x: width, y: height - 4, 'text-anchor': 'end' }, `${end.toLocaleString('en-GB')} (bars: messages per ${per})`));
  return root;
}
