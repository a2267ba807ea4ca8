import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { FlespiClient } from '../../src/core/flespi/client';
import type { Sandbox } from '../../src/sandbox/index';
import { CHANNEL, numbered, quietSandbox, range } from '../receiver/helpers';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'dist/cli.js');
const TIMEOUT = { timeout: 60_000 };

let sandbox: Sandbox;
let dir: string;

before(async () => {
  const build = spawnSync(process.execPath, ['scripts/build.mjs', '--quiet'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(build.status, 0, `the build failed: ${build.stderr}`);
  sandbox = await quietSandbox();
  dir = await mkdtemp(join(tmpdir(), 'receiver-cli-'));
});

after(async () => {
  await sandbox?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The environment without any flespi token, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!('FLESPI_TOKEN' in extra)) delete env.FLESPI_TOKEN;
  return env;
}

interface Cli {
  child: ChildProcessWithoutNullStreams;
  /** Resolves with the next `count` stdout lines. */
  lines(count: number): Promise<string[]>;
  stderr(): string;
  exit: Promise<number | null>;
}

function startCli(args: string[], env: NodeJS.ProcessEnv): Cli {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const buffered: string[] = [];
  let waiter: (() => void) | undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    buffered.push(line);
    waiter?.();
  });
  const exit = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 50_000); // never outlive the test
  void exit.then(() => clearTimeout(killer));
  return {
    child,
    exit,
    stderr: () => stderr,
    async lines(count) {
      while (buffered.length < count) {
        const more = new Promise<void>((done) => (waiter = done));
        const exited = exit.then(() => {
          throw new Error(`the CLI exited before printing ${count} lines; stderr: ${stderr}`);
        });
        await Promise.race([more, exited]);
      }
      return buffered.splice(0, count);
    },
  };
}

/** Runs the CLI to completion (asynchronously: the sandbox it talks to lives in this process). */
async function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env, timeout: 30_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const status = await new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  return { status, stdout, stderr };
}

/** Asserts the one-line error the CLI prints for bad input. */
function assertOneLineError(r: { status: number | null; stderr: string }, code: number, pattern: RegExp): void {
  assert.equal(r.status, code, `exit code; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  assert.match(lines[0]!, /^flespi-receiver: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

test('no arguments and no token: tails the built-in sandbox as JSON lines; SIGINT stops it cleanly', TIMEOUT, async () => {
  const cli = startCli([], cleanEnv());
  const lines = await cli.lines(3);
  for (const line of lines) {
    const message = JSON.parse(line);
    assert.equal(message['channel.id'], 1001);
    assert.equal(typeof message.ident, 'string');
    assert.equal(typeof message['server.timestamp'], 'number');
  }
  assert.match(cli.stderr().split('\n')[0]!, /built-in flespi sandbox \(REST http:\/\/127\.0\.0\.1:\d+, MQTT mqtt:\/\/127\.0\.0\.1:\d+\)/);
  cli.child.kill('SIGINT');
  assert.equal(await cli.exit, 0);
});

test('run <config> delivers the channel to stdout and saves the checkpoint on SIGTERM', TIMEOUT, async () => {
  const first = sandbox.store.channel(CHANNEL).log.nextKey;
  sandbox.inject(CHANNEL, numbered(1, 25));
  const checkpoint = join(dir, 'state', 'run.checkpoint.json');
  const config = join(dir, 'run.json');
  await writeFile(
    config,
    JSON.stringify({
      flespi: { baseUrl: sandbox.restUrl },
      channel: CHANNEL,
      source: { timeout: 1, limitCount: 10, startKey: first },
      handlers: [{ type: 'stdout' }],
      checkpoint,
    }),
  );
  const cli = startCli(['run', config], cleanEnv({ FLESPI_TOKEN: sandbox.token }));
  const lines = await cli.lines(25);
  assert.deepEqual(
    lines.map((l) => JSON.parse(l)['test.seq']),
    range(1, 25),
  );
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exit, 0, cli.stderr());
  assert.equal(JSON.parse(await readFile(checkpoint, 'utf8')).currKey, first + 25);
  assert.match(cli.stderr(), /receiving channel 1001 "sandbox-teltonika" .* into stdout/);
});

test('bad config files exit 2 with one line naming the file and the field', TIMEOUT, async () => {
  const env = cleanEnv({ FLESPI_TOKEN: sandbox.token });
  const cases: [unknown, RegExp][] = [
    [{ channel: CHANNEL, handlers: [{ type: 'stdout' }], extra: 1 }, /bad\.json: unknown setting "extra"/],
    [{ handlers: [{ type: 'stdout' }] }, /bad\.json: "channel" is required/],
    [{ channel: CHANNEL, handlers: [{ type: 'stdout', pretty: 1 }] }, /bad\.json: handlers\[0\].*"pretty" must be true or false/],
  ];
  for (const [content, pattern] of cases) {
    await writeFile(join(dir, 'bad.json'), JSON.stringify(content));
    assertOneLineError(await runCli(['run', 'bad.json'], env), 2, pattern);
  }
  assertOneLineError(await runCli(['run', 'missing.json'], env), 2, /missing\.json: no such config file/);

  // A setting found wrong only when the handler starts (a missing certificate file, say) also ends the run.
  await writeFile(
    join(dir, 'NeedsCert.ts'),
    `import { ConfigError, Handler } from 'flespi-receiver';
export default class NeedsCert extends Handler {
  async start() { throw new ConfigError('certFile ./client.crt does not exist: download the certificate'); }
  async handle() {}
}
`,
  );
  await writeFile(
    join(dir, 'bad.json'),
    JSON.stringify({ flespi: { baseUrl: sandbox.restUrl }, channel: CHANNEL, handlers: [{ type: 'custom', file: './NeedsCert.ts' }] }),
  );
  assertOneLineError(await runCli(['run', 'bad.json'], env), 2, /certFile \.\/client\.crt does not exist/);
});

test('bad input exits non-zero with one clear line: flags, token, channel, server', TIMEOUT, async () => {
  assertOneLineError(await runCli(['--bogus'], cleanEnv()), 2, /Unknown option '--bogus'/);
  assertOneLineError(await runCli(['tail', '--rest-port', '1'], cleanEnv()), 2, /--rest-port is not an option of tail/);
  assertOneLineError(await runCli(['frobnicate'], cleanEnv()), 2, /unknown command "frobnicate"/);
  assertOneLineError(await runCli(['sandbox', '--rate', 'fast'], cleanEnv()), 2, /--rate must be a number/);
  assertOneLineError(await runCli(['tail', '--base-url', sandbox.restUrl], cleanEnv()), 2, /no flespi token for http:\/\/127\.0\.0\.1:\d+: set FLESPI_TOKEN/);
  assertOneLineError(
    await runCli(['tail', '999', '--base-url', sandbox.restUrl], cleanEnv({ FLESPI_TOKEN: sandbox.token })),
    2,
    /channel 999 not found .*flespi-receiver channels/,
  );
  assertOneLineError(await runCli(['tail', '--base-url', sandbox.restUrl], cleanEnv({ FLESPI_TOKEN: 'w'.repeat(64) })), 1, /flespi rejected the token/);
  const port = await closedPort();
  assertOneLineError(
    await runCli(['channels', '--base-url', `http://127.0.0.1:${port}`], cleanEnv({ FLESPI_TOKEN: sandbox.token })),
    1,
    /cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
  );
});

test('channels lists id, name and protocol', TIMEOUT, async () => {
  const r = await runCli(['channels', '--base-url', sandbox.restUrl], cleanEnv({ FLESPI_TOKEN: sandbox.token }));
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout
    .trim()
    .split('\n')
    .map((l) => l.split(/\s{2,}/));
  assert.deepEqual(rows, [
    ['ID', 'NAME', 'PROTOCOL'],
    ['1001', 'sandbox-teltonika', 'teltonika'],
    ['1002', 'sandbox-wialon-ips', 'wialon_ips'],
  ]);
});

test('sandbox prints its URLs and token, serves flespi clients, and stops on SIGINT', TIMEOUT, async () => {
  const cli = startCli(['sandbox', '--rate', '2', '--devices', '1'], cleanEnv());
  const [title, rest, mqtt, token] = await cli.lines(4);
  assert.match(title!, /flespi sandbox running/);
  const restUrl = /REST\s+(http:\/\/\S+)/.exec(rest!)?.[1];
  assert.match(mqtt!, /MQTT\s+mqtt:\/\/127\.0\.0\.1:\d+/);
  const tokenValue = /token\s+(\S+)/.exec(token!)?.[1];
  assert.ok(restUrl && tokenValue, `URL and token in: ${rest} / ${token}`);
  const { items } = await new FlespiClient({ token: tokenValue, baseUrl: restUrl }).channels('all', ['id', 'name']);
  assert.deepEqual(
    items.map((c) => c.id),
    [1001, 1002],
  );
  cli.child.kill('SIGINT');
  assert.equal(await cli.exit, 0);
});
