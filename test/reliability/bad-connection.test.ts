// Bad connection settings get one clear, actionable error and crash nothing: through the CLI
// (`run <config>` and `channels`: exit code ≠ 0, exactly one stderr line, no stack trace) and
// through the library (the Receiver stops with the FlespiError, or, for errors that may pass by
// themselves, keeps retrying and reports each one). The token never appears in any output or error.
//
// flespi answers a wrong and an expired token alike (401), and the sandbox has no expiring tokens,
// so "wrong or expired" is one case. Blocked tokens get 403.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { FlespiError, type FlespiErrorKind } from '../../src/core/errors';
import { FlespiClient } from '../../src/core/flespi/client';
import { Receiver, type SourceErrorEvent } from '../../src/core/receiver/receiver';
import { RestSource } from '../../src/core/sources/rest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { CHANNEL, HttpSink, Ledger, assertOneLineError, freePort, newToken, runCli, waitUntil } from './support';

const TIMEOUT = { timeout: 60_000 };
const BLOCKED = newToken();
const WRONG = newToken();

let sandbox: Sandbox;
let dir: string;
let notFlespi: http.Server;
/** A web server that is not flespi: HTML pages with the status in the first path segment. */
let notFlespiUrl: (status: number) => string;
let sink: HttpSink;

before(async () => {
  sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  sandbox.addToken(BLOCKED, { blocked: true });
  dir = await mkdtemp(join(tmpdir(), 'reliability-connection-'));
  notFlespi = http.createServer((req, res) => {
    const status = Number(req.url?.split('/')[1]) || 200;
    res.writeHead(status, { 'content-type': 'text/html' }).end('<!doctype html><html><head><title>Welcome</title></head><body>It works!</body></html>');
  });
  await new Promise<void>((done) => notFlespi.listen(0, '127.0.0.1', done));
  const port = (notFlespi.address() as { port: number }).port;
  notFlespiUrl = (status) => `http://127.0.0.1:${port}/${status}`;
  sink = await new HttpSink(new Ledger(['http']), 'http').listen();
});

after(async () => {
  await sandbox?.stop();
  notFlespi?.closeAllConnections();
  await new Promise<void>((done) => (notFlespi ? notFlespi.close(() => done()) : done()));
  await sink?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function config(name: string, baseUrl: string, channel = CHANNEL): Promise<string> {
  const file = join(dir, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({ flespi: { baseUrl }, channel, handlers: [{ type: 'http', url: sink.url }], checkpoint: join(dir, `${name}.checkpoint.json`) }),
  );
  return file;
}

/** Runs `run <config>` and `channels` with `token`; both must fail with one line matching `pattern`. */
async function assertCliRefuses(
  name: string,
  baseUrl: string,
  token: string,
  pattern: RegExp,
  channel = CHANNEL,
): Promise<{ line: string; status: number | null }[]> {
  const env = { FLESPI_TOKEN: token };
  const answers: { line: string; status: number | null }[] = [];
  for (const args of [
    ['run', await config(name, baseUrl, channel)],
    ['channels', '--base-url', baseUrl],
  ]) {
    if (args[0] === 'channels' && channel !== CHANNEL) continue; // `channels` does not name a channel
    const result = await runCli(args, { env, cwd: dir });
    answers.push({ line: assertOneLineError(result, pattern), status: result.status });
    assert.ok(!result.stderr.includes(token) && !result.stdout.includes(token), 'the token is never printed');
  }
  return answers;
}

/** A receiver on `baseUrl`; resolves with how it ended up: stopped by an error, or retrying with reported errors. */
async function receiverOutcome(
  baseUrl: string,
  token: string,
  channel = CHANNEL,
  onForbidden?: 'retry' | 'stop',
): Promise<{ fatal?: Error; retried: SourceErrorEvent[]; state: string; blocked?: string }> {
  const receiver = new Receiver({
    source: new RestSource({ client: new FlespiClient({ token, baseUrl, timeoutMs: 2000 }), channelId: channel, timeout: 1 }),
    handlers: [],
    retry: { initialMs: 20, maxMs: 100 },
    blockedRetry: { initialMs: 20, maxMs: 100 },
    onForbidden,
  });
  const retried: SourceErrorEvent[] = [];
  receiver.on('source-error', (e) => {
    if (!e.fatal) retried.push(e);
  });
  const ended = receiver.done.then(
    () => undefined,
    (error: Error) => error,
  );
  try {
    await receiver.start(); // resolves once running: the source is first used by the fetch loop
    await waitUntil(
      () => receiver.state === 'failed' || retried.length >= 3,
      () => `state ${receiver.state}`,
    );
    const state = receiver.state;
    const blocked = receiver.stats().blocked;
    await receiver.stop();
    return { fatal: await ended, retried, state, blocked };
  } finally {
    await receiver.stop(); // also when it did not get there: a receiver left retrying keeps the test process alive
  }
}

function assertFlespiError(error: unknown, kind: FlespiErrorKind, pattern: RegExp, token: string): void {
  assert.ok(error instanceof FlespiError, `a FlespiError, got ${inspect(error)}`);
  assert.equal(error.kind, kind);
  assert.match(error.message, pattern);
  assert.ok(!inspect(error, { depth: 10 }).includes(token), 'the error (with its causes) does not carry the token');
}

test('wrong or expired token: CLI exits 1 with one line saying to check the token; the Receiver stops with the auth error', TIMEOUT, async () => {
  await assertCliRefuses(
    'wrong-token',
    sandbox.restUrl,
    WRONG,
    /flespi rejected the token \(401 Unauthorized\b.*check the token at https:\/\/flespi\.io\/#\/panel\/tokens/,
  );
  const { fatal, state } = await receiverOutcome(sandbox.restUrl, WRONG);
  assert.equal(state, 'failed');
  assertFlespiError(fatal, 'auth', /flespi rejected the token/, WRONG);
});

test(
  'blocked token: the CLI (checking before it starts) says in one line the token or account is blocked; a Receiver waits the block out as "blocked by flespi", or stops with onForbidden "stop"',
  TIMEOUT,
  async () => {
    await assertCliRefuses('blocked-token', sandbox.restUrl, BLOCKED, /flespi refused access \(403 Forbidden\b.*the token or account is blocked/);
    const waiting = await receiverOutcome(sandbox.restUrl, BLOCKED);
    assert.equal(waiting.fatal, undefined);
    assert.equal(waiting.state, 'retrying');
    assert.equal(waiting.blocked, 'blocked by flespi: token or customer is blocked');
    for (const event of waiting.retried) assertFlespiError(event.error, 'forbidden', /token or account is blocked/, BLOCKED);
    const { fatal, state } = await receiverOutcome(sandbox.restUrl, BLOCKED, CHANNEL, 'stop');
    assert.equal(state, 'failed');
    assertFlespiError(fatal, 'forbidden', /token or account is blocked/, BLOCKED);
  },
);

test('unknown channel: one line naming the channel and how to list channels (exit 2); the Receiver stops with not-found', TIMEOUT, async () => {
  const [run] = await assertCliRefuses(
    'unknown-channel',
    sandbox.restUrl,
    sandbox.token,
    /channel 424242 not found at http:\/\/127\.0\.0\.1:\d+: list the channels with `flespi-receiver channels`/,
    424242,
  );
  assert.equal(run!.status, 2, 'a mistake in the config file exits with 2');
  const { fatal, state } = await receiverOutcome(sandbox.restUrl, sandbox.token, 424242);
  assert.equal(state, 'failed');
  assertFlespiError(fatal, 'not-found', /channel 424242 not found \(404 Not Found\b.*list channels with `flespi-receiver channels`/, sandbox.token);
});

test('unreachable host: one line saying it cannot reach the URL; the Receiver keeps retrying and reports the same error', TIMEOUT, async () => {
  const closed = `http://127.0.0.1:${await freePort()}`;
  await assertCliRefuses(
    'unreachable',
    closed,
    sandbox.token,
    /cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\): check the base URL \/ region and your network/,
  );
  // Network errors may pass by themselves (flespi restarting, Wi-Fi coming back): the library retries them.
  const { fatal, retried, state } = await receiverOutcome(closed, sandbox.token);
  assert.equal(fatal, undefined);
  assert.equal(state, 'retrying');
  for (const event of retried) assertFlespiError(event.error, 'network', /cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/, sandbox.token);
});

test('wrong region (a web server that is not flespi, answering HTML 200): one line saying the base URL does not look like flespi', TIMEOUT, async () => {
  const url = notFlespiUrl(200);
  await assertCliRefuses(
    'not-flespi-200',
    url,
    sandbox.token,
    /instead of its JSON envelope \(HTTP 200\): check that the base URL points at the flespi REST API/,
  );
  const { fatal, retried, state } = await receiverOutcome(url, sandbox.token);
  assert.equal(fatal, undefined);
  assert.equal(state, 'retrying');
  for (const event of retried) assertFlespiError(event.error, 'malformed', /check that the base URL points at the flespi REST API/, sandbox.token);
});

// Was bug 2 in docs/reliability.md (fixed in fce3cf3): a 404 page read as "channel 1001 not found".
test(
  'wrong region (a web server that is not flespi, answering HTML 404): one line saying the base URL does not point at flespi, not "channel not found"; the Receiver stops with it',
  TIMEOUT,
  async () => {
    const url = notFlespiUrl(404);
    const says = /404 and a page that is not flespi's JSON: the base URL \(or region\) does not point at the flespi REST API/;
    await assertCliRefuses('not-flespi-404', url, sandbox.token, says);
    const { fatal, state } = await receiverOutcome(url, sandbox.token);
    assert.equal(state, 'failed');
    assertFlespiError(fatal, 'not-found', says, sandbox.token);
  },
);
