// Shared pieces of `npm run bench`: repeated runs, median/min/max, ratios against a baseline
// measured in the same run, machine description, table and JSON output.
import { fork, type ChildProcess, type StdioOptions } from 'node:child_process';
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
  /** Every run's value in run order; runs of interleaved cases pair up by index. */
  values: number[];
}

export interface Row {
  bench: string;
  case: string;
  unit: string;
  summary: Summary;
  /** The baseline case this row is compared with (same bench), if any. */
  baseline?: string;
  /** Median of the per-round ratios to the baseline (cases run interleaved), else median / baseline median. */
  ratio?: number;
  /** Smallest and largest per-round ratio, when the runs pair up. */
  ratioRange?: [number, number];
  target?: string;
  note?: string;
}

export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(samples: Sample[]): Summary {
  const values = samples.map((s) => s.value);
  const extra: Record<string, number> = {};
  for (const key of new Set(samples.flatMap((s) => Object.keys(s.extra ?? {})))) {
    extra[key] = median(samples.map((s) => s.extra?.[key]).filter((x): x is number => x !== undefined));
  }
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), runs: values.length, extra, values };
}

/** Runs `fn` `runs` times (after `warmup` unmeasured runs) and summarizes. */
export async function measure(runs: number, fn: () => Promise<Sample>, warmup = 0): Promise<Summary> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: Sample[] = [];
  for (let i = 0; i < runs; i++) samples.push(await fn());
  return summarize(samples);
}

/**
 * Runs several cases round-robin (`runs` rounds after `warmup` unmeasured ones), so a burst of load from
 * other users of the machine hits every case alike, and the runs of one round can be compared as a pair.
 */
export async function measureInterleaved(runs: number, cases: Record<string, () => Promise<Sample>>, warmup = 0): Promise<Record<string, Summary>> {
  const samples: Record<string, Sample[]> = Object.fromEntries(Object.keys(cases).map((name) => [name, []]));
  for (let round = 0; round < warmup + runs; round++) {
    for (const [name, fn] of Object.entries(cases)) {
      const sample = await fn();
      if (round >= warmup) samples[name]!.push(sample);
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, s]) => [name, summarize(s)]));
}

/**
 * Adds `ratio` to rows that name a baseline: the median of per-round ratios when both were measured
 * interleaved with the same number of runs, else median / baseline median.
 */
export function withRatios(rows: Row[]): Row[] {
  return rows.map((row) => {
    if (!row.baseline) return row;
    const base = rows.find((r) => r.bench === row.bench && r.case === row.baseline);
    if (!base) return row;
    const a = row.summary.values;
    const b = base.summary.values;
    if (a.length > 1 && a.length === b.length) {
      const ratios = a.map((x, i) => x / b[i]!);
      return { ...row, ratio: median(ratios), ratioRange: [Math.min(...ratios), Math.max(...ratios)] };
    }
    return { ...row, ratio: row.summary.median / base.summary.median };
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

const fmt = (x: number) => (Number.isNaN(x) ? 'n/a' : Math.abs(x) >= 100 || Number.isInteger(x) ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3));

export function table(rows: Row[]): string {
  const header = ['bench', 'case', 'median', 'min', 'max', 'unit', 'vs baseline', 'other (median)', 'target'];
  const isBaseline = (r: Row) => rows.some((other) => other.bench === r.bench && other.baseline === r.case);
  const notes = rows.some((r) => r.note);
  if (notes) header.push('note');
  const body = rows.map((r) => [
    r.bench,
    r.case,
    fmt(r.summary.median),
    fmt(r.summary.min),
    fmt(r.summary.max),
    r.unit,
    r.ratio === undefined
      ? isBaseline(r)
        ? 'baseline'
        : ''
      : `${r.ratio.toFixed(2)}×${r.ratioRange ? ` (${r.ratioRange[0].toFixed(2)}–${r.ratioRange[1].toFixed(2)})` : ''} ${r.baseline}`,
    Object.entries(r.summary.extra)
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join(', '),
    r.target ?? '',
    ...(notes ? [r.note ?? ''] : []),
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

/** Set by `npm run bench -- --profile`: workers then write V8 CPU profiles into this folder. */
export const PROFILE_DIR_ENV = 'BENCH_PROFILE_DIR';

/**
 * Forks a worker (TypeScript through tsx, unless `nodeArgs` says otherwise). With profiling on, the worker runs with --cpu-prof and its
 * profile lands in `<profile dir>/<label>/` (summarize with bench/profile.ts).
 */
export function forkWorker(
  script: string,
  args: string[],
  label: string,
  stdio: StdioOptions = ['ignore', 'inherit', 'inherit', 'ipc'],
  nodeArgs = ['--import', 'tsx'],
): ChildProcess {
  const execArgv = [...nodeArgs];
  const profileDir = process.env[PROFILE_DIR_ENV];
  if (profileDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${join(profileDir, label.replace(/[^\w.-]+/g, '_'))}`);
  return fork(script, args, { execArgv, stdio });
}

/** Forks a worker that answers with one message (a Sample unless told otherwise) over IPC and exits 0. */
export function sampleFromWorker<T = Sample>(script: string, args: string[], label: string, nodeArgs?: string[]): Promise<T> {
  const child = forkWorker(script, args, label, undefined, nodeArgs);
  return new Promise((resolve, reject) => {
    let sample: T | undefined;
    child.once('message', (m) => (sample = m as T));
    child.once('exit', (code) =>
      code === 0 && sample ? resolve(sample) : reject(new Error(`bench worker ${label} exited with ${code}${sample ? '' : ' before answering'}`)),
    );
  });
}
