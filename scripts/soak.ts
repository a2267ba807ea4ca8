// Soak test (not part of `npm test`): `npm run soak -- --minutes 10 [--rate 2000]`.
//
// Three processes, as in production: the sandbox (`flespi-receiver sandbox`), the receiver
// (`flespi-receiver run <config>` with a file checkpoint and `delete: true`), and this one, which
// injects numbered messages at a steady rate over the sandbox's control API and runs the two sinks
// (an HTTP server and the Wialon test receiver). It samples the receiver's RSS every 10 s and ends
// with a table: injected, delivered per sink, lost (must be 0), duplicates, RSS start/min/max/end.
// Exit code 1 when anything was lost.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { CHANNEL, HttpSink, Injector, Ledger, WialonSink, delay, startCli, startSandboxProcess } from '../test/reliability/support';

const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '10' }, rate: { type: 'string', default: '2000' }, 'sample-seconds': { type: 'string', default: '10' } },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
const sampleMs = Number(values['sample-seconds']) * 1000;
if (!(minutes > 0) || !(rate > 0) || !(sampleMs > 0)) {
  console.error('usage: soak.ts [--minutes 10] [--rate 2000] [--sample-seconds 10]');
  process.exit(2);
}
const SINKS = ['http', 'wialon'] as const;
/** A typical tracker message besides the id: what a Teltonika device sends, roughly. */
const TELEMETRY = {
  'position.latitude': 56.9496,
  'position.longitude': 24.1052,
  'position.altitude': 12,
  'position.speed': 54,
  'position.direction': 270,
  'position.satellites': 11,
  'position.valid': true,
  'gsm.signal.level': 80,
  'external.powersource.voltage': 12.7,
  'battery.voltage': 4.1,
  'engine.ignition.status': true,
  'vehicle.mileage': 123456.7,
  din: 5,
  'movement.status': true,
};

/** Resident set size of a process in MB. */
async function rssMb(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
  } catch {
    return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).trim()) / 1024;
  }
}

async function main(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'flespi-soak-'));
  const ledger = new Ledger(SINKS);
  const sandbox = await startSandboxProcess();
  const http = await new HttpSink(ledger, 'http').listen();
  const wialon = await new WialonSink(ledger, 'wialon').listen();
  const config = join(dir, 'soak.json');
  await writeFile(
    config,
    JSON.stringify({
      flespi: { baseUrl: sandbox.restUrl },
      channel: CHANNEL,
      source: { limitCount: 1000, timeout: 5, delete: true },
      handlers: [
        { type: 'http', name: 'http', url: http.url },
        { type: 'wialon', name: 'wialon', host: '127.0.0.1', port: wialon.port },
      ],
      checkpoint: join(dir, 'soak.checkpoint.json'),
    }),
  );
  const receiver = await startCli(['run', config], { env: { FLESPI_TOKEN: sandbox.token }, cwd: dir });
  const pid = receiver.child.pid!;
  const drain = setInterval(() => wialon.sync(), 500); // keeps the test receiver's packet list short

  // Inject on the clock: each tick tops the total up to rate × elapsed, so slow requests do not lower the rate.
  const injector = new Injector(sandbox, CHANNEL, TELEMETRY);
  const started = performance.now();
  const durationMs = minutes * 60_000;
  let injecting = true;
  let failedTicks = 0;
  const injecting$ = (async () => {
    while (injecting) {
      const due = Math.min(Math.floor((rate * (performance.now() - started)) / 1000), Math.floor((rate * durationMs) / 1000)) - (injector.nextId - 1);
      if (due > 0) {
        try {
          await injector.inject(Math.min(due, 5000));
        } catch {
          failedTicks++;
        }
      }
      await delay(50);
    }
  })();

  // The first sample once the receiver is up and forwarding, not while Node is still loading.
  for (let waited = 0; ledger.distinct('http') === 0 && waited < 30_000 && receiver.child.exitCode === null; waited += 50) await delay(50);
  const samples: number[] = [];
  const line = (elapsedS: number, rss: number) =>
    `${String(Math.round(elapsedS)).padStart(5)} s  injected ${String(injector.injected.length).padStart(9)}  ${SINKS.map((s) => `${s} ${String(ledger.distinct(s)).padStart(9)}`).join('  ')}  receiver RSS ${rss.toFixed(1)} MB`;
  samples.push(await rssMb(pid));
  console.log(`soak: ${minutes} min at ${rate} messages/s; receiver pid ${pid}; sandbox ${sandbox.restUrl}`);
  while (performance.now() - started < durationMs) {
    await delay(Math.min(sampleMs, durationMs - (performance.now() - started)));
    if (receiver.child.exitCode !== null) break;
    const rss = await rssMb(pid);
    samples.push(rss);
    console.log(line((performance.now() - started) / 1000, rss));
  }
  injecting = false;
  await injecting$;
  const target = Math.floor((rate * durationMs) / 1000);
  while (injector.nextId - 1 < target) await injector.inject(Math.min(target - (injector.nextId - 1), 5000)).catch(() => delay(100));

  // Let the receiver catch up (at most a minute), then stop it gracefully.
  const total = injector.injected.length;
  const caughtUp = () => SINKS.every((s) => ledger.distinct(s) >= total);
  for (let waited = 0; waited < 60_000 && !caughtUp() && receiver.child.exitCode === null; waited += 200) {
    await delay(200);
    wialon.sync();
  }
  if (receiver.child.exitCode === null) samples.push(await rssMb(pid));
  receiver.child.kill('SIGTERM');
  const exitCode = await receiver.exit;
  clearInterval(drain);
  wialon.sync();

  const ids = injector.injected;
  const rows: [string, ...string[]][] = [
    ['', ...SINKS],
    ['delivered (distinct ids)', ...SINKS.map((s) => String(ledger.distinct(s)))],
    ['lost', ...SINKS.map((s) => String(ledger.missing(s, ids).length))],
    ['duplicates', ...SINKS.map((s) => String(ledger.duplicates(s)))],
  ];
  const lost = SINKS.reduce((sum, s) => sum + ledger.missing(s, ids).length, 0);
  const elapsedS = (performance.now() - started) / 1000;
  console.log('');
  console.log(
    `messages injected: ${ids.length} in ${(durationMs / 1000).toFixed(0)} s (${(ids.length / (durationMs / 1000)).toFixed(0)} messages/s; ${failedTicks} failed inject requests, retried)`,
  );
  const width = Math.max(...rows.map((r) => r[0].length));
  for (const row of rows)
    console.log(
      `${row[0].padEnd(width)}  ${row
        .slice(1)
        .map((c) => c.padStart(10))
        .join('  ')}`,
    );
  const mb = (n: number) => `${n.toFixed(1)} MB`;
  console.log(
    `receiver RSS: start ${mb(samples[0]!)}, min ${mb(Math.min(...samples))}, max ${mb(Math.max(...samples))}, end ${mb(samples.at(-1)!)} (${samples.length} samples, every ${sampleMs / 1000} s)`,
  );
  console.log(`receiver exit code after SIGTERM: ${exitCode}; total run ${elapsedS.toFixed(0)} s`);
  if (receiver.stderr().includes('warn:'))
    console.log(
      `receiver warnings:\n${receiver
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('warn:'))
        .slice(0, 20)
        .join('\n')}`,
    );

  await Promise.all([http.close(), wialon.close(), sandbox.stop()]);
  await rm(dir, { recursive: true, force: true });
  return lost > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
