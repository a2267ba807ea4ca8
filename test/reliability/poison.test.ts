// A message the sink refuses for good, through the real CLI: `run` dead-letters it and delivers the
// rest; `dead-letters` lists it; `dead-letters --resend` sends it again once the sink accepts it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FlespiMessage } from '../../src/core/message';
import { quietSandbox } from '../receiver/helpers';
import { CHANNEL, ID, delay, idsOf, numbered, range, runCli, startCli, waitUntil } from './support';

/** An HTTP endpoint that answers 400 to any batch holding a message with `poison: true`, unless `fixed`. */
async function pickyEndpoint() {
  const received: number[] = [];
  let refusals = 0;
  const endpoint = { fixed: false, received, refusals: () => refusals, url: '', close: async () => {} };
  const server = http.createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const batch = JSON.parse(Buffer.concat(chunks).toString('utf8')) as FlespiMessage[];
      if (!endpoint.fixed && batch.some((m) => m.poison === true)) {
        refusals++;
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"field poison is not allowed"}');
        return;
      }
      received.push(...idsOf(batch));
      res.writeHead(200).end();
    })();
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  endpoint.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/ingest`;
  endpoint.close = () => new Promise<void>((done) => server.close(() => done()));
  return endpoint;
}

test(
  'CLI: a message the endpoint refuses with 400 is dead-lettered with the reason while the other 199 arrive; dead-letters lists it and --resend delivers it after the fix',
  { timeout: 60_000 },
  async () => {
    const sandbox = await quietSandbox();
    const endpoint = await pickyEndpoint();
    const dir = await mkdtemp(join(tmpdir(), 'poison-cli-'));
    try {
      sandbox.inject(CHANNEL, [...numbered(1, 76), ...numbered(77, 1, { poison: true }), ...numbered(78, 123)]);
      const config = join(dir, 'receiver.json');
      await writeFile(
        config,
        JSON.stringify({
          flespi: { baseUrl: sandbox.restUrl },
          channel: CHANNEL,
          source: { type: 'rest', limitCount: 100, timeout: 1 },
          handlers: [{ type: 'http', url: endpoint.url }],
        }),
      );
      const run = await startCli(['run', config], { env: { FLESPI_TOKEN: sandbox.token } });
      try {
        await waitUntil(
          () => endpoint.received.length >= 199,
          () => `${endpoint.received.length} of 199 arrived; stderr: ${run.stderr()}`,
        );
        await waitUntil(
          () => /dead-lettered/.test(run.stderr()),
          () => `no dead-letter line; stderr: ${run.stderr()}`,
        );
      } finally {
        run.child.kill('SIGINT');
        await run.exit;
      }
      assert.deepEqual(
        [...endpoint.received].sort((a, b) => a - b),
        range(1, 200).filter((id) => id !== 77),
      );
      assert.ok(endpoint.refusals() <= Math.ceil(Math.log2(100)) + 1, `${endpoint.refusals()} refused attempts to isolate it in a batch of 100`);
      assert.match(run.stderr(), /handler "http": 1 message\(s\) of batch \d+ dead-lettered \(.*400.*\); 1 in .*receiver\.channel-1001\.dead-letters\.ndjson/);

      const file = join(dir, 'receiver.channel-1001.dead-letters.ndjson');
      const [record] = (await readFile(file, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { handler: string; error: string; message: FlespiMessage });
      assert.equal(record!.handler, 'http');
      assert.equal(record!.message[ID], 77);
      assert.match(record!.error, /400/);

      const listed = await runCli(['dead-letters', config]);
      assert.equal(listed.status, 0, listed.stderr);
      assert.deepEqual(
        listed.stdout
          .trim()
          .split('\n')
          .map((line) => (JSON.parse(line) as { message: FlespiMessage }).message[ID]),
        [77],
      );
      assert.match(listed.stderr, /http: 1; send them again with --resend/);

      const early = await runCli(['dead-letters', config, '--resend']);
      assert.equal(early.status, 1, 'still refused: it stays');
      assert.match(early.stderr, /http: 0 sent again, 1 still in/);

      endpoint.fixed = true;
      const resent = await runCli(['dead-letters', config, '--resend']);
      assert.equal(resent.status, 0, resent.stderr);
      assert.match(resent.stderr, /http: 1 sent again, 0 still in/);
      assert.ok(endpoint.received.includes(77));
      assert.equal((await readFile(file, 'utf8')).trim(), '');
    } finally {
      await endpoint.close();
      await sandbox.stop();
      await delay(0);
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test('CLI: dead-letters --resend refuses while a receiver runs on the same checkpoint, and --handler must name a handler', { timeout: 60_000 }, async () => {
  const sandbox = await quietSandbox();
  const dir = await mkdtemp(join(tmpdir(), 'poison-cli-'));
  try {
    const config = join(dir, 'receiver.json');
    await writeFile(
      config,
      JSON.stringify({ flespi: { baseUrl: sandbox.restUrl }, channel: CHANNEL, source: { type: 'rest', timeout: 1 }, handlers: [{ type: 'stdout' }] }),
    );
    const wrong = await runCli(['dead-letters', config, '--handler', 'nope']);
    assert.equal(wrong.status, 2);
    assert.match(wrong.stderr, /no handler named "nope" in .*receiver\.json: its handlers are stdout/);
    const run = await startCli(['run', config], { env: { FLESPI_TOKEN: sandbox.token } });
    try {
      await waitUntil(
        () => /receiving channel/.test(run.stderr()),
        () => `run did not start: ${run.stderr()}`,
      );
      const refused = await runCli(['dead-letters', config, '--resend']);
      assert.equal(refused.status, 2);
      assert.match(refused.stderr, /wait until it stops/);
    } finally {
      run.child.kill('SIGINT');
      await run.exit;
    }
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
