// Wall-clock durations of the e2e parts (install, build, package, each flow), printed at the end
// and saved to test-output/e2e/timings.json so docs/e2e.md can quote real figures.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const parts: { part: string; seconds: number }[] = [];

/** Runs `work` and records how long it took under `part`. */
export async function timed<T>(part: string, work: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await work();
  } finally {
    record(part, (performance.now() - start) / 1000);
  }
}

export function record(part: string, seconds: number): void {
  parts.push({ part, seconds: Math.round(seconds * 10) / 10 });
}

export function writeTimings(file: string): string {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(parts, null, 2) + '\n');
  const width = Math.max(...parts.map((p) => p.part.length), 4);
  return parts.map((p) => `${p.part.padEnd(width)}  ${p.seconds.toFixed(1).padStart(6)} s`).join('\n');
}
