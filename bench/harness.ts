// Shared pieces of `npm run bench`: repeated runs, median/min/max, ratios against a baseline
// measured in the same run, machine description, table and JSON output.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

export interface Sample {
  /** The figure being compared, e.g. messages per second. */
  value: number;
  /** Other figures of the same run (CPU s per 100k, peak RSS MB, ...). */
  extra?: Record<string, number>;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
  extra: Record<string, number>;
}

export interface Row {
  bench: string;
  case: string;
  unit: string;
  summary: Summary;
  /** The baseline case this row is compared with (same bench), if any. */
  baseline?: string;
  ratio?: number;
  target?: string;
  note?: string;
}

export function summarize(samples: Sample[]): Summary {
  const values = samples.map((s) => s.value).sort((a, b) => a - b);
  const mid = Math.floor(values.length / 2);
  const median = values.length % 2 ? values[mid]! : (values[mid - 1]! + values[mid]!) / 2;
  const extra: Record<string, number> = {};
  for (const key of new Set(samples.flatMap((s) => Object.keys(s.extra ?? {})))) {
    const xs = samples.map((s) => s.extra?.[key]).filter((x): x is number => x !== undefined).sort((a, b) => a - b);
    extra[key] = xs[Math.floor(xs.length / 2)]!;
  }
  return { median, min: values[0]!, max: values[values.length - 1]!, runs: values.length, extra };
}

/** Runs `fn` `runs` times (after `warmup` unmeasured runs) and summarizes. */
export async function measure(runs: number, fn: () => Promise<Sample>, warmup = 0): Promise<Summary> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: Sample[] = [];
  for (let i = 0; i < runs; i++) samples.push(await fn());
  return summarize(samples);
}

/** Adds `ratio` = median / baseline median to rows that name a baseline. */
export function withRatios(rows: Row[]): Row[] {
  return rows.map((row) => {
    if (!row.baseline) return row;
    const base = rows.find((r) => r.bench === row.bench && r.case === row.baseline);
    return base ? { ...row, ratio: row.summary.median / base.summary.median } : row;
  });
}

export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

const fmt = (x: number) => (Math.abs(x) >= 100 ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3));

export function table(rows: Row[]): string {
  const header = ['bench', 'case', 'median', 'min', 'max', 'unit', 'vs baseline', 'other (median)', 'target'];
  const body = rows.map((r) => [
    r.bench,
    r.case,
    fmt(r.summary.median),
    fmt(r.summary.min),
    fmt(r.summary.max),
    r.unit,
    r.ratio === undefined ? (r.baseline ? '' : 'baseline') : `${r.ratio.toFixed(2)}× ${r.baseline}`,
    Object.entries(r.summary.extra).map(([k, v]) => `${k} ${fmt(v)}`).join(', '),
    r.target ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

export function writeResults(rows: Row[], options: Record<string, unknown>): string {
  const dir = join('bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine: machine(), options, rows }, null, 2) + '\n');
  return file;
}
