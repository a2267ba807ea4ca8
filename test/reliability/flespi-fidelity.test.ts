// Issue 12 (REST side) through the real CLI (`run` and `tail`, their own processes): a flespi that
// refuses key-based reading (the sandbox started with keyReading: false), a flespi that blocks the
// account for a while (403), and a channel buffer filling up with `delete` off.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/index';
import { bufferAnswer, startFakeFlespi } from '../support/fakeFlespi';
import { numbered, runCli, startCli, waitUntil, type CliProcess } from './support';

const TIMEOUT = { timeout: 90_000 };
const CHANNEL = 1001;

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flespi-fidelity-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function sandboxWith(t: TestContext, options: SandboxOptions): Promise<Sandbox> {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1, ...options });
  t.after(() => sandbox.stop());
  return sandbox;
}

async function config(dir: string, baseUrl: string, source: Record<string, unknown> = {}, channel = CHANNEL): Promise<string> {
  const file = join(dir, 'receiver.json');
  await writeFile(
    file,
    JSON.stringify({
      flespi: { baseUrl },
      channel,
      source: { type: 'rest', timeout: 1, ...source },
      handlers: [{ type: 'stdout' }],
      checkpoint: join(dir, 'receiver.checkpoint.json'),
    }),
  );
  return file;
}

async function run(t: TestContext, file: string, token: string): Promise<CliProcess> {
  const cli = await startCli(['run', file], { env: { FLESPI_TOKEN: token } });
  t.after(async () => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.exit;
    }
  });
  return cli;
}

/** The `test.seq` of every message the CLI printed. */
function printed(cli: CliProcess): number[] {
  return cli
    .stdout()
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as Record<string, number>)['test.seq']!);
}

function range(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

test(
  'key-based reading refused (400 code 2): `run` says so once, reads by server.timestamp, delivers every message once across equal stamps and a restart; the checkpoint holds the time',
  TIMEOUT,
  async (t) => {
    const sandbox = await sandboxWith(t, { keyReading: false });
    const dir = await tempDir(t);
    const file = await config(dir, sandbox.restUrl, { limitCount: 4 });
    // 1..6 with their own stamps, then 7..16 all stamped alike (several messages parsed from one packet), then 17..20.
    const stamp = Date.now() / 1000 - 60;
    sandbox.inject(
      CHANNEL,
      numbered(1, 6).map((m, i) => ({ ...m, 'server.timestamp': stamp + i })),
    );
    sandbox.inject(
      CHANNEL,
      numbered(7, 10).map((m) => ({ ...m, 'server.timestamp': stamp + 10 })),
    );
    sandbox.inject(
      CHANNEL,
      numbered(17, 4).map((m, i) => ({ ...m, 'server.timestamp': stamp + 11 + i })),
    );

    const first = await run(t, file, sandbox.token);
    await waitUntil(
      () => printed(first).length >= 20,
      () => `printed ${printed(first).join(',')}; stderr: ${first.stderr()}`,
    );
    // Stop in the middle of an equal-stamp group next time: 21..23 share a stamp, the run stops after them, 24..25 share it too.
    sandbox.inject(
      CHANNEL,
      numbered(21, 3).map((m) => ({ ...m, 'server.timestamp': stamp + 20 })),
    );
    await waitUntil(
      () => printed(first).length >= 23,
      () => `printed ${printed(first).join(',')}`,
    );
    first.child.kill('SIGTERM');
    assert.equal(await first.exit, 0, first.stderr());
    assert.deepEqual(printed(first), range(1, 23), 'every message once, in order');
    const warnings = first
      .stderr()
      .split('\n')
      .filter((line) => /refused reading channel 1001 by key/.test(line));
    assert.equal(warnings.length, 1, `said once: ${first.stderr()}`);
    assert.match(warnings[0]!, /unknown parameter "curr_key".*reading it by time \(server\.timestamp\) from now on/);
    const checkpoint = JSON.parse(await readFile(join(dir, 'receiver.checkpoint.json'), 'utf8')) as { currKey: number; time: number; seen: string[] };
    assert.equal(checkpoint.time, stamp + 20);
    assert.equal(checkpoint.seen.length, 3, 'the three messages handed out at that stamp');

    sandbox.inject(
      CHANNEL,
      numbered(24, 2).map((m) => ({ ...m, 'server.timestamp': stamp + 20 })),
    );
    sandbox.inject(
      CHANNEL,
      numbered(26, 1).map((m) => ({ ...m, 'server.timestamp': stamp + 21 })),
    );
    const second = await run(t, file, sandbox.token);
    await waitUntil(
      () => printed(second).length >= 3,
      () => `printed ${printed(second).join(',')}; stderr: ${second.stderr()}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 2500)); // one more idle read: nothing may come twice
    second.child.kill('SIGTERM');
    assert.equal(await second.exit, 0, second.stderr());
    assert.deepEqual(printed(second), [24, 25, 26], 'the restart resumes inside the equal-stamp group: no message again, none lost');
  },
);

test('a checkpoint file written before reading by time (only currKey) still loads, and the next save adds the time position', TIMEOUT, async (t) => {
  const sandbox = await sandboxWith(t, {});
  const dir = await tempDir(t);
  const file = await config(dir, sandbox.restUrl);
  sandbox.inject(CHANNEL, numbered(1, 5));
  await writeFile(join(dir, 'receiver.checkpoint.json'), JSON.stringify({ currKey: 4, savedAt: '2025-01-01T00:00:00.000Z' }));
  const cli = await run(t, file, sandbox.token);
  await waitUntil(
    () => printed(cli).length >= 2,
    () => `printed ${printed(cli).join(',')}; stderr: ${cli.stderr()}`,
  );
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exit, 0, cli.stderr());
  assert.deepEqual(printed(cli), [4, 5]);
  const saved = JSON.parse(await readFile(join(dir, 'receiver.checkpoint.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(saved.currKey, 6);
  assert.equal(typeof saved.time, 'number');
});

test(
  'a 403 in the middle of `run` (the account blocked for a while) is waited out as "blocked by flespi: reason" and delivery goes on; `tail` stops with it; a 401 stops both',
  TIMEOUT,
  async (t) => {
    const server = await startFakeFlespi();
    t.after(() => server.close());
    server.channel(7, 'cars');
    const messages = numbered(1, 3);
    const blocked = { status: 403, body: { errors: [{ code: 3, reason: 'token or customer is blocked' }] } };
    server.on('GET', '/gw/channels/7/messages', blocked, (r) => bufferAnswer(messages, r, { idleMs: 200 }));
    const dir = await tempDir(t);
    const token = 'f'.repeat(64);
    const cli = await run(t, await config(dir, server.url, {}, 7), token);
    await waitUntil(
      () => printed(cli).length >= 3,
      () => `printed ${printed(cli).join(',')}; stderr: ${cli.stderr()}`,
      30_000,
    );
    assert.equal(cli.child.exitCode, null, 'still running');
    assert.match(cli.stderr(), /blocked by flespi: token or customer is blocked; retrying in \d/);
    assert.match(cli.stderr(), /flespi lets the receiver through again/);
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exit, 0, cli.stderr());
    assert.deepEqual(printed(cli), [1, 2, 3]);

    server.on('GET', '/gw/channels/7/messages', blocked);
    const tail = await runCli(['tail', '7', '--base-url', server.url], { env: { FLESPI_TOKEN: token } });
    assert.equal(tail.status, 1, tail.stderr);
    assert.match(tail.stderr, /flespi refused access \(403 Forbidden: token or customer is blocked\)/);

    server.on('GET', '/gw/channels/7/messages', { status: 401, body: { errors: [{ code: 1, reason: 'invalid or expired token' }] } });
    const unauthorized = await run(t, await config(dir, server.url, {}, 7), token);
    assert.equal(await unauthorized.exit, 1, unauthorized.stderr());
    assert.match(unauthorized.stderr(), /flespi rejected the token \(401 Unauthorized/);
  },
);

test(
  'with delete off, `run` warns when the channel buffer nears its limit; the sandbox then blocks the full channel (REST `blocked` 4) instead of dropping the oldest',
  TIMEOUT,
  async (t) => {
    const limit = 64 * 1024;
    const sandbox = await sandboxWith(t, { channelBufferBytes: limit });
    const dir = await tempDir(t);
    const file = await config(dir, sandbox.restUrl, { bufferLimitMB: limit / (1024 * 1024) });
    const pad = 'x'.repeat(1000);
    let seq = 1;
    while ((sandbox.store.channel(CHANNEL).item.messages_size as number) * 1024 < limit * 0.85)
      sandbox.inject(
        CHANNEL,
        numbered(seq++, 1).map((m) => ({ ...m, pad })),
      );
    const cli = await run(t, file, sandbox.token);
    await waitUntil(
      () => /buffer holds/.test(cli.stderr()),
      () => `stderr: ${cli.stderr()}`,
    );
    assert.match(
      cli.stderr(),
      /channel 1001's buffer holds 0\.\d MB, (8\d|9\d)% of 0\.1 MB: with "delete" off only messages_ttl empties it, and flespi blocks a channel whose buffer is full; turn on "delete"/,
    );
    await waitUntil(
      () => printed(cli).length >= seq - 1,
      () => `printed ${printed(cli).length} of ${seq - 1}`,
    );
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exit, 0, cli.stderr());

    for (let i = 0; i < 20; i++)
      sandbox.inject(
        CHANNEL,
        numbered(seq++, 1).map((m) => ({ ...m, pad })),
      );
    const response = await fetch(`${sandbox.restUrl}/gw/channels/${CHANNEL}?fields=blocked,messages_size`, {
      headers: { Authorization: `FlespiToken ${sandbox.token}` },
    });
    const [item] = ((await response.json()) as { result: { blocked: number; messages_size: number }[] }).result;
    assert.equal(item?.blocked, 4, 'the full channel is blocked');
    const oldest = await fetch(`${sandbox.restUrl}/gw/channels/${CHANNEL}/messages?data=${encodeURIComponent(JSON.stringify({ count: 1 }))}`, {
      headers: { Authorization: `FlespiToken ${sandbox.token}` },
    });
    assert.equal(((await oldest.json()) as { result: Record<string, number>[] }).result[0]?.['test.seq'], 1, 'the oldest message is still there');
  },
);
