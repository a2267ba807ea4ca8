// Shared by the reliability tests and scripts/soak.ts: numbered messages, a ledger that counts
// every id each sink got, real sinks that record ids, the CLI as a child process (bundled once per
// test process), the sandbox as its own process that can be SIGKILLed and restarted, and an
// injector that feeds a sandbox over its control API.
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import http from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { build } from 'esbuild';
import mqtt from 'mqtt';
import { Handler, type HandlerContext } from '../../src/core/handler';
import type { FlespiMessage } from '../../src/core/message';
import type { Source } from '../../src/core/sources/source';
import { findBlock } from '../../src/core/wialon/codec';
import { WialonTestReceiver } from '../support/wialonReceiver';

export const ROOT = resolve(__dirname, '../..');
/** The message parameter that carries each test message's unique id. */
export const ID = 'test.seq';
export const CHANNEL = 1001;

// ---- messages and ids ---------------------------------------------------------------------------

/** Messages with ids `first`..`first+count-1`; `extra` adds parameters to each. */
export function numbered(first: number, count: number, extra: FlespiMessage = {}): FlespiMessage[] {
  return Array.from({ length: count }, (_, i) => ({ ident: 'reliability-device', [ID]: first + i, ...extra }));
}

export function idsOf(messages: readonly FlespiMessage[]): number[] {
  return messages.map((m) => m[ID]).filter((id): id is number => typeof id === 'number');
}

export function range(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

/** Counts how often each sink got each id. Nothing is deduplicated: duplicates are reported, not hidden. */
export class Ledger {
  private readonly sinks = new Map<string, Map<number, number>>();

  constructor(readonly sinkNames: readonly string[]) {
    for (const name of sinkNames) this.sinks.set(name, new Map());
  }

  add(sink: string, ids: Iterable<number>): void {
    const counts = this.sinks.get(sink);
    if (!counts) throw new Error(`unknown sink ${sink}`);
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  }

  /** How often the sink got `id`. */
  count(sink: string, id: number): number {
    return this.sinks.get(sink)?.get(id) ?? 0;
  }

  /** The ids the sink got so far. */
  ids(sink: string): number[] {
    return [...this.sinks.get(sink)!.keys()];
  }

  has(sink: string, id: number): boolean {
    return (this.sinks.get(sink)?.get(id) ?? 0) > 0;
  }

  /** Distinct ids the sink got. */
  distinct(sink: string): number {
    return this.sinks.get(sink)!.size;
  }

  /** Deliveries, duplicates included. */
  total(sink: string): number {
    let total = 0;
    for (const count of this.sinks.get(sink)!.values()) total += count;
    return total;
  }

  /** Deliveries beyond the first, summed over all ids. */
  duplicates(sink: string): number {
    let extra = 0;
    for (const count of this.sinks.get(sink)!.values()) extra += count - 1;
    return extra;
  }

  missing(sink: string, expected: Iterable<number>): number[] {
    const counts = this.sinks.get(sink)!;
    return [...expected].filter((id) => !counts.has(id));
  }

  /** True when every sink has every expected id. */
  /**
   * Waits up to `timeoutMs` until every expected id reached every sink, calling `sync` before each look
   * (e.g. to collect what a Wialon receiver decoded). Never throws: the assertions that follow say what is missing.
   */
  async waitForAll(expected: readonly number[], sync: () => void, timeoutMs?: number): Promise<void> {
    const arrived = () => {
      sync();
      return this.complete(expected);
    };
    await waitUntil(arrived, () => this.summary(expected), timeoutMs).catch(() => {});
  }

  complete(expected: readonly number[]): boolean {
    return this.sinkNames.every((sink) => expected.every((id) => this.has(sink, id)));
  }

  /** One line per sink: distinct ids, missing, duplicates. */
  summary(expected: readonly number[]): string {
    return this.sinkNames
      .map((sink) => {
        const missing = this.missing(sink, expected);
        const shown = missing.length > 0 ? ` (first missing: ${missing.slice(0, 10).join(', ')})` : '';
        return `${sink}: ${this.distinct(sink)} distinct ids, ${missing.length} of ${expected.length} missing${shown}, ${this.duplicates(sink)} duplicates`;
      })
      .join('; ');
  }

  /** Reports the counts as a test diagnostic and asserts that every sink got every expected id. */
  assertAllArrived(t: TestContext, expected: readonly number[]): void {
    t.diagnostic(this.summary(expected));
    for (const sink of this.sinkNames) {
      const missing = this.missing(sink, expected);
      assert.equal(missing.length, 0, `${sink} is missing ${missing.length} ids, e.g. ${missing.slice(0, 10).join(', ')}`);
    }
  }
}

/** `source`, recording the id of every message it hands out in a batch. */
export function watchedSource(source: Source, handedOut: Set<number>): Source {
  return {
    description: source.description,
    open: (checkpoint) => source.open(checkpoint),
    async next(signal) {
      const batch = await source.next(signal);
      for (const id of idsOf(batch.messages)) handedOut.add(id);
      return batch;
    },
    checkpointAfter: (batch) => source.checkpointAfter(batch),
    ack: (batch) => source.ack(batch),
    close: () => source.close(),
  };
}

// ---- waiting ------------------------------------------------------------------------------------

/** Polls `condition` every 20 ms; rejects with `explain()` after `timeoutMs`. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, explain: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${explain()}`);
    await delay(20);
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** A port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createTcpServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

/** A token shaped like flespi's: 64 hex characters. */
export function newToken(): string {
  return randomBytes(32).toString('hex');
}

// ---- an HTTP sink -------------------------------------------------------------------------------

export type HttpSinkMode = 'accept' | 'unavailable';

/**
 * A real HTTP server that takes batches POSTed as JSON arrays (what the `http` handler sends) and
 * records their ids in a ledger once it has read the whole batch. In 'unavailable' mode it answers
 * 503 and records nothing. `beforeAnswer` may hold a request after recording it (to kill the client
 * after the sink stored a batch but before it was told so).
 */
export class HttpSink {
  mode: HttpSinkMode = 'accept';
  beforeAnswer?: (ids: number[]) => Promise<void>;
  /** Batches recorded, and requests answered 503. */
  accepted = 0;
  refused = 0;
  /** Each accepted request's ids, in order. */
  readonly batches: number[][] = [];
  private readonly server: http.Server;
  private port = 0;

  constructor(
    private readonly ledger: Ledger,
    private readonly sinkName: string,
  ) {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 60_000;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/ingest`;
  }

  async listen(): Promise<this> {
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((done) => this.server.close(() => done()));
    this.server.closeAllConnections();
    await closed;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (this.mode === 'unavailable') {
      this.refused++;
      res.writeHead(503, { 'content-type': 'text/plain' }).end('down for maintenance');
      return;
    }
    let ids: number[];
    try {
      ids = idsOf(JSON.parse(Buffer.concat(chunks).toString('utf8')) as FlespiMessage[]);
    } catch {
      res.writeHead(400).end('not a JSON array');
      return;
    }
    this.accepted++;
    this.batches.push(ids);
    this.ledger.add(this.sinkName, ids);
    await this.beforeAnswer?.(ids);
    if (!res.destroyed) res.writeHead(200).end();
  }
}

// ---- a Wialon sink ------------------------------------------------------------------------------

/**
 * The Wialon test receiver, feeding a ledger with the id of every packet it decoded (acked or not:
 * a packet it got is a packet the sink has). `restart()` brings a fresh receiver up on the same
 * port, as a Wialon server coming back after an outage.
 */
export class WialonSink {
  receiver = new WialonTestReceiver();
  port = 0;

  constructor(
    private readonly ledger: Ledger,
    private readonly sinkName: string,
  ) {}

  async listen(): Promise<this> {
    this.port = await this.receiver.listen(this.port);
    return this;
  }

  /** Moves the ids of newly decoded packets into the ledger; also drops them from the receiver's memory. */
  sync(): void {
    const fresh = this.receiver.received.splice(0);
    const ids: number[] = [];
    for (const { packet } of fresh) {
      const block = findBlock(packet, ID);
      if (block?.type === 'int32') ids.push(block.value);
    }
    this.ledger.add(this.sinkName, ids);
  }

  /** Stops listening (connections are closed). */
  async close(): Promise<void> {
    this.sync();
    await this.receiver.close();
  }

  /** A new, empty receiver on the same port. */
  async restart(): Promise<void> {
    this.receiver = new WialonTestReceiver();
    await this.listen();
  }
}

/** An in-process handler that records ids in a ledger; `behaviour` may wait or throw before accepting. */
export class LedgerHandler extends Handler {
  calls = 0;

  constructor(
    name: string,
    private readonly ledger: Ledger,
    private readonly behaviour?: (messages: readonly FlespiMessage[], ctx: HandlerContext, call: number) => Promise<void> | void,
  ) {
    super(name);
  }

  async handle(messages: readonly FlespiMessage[], ctx: HandlerContext): Promise<void> {
    this.calls++;
    await this.behaviour?.(messages, ctx, this.calls);
    this.ledger.add(this.name, idsOf(messages));
  }
}

// ---- an MQTT subscriber ---------------------------------------------------------------------------

/**
 * Subscribes with a persistent session (clean: false, QoS 1) and records every message's id. With a
 * broker that persists sessions, messages published while the subscriber is briefly away (the broker
 * restarting) wait for it, so what it records is what the broker accepted.
 */
export async function mqttLedgerSubscriber(
  url: string,
  topicFilter: string,
  tls: { caFile: string; certFile: string; keyFile: string },
  ledger: Ledger,
  sinkName: string,
): Promise<{ close(): Promise<void> }> {
  const client = mqtt.connect(url, {
    clientId: `reliability-${sinkName}-${randomBytes(4).toString('hex')}`,
    clean: false,
    protocolVersion: 4,
    reconnectPeriod: 100,
    connectTimeout: 5000,
    ca: readFileSync(tls.caFile),
    cert: readFileSync(tls.certFile),
    key: readFileSync(tls.keyFile),
  });
  client.on('error', () => {}); // reconnects by itself
  client.on('message', (_topic, payload) => {
    try {
      ledger.add(sinkName, idsOf([JSON.parse(payload.toString('utf8')) as FlespiMessage]));
    } catch {
      // not one of ours
    }
  });
  await new Promise<void>((done, fail) => {
    client.once('connect', () => client.subscribe(topicFilter, { qos: 1 }, (error) => (error ? fail(error) : done())));
  });
  return { close: () => client.endAsync(true) };
}

// ---- the CLI ------------------------------------------------------------------------------------

let cliBundle: Promise<{ file: string; dir: string }> | undefined;

/**
 * The CLI bundled exactly as scripts/build.mjs bundles dist/cli.js, but into a private temp folder:
 * others rebuild dist/ while these tests run, and a half-written dist/cli.js would fail them.
 */
export async function cliPath(): Promise<string> {
  cliBundle ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'reliability-cli-'));
    const file = join(dir, 'cli.js');
    await build({
      entryPoints: [join(ROOT, 'src/cli/main.ts')],
      outfile: file,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      external: ['vscode'],
      logLevel: 'error',
      legalComments: 'none',
    });
    process.once('exit', () => rmSync(dir, { recursive: true, force: true })); // 'exit' runs synchronous code only
    return { file, dir };
  })();
  return (await cliBundle).file;
}

// Child processes still alive when the test process exits (a failed test skipped its cleanup) die with it.
const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export interface CliProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exit: Promise<number | null>;
}

/** Starts `node cli.js ...args`; the process is killed when the test process exits. */
export async function startCli(args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliProcess> {
  const env = { ...process.env, ...options.env };
  if (!options.env || !('FLESPI_TOKEN' in options.env)) delete env.FLESPI_TOKEN;
  const child = spawn(process.execPath, [await cliPath(), ...args], { cwd: options.cwd ?? tmpdir(), env });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = new Promise<number | null>((done) =>
    child.once('close', (code) => {
      children.delete(child);
      done(code);
    }),
  );
  return { child, exit, stdout: () => stdout, stderr: () => stderr };
}

/** Runs the CLI to its end (killing it after `timeoutMs`). */
export async function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const cli = await startCli(args, options);
  const killer = setTimeout(() => cli.child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  const status = await cli.exit;
  clearTimeout(killer);
  return { status, stdout: cli.stdout(), stderr: cli.stderr() };
}

/** Asserts the CLI's answer to bad input: exit code ≠ 0, exactly one stderr line, no stack trace. */
export function assertOneLineError(result: { status: number | null; stderr: string }, pattern: RegExp): string {
  assert.notEqual(result.status, 0, `exit code; stderr: ${result.stderr}`);
  assert.notEqual(result.status, null, `the CLI was killed instead of exiting; stderr: ${result.stderr}`);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `exactly one line on stderr, got:\n${result.stderr}`);
  assert.match(lines[0]!, /^flespi-receiver: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(result.stderr, /\n\s+at |Error: .*\n/, 'no stack trace');
  return lines[0]!;
}

// ---- the sandbox as its own process -------------------------------------------------------------

export interface SandboxProcess {
  readonly restUrl: string;
  readonly token: string;
  readonly restPort: number;
  readonly mqttPort: number;
  /** How many times it was started (1 for the first run). */
  readonly epoch: number;
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same ports with the same token (an empty sandbox: it keeps messages in memory only). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** `flespi-receiver sandbox` with fixed ports and token, no simulated devices. */
export async function startSandboxProcess(options: { token?: string; restPort?: number; mqttPort?: number } = {}): Promise<SandboxProcess> {
  const token = options.token ?? newToken();
  const restPort = options.restPort ?? (await freePort());
  const mqttPort = options.mqttPort ?? (await freePort());
  let current: CliProcess | undefined;
  let epoch = 0;

  const launch = async () => {
    const cli = await startCli(['sandbox', '--rest-port', String(restPort), '--mqtt-port', String(mqttPort), '--token', token, '--devices', '0']);
    const ready = waitUntil(
      () => cli.stdout().includes('stop with Ctrl+C') || cli.child.exitCode !== null,
      () => `the sandbox did not start; stderr: ${cli.stderr()}`,
      15_000,
    );
    await ready;
    if (cli.child.exitCode !== null) throw new Error(`the sandbox exited at start: ${cli.stderr()}`);
    current = cli;
    epoch++;
  };
  const kill = async () => {
    const cli = current;
    current = undefined;
    if (!cli || cli.child.exitCode !== null) return;
    cli.child.kill('SIGKILL');
    await cli.exit;
  };
  await launch();
  return {
    restUrl: `http://127.0.0.1:${restPort}`,
    token,
    restPort,
    mqttPort,
    get epoch() {
      return epoch;
    },
    kill,
    restart: launch,
    async stop() {
      const cli = current;
      current = undefined;
      if (!cli || cli.child.exitCode !== null) return;
      cli.child.kill('SIGTERM');
      await cli.exit;
    },
  };
}

/** A call to the sandbox control API (`/sandbox/*`); throws with the answer on a non-2xx status. */
export async function control(restUrl: string, token: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${restUrl}${path}`, {
    method,
    headers: { authorization: `FlespiToken ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as unknown;
}

/**
 * Feeds numbered messages to a sandbox over its control API at a steady pace. A batch counts as
 * injected once the sandbox answered; a batch that failed (the sandbox is down) is sent again
 * later, so ids stay unique and in order. `acceptedBy` tells which sandbox run stored each id.
 */
export class Injector {
  readonly acceptedBy = new Map<number, number>();
  nextId = 1;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly sandbox: Pick<SandboxProcess, 'restUrl' | 'token' | 'epoch'>,
    private readonly channel = CHANNEL,
    /** Parameters every message carries besides its ident and id. */
    private readonly extra: FlespiMessage = {},
  ) {}

  get injected(): number[] {
    return [...this.acceptedBy.keys()];
  }

  /** Injects `count` messages now (one request); resolves with their ids. */
  async inject(count: number): Promise<number[]> {
    const messages = numbered(this.nextId, count, this.extra);
    await control(this.sandbox.restUrl, this.sandbox.token, 'POST', `/sandbox/channels/${this.channel}/messages`, messages);
    const ids = idsOf(messages);
    for (const id of ids) this.acceptedBy.set(id, this.sandbox.epoch);
    this.nextId += count;
    return ids;
  }

  /** Injects `perTick` messages every `everyMs` until stop(). */
  start(perTick: number, everyMs: number): void {
    const tick = async () => {
      try {
        await this.inject(perTick);
      } catch {
        // The sandbox is down: the same ids go out on the next tick.
      }
      if (!this.stopped) {
        this.timer = setTimeout(() => {
          this.running = tick();
        }, everyMs);
      }
    };
    this.running = tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
