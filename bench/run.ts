// `npm run bench [-- --quick] [-- --only name,...]`: runs the benchmarks, prints a table and writes
// bench/results/<time>.json. Every figure sits next to a baseline measured in the same run.
import { parseArgs } from 'node:util';
import { table, withRatios, writeResults, machine, type Row } from './harness';
import { benchRestPipeline } from './rest-pipeline';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } });
const quick = values.quick ?? false;
const only = values.only?.split(',');

const benches: Record<string, (o: { quick: boolean }) => Promise<Row[]>> = {
  rest: benchRestPipeline,
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
