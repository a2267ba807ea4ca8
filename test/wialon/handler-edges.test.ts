// The Wialon sink at its edges: the exact texts it logs and reports, reconnect backoff and its reset,
// stop(), connect timeouts and aborts (against a listener that never answers), misbehaving peers (a wrong
// byte, extra acks, a reset), the ack timeout measured from the last ack, encoding one window ahead, the
// packet size limit at its boundary, the cap on logged parameter issues, and no listeners or timers left behind.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { setTimeout as delay } from 'node:timers/promises';
import { WialonHandler, wialonSpec, type WialonHandlerOptions } from '../../src/core/handlers/wialon';
import type { HandlerContext } from '../../src/core/handler';
import { TransientError } from '../../src/core/errors';
import type { FlespiMessage } from '../../src/core/message';
import { ConfigError } from '../../src/core/options';
import { ACK_BYTE, DEFAULT_MAX_PACKET_BYTES, PacketSplitter, WialonEncodeError, encodeMessage, findBlock } from '../../src/core/wialon/codec';
import { memoryLogger, unexpectedReject, type MemoryLogger } from '../support/logger';
import { startWialonTestReceiver, type WialonTestReceiver } from '../support/wialonReceiver';
import { rejection, until } from '../support/await';

const env = { resolvePath: (p: string) => p };
const OPTIONS: Omit<WialonHandlerOptions, 'port'> = { host: '127.0.0.1', ackTimeoutMs: 2000, window: 4, connectTimeoutMs: 2000 };

function context(log: MemoryLogger = memoryLogger(), signal = new AbortController().signal): HandlerContext & { log: MemoryLogger } {
  return { signal, attempt: 1, log, reject: unexpectedReject };
}

function messages(count: number, from = 0): FlespiMessage[] {
  return Array.from({ length: count }, (_, i) => ({ ident: 'unit-1', timestamp: 1700000000 + from + i, seq: from + i }));
}

async function strictReceiver(t: TestContext): Promise<{ receiver: WialonTestReceiver; port: number }> {
  const started = await startWialonTestReceiver();
  t.after(() => started.receiver.close());
  return started;
}

function handlerFor(t: TestContext, port: number, options: Partial<WialonHandlerOptions> = {}): WialonHandler {
  const handler = new WialonHandler({ ...OPTIONS, port, ...options }, 'wialon-test');
  t.after(() => handler.stop());
  return handler;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)));
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

interface Peer {
  socket: Socket;
  /** 1 for the first connection, 2 for the next, ... */
  number: number;
  /** Packets received on this connection. */
  packets: Buffer[];
}

/**
 * A raw TCP peer that frames what the handler sends; `onPackets` decides what to answer (the strict test
 * receiver only ever acks correctly).
 */
async function scriptedPeer(t: TestContext, onPackets: (peer: Peer, fresh: number) => void): Promise<{ port: number; peers: Peer[]; total: () => number }> {
  const peers: Peer[] = [];
  const server: Server = createServer((socket) => {
    const peer: Peer = { socket, number: peers.length + 1, packets: [] };
    peers.push(peer);
    const splitter = new PacketSplitter();
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      const got = splitter.push(chunk);
      if (got.length === 0) return;
      peer.packets.push(...got);
      onPackets(peer, got.length);
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
  t.after(async () => {
    for (const peer of peers) peer.socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port, peers, total: () => peers.reduce((n, p) => n + p.packets.length, 0) };
}

const acks = (count: number) => Buffer.alloc(count, ACK_BYTE);

/**
 * A port where a TCP connect never completes: a listener (backlog 1) in a worker whose event loop is
 * blocked, so nothing is accepted; once its accept queue is full, the kernel drops further SYNs.
 */
async function blackHole(t: TestContext): Promise<number> {
  const release = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     const server = require('node:net').createServer();
     server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       Atomics.wait(workerData, 0, 0);
       server.close();
     });`,
    { eval: true, workerData: release },
  );
  const port = await new Promise<number>((resolve) => worker.once('message', resolve));
  const fillers: Socket[] = [];
  t.after(async () => {
    for (const socket of fillers) socket.destroy();
    Atomics.store(release, 0, 1);
    Atomics.notify(release, 0);
    await worker.terminate();
  });
  // Fill the accept queue: connect until one connection stays pending.
  for (let i = 0; i < 10; i++) {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    fillers.push(socket);
    const connected = await Promise.race([new Promise<boolean>((resolve) => socket.once('connect', () => resolve(true))), delay(300).then(() => false)]);
    if (!connected) return port;
  }
  throw new Error('the accept queue never filled');
}

// --- spec ---

test('spec: its title; a host with a port is refused with the whole message; IPv6 literals and the entry name are accepted', () => {
  assert.equal(wialonSpec.title, 'Wialon Retranslator: one TCP packet per message, acked by the receiver');
  assert.throws(
    () => wialonSpec.create({ type: 'wialon', host: 'wialon.example.com:20163', port: 20163 }, env, 'main'),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message === 'handler "main" (wialon): "host" must be a host name or IP address only, got "wialon.example.com:20163"; put the port in "port"',
  );
  for (const host of ['::1', '2001:db8::1:80', '1080:0:0:0:8:800:200c:417a']) {
    const handler = wialonSpec.create({ type: 'wialon', name: 'main', host, port: 20163 }, env, 'main');
    assert.ok(handler instanceof WialonHandler);
    assert.equal(handler.options.host, host);
  }
});

// --- start, stop, names ---

test('start() against nothing listening only warns, under the default name "wialon"', async (t) => {
  const port = await closedPort();
  const handler = new WialonHandler({ ...OPTIONS, port }); // no name given
  t.after(() => handler.stop());
  const log = memoryLogger();
  handler.attachLogger(log);
  await handler.start();
  assert.equal(handler.name, 'wialon');
  assert.deepEqual(log.at('warn'), [
    `wialon: cannot connect to Wialon at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}; will try again when messages arrive`,
  ]);
  assert.deepEqual(handler.health(), { connected: false, detail: '0 packets awaiting ack' });
});

test('start() connects once (logged at debug, counted); stop() drops the connection and handle() then refuses', async (t) => {
  const { receiver, port } = await strictReceiver(t);
  const handler = handlerFor(t, port);
  const log = memoryLogger();
  handler.attachLogger(log);
  await handler.start();
  assert.deepEqual(log.at('debug'), [`wialon-test: connected to 127.0.0.1:${port}`]);
  assert.equal(handler.stats.connects, 1);
  assert.equal(handler.health().connected, true);
  await handler.stop();
  assert.equal(handler.health().connected, false);
  const error = await rejection(handler.handle(messages(1), context()));
  assert.ok(error instanceof TransientError);
  assert.equal(error.message, 'wialon-test is stopped');
  assert.equal(receiver.connectionCount, 1, 'no new connection after stop()');
  assert.equal(receiver.received.length, 0);
});

// --- reconnecting ---

test('nothing listening: the reconnect delay doubles (250, 500, 1000 ms); the error and health() say why, exactly', async (t) => {
  const port = await closedPort();
  const handler = handlerFor(t, port);
  const ctx = context();
  const error = await rejection(handler.handle(messages(1), ctx));
  const why = `cannot connect to Wialon at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`;
  assert.ok(error instanceof TransientError);
  assert.equal(error.message, why);
  assert.equal((error.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED', 'the network error is kept as the cause');
  assert.deepEqual(
    ctx.log.at('warn'),
    [250, 500, 1000].map((ms) => `wialon-test: ${why}; reconnecting in ${ms} ms`),
  );
  assert.deepEqual(handler.health(), { connected: false, detail: `0 packets awaiting ack, ${why}` });
  assert.equal(handler.stats.connects, 0);
});

test('a connection lost after progress: the delay starts again at 250 ms, and the log counts the packets to resend', async (t) => {
  // Connection 1 gets packets 0-2 and acks one; connection 2 gets 1-2 and acks one; connection 3 gets 2 and acks it.
  const peer = await scriptedPeer(t, (p) => {
    const expected = 4 - p.number;
    if (p.packets.length < expected) return;
    p.socket.write(acks(p.number < 3 ? 1 : expected));
    if (p.number < 3) p.socket.destroy();
  });
  const handler = handlerFor(t, peer.port, { window: 3 });
  const ctx = context();
  await handler.handle(messages(3), ctx);
  const at = `Wialon at 127.0.0.1:${peer.port}`;
  assert.deepEqual(ctx.log.at('warn'), [
    `wialon-test: ${at} closed the connection with 2 packets awaiting ack; reconnecting in 250 ms to resend 2 unacknowledged packets`,
    `wialon-test: ${at} closed the connection with 1 packets awaiting ack; reconnecting in 250 ms to resend 1 unacknowledged packets`,
  ]);
  assert.deepEqual(
    peer.peers.map((p) => p.packets.length),
    [3, 2, 1],
  );
  assert.deepEqual(handler.stats, { packetsSent: 6, packetsAcked: 3, packetsResent: 3, connects: 3, messagesSkipped: 0, parameterIssues: 0 });
  assert.deepEqual(handler.health(), { connected: true, detail: '0 packets awaiting ack' });
});

test('an abort during the reconnect delay ends handle() at once, not when the delay is over', async (t) => {
  const port = await closedPort();
  const handler = handlerFor(t, port);
  const controller = new AbortController();
  let abortedAt = 0;
  const log = memoryLogger();
  const warn = log.warn;
  // Abort as the longest delay (1000 ms) is announced, i.e. just before it starts.
  log.warn = (line: string) => {
    warn(line);
    if (line.endsWith('reconnecting in 1000 ms')) {
      abortedAt = performance.now();
      controller.abort(new Error('shutting down'));
    }
  };
  await rejection(handler.handle(messages(1), context(log, controller.signal)));
  assert.ok(abortedAt > 0, 'the third delay was announced');
  const late = performance.now() - abortedAt;
  assert.ok(late < 500, `handle() ended ${Math.round(late)} ms after the abort`);
});

// --- connecting to a peer that never answers ---

test('connect timeout: start() warns that nothing answered within connectTimeoutMs', async (t) => {
  const port = await blackHole(t);
  const handler = handlerFor(t, port, { connectTimeoutMs: 300 });
  const log = memoryLogger();
  handler.attachLogger(log);
  await handler.start();
  assert.deepEqual(log.at('warn'), [
    `wialon-test: cannot connect to Wialon at 127.0.0.1:${port}: no answer within 300 ms; will try again when messages arrive`,
  ]);
  assert.equal(handler.stats.connects, 0);
});

test('an abort while connecting ends the attempt at once; health() records it ("aborted" when the reason is no Error)', async (t) => {
  const port = await blackHole(t);
  const handler = handlerFor(t, port, { connectTimeoutMs: 5000 });
  const controller = new AbortController();
  const pending = rejection(handler.handle(messages(1), context(undefined, controller.signal)));
  await delay(50); // the connect is under way (it can never complete)
  controller.abort('stop');
  assert.equal(await pending, 'stop', 'rejects with the abort reason');
  assert.deepEqual(handler.health(), { connected: false, detail: '0 packets awaiting ack, aborted' });
});

// --- misbehaving peers ---

test('a byte other than the ack: the connection is dropped with what was sent (two hex digits), and the packet resent', async (t) => {
  const peer = await scriptedPeer(t, (p, fresh) => p.socket.write(p.number === 1 ? Buffer.from([0x05]) : acks(fresh)));
  const handler = handlerFor(t, peer.port, { window: 1 });
  const ctx = context();
  await handler.handle(messages(1), ctx);
  assert.deepEqual(ctx.log.at('warn'), [
    `wialon-test: Wialon at 127.0.0.1:${peer.port} sent 0x05 where only the ack byte 0x11 is expected; reconnecting in 250 ms to resend 1 unacknowledged packets`,
  ]);
  assert.equal(handler.stats.connects, 2);
  assert.equal(handler.stats.packetsAcked, 1);
});

test('more acks than packets: the connection is dropped (its acks cannot be trusted) and the rest goes on a new one', async (t) => {
  const peer = await scriptedPeer(t, (p) => p.socket.write(acks(p.number === 1 ? 2 : 1)));
  const handler = handlerFor(t, peer.port, { window: 1 });
  const ctx = context();
  await handler.handle(messages(2), ctx);
  assert.deepEqual(ctx.log.at('warn'), [`wialon-test: Wialon at 127.0.0.1:${peer.port} sent more acks than packets awaiting one; reconnecting in 250 ms`]);
  assert.deepEqual(
    peer.peers.map((p) => p.packets.length),
    [1, 1],
    'packet 1 went out on the second connection',
  );
  assert.equal(handler.stats.packetsAcked, 2);
});

test('a connection reset while packets await their ack is reported as a failed connection, and the packet resent', async (t) => {
  const peer = await scriptedPeer(t, (p, fresh) => (p.number === 1 ? p.socket.resetAndDestroy() : p.socket.write(acks(fresh))));
  const handler = handlerFor(t, peer.port, { window: 1 });
  const ctx = context();
  await handler.handle(messages(1), ctx);
  assert.deepEqual(ctx.log.at('warn'), [
    `wialon-test: connection to Wialon at 127.0.0.1:${peer.port} failed: read ECONNRESET; reconnecting in 250 ms to resend 1 unacknowledged packets`,
  ]);
  assert.equal(handler.stats.connects, 2);
});

test('an idle connection reset or closed by the peer is forgotten at once: the next batch connects anew without a failed attempt', async (t) => {
  const peer = await scriptedPeer(t, (p, fresh) => p.socket.write(acks(fresh)));
  const handler = handlerFor(t, peer.port);
  const ctx = context();
  await handler.handle(messages(2), ctx);
  assert.equal(handler.health().connected, true);
  peer.peers[0].socket.resetAndDestroy(); // an error on a socket no attempt is listening to must not crash
  await until(() => handler.health().connected === false, 'the reset to be noticed', 5000);
  await handler.handle(messages(2, 2), ctx);
  peer.peers[1].socket.destroy();
  await until(() => handler.health().connected === false, 'the close to be noticed', 5000);
  await handler.handle(messages(2, 4), ctx);
  assert.deepEqual(ctx.log.at('warn'), []);
  assert.equal(handler.stats.connects, 3);
  assert.equal(handler.stats.packetsResent, 0);
});

test('aborting the signal of a finished attempt leaves its connection alone', async (t) => {
  const { receiver: rx, port } = await strictReceiver(t);
  const handler = handlerFor(t, port);
  const first = new AbortController();
  await handler.handle(messages(2), context(undefined, first.signal)); // this attempt opened the connection
  first.abort(new Error('late'));
  const ctx = context();
  await handler.handle(messages(2, 2), ctx);
  assert.deepEqual(ctx.log.at('warn'), []);
  assert.equal(rx.connectionCount, 1);
  assert.equal(handler.stats.connects, 1);
});

// --- acks ---

test('the ack timeout counts from the last ack, not from the first send; the error names the packets still waiting', async (t) => {
  let ackedAt = 0;
  // Acks packet 0 after 1000 ms, never packet 1.
  const peer = await scriptedPeer(t, (p) => {
    if (p.packets.length < 2) return;
    setTimeout(() => {
      if (p.socket.destroyed) return;
      p.socket.write(acks(1));
      ackedAt = performance.now();
    }, 1000);
  });
  const handler = handlerFor(t, peer.port, { ackTimeoutMs: 2000, window: 2 });
  const error = await rejection(handler.handle(messages(2), context()));
  const waited = performance.now() - ackedAt;
  assert.equal(String(error), `WialonAckTimeoutError: Wialon at 127.0.0.1:${peer.port} did not acknowledge 1 packets within 2000 ms`);
  assert.ok(ackedAt > 0);
  assert.ok(waited >= 1700 && waited < 2600, `timed out ${Math.round(waited)} ms after the last ack`);
  assert.equal(handler.stats.packetsAcked, 1);
});

test('health() while packets are in flight after some were acked; after an abort with a non-Error reason it says "aborted"', async (t) => {
  // Acks the first two packets once it has three, then nothing.
  const peer = await scriptedPeer(t, (p) => {
    if (p.packets.length === 3) p.socket.write(acks(2));
  });
  const handler = handlerFor(t, peer.port, { window: 3, ackTimeoutMs: 10_000 });
  const controller = new AbortController();
  const pending = rejection(handler.handle(messages(5), context(undefined, controller.signal)));
  await until(() => peer.total() === 5, 'packets 3 and 4 to arrive', 5000);
  assert.deepEqual(handler.health(), { connected: true, detail: '3 packets awaiting ack' });
  controller.abort('stop');
  assert.equal(await pending, 'stop');
  assert.deepEqual(handler.health(), { connected: false, detail: '0 packets awaiting ack, aborted' });
});

test('many batches on one connection and one signal leave no listeners behind (no MaxListenersExceededWarning)', async (t) => {
  const { receiver: rx, port } = await strictReceiver(t);
  const handler = handlerFor(t, port, { window: 2 });
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const ctx = context();
  for (let i = 0; i < 15; i++) await handler.handle(messages(3, i * 3), ctx);
  await delay(10); // warnings are emitted on a later tick
  assert.deepEqual(
    warnings.map((w) => `${w.name}: ${w.message}`),
    [],
  );
  assert.equal(rx.connectionCount, 1);
  assert.equal(rx.received.length, 45);
});

test('a delivered batch leaves no timer running (acks arriving one by one re-arm no extra timers)', async (t) => {
  const { receiver: rx, port } = await strictReceiver(t);
  const handler = handlerFor(t, port, { window: 1, ackTimeoutMs: 60_000 });
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  await handler.start();
  const before = timers();
  await handler.handle(messages(6), context());
  assert.equal(rx.received.length, 6);
  assert.equal(timers(), before);
});

// --- encoding ---

test('packets are encoded one window ahead: an unexpected encoding error fails the batch after exactly the packets before that window', async (t) => {
  const { receiver: rx, port } = await strictReceiver(t);
  const handler = handlerFor(t, port, { window: 2 });
  const broken = { ...messages(1, 5)[0] };
  Object.defineProperty(broken, 'boom', {
    enumerable: true,
    get: () => {
      throw new Error('getter exploded');
    },
  });
  const error = await rejection(handler.handle([...messages(5), broken], context()));
  assert.equal((error as Error).message, 'getter exploded');
  // Message 5 is encoded when packet 4 is let out (4 + window - 1 = 5): packets 0-3 went out, 4 never did.
  assert.equal(handler.stats.packetsSent, 4);
  assert.ok(rx.connectionCount <= 1);
});

test('the packet size limit at its boundary: a packet of exactly DEFAULT_MAX_PACKET_BYTES (size field included) is delivered, one byte more is rejected', async (t) => {
  const { receiver: rx, port } = await strictReceiver(t);
  const handler = handlerFor(t, port, { ackTimeoutMs: 20_000 });
  const overhead = encodeMessage({ ident: 'u', timestamp: 1, seq: 1, text: '' }).length;
  const sized = (bytes: number, seq: number) => ({ ident: 'u', timestamp: 1, seq, text: 'x'.repeat(bytes - overhead) });
  assert.equal(encodeMessage(sized(DEFAULT_MAX_PACKET_BYTES, 1)).length, DEFAULT_MAX_PACKET_BYTES);
  const rejected = new Map<number, unknown>();
  const ctx = { ...context(), reject: (index: number, reason: unknown) => void rejected.set(index, reason) };
  await handler.handle([sized(DEFAULT_MAX_PACKET_BYTES + 1, 1), sized(DEFAULT_MAX_PACKET_BYTES, 2)], ctx);
  assert.deepEqual([...rejected.keys()], [0]);
  assert.equal(
    String(rejected.get(0)),
    `UndeliverableError: the Wialon packet would be ${DEFAULT_MAX_PACKET_BYTES + 1} bytes; Wialon receivers accept at most 16777216`,
  );
  assert.deepEqual(rx.rejected, [], 'the strict receiver took the packet at the limit');
  assert.deepEqual(
    rx.packets.map((p) => findBlock(p, 'seq')?.value),
    [2],
  );
  assert.equal(handler.stats.messagesSkipped, 1);
});

test('parameter issues: a converted one is logged at info; at most 200 distinct issues are logged, the rest only counted', async (t) => {
  const { receiver: rx, port } = await strictReceiver(t);
  const handler = handlerFor(t, port);
  const ctx = context();
  await handler.handle([{ ident: 'u', timestamp: 1, obj: { a: 1 } }], ctx);
  assert.deepEqual(ctx.log.at('info'), ['wialon-test: parameter "obj" sent as JSON text: Wialon has no object type; sent as JSON text (logged once)']);
  // 199 more distinct issues reach the limit of 200; the 200th+1 and later are not logged.
  const nulls = (from: number, count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`n${from + i}`, null]));
  const more = context();
  await handler.handle([{ ident: 'u', timestamp: 2, ...nulls(0, 199) }], more);
  await handler.handle([{ ident: 'u', timestamp: 3, ...nulls(199, 2), obj: { a: 2 } }], more);
  const warned = more.log.at('warn');
  assert.equal(warned.length, 199);
  assert.equal(warned[0], 'wialon-test: parameter "n0" not sent: the value is null (logged once)');
  assert.equal(warned[198], 'wialon-test: parameter "n198" not sent: the value is null (logged once)');
  assert.deepEqual(more.log.at('info'), []);
  assert.equal(handler.stats.parameterIssues, 1 + 199 + 3);
  assert.equal(rx.received.length, 3);
});

test("an unsendable message's reason keeps the codec's error as its cause", async (t) => {
  const handler = handlerFor(t, await closedPort()); // only unsendable messages: nothing to connect for
  const rejected = new Map<number, unknown>();
  await handler.handle([{ timestamp: 1 }], { ...context(), reject: (index, reason) => void rejected.set(index, reason) });
  const reason = rejected.get(0) as Error;
  assert.equal(reason.message, 'the message cannot be sent to Wialon: message has no "ident": Wialon needs it as the unit ID, so the message cannot be sent');
  assert.ok(reason.cause instanceof WialonEncodeError);
});
