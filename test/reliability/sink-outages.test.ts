// One sink goes away for SINK_OUTAGE_MS while messages keep arriving, then comes back. Three real
// sinks on every run: an HTTP server, Mosquitto over TLS with client certificates, and the Wialon
// test receiver. "Nothing lost": every id reaches every sink at least once. The sink that failed may
// get some ids twice (at-least-once: what it received but did not acknowledge is sent again); the
// other sinks get nothing twice, because the receiver never re-sends a batch a handler accepted.
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpHandler } from '../../src/core/handlers/http';
import { mqttSpec } from '../../src/core/handlers/mqtt';
import { WialonHandler } from '../../src/core/handlers/wialon';
import { FlespiClient } from '../../src/core/flespi/client';
import { Receiver } from '../../src/core/receiver/receiver';
import { RestSource } from '../../src/core/sources/rest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { createTestPki, type TestPki } from '../support/certs';
import { startMosquitto, type RunningMosquitto } from '../support/mosquitto';
import { CHANNEL, HttpSink, Injector, Ledger, WialonSink, delay, mqttLedgerSubscriber, waitUntil } from './support';

/** How long a sink stays down. */
const SINK_OUTAGE_MS = 5000;
const TIMEOUT = { timeout: 90_000 };
const SINKS = ['http', 'mqtt', 'wialon'] as const;

let pki: TestPki;
let broker: RunningMosquitto;
let persistence: string;

before(async () => {
  pki = await createTestPki();
  persistence = await mkdtemp(join(tmpdir(), 'reliability-mosquitto-'));
  broker = await startMosquitto({
    tls: { caFile: pki.ca.cert, certFile: pki.server.cert, keyFile: pki.server.key, requireCertificate: true },
    // Sessions survive the restart, so the test subscriber misses nothing the broker accepted.
    extraConfig: ['persistence true', `persistence_location ${persistence}/`, 'max_queued_messages 100000'],
  });
});

after(async () => {
  await broker?.stop();
  await pki?.cleanup();
  if (persistence) await rm(persistence, { recursive: true, force: true });
});

interface Rig {
  ledger: Ledger;
  http: HttpSink;
  wialon: WialonSink;
  receiver: Receiver;
  injector: Injector;
  /** Waits until every injected id reached every sink (or times out), then asserts and reports. */
  finish(t: TestContext, faulted: (typeof SINKS)[number]): Promise<void>;
  close(): Promise<void>;
}

/** A sandbox, the three sinks, a receiver forwarding to all of them, and a steady stream of messages. */
async function rig(): Promise<Rig> {
  const sandbox: Sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const ledger = new Ledger(SINKS);
  const http = await new HttpSink(ledger, 'http').listen();
  const wialon = await new WialonSink(ledger, 'wialon').listen();
  const tls = { caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.client.key };
  const subscriber = await mqttLedgerSubscriber(broker.url, 'reliability/#', tls, ledger, 'mqtt');
  const mqtt = mqttSpec.create(
    { url: broker.url, ...tls, topic: 'reliability/{ident}', connectTimeoutMs: 1000, ackTimeoutMs: 2000 },
    { resolvePath: (p) => p },
    'mqtt',
  );
  const receiver = new Receiver({
    source: new RestSource({ client: new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl }), channelId: CHANNEL, limitCount: 100, timeout: 1 }),
    handlers: [
      new HttpHandler({ url: http.url, method: 'POST', headers: {}, timeoutMs: 2000 }, 'http'),
      mqtt,
      new WialonHandler({ host: '127.0.0.1', port: wialon.port, ackTimeoutMs: 1000, window: 16, connectTimeoutMs: 1000 }, 'wialon'),
    ],
    retry: { initialMs: 100, maxMs: 1000 },
  });
  const injector = new Injector({ restUrl: sandbox.restUrl, token: sandbox.token, epoch: 1 });
  await receiver.start();
  injector.start(20, 50);
  await waitUntil(
    () => ledger.distinct('http') >= 200,
    () => `warming up: ${ledger.summary(injector.injected)}`,
  );
  return {
    ledger,
    http,
    wialon,
    receiver,
    injector,
    async finish(t, faulted) {
      await delay(500); // a little more traffic after the sink came back
      await injector.stop();
      const expected = injector.injected;
      await ledger.waitForAll(expected, () => wialon.sync(), 40_000);
      wialon.sync();
      ledger.assertAllArrived(t, expected);
      for (const sink of SINKS) {
        if (sink !== faulted) assert.equal(ledger.duplicates(sink), 0, `${sink} was not down and got no batch twice`);
      }
      const stats = receiver.stats().handlers.find((h) => h.name === faulted)!;
      t.diagnostic(`${faulted}: ${stats.failures} failed attempts while it was down; duplicates at ${faulted}: ${ledger.duplicates(faulted)}`);
      assert.ok(stats.failures > 0, `the outage of ${faulted} was noticed and retried`);
      assert.equal(receiver.state, 'running', 'the receiver recovered by itself');
    },
    async close() {
      await injector.stop();
      await receiver.stop();
      await Promise.all([http.close(), wialon.close(), subscriber.close(), sandbox.stop()]);
    },
  };
}

test(`MQTT broker (Mosquitto, TLS) restarted after ${SINK_OUTAGE_MS} ms: everything arrives everywhere`, TIMEOUT, async (t) => {
  const r = await rig();
  try {
    await broker.stop();
    await delay(SINK_OUTAGE_MS);
    await broker.start();
    await r.finish(t, 'mqtt');
  } finally {
    await r.close();
  }
});

test(`Wialon receiver closes the connection mid-batch and stays away ${SINK_OUTAGE_MS} ms: everything arrives everywhere`, TIMEOUT, async (t) => {
  const r = await rig();
  try {
    r.wialon.sync();
    const before = r.ledger.total('wialon');
    r.wialon.receiver.closeConnectionsAfter(7); // the 7th packet from now is received but not acked
    await waitUntil(
      () => {
        r.wialon.sync();
        return r.ledger.total('wialon') >= before + 7;
      },
      () => 'the Wialon receiver got no packets',
    );
    await r.wialon.close();
    await delay(SINK_OUTAGE_MS);
    await r.wialon.restart();
    await r.finish(t, 'wialon');
  } finally {
    await r.close();
  }
});

test(`Wialon receiver stops acking for ${SINK_OUTAGE_MS} ms: everything arrives everywhere`, TIMEOUT, async (t) => {
  const r = await rig();
  try {
    r.wialon.receiver.pauseAcks();
    await delay(SINK_OUTAGE_MS);
    r.wialon.receiver.resumeAcks();
    await r.finish(t, 'wialon');
  } finally {
    await r.close();
  }
});

test(`HTTP endpoint answers 503 for ${SINK_OUTAGE_MS} ms: everything arrives everywhere`, TIMEOUT, async (t) => {
  const r = await rig();
  try {
    r.http.mode = 'unavailable';
    await delay(SINK_OUTAGE_MS);
    r.http.mode = 'accept';
    assert.ok(r.http.refused > 0, 'the endpoint refused requests while down');
    await r.finish(t, 'http');
  } finally {
    await r.close();
  }
});
