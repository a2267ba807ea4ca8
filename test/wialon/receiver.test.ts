import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { PacketSplitter, decodePacket, encodeMessage } from '../../src/core/wialon/codec';
import { WialonTestReceiver, startWialonTestReceiver } from '../support/wialonReceiver';
import { CAPTURES, capture, randomChunks, vector } from './support';

/** A raw TCP client that counts the ack bytes it gets back. */
class Client {
  acks = 0;
  other = 0;
  readonly closed: Promise<void>;
  private waiting: { count: number; resolve: () => void } | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const byte of chunk) {
        if (byte === 0x11) this.acks++;
        else this.other++;
      }
      if (this.waiting && this.acks >= this.waiting.count) this.waiting.resolve();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static open(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1' }, () => {
        socket.setNoDelay(true);
        resolve(new Client(socket));
      });
      socket.once('error', reject);
    });
  }

  acked(count: number): Promise<void> {
    if (this.acks >= count) return Promise.resolve();
    return new Promise((resolve) => (this.waiting = { count, resolve }));
  }

  /** Writes chunk by chunk, yielding to the event loop in between so the peer sees separate reads. */
  async send(chunks: Buffer[], pauseEvery = 1): Promise<void> {
    for (let i = 0; i < chunks.length; i++) {
      this.socket.write(chunks[i]);
      if ((i + 1) % pauseEvery === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

async function withReceiver(run: (receiver: WialonTestReceiver, port: number) => Promise<void>): Promise<void> {
  const { receiver, port } = await startWialonTestReceiver();
  try {
    await run(receiver, port);
  } finally {
    await receiver.close();
  }
}

test('TCP: all 9,284 captured packets, written at seeded random boundaries, decode and get one ack each', () =>
  withReceiver(async (receiver, port) => {
    const all = Buffer.concat(CAPTURES.map((c) => capture(c.file)));
    const expected = new PacketSplitter().push(all);
    const client = await Client.open(port);
    await client.send(randomChunks(all, 42, 1500));
    await receiver.waitFor(9284, 60_000);
    await client.acked(9284);
    assert.equal(receiver.received.length, 9284);
    assert.deepEqual(receiver.rejected, []);
    assert.ok(
      receiver.received.every((r, i) => r.bytes.equals(expected[i])),
      'packets arrive whole and in order',
    );
    assert.equal(receiver.packets[9283].unitId, decodePacket(expected[9283]).unitId);
    assert.equal(client.other, 0, 'only 0x11 bytes come back');
    client.socket.destroy();
  }));

test('TCP: tiny chunks (1-16 bytes, corked in pairs) of the small captures and the edge vectors', () =>
  withReceiver(async (receiver, port) => {
    const bytes = Buffer.concat([capture('0001.data'), capture('0002.data'), capture('0004.data'), vector('V5'), vector('N1'), vector('N2')]);
    const expected = new PacketSplitter().push(bytes);
    assert.equal(expected.length, 1 + 1 + 202 + 2 + 1 + 1);
    const client = await Client.open(port);
    const chunks = randomChunks(bytes, 7, 16);
    for (let i = 0; i < chunks.length; i += 2) {
      client.socket.cork();
      client.socket.write(chunks[i]);
      if (chunks[i + 1]) client.socket.write(chunks[i + 1]);
      client.socket.uncork();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await receiver.waitFor(expected.length);
    await client.acked(expected.length);
    assert.deepEqual(
      receiver.received.map((r) => r.bytes.toString('hex')),
      expected.map((b) => b.toString('hex')),
    );
    assert.equal(receiver.packets.at(-2)?.blocks[1].value, 3003, 'N1 decoded over TCP');
    client.socket.destroy();
  }));

test('TCP: a read that ends right after the size field, then the rest', () =>
  withReceiver(async (receiver, port) => {
    const v2 = vector('V2');
    const client = await Client.open(port);
    client.socket.write(v2.subarray(0, 4));
    await sleep(20); // let the 4 bytes arrive as a read of their own
    client.socket.write(v2.subarray(4));
    const [packet] = await receiver.waitFor(1);
    await client.acked(1);
    assert.equal(packet.time, 1565613499);
    client.socket.destroy();
  }));

test('TCP: a malformed packet gets no ack, is counted with its reason, and the connection is closed', () =>
  withReceiver(async (receiver, port) => {
    const bad = vector('V1');
    bad[73] = 0x0c;
    const client = await Client.open(port);
    await client.send([Buffer.concat([vector('V1'), bad, vector('V2')])]);
    await client.closed;
    assert.equal(receiver.received.length, 1);
    assert.equal(client.acks, 1);
    assert.equal(receiver.rejected.length, 1);
    assert.match(receiver.rejected[0].reason, /expected the block marker 0x0BBB, found 0x0CBB \(at byte 73\)/);
    assert.equal(receiver.rejected[0].connection, 1);
    // The server keeps listening for the sender's next connection.
    const again = await Client.open(port);
    await again.send([vector('V2')]);
    await again.acked(1);
    assert.equal(receiver.received[1].connection, 2);
    again.socket.destroy();
  }));

test('TCP: garbage that cannot be framed is rejected and the connection closed', () =>
  withReceiver(async (receiver, port) => {
    const client = await Client.open(port);
    await client.send([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]);
    await client.closed;
    assert.equal(receiver.received.length, 0);
    assert.match(receiver.rejected[0].reason, /exceeds the limit/);
  }));

test('fault modes: paused acks are withheld (packets still recorded); resumed acks flow again', () =>
  withReceiver(async (receiver, port) => {
    const client = await Client.open(port);
    receiver.pauseAcks();
    await client.send([vector('V1')]);
    await receiver.waitFor(1);
    receiver.resumeAcks();
    await client.send([vector('V2')]);
    await receiver.waitFor(2);
    await client.acked(1);
    assert.equal(receiver.acksSent, 1, 'only the packet after resumeAcks() was acked');
    client.socket.destroy();
  }));

test('fault modes: closeConnectionsAfter(n) records the n-th packet, does not ack it, and closes', () =>
  withReceiver(async (receiver, port) => {
    const client = await Client.open(port);
    receiver.closeConnectionsAfter(2);
    await client.send([Buffer.concat([vector('V1'), vector('V2'), vector('V4')])]);
    await client.closed;
    assert.deepEqual(
      receiver.packets.map((p) => p.time),
      [1259076464, 1565613499],
    );
    assert.equal(client.acks, 1);
  }));

test('fault modes: delayed acks still come, one per packet', () =>
  withReceiver(async (receiver, port) => {
    receiver.setAckDelay(30);
    const client = await Client.open(port);
    const packets = [1, 2, 3].map((i) => encodeMessage({ ident: 'd', timestamp: i }));
    await client.send(packets);
    await client.acked(3);
    assert.deepEqual(
      receiver.packets.map((p) => p.time),
      [1, 2, 3],
    );
    assert.equal(client.acks, 3);
    client.socket.destroy();
  }));

test('waitFor explains a shortfall', () =>
  withReceiver(async (receiver) => {
    await assert.rejects(receiver.waitFor(2, 50), /got 0 of 2 packets within 50 ms \(0 rejected\)/);
  }));
