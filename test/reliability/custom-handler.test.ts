// A user handler (a TypeScript file loaded by the CLI config's `{"type":"custom","file":...}`) that
// throws, throws synchronously, hangs past the handler timeout or never settles is isolated: each
// failure is reported on stderr, the same batch is retried, and the other handler (HTTP) gets each
// batch exactly once. A handler stuck for good holds the channel (at-least-once means no batch is
// acknowledged past it): the CLI still stops cleanly on SIGTERM, nothing is acknowledged, and a
// fixed handler picks up from there.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { CHANNEL, HttpSink, ID, Ledger, numbered, range, startCli, waitUntil, type CliProcess } from './support';

const TIMEOUT = { timeout: 60_000 };
const HANDLER_TIMEOUT_MS = 500;

/** Each call takes the next step of `script` (then "ok"); "ok" appends the batch's ids to `log`. */
const FLAKY_HANDLER = `
import { appendFileSync } from 'node:fs';
import { Handler, type FlespiMessage } from 'flespi-receiver';

type Step = 'ok' | 'throw-sync' | 'reject' | 'hang' | 'never';

export default class FlakyHandler extends Handler {
  private calls = 0;

  constructor(private readonly options: { log: string; script: Step[] }) {
    super();
  }

  handle(messages: readonly FlespiMessage[]): Promise<void> {
    const step = this.options.script[this.calls++] ?? 'ok';
    if (step === 'throw-sync') throw new Error('sync boom');
    if (step === 'reject') return Promise.reject(new Error('async boom'));
    if (step === 'hang') return new Promise((resolve) => setTimeout(resolve, 3_600_000).unref());
    if (step === 'never') return new Promise(() => {});
    appendFileSync(this.options.log, messages.map((m) => m['${ID}']).join('\\n') + '\\n');
    return Promise.resolve();
  }
}
`;

let sandbox: Sandbox;
let dir: string;

before(async () => {
  sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  dir = await mkdtemp(join(tmpdir(), 'reliability-custom-'));
  await writeFile(join(dir, 'FlakyHandler.ts'), FLAKY_HANDLER);
});

after(async () => {
  await sandbox?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function customIds(log: string): Promise<number[]> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map(Number);
}

async function writeConfig(name: string, http: HttpSink, script: string[], log: string): Promise<string> {
  const file = join(dir, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({
      flespi: { baseUrl: sandbox.restUrl },
      channel: CHANNEL,
      source: { limitCount: 50, timeout: 1 },
      handlers: [
        { type: 'custom', name: 'flaky', file: './FlakyHandler.ts', options: { log, script } },
        { type: 'http', name: 'http', url: http.url },
      ],
      checkpoint: `./${name}.checkpoint.json`,
      receiver: { handlerTimeoutMs: HANDLER_TIMEOUT_MS, stopGraceMs: 500, retry: { initialMs: 50, maxMs: 200 } },
    }),
  );
  return file;
}

test(
  'a custom handler that throws, throws synchronously, hangs and never settles on one batch: each failure is reported and retried, then everything arrives; the HTTP sink gets each batch once',
  TIMEOUT,
  async (t) => {
    const ledger = new Ledger(['flaky', 'http']);
    const http = await new HttpSink(ledger, 'http').listen();
    const log = join(dir, 'flaky.log');
    const first = sandbox.store.channel(CHANNEL).log.nextKey;
    sandbox.inject(CHANNEL, numbered(1, 300));
    const config = await writeConfig('flaky', http, ['throw-sync', 'reject', 'hang', 'never'], log);
    // Start where this test's messages begin, whatever other tests left in the channel.
    await writeFile(join(dir, 'flaky.checkpoint.json'), JSON.stringify({ currKey: first }));
    const cli = await startCli(['run', config], { env: { FLESPI_TOKEN: sandbox.token }, cwd: dir });
    try {
      const expected = range(1, 300);
      await waitUntil(
        async () => (await customIds(log)).length >= 300 && ledger.missing('http', expected).length === 0,
        () => `${ledger.summary(expected)}; stderr: ${cli.stderr()}`,
      );
      ledger.add('flaky', await customIds(log));
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exit, 0, cli.stderr());

      ledger.assertAllArrived(t, expected);
      assert.equal(ledger.duplicates('flaky'), 0);
      assert.equal(ledger.duplicates('http'), 0, 'the HTTP sink got batch 1 once although the custom handler needed five attempts');
      const warnings = cli
        .stderr()
        .split('\n')
        .filter((line) => line.includes('handler "flaky" failed on batch 1'));
      for (const warning of warnings) t.diagnostic(warning);
      assert.equal(warnings.length, 4, 'one warning per failed attempt');
      assert.match(warnings[0]!, /\(attempt 1\): .*sync boom.*retrying in/);
      // A second unclassified failure of the batch: the receiver splits it to look for a bad message
      // (backing off first, since the handler has not shown yet that it works); the timeouts are transient.
      assert.match(warnings[1]!, /\(attempt 2\): .*async boom; splitting it to find the messages at fault/);
      for (const [i, warning] of [warnings[2]!, warnings[3]!].entries()) {
        assert.match(warning, new RegExp(`\\(attempt ${i + 3}\\): .*did not finish within ${HANDLER_TIMEOUT_MS} ms \\(handlerTimeoutMs\\).*retrying in`));
      }
    } finally {
      cli.child.kill('SIGKILL');
      await http.close();
    }
  },
);

test(
  'a custom handler stuck for good holds the channel without losing anything: SIGTERM stops the CLI, nothing is acknowledged, and a fixed handler resumes from there',
  TIMEOUT,
  async (t) => {
    const ledger = new Ledger(['flaky', 'http']);
    const http = await new HttpSink(ledger, 'http').listen();
    const log = join(dir, 'stuck.log');
    const first = sandbox.store.channel(CHANNEL).log.nextKey;
    sandbox.inject(CHANNEL, numbered(1001, 200));
    await writeFile(join(dir, 'stuck.checkpoint.json'), JSON.stringify({ currKey: first }));
    let cli: CliProcess = await startCli(['run', await writeConfig('stuck', http, Array(1000).fill('never'), log)], {
      env: { FLESPI_TOKEN: sandbox.token },
      cwd: dir,
    });
    try {
      await waitUntil(
        () => (cli.stderr().match(/handler "flaky" failed on batch 1/g) ?? []).length >= 3,
        () => `stderr: ${cli.stderr()}`,
      );
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exit, 0, `a clean stop despite the stuck handler; stderr: ${cli.stderr()}`);
      assert.deepEqual(await customIds(log), []);
      assert.equal(ledger.distinct('http'), 50, 'the HTTP sink got batch 1 and nothing beyond it');
      assert.equal(ledger.duplicates('http'), 0, 'and got it once, however often the stuck handler was retried');
      const checkpoint = JSON.parse(await readFile(join(dir, 'stuck.checkpoint.json'), 'utf8')) as { currKey: number };
      assert.equal(checkpoint.currKey, first, 'nothing was acknowledged past the stuck handler');

      cli = await startCli(['run', await writeConfig('stuck', http, [], log)], { env: { FLESPI_TOKEN: sandbox.token }, cwd: dir });
      const expected = range(1001, 200);
      await waitUntil(
        async () => (await customIds(log)).length >= 200 && ledger.missing('http', expected).length === 0,
        () => `${ledger.summary(expected)}; stderr: ${cli.stderr()}`,
      );
      cli.child.kill('SIGTERM');
      assert.equal(await cli.exit, 0);
      ledger.add('flaky', await customIds(log));
      ledger.assertAllArrived(t, expected);
      t.diagnostic(`HTTP duplicates: ${ledger.duplicates('http')} (batch 1, which it had accepted before the stuck run was stopped)`);
      assert.ok(ledger.duplicates('http') <= 50, 'at most the one batch the stuck run did not finish comes again');
    } finally {
      cli.child.kill('SIGKILL');
      await http.close();
    }
  },
);
