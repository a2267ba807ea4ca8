// Summarizes V8 .cpuprofile files (from `npm run bench -- --profile`, which runs bench workers with
// --cpu-prof): self time by area (project, axios, mqtt, node internals, GC, idle) and the top functions.
// Usage: node --import tsx bench/profile.ts <file.cpuprofile | folder> [--top 25]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  byArea: [string, number][];
  byFunction: [string, number][];
}

/** Where a frame's code comes from, coarse enough to say which layer costs the time. */
function areaOf(url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle (waiting for I/O)';
  if (name === '(program)') return 'V8/native (program)';
  if (url.startsWith('node:')) return 'node internals';
  if (/^https?:/.test(url)) return `page: ${shortUrl(url)}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const project = /\/(src|bench|test)\/(.+)$/.exec(url);
  if (project) return project[1] === 'src' ? `src/${project[2]!.split('/').slice(0, -1).join('/')}` : project[1]!;
  return url === '' ? 'native' : url;
}

/** The file part of a page URL (workbench.js, tail.js, the webview's index.html), without the query. */
function shortUrl(url: string): string {
  const path = url.replace(/[?#].*$/, '').split('/');
  return path.slice(-2).join('/');
}

export function summarizeProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // samples[i] was taken timeDeltas[i + 1] µs before the next one; attribute each interval to its sample.
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + dt);
  }
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const file = /^https?:/.test(url) ? shortUrl(url) : url.replace(/^.*\/(node_modules\/|src\/|bench\/)/, '$1');
    const where = url ? ` ${file}:${lineNumber + 1}` : '';
    const key = `${functionName || '(anonymous)'}${where}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) => [...m].map(([k, us]) => [k, us / 1000] as [string, number]).sort((a, b) => b[1] - a[1]);
  return { totalMs: (profile.endTime - profile.startTime) / 1000, byArea: sorted(areas), byFunction: sorted(functions) };
}

export function formatProfile(name: string, summary: ProfileSummary, top = 25): string {
  const pct = (ms: number) => `${((ms / summary.totalMs) * 100).toFixed(1).padStart(5)}%`;
  const lines = [`${name}: ${Math.round(summary.totalMs)} ms sampled`, '  self time by area:'];
  for (const [area, ms] of summary.byArea.slice(0, 15)) lines.push(`  ${pct(ms)} ${Math.round(ms).toString().padStart(6)} ms  ${area}`);
  lines.push(`  top ${top} functions (self time):`);
  for (const [fn, ms] of summary.byFunction.slice(0, top)) lines.push(`  ${pct(ms)} ${Math.round(ms).toString().padStart(6)} ms  ${fn}`);
  return lines.join('\n');
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
  const files = positionals.flatMap((p) =>
    statSync(p).isDirectory()
      ? readdirSync(p)
          .filter((f) => f.endsWith('.cpuprofile'))
          .map((f) => join(p, f))
      : [p],
  );
  if (files.length === 0) {
    console.error('usage: node --import tsx bench/profile.ts <file.cpuprofile | folder with .cpuprofile files> [--top 25]');
    process.exit(2);
  }
  for (const file of files.sort()) {
    console.log(formatProfile(file, summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile), Number(values.top)) + '\n');
  }
}

if (require.main === module) main();
