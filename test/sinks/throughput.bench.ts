/**
 * Throughput of the MQTT and HTTP sinks (a measurement, not a test):
 *   npx tsx test/sinks/throughput.bench.ts [messages]
 * MQTT: QoS 1 over TLS with client certificates to a local Mosquitto, every PUBACK awaited,
 * through MqttHandler and through a bare MQTT.js publish loop. HTTP: sequential batches to a local server.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import mqtt from 'mqtt';
import type { HandlerContext } from '../../src/core/handler';
import { httpSpec } from '../../src/core/handlers/http';
import { mqttSpec } from '../../src/core/handlers/mqtt';
import { silentLogger } from '../../src/core/logger';
import type { FlespiMessage } from '../../src/core/message';
import { createTestPki } from '../support/certs';
import { startMosquitto, type RunningMosquitto } from '../support/mosquitto';

const TOTAL = Number(process.argv[2] ?? 50_000);
const BATCH = 1000;
const env = { resolvePath: (p: string) => p };
const ctx: HandlerContext = { signal: new AbortController().signal, attempt: 1, log: silentLogger };

// A typical tracker message (~800 bytes of JSON).
const sample: FlespiMessage = {
  'battery.voltage': 3.938, 'channel.id': 429, 'device.id': 182083, 'device.name': 'Vehicle', 'device.type.id': 744,
  'engine.ignition.status': false, 'external.powersource.voltage': 12.64, 'gnss.status': true, 'gsm.cellid': 11511,
  'gsm.lac': 108, 'gsm.mcc': 257, 'gsm.mnc': 1, 'gsm.signal.level': 80, ident: '111115555599999', 'movement.status': false,
  peer: '203.0.113.10:40522', 'position.altitude': 244, 'position.direction': 281, 'position.hdop': 0.3,
  'position.latitude': 43.955218, 'position.longitude': 37.661918, 'position.satellites': 15, 'position.speed': 0,
  'position.valid': true, 'protocol.id': 16, 'server.timestamp': 1700000000.123456, timestamp: 1699999990,
};
const messages = (from: number, count: number) => Array.from({ length: count }, (_, i) => ({ ...sample, ident: `dev-${(from + i) % 50}`, seq: from + i }));

function report(label: string, count: number, unit: string, ms: number) {
  console.log(`${label.padEnd(58)} ${Math.round((count / ms) * 1000).toString().padStart(7)} ${unit}/s  (${count} in ${Math.round(ms)} ms)`);
}

async function main() {
  const pki = await createTestPki();
  const tls = { caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.client.key };
  console.log(`payload ${JSON.stringify(messages(0, 1)[0]).length} bytes, ${TOTAL} messages, batches of ${BATCH}`);
  // Mosquitto leaves Nagle's algorithm on unless set_tcp_nodelay: its PUBACKs then wait for TCP ACKs.
  for (const nodelay of [false, true]) {
    console.log(nodelay ? 'Mosquitto with set_tcp_nodelay true:' : 'Mosquitto with default settings:');
    const broker = await startMosquitto({ tls: { caFile: pki.ca.cert, certFile: pki.server.cert, keyFile: pki.server.key }, extraConfig: nodelay ? ['set_tcp_nodelay true'] : [] });
    try {
      await benchMqtt(broker, tls);
    } finally {
      await broker.stop();
    }
  }
  await pki.cleanup();

  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.end('ok'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  for (const size of [1, 100, 1000]) {
    const handler = httpSpec.create({ url }, env, 'bench');
    await handler.start();
    const batch = messages(0, size);
    const count = Math.max(200, Math.min(5000, (TOTAL * 2) / size));
    const began = performance.now();
    for (let i = 0; i < count; i++) await handler.handle(batch, ctx);
    const ms = performance.now() - began;
    report(`HttpHandler, ${size} messages per batch`, count, 'batch', ms);
    await handler.stop();
  }
  server.close();
}

async function benchMqtt(broker: RunningMosquitto, tls: { caFile: string; certFile: string; keyFile: string }) {
  for (const window of [100, 1000]) {
    const handler = mqttSpec.create({ url: broker.url, ...tls, topic: 'bench/{channel.id}/{ident}', window }, env, 'bench');
    await handler.start();
    const batches = Array.from({ length: TOTAL / BATCH }, (_, i) => messages(i * BATCH, BATCH));
    const began = performance.now();
    for (const b of batches) await handler.handle(b, ctx);
    report(`MqttHandler QoS 1 TLS, window ${window}`, TOTAL, 'msg', performance.now() - began);
    await handler.stop();
  }
  // The same broker, payloads and socket settings without the handler: one stream, and handler-sized batches.
  const bareRuns = [
    { window: 100, batch: TOTAL, label: 'window 100, one stream' },
    { window: Infinity, batch: TOTAL, label: 'all at once' },
    { window: 100, batch: BATCH, label: `window 100, batches of ${BATCH}` },
  ];
  for (const run of bareRuns) {
    const client = mqtt.connect(broker.url, { ca: readFileSync(tls.caFile), cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), reconnectPeriod: 0 });
    await new Promise((resolve, reject) => client.once('connect', resolve).once('error', reject));
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    const all = messages(0, TOTAL);
    const began = performance.now();
    for (let from = 0; from < TOTAL; from += run.batch) await publishAll(client, all.slice(from, from + run.batch), run.window);
    report(`bare MQTT.js QoS 1 TLS, ${run.label}`, TOTAL, 'msg', performance.now() - began);
    await client.endAsync(true);
  }
}

/** Publishes with at most `window` unacknowledged; resolves on the last PUBACK. */
function publishAll(client: mqtt.MqttClient, batch: FlespiMessage[], window: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let next = 0;
    let acked = 0;
    let inFlight = 0;
    const fill = () => {
      while (next < batch.length && inFlight < window) {
        const message = batch[next++]!;
        inFlight++;
        client.publish(`bench/${message['channel.id']}/${message.ident}`, JSON.stringify(message), { qos: 1 }, (error) => {
          inFlight--;
          if (error) return reject(error);
          if (++acked === batch.length) resolve();
          else fill();
        });
      }
    };
    fill();
  });
}

void main();
