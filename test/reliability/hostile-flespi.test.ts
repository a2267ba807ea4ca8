// Issue 11, "upstream guards" and "CLI hygiene": the real CLI (`flespi-receiver run` / `channels`, its
// own process) against a flespi that answers like a broken or hostile server (test/support/fakeFlespi.ts,
// real HTTP): an absurd Retry-After, an answer that drips forever, an answer of 700 MB, escape sequences
// in reasons, error pages and parameter names, and a URL with user:password in it.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WialonTestReceiver } from '../support/wialonReceiver';
import { startFakeFlespi, type FakeFlespi } from '../support/fakeFlespi';
import { delay, freePort, newToken, runCli, startCli, waitUntil, type CliProcess } from './support';

const CHANNEL = 7;
const MESSAGES = `/gw/channels/${CHANNEL}/messages`;
const TIMEOUT = { timeout: 90_000 };
/** What a terminal acts on: C0 but tab and newline, DEL, C1. */
// eslint-disable-next-line no-control-regex -- control characters are what the tests look for
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
/** An OSC that retitles the terminal, a clear screen, and the 8-bit CSI. */
const ESCAPES = '\u001b]0;pwned\u0007\u001b[2J\u009b31m';

async function hostile(t: TestContext, host?: string): Promise<FakeFlespi> {
  const server = await startFakeFlespi(host);
  t.after(() => server.close());
  return server;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hostile-flespi-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a `run` config reading CHANNEL from `baseUrl`; `extra` is merged in at the top level. */
async function config(dir: string, baseUrl: string, extra: Record<string, unknown> = {}): Promise<string> {
  const file = join(dir, 'receiver.json');
  const flespi = { baseUrl, ...((extra.flespi as object | undefined) ?? {}) };
  const body = { channel: CHANNEL, source: { type: 'rest', timeout: 1 }, handlers: [{ type: 'stdout' }], ...extra, flespi };
  await writeFile(file, JSON.stringify(body, null, 2));
  return file;
}

async function run(t: TestContext, file: string, env: NodeJS.ProcessEnv = { FLESPI_TOKEN: newToken() }): Promise<CliProcess> {
  const cli = await startCli(['run', file], { env });
  t.after(async () => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGKILL');
      await cli.exit;
    }
  });
  return cli;
}

async function stop(cli: CliProcess): Promise<number | null> {
  cli.child.kill('SIGTERM');
  return cli.exit;
}

/** Peak resident memory of a process (VmHWM), in MB, read before it exits. */
async function peakRssMb(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb === undefined ? undefined : Math.round(Number(kb) / 1024);
  } catch {
    return undefined;
  }
}

/** An address of this machine that is not loopback, where one exists. */
function externalIPv4(): string | undefined {
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) if (entry.family === 'IPv4' && !entry.internal) return entry.address;
  }
  return undefined;
}

// ---- case 2: Retry-After -----------------------------------------------------------------------

test('case 2: a 429 with Retry-After: 3000000 is waited out for 10 minutes (clamped), not turned into a 1 ms poll loop', TIMEOUT, async (t) => {
  const server = (await hostile(t)).channel(CHANNEL);
  server.on('GET', MESSAGES, { status: 429, headers: { 'Retry-After': '3000000' }, body: { errors: [{ code: 429, reason: 'too many requests' }] } });
  const cli = await run(t, await config(await tempDir(t), server.url));

  await waitUntil(
    () => /rate limit/.test(cli.stderr()),
    () => `no rate-limit warning; stderr: ${cli.stderr()}`,
  );
  await delay(3000); // the unclamped delay overflowed to 1 ms: about 650 polls in this time
  const polls = server.requestsTo('GET', MESSAGES).length;
  t.diagnostic(`polls in the 3 s after the first 429: ${polls}`);
  assert.equal(polls, 1, 'one poll, then a wait of 600 s');
  assert.match(cli.stderr(), /wait 600 s and retry.*; retrying in 600\.0 s/);
  assert.equal(await stop(cli), 0, `a stop during the wait ends the run at once; stderr: ${cli.stderr()}`);
});

// ---- case 4: deadline and size cap -------------------------------------------------------------

test('case 4: a poll answered one byte every 500 ms fails after its deadline (1 s poll + flespi.timeoutMs 2 s) and is retried', TIMEOUT, async (t) => {
  const server = (await hostile(t)).channel(CHANNEL);
  server.on('GET', MESSAGES, { body: '{"result":[', drip: { everyMs: 500, endless: true } });
  const cli = await run(t, await config(await tempDir(t), server.url, { flespi: { timeoutMs: 2000 } }));

  await waitUntil(
    () => server.requestsTo('GET', MESSAGES).length >= 2,
    () => `the dripping poll was never given up; stderr: ${cli.stderr()}`,
    30_000,
  );
  const [first] = server.requestsTo('GET', MESSAGES);
  t.diagnostic(`the first poll was sent ${first!.bytesSent} bytes before the CLI gave up`);
  assert.ok(first!.clientGaveUp, 'the CLI closed the dripping answer');
  assert.match(
    cli.stderr(),
    /warn: no answer from http:\/\/127\.0\.0\.1:\d+ within 3 s \(the long-poll wait plus 2 s; GET channel 7, the whole answer\): .*; retrying in /,
  );
  assert.equal(await stop(cli), 0);
});

test('case 4: a 700 MB answer to a poll is dropped once past the cap (limit_count 1000 × 64 KiB) and retried; memory stays bounded', TIMEOUT, async (t) => {
  const server = (await hostile(t)).channel(CHANNEL);
  server.on('GET', MESSAGES, { hugeBytes: 700 * 1024 * 1024 });
  const cli = await run(t, await config(await tempDir(t), server.url));

  await waitUntil(
    () => /larger than/.test(cli.stderr()),
    () => `no size warning; stderr: ${cli.stderr().slice(0, 2000)}`,
    60_000,
  );
  const peak = await peakRssMb(cli.child.pid!);
  const [first] = server.requestsTo('GET', MESSAGES);
  t.diagnostic(`sent ${Math.round(first!.bytesSent / 2 ** 20)} MiB of the 700 MiB answer before the CLI dropped it; CLI peak RSS ${peak ?? '?'} MB`);
  assert.match(
    cli.stderr(),
    /warn: the answer to GET channel 7 at .* is larger than 62\.5 MiB \(limit_count 1000 × 64 KiB per message; set limitSize if your messages are larger\): it was dropped while arriving.*; retrying in /,
  );
  assert.ok(first!.clientGaveUp, 'the CLI closed the connection');
  assert.ok(first!.bytesSent < 200 * 2 ** 20, `the CLI stopped reading near the cap, not after ${first!.bytesSent} bytes`);
  if (peak !== undefined) assert.ok(peak < 400, `peak RSS ${peak} MB (805 MB before the cap)`);
  assert.equal(await stop(cli), 0);
});

// ---- case 7: terminal injection ----------------------------------------------------------------

test('case 7: escape sequences in a server reason, an error page, a parameter name and a sink answer reach stderr escaped, never raw', TIMEOUT, async (t) => {
  const server = (await hostile(t)).channel(CHANNEL);
  const param = `${ESCAPES}param`;
  server.on(
    'GET',
    MESSAGES,
    { status: 500, body: { errors: [{ code: 500, reason: `down ${ESCAPES}` }] } },
    { status: 200, headers: { 'content-type': 'text/html' }, body: `<html>${ESCAPES}</html>` },
    { body: { result: [{ ident: 'dev1', timestamp: 1_700_000_000, 'test.seq': 1, [param]: { nested: true } }], next_key: 2 } },
    { body: { result: [], next_key: 2 }, delayMs: 300 },
  );
  const wialon = new WialonTestReceiver();
  const wialonPort = await wialon.listen(0);
  t.after(() => wialon.close());
  let posts = 0;
  const sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      posts++;
      if (posts === 1) res.writeHead(503, { 'content-type': 'text/plain' }).end(`busy ${ESCAPES}`);
      else res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((done) => sink.listen(0, '127.0.0.1', done));
  t.after(() => new Promise<void>((done) => sink.close(() => done())));
  const sinkPort = (sink.address() as { port: number }).port;

  const file = await config(await tempDir(t), server.url, {
    handlers: [
      { type: 'wialon', host: '127.0.0.1', port: wialonPort },
      { type: 'http', url: `http://127.0.0.1:${sinkPort}/in` },
    ],
    receiver: { retry: { initialMs: 100, maxMs: 200 } },
  });
  const cli = await run(t, file);
  await waitUntil(
    () => posts >= 2 && wialon.received.length >= 1 && /param/.test(cli.stderr()) && /<html>/.test(cli.stderr()),
    () => `not every hostile text came through yet; stderr: ${JSON.stringify(cli.stderr())}`,
  );
  assert.equal(await stop(cli), 0);
  const stderr = cli.stderr();
  t.diagnostic(stderr);
  assert.doesNotMatch(stderr, RAW_CONTROL, 'no control character reaches the terminal');
  const visible = /\\x1b\]0;pwned\\x07\\x1b\[2J\\x9b31m/;
  for (const from of [/down /, /<html>/, /param"/, /busy /]) {
    const line = stderr.split('\n').find((l) => from.test(l));
    assert.ok(line, `a line for ${from}`);
    assert.match(line, visible, `the escapes show as text in: ${line}`);
  }
});

test('case 7: the one-line error the CLI exits with, and the channels table, escape what the server said', TIMEOUT, async (t) => {
  const server = await hostile(t);
  server.on('GET', `/gw/channels/${CHANNEL}`, { status: 401, body: { errors: [{ code: 401, reason: `bad token ${ESCAPES}` }] } });
  server.on('GET', '/gw/channels/all', { body: { result: [{ id: 1, name: `evil${ESCAPES}`, protocol_name: `p${ESCAPES}` }] } });
  const failed = await runCli(['run', await config(await tempDir(t), server.url)], { env: { FLESPI_TOKEN: newToken() } });
  assert.equal(failed.status, 1, failed.stderr);
  assert.match(failed.stderr, /^flespi-receiver: flespi rejected the token \(401 Unauthorized: bad token \\x1b\]0;pwned\\x07\\x1b\[2J\\x9b31m\)/);
  assert.doesNotMatch(failed.stderr, RAW_CONTROL);

  const listed = await runCli(['channels', '--base-url', server.url], { env: { FLESPI_TOKEN: newToken() } });
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, /evil\\x1b\]0;pwned\\x07\\x1b\[2J\\x9b31m/);
  assert.doesNotMatch(listed.stdout, RAW_CONTROL);
});

// ---- case 8: secrets ---------------------------------------------------------------------------

test('case 8: a token file other users can read gets one warning; a 600 one none', TIMEOUT, async (t) => {
  const server = (await hostile(t)).channel(CHANNEL);
  server.on('GET', MESSAGES, { body: { result: [], next_key: 1 }, delayMs: 200 });
  const dir = await tempDir(t);
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${newToken()}\n`);
  const file = await config(dir, server.url, { flespi: { tokenFile } });

  for (const [mode, warned] of [
    [0o644, true],
    [0o600, false],
  ] as const) {
    await chmod(tokenFile, mode);
    const cli = await run(t, file, {});
    await waitUntil(
      () => /receiving channel 7/.test(cli.stderr()),
      () => `the run did not start; stderr: ${cli.stderr()}`,
    );
    assert.equal(await stop(cli), 0);
    const warnings = cli
      .stderr()
      .split('\n')
      .filter((l) => /tokenFile .* can be read by other users/.test(l));
    if (warned) assert.deepEqual(warnings, [`warn: tokenFile ${tokenFile} can be read by other users (mode 644): restrict it with chmod 600 ${tokenFile}`]);
    else assert.deepEqual(warnings, [], `mode 600: ${cli.stderr()}`);
  }
});

test('case 8: the token sent over http:// to another machine gets a warning (run and channels); loopback and https do not', TIMEOUT, async (t) => {
  const address = externalIPv4();
  if (!address) return t.skip('this machine has no non-loopback IPv4 address');
  const server = (await hostile(t, '0.0.0.0')).channel(CHANNEL);
  server.on('GET', MESSAGES, { body: { result: [], next_key: 1 }, delayMs: 200 });
  const remote = `http://${address}:${server.listeningPort}`;
  const dir = await tempDir(t);

  const cli = await run(t, await config(dir, remote));
  await waitUntil(
    () => /receiving channel 7/.test(cli.stderr()),
    () => `the run did not start; stderr: ${cli.stderr()}`,
  );
  assert.equal(await stop(cli), 0);
  assert.match(
    cli.stderr(),
    new RegExp(
      `warn: the flespi token is sent unencrypted to http://${address.replace(/\./g, '\\.')}:\\d+: anyone on the network path can read it; use https://`,
    ),
  );

  const listed = await runCli(['channels', '--base-url', remote], { env: { FLESPI_TOKEN: newToken() } });
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stderr, /warn: the flespi token is sent unencrypted/);

  const local = await runCli(['channels', '--base-url', server.url], { env: { FLESPI_TOKEN: newToken() } });
  assert.equal(local.status, 0, local.stderr);
  assert.doesNotMatch(local.stderr, /unencrypted/, 'a loopback server (a sandbox) is fine');

  // The MQTT source logs in with the token too.
  const mqttConfig = await config(dir, remote, { source: { type: 'mqtt', url: `mqtt://${address}:${await freePort()}` } });
  const mqtt = await run(t, mqttConfig);
  await waitUntil(
    () => /MQTT source logs in/.test(mqtt.stderr()),
    () => `no MQTT warning; stderr: ${mqtt.stderr()}`,
  );
  await stop(mqtt);
});

test('case 8: user:password in the base URL never shows, in the status lines nor in errors', TIMEOUT, async (t) => {
  const server = (await hostile(t)).channel(CHANNEL);
  server.on('GET', MESSAGES, { status: 503, body: { errors: [{ code: 503, reason: 'maintenance' }] } });
  const withPassword = server.url.replace('http://', 'http://alice:s3cretpass@');
  const cli = await run(t, await config(await tempDir(t), withPassword, { receiver: { retry: { initialMs: 100, maxMs: 200 } } }));
  await waitUntil(
    () => /503/.test(cli.stderr()),
    () => `no 503 warning; stderr: ${cli.stderr()}`,
  );
  assert.equal(await stop(cli), 0);
  assert.doesNotMatch(cli.stderr(), /s3cretpass|alice/);
  assert.match(cli.stderr(), /receiving channel 7 "channel 7" from http:\/\/\*\*\*@127\.0\.0\.1:\d+/);
  assert.match(cli.stderr(), /flespi server error \(503 Service Unavailable: maintenance\) on GET channel 7 at http:\/\/\*\*\*@127\.0\.0\.1/);

  const unreachable = `http://alice:s3cretpass@127.0.0.1:${await freePort()}`;
  for (const args of [
    ['channels', '--base-url', unreachable],
    ['channels', '--base-url', 'ftp://alice:s3cretpass@example.com'],
  ]) {
    const r = await runCli(args, { env: { FLESPI_TOKEN: newToken() } });
    assert.notEqual(r.status, 0);
    assert.doesNotMatch(r.stderr, /s3cretpass|alice/, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /\*\*\*@/);
  }
});
