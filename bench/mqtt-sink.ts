// Bench 3: the MQTT / AWS IoT sink. QoS 1 publishes over TLS with a client certificate to a real
// Mosquitto (test/support: openssl test PKI, mosquitto launcher), every PUBACK awaited, in batches of
// 1000 through MqttHandler (default window 100), vs a bare MQTT.js publish loop with the same window,
// batches, payloads and topics (baseline). Each sample is a fresh worker process; Mosquitto runs in
// its own process as in real use.
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import type { HandlerContext } from '../src/core/handler';
import { mqttSpec } from '../src/core/handlers/mqtt';
import { silentLogger } from '../src/core/logger';
import type { FlespiMessage } from '../src/core/message';
import { createTestPki } from '../test/support/certs';
import { startMosquitto } from '../test/support/mosquitto';
import { measureInterleaved, sampleFromWorker, type Row, type Sample } from './harness';
import { channelMessages } from './messages';

const BATCH = 1000;
const WINDOW = 100;

interface Target {
  url: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

type Publisher = 'MqttHandler' | 'bare MQTT.js';

const topicOf = (m: FlespiMessage) => `flespi/${String(m['channel.id'])}/${String(m.ident)}`;

async function publishAll(publisher: Publisher, target: Target, count: number): Promise<Sample> {
  const messages = channelMessages(count);
  const batches: FlespiMessage[][] = [];
  for (let i = 0; i < count; i += BATCH) batches.push(messages.slice(i, i + BATCH));
  const cpu0 = process.cpuUsage();
  let t0: number;
  if (publisher === 'MqttHandler') {
    const handler = mqttSpec.create({ ...target, topic: 'flespi/{channel.id}/{ident}', window: WINDOW }, { resolvePath: (p: string) => p }, 'bench');
    await handler.start();
    const ctx: HandlerContext = {
      signal: new AbortController().signal,
      attempt: 1,
      log: silentLogger,
      reject: (index, reason) => {
        throw new Error(`message ${index} rejected: ${String(reason)}`);
      },
    };
    t0 = performance.now();
    for (const batch of batches) await handler.handle(batch, ctx);
    await handler.stop();
  } else {
    const client = mqtt.connect(target.url, {
      ca: readFileSync(target.caFile),
      cert: readFileSync(target.certFile),
      key: readFileSync(target.keyFile),
      reconnectPeriod: 0,
      protocolVersion: 4,
    });
    await new Promise((resolve, reject) => client.once('connect', resolve).once('error', reject));
    t0 = performance.now();
    for (const batch of batches) await barePublish(client, batch);
    await client.endAsync(true);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { value: count / seconds, extra: { 'CPU s/100k': ((cpu.user + cpu.system) / 1e6 / count) * 1e5 } };
}

/** The plain way to do it: JSON per message, at most WINDOW publishes awaiting PUBACK; resolves on the batch's last PUBACK. */
function barePublish(client: mqtt.MqttClient, batch: FlespiMessage[]): Promise<void> {
  return new Promise((resolve, reject) => {
    let next = 0;
    let acked = 0;
    const fill = () => {
      while (next < batch.length && next - acked < WINDOW) {
        const m = batch[next++]!;
        client.publish(topicOf(m), JSON.stringify(m), { qos: 1 }, (error) => {
          if (error) return reject(error);
          if (++acked === batch.length) resolve();
          else fill();
        });
      }
    };
    fill();
  });
}

export async function benchMqttSink(opts: { quick: boolean }): Promise<Row[]> {
  const count = opts.quick ? 10_000 : 50_000;
  const runs = opts.quick ? 1 : 5;
  const pki = await createTestPki();
  const rows: Row[] = [];
  try {
    // Mosquitto's default leaves Nagle's algorithm on (PUBACKs wait for TCP ACKs); set_tcp_nodelay turns it off.
    for (const nodelay of opts.quick ? [false] : [false, true]) {
      const broker = await startMosquitto({
        tls: { caFile: pki.ca.cert, certFile: pki.server.cert, keyFile: pki.server.key, requireCertificate: true },
        extraConfig: nodelay ? ['set_tcp_nodelay true'] : [],
      });
      try {
        const target: Target = { url: broker.url, caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.client.key };
        const run = (publisher: Publisher) => () =>
          sampleFromWorker(__filename, ['--worker', publisher, JSON.stringify(target), String(count)], `mqtt-sink-${publisher.replace(/\W+/g, '-')}`);
        const bench = `MQTT sink: QoS 1, TLS client cert, Mosquitto${nodelay ? ' set_tcp_nodelay' : ' defaults'} (${count.toLocaleString('en-US')} msgs)`;
        const base = `bare MQTT.js loop, window ${WINDOW}`;
        const subject = `MqttHandler, window ${WINDOW}`;
        const results = await measureInterleaved(runs, { [base]: run('bare MQTT.js'), [subject]: run('MqttHandler') });
        rows.push({ bench, case: base, unit: 'msg/s', summary: results[base]! });
        rows.push({ bench, case: subject, unit: 'msg/s', baseline: base, target: '≥20k msg/s', summary: results[subject]! });
      } finally {
        await broker.stop();
      }
    }
  } finally {
    await pki.cleanup();
  }
  return rows;
}

if (require.main === module && process.argv[2] === '--worker') {
  const [, , , publisher, target, count] = process.argv;
  void publishAll(publisher as Publisher, JSON.parse(target!) as Target, Number(count)).then(
    (sample) => {
      process.send!(sample);
      process.exit(0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
