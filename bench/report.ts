// Renders a results file of `npm run bench` as Markdown (for docs/benchmarks.md): the machine and its
// load, then one table per bench. Usage: node --import tsx bench/report.ts [bench/results/<file>.json]
// (default: the newest results file).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Row } from './harness';

interface Results {
  date: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string; loadAverage: number[] };
  options: { quick: boolean; loadAtStart?: number[]; timings?: Record<string, { seconds: number; loadBefore: number[]; loadAfter: number[] }> };
  rows: Row[];
}

const fmt = (x: number) => (Number.isNaN(x) ? 'n/a' : Math.abs(x) >= 100 || Number.isInteger(x) ? Math.round(x).toLocaleString('en-US') : x.toPrecision(3));

export function markdown(results: Results): string {
  const { machine, options, rows } = results;
  const out: string[] = [];
  out.push(
    `Run of ${results.date}${options.quick ? ' (--quick)' : ''}: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}.`,
  );
  if (options.loadAtStart)
    out.push(`Load average (1, 5, 15 min) at the start: ${options.loadAtStart.join(', ')}; at the end: ${machine.loadAverage.join(', ')}.`);
  else out.push(`Load average (1, 5, 15 min) at the end: ${machine.loadAverage.join(', ')}.`);
  if (options.timings) {
    out.push(
      'Per bench: ' +
        Object.entries(options.timings)
          .map(([name, t]) => `${name} ${t.seconds} s (load ${t.loadBefore[0]} → ${t.loadAfter[0]})`)
          .join('; ') +
        '.',
    );
  }
  for (const bench of [...new Set(rows.map((r) => r.bench))]) {
    const group = rows.filter((r) => r.bench === bench);
    const runs = Math.max(...group.map((r) => r.summary.runs));
    out.push('', `**${bench}** (${runs} run${runs > 1 ? 's' : ''}${runs > 1 ? ', median [min–max]' : ''})`, '');
    out.push('| case | result | vs baseline | other (median) | target |', '|---|---|---|---|---|');
    for (const r of group) {
      const s = r.summary;
      const value = `${fmt(s.median)} ${r.unit}${s.runs > 1 ? ` [${fmt(s.min)}–${fmt(s.max)}]` : ''}`;
      const isBaseline = group.some((o) => o.baseline === r.case);
      const ratio =
        r.ratio === undefined
          ? isBaseline
            ? 'baseline'
            : ''
          : `**${r.ratio.toFixed(2)}×**${r.ratioRange ? ` [${r.ratioRange[0].toFixed(2)}–${r.ratioRange[1].toFixed(2)}]` : ''}`;
      const other = Object.entries(s.extra)
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join(', ');
      out.push(`| ${r.case} | ${value} | ${ratio} | ${[other, r.note].filter(Boolean).join('; ')} | ${r.target ?? ''} |`);
    }
  }
  return out.join('\n');
}

if (require.main === module) {
  const dir = join(__dirname, 'results');
  const file =
    process.argv[2] ??
    join(
      dir,
      readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .pop() ?? '',
    );
  console.log(markdown(JSON.parse(readFileSync(file, 'utf8')) as Results));
}
