// `npm run bench [-- --quick] [-- --only name,...] [-- --profile]`: runs the benchmarks, prints a table
// and writes bench/results/<time>.json. Every figure sits next to a baseline measured in the same run.
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PROFILE_DIR_ENV, machine, table, withRatios, writeResults, type Row } from './harness';
import { benchLiveTail } from './live-tail';
import { benchMqttSink } from './mqtt-sink';
import { benchMqttSource } from './mqtt-source';
import { benchPoison } from './poison';
import { benchRestPipeline } from './rest-pipeline';
import { benchStartup } from './startup';
import { stopVsCodeSession } from './vscode-session';
import { benchWialon } from './wialon';

/** In this order; the live tail last (it needs the e2e host and runs longest). */
const benches: Record<string, (o: { quick: boolean }) => Promise<Row[]>> = {
  rest: benchRestPipeline,
  poison: benchPoison,
  wialon: benchWialon,
  'mqtt-sink': benchMqttSink,
  'mqtt-source': benchMqttSource,
  startup: benchStartup,
  'live-tail': benchLiveTail,
};

const { values } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, profile: { type: 'boolean', default: false } },
});
const quick = values.quick ?? false;
const only = values.only?.split(',').map((s) => s.trim());
const unknown = only?.filter((name) => !(name in benches)) ?? [];
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}: choose from ${Object.keys(benches).join(', ')} (e.g. --only rest,wialon)`);
  process.exit(2);
}
if (values.profile) {
  // Workers inherit the variable and write CPU profiles there (see forkWorker).
  process.env[PROFILE_DIR_ENV] = resolve('bench', 'results', 'profiles', new Date().toISOString().replace(/[:.]/g, '-'));
  console.log(`CPU profiles of the workers go to ${process.env[PROFILE_DIR_ENV]} (summarize: node --import tsx bench/profile.ts <folder>)`);
}

const load = () => loadavg().map((x) => Math.round(x * 100) / 100);

async function main(): Promise<void> {
  const loadAtStart = load();
  console.log(`machine: ${JSON.stringify(machine())}${quick ? ' (quick mode: fewer messages and runs)' : ''}`);
  const rows: Row[] = [];
  const timings: Record<string, { seconds: number; loadBefore: number[]; loadAfter: number[] }> = {};
  try {
    for (const [name, bench] of Object.entries(benches)) {
      if (only && !only.includes(name)) continue;
      console.log(`running ${name} ...`);
      const started = performance.now();
      const loadBefore = load();
      try {
        rows.push(...(await bench({ quick })));
      } catch (error) {
        console.error(`bench ${name} failed: ${error instanceof Error ? error.stack : String(error)}`);
        process.exitCode = 1;
      }
      timings[name] = { seconds: Math.round((performance.now() - started) / 100) / 10, loadBefore, loadAfter: load() };
      console.log(`  ${name}: ${timings[name].seconds} s, load average ${timings[name].loadAfter.join(' ')}`);
    }
  } finally {
    await stopVsCodeSession();
  }
  const final = withRatios(rows);
  console.log('\n' + table(final));
  console.log(`\nwritten ${writeResults(final, { quick, only, loadAtStart, timings })}`);
}

void main();
