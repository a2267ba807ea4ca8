/**
 * Rough figures for docs/wialon.md (not a test): encode rate vs JSON.stringify, and end-to-end rate through
 * WialonHandler to the TCP test receiver with one ack per packet.  Run: npx tsx test/wialon/measure.ts
 */
import { PacketSplitter, decodePacket, encodeMessage } from '../../src/core/wialon/codec';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WialonHandler } from '../../src/core/handlers/wialon';
import { startWialonTestReceiver } from '../../src/core/wialon/testReceiver';
import { silentLogger } from '../../src/core/logger';
import type { FlespiMessage } from '../../src/core/message';

function message(i: number): FlespiMessage {
  return {
    'battery.voltage': 3.938,
    'channel.id': 429,
    'device.id': 182083,
    'device.name': 'Vehicle',
    'device.type.id': 744,
    'engine.ignition.status': i % 2 === 0,
    'external.powersource.voltage': 12.64 + i / 1000,
    'gsm.operator.code': '25701',
    'gsm.signal.level': 80,
    ident: `3526250660045${(i % 100).toString().padStart(2, '0')}`,
    'movement.status': false,
    peer: '203.0.113.10:40522',
    'position.altitude': 244,
    'position.direction': 281,
    'position.hdop': 0.3,
    'position.latitude': 43.955218 + i / 1e6,
    'position.longitude': 37.661918,
    'position.satellites': 15,
    'position.speed': i % 120,
    'position.valid': true,
    'protocol.id': 16,
    'server.timestamp': 1700000000.123456 + i,
    timestamp: 1699999990 + i,
    din: i % 16,
  };
}

function rate(label: string, count: number, run: () => void): number {
  run(); // warm up
  const start = performance.now();
  run();
  const seconds = (performance.now() - start) / 1000;
  console.log(`${label}: ${Math.round(count / seconds).toLocaleString('en')} msgs/s`);
  return count / seconds;
}

async function main(): Promise<void> {
  const messages = Array.from({ length: 100_000 }, (_, i) => message(i));
  let bytes = 0;
  const wialon = rate('encodeMessage', messages.length, () => {
    bytes = 0;
    for (const m of messages) bytes += encodeMessage(m).length;
  });
  let jsonBytes = 0;
  const json = rate('JSON.stringify', messages.length, () => {
    jsonBytes = 0;
    for (const m of messages) jsonBytes += JSON.stringify(m).length;
  });
  console.log(`  encode/JSON speed ratio ${(wialon / json).toFixed(2)}; bytes per message: Wialon ${Math.round(bytes / messages.length)}, JSON ${Math.round(jsonBytes / messages.length)}`);

  const capture = readFileSync(join(__dirname, '..', 'fixtures', 'wialon', '0003.data'));
  rate('split + strict decode (0003.data, 9,080 packets)', 9080, () => {
    for (const packet of new PacketSplitter().push(capture)) decodePacket(packet);
  });

  for (const window of [1, 16, 128]) {
    const { receiver, port } = await startWialonTestReceiver();
    const handler = new WialonHandler({ host: '127.0.0.1', port, ackTimeoutMs: 10_000, window, connectTimeoutMs: 5000 });
    const total = window === 1 ? 10_000 : 50_000;
    const batches = Array.from({ length: total / 1000 }, (_, b) => messages.slice(b * 1000, b * 1000 + 1000));
    const start = performance.now();
    for (const batch of batches) await handler.handle(batch, { signal: new AbortController().signal, attempt: 1, log: silentLogger });
    const seconds = (performance.now() - start) / 1000;
    if (receiver.received.length !== total || receiver.rejected.length) throw new Error(`receiver got ${receiver.received.length}/${total}, rejected ${receiver.rejected.length}`);
    console.log(`end-to-end, window ${window}, batches of 1000: ${Math.round(total / seconds).toLocaleString('en')} msgs/s (${total} packets, all decoded and acked)`);
    await handler.stop();
    await receiver.close();
  }
}

void main();
