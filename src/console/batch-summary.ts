/**
 * Pure summaries for the console: a batch's overview from its status groups, and its throughput
 * over time.
 *
 * A number that is not known is `null`, never a guess: the total to copy is known only when
 * every mailbox still to run has recorded its own, and the finish time only when none is left.
 */
import type { JobTimes, StatusGroup } from './ledger-view.js';

/** Statuses after which a mailbox of this run has nothing more to copy. */
const FINISHED = new Set(['complete', 'partial', 'failed', 'interrupted', 'cancelled']);


/** A batch at a glance. */
export interface BatchOverview {
  name: string;
  mailboxes: number;
  /** Mailboxes per status, every status the rows hold. */
  statuses: Record<string, number>;
  copied: number;
  /** Messages to copy in this run, when every mailbox not finished has recorded its count. */
  toCopy: number | null;
  skipped: number;
  startedAt: string | null;
  lastUpdateAt: string | null;
  /** When the last mailbox finished; null while any is not finished. */
  finishedAt: string | null;
}

/** Builds one overview per batch, the most recently updated first. */
export function overviews(groups: readonly StatusGroup[]): BatchOverview[] {
  const byName = new Map<string, StatusGroup[]>();
  for (const g of groups) byName.set(g.batch, [...(byName.get(g.batch) ?? []), g]);
  const out = [...byName].map(([name, gs]): BatchOverview => {
    const unfinished = gs.filter((g) => !FINISHED.has(g.status));
    const known = unfinished.every((g) => g.toCopyKnown === g.mailboxes);
    const min = (xs: (string | undefined)[]) => xs.filter((x): x is string => !!x).sort()[0] ?? null;
    const max = (xs: (string | undefined)[]) => xs.filter((x): x is string => !!x).sort().at(-1) ?? null;
    const last = max(gs.map((g) => g.lastAt));
    return {
      name,
      mailboxes: sum(gs.map((g) => g.mailboxes)),
      statuses: Object.fromEntries(gs.map((g) => [g.status, g.mailboxes])),
      copied: sum(gs.map((g) => g.copied)),
      toCopy: known ? sum(gs.map((g) => (FINISHED.has(g.status) ? g.copied : g.toCopy))) : null,
      skipped: sum(gs.map((g) => g.skipped)),
      startedAt: min(gs.map((g) => g.firstAt)),
      lastUpdateAt: last,
      finishedAt: unfinished.length === 0 ? last : null,
    };
  });
  return out.sort((a, b) => (b.lastUpdateAt ?? '').localeCompare(a.lastUpdateAt ?? '') || a.name.localeCompare(b.name));
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Messages copied per time bucket. */
export interface Throughput {
  bucketSeconds: number;
  /** The start of the first bucket (ISO time). */
  start: string;
  counts: number[];
}

const BUCKETS = [60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86_400, 7 * 86_400];

/**
 * Throughput over time, rebuilt from the rows: each finished mailbox's messages spread evenly over
 * the time it ran (its finish time less its duration). Running mailboxes are not in it: the ledger
 * has their count so far but not when each message arrived. Null when no finished row has times.
 */
export function throughput(jobs: readonly JobTimes[], maxBuckets = 60): Throughput | null {
  const spans = jobs.flatMap((j) => {
    if (!FINISHED.has(j.status) || !j.updatedAt || j.copied === 0) return [];
    const end = Date.parse(j.updatedAt);
    if (Number.isNaN(end)) return [];
    return [{ start: end - (j.seconds ?? 0) * 1000, end, copied: j.copied }];
  });
  if (spans.length === 0) return null;
  const t0 = Math.min(...spans.map((s) => s.start));
  const t1 = Math.max(...spans.map((s) => s.end));
  const size = BUCKETS.find((b) => (t1 - t0) / (b * 1000) < maxBuckets) ?? BUCKETS.at(-1)!;
  const first = Math.floor(t0 / (size * 1000)) * size * 1000;
  const counts = new Array<number>(Math.floor((t1 - first) / (size * 1000)) + 1).fill(0);
  for (const s of spans) {
    const width = Math.max(1, s.end - s.start);
    for (let b = Math.floor((s.start - first) / (size * 1000)); b < counts.length; b++) {
      const lo = first + b * size * 1000;
      const hi = lo + size * 1000;
      if (lo > s.end) break;
      const overlap = s.end === s.start ? (s.end >= lo && s.end < hi ? 1 : 0) : Math.max(0, Math.min(hi, s.end) - Math.max(lo, s.start)) / width;
      counts[b]! += s.copied * overlap;
    }
  }
  return { bucketSeconds: size, start: new Date(first).toISOString(), counts: counts.map((c) => Math.round(c)) };
}

/** Throughput from recorded progress samples (what each running mailbox copied every few seconds). */
export function sampledThroughput(samples: readonly { at: string; copied: number; bytes: number }[], maxBuckets = 60): (Throughput & { bytes: number[] }) | null {
  const points = samples.map((s) => ({ t: Date.parse(s.at), copied: s.copied, bytes: s.bytes })).filter((p) => !Number.isNaN(p.t));
  if (points.length === 0) return null;
  const t0 = Math.min(...points.map((p) => p.t));
  const t1 = Math.max(...points.map((p) => p.t));
  const size = SAMPLE_BUCKETS.find((b) => (t1 - t0) / (b * 1000) < maxBuckets) ?? SAMPLE_BUCKETS.at(-1)!;
  const first = Math.floor(t0 / (size * 1000)) * size * 1000;
  const n = Math.floor((t1 - first) / (size * 1000)) + 1;
  const counts = new Array<number>(n).fill(0);
  const bytes = new Array<number>(n).fill(0);
  for (const p of points) {
    const b = Math.floor((p.t - first) / (size * 1000));
    counts[b]! += p.copied;
    bytes[b]! += p.bytes;
  }
  return { bucketSeconds: size, start: new Date(first).toISOString(), counts, bytes };
}

/** Samples come every few seconds: buckets from 5 s up. */
const SAMPLE_BUCKETS = [5, 10, 30, ...BUCKETS];
