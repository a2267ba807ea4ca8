// `npm run bench [-- --quick] [-- --only name,...]`: runs the benchmarks, prints a table and writes
// bench/results/<time>.json. Every figure sits next to a baseline measured in the same run.
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { PROFILE_DIR_ENV, table, withRatios, writeResults, machine, type Row } from './harness';
import { benchRestPipeline } from './rest-pipeline';
import { benchWialon } from './wialon';
import { benchMqttSink } from './mqtt-sink';
import { benchMqttSource } from './mqtt-source';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, profile: { type: 'boolean', default: false } } });
const quick = values.quick ?? false;
const only = values.only?.split(',');
if (values.profile) {
  // Workers inherit the variable and write CPU profiles there (see forkWorker).
  process.env[PROFILE_DIR_ENV] = resolve('bench', 'results', 'profiles', new Date().toISOString().replace(/[:.]/g, '-'));
  console.log(`CPU profiles of the workers go to ${process.env[PROFILE_DIR_ENV]} (summarize: node --import tsx bench/profile.ts <folder>)`);
}

const benches: Record<string, (o: { quick: boolean }) => Promise<Row[]>> = {
  rest: benchRestPipeline,
  wialon: benchWialon,
  'mqtt-sink': benchMqttSink,
  'mqtt-source': benchMqttSource,
};

async function main(): Promise<void> {
  console.log(`machine: ${JSON.stringify(machine())}${quick ? ' (quick mode: fewer messages, one run each)' : ''}`);
  const rows: Row[] = [];
  for (const [name, bench] of Object.entries(benches)) {
    if (only && !only.includes(name)) continue;
    console.log(`running ${name} ...`);
    try {
      rows.push(...(await bench({ quick })));
    } catch (error) {
      console.error(`bench ${name} failed: ${error instanceof Error ? error.stack : String(error)}`);
      process.exitCode = 1;
    }
  }
  const final = withRatios(rows);
  console.log('\n' + table(final));
  console.log(`\nwritten ${writeResults(final, { quick, only })}`);
}

void main();
