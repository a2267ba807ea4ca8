/** The tail's host side against the sandbox: real REST backfill, real MQTT, a real reconnect. */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { generate, parser as createParser } from 'mqtt-packet';
import { FlespiClient } from '../../src/core/flespi/client';
import { silentLogger } from '../../src/core/logger';
import type { FlespiMessage } from '../../src/core/message';
import { TailModel } from '../../src/extension/tail/tailModel';
import { channelTopic } from '../../src/core/flespi/subscription';
import { TailSession, type TailSessionOptions } from '../../src/extension/tail/tailSession';
import type { ConnectionState } from '../../src/shared/tailProtocol';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';

let sandbox: Sandbox;
const CHANNEL = 1001;

before(async () => {
  sandbox = await startSandbox({ simulate: false, seed: 1 });
});

/** Every session the tests started: a test that fails half-way must not leave a client reconnecting to the stopped sandbox. */
const sessions: TailSession[] = [];

after(async () => {
  await Promise.all(sessions.map((session) => session.stop()));
  await sandbox?.stop();
  await assertNothingLeftRunning();
});

/**
 * Once every session and the sandbox are stopped, no socket, server or timer may remain (closing
 * handles take a moment to go). Otherwise this file's process would never exit; this names what
 * keeps it alive instead.
 */
async function assertNothingLeftRunning(): Promise<void> {
  const running = () => process.getActiveResourcesInfo().filter((kind) => /^(TCP|Timeout|Immediate)/.test(kind));
  const deadline = Date.now() + 10_000;
  while (running().length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(running(), [], 'a session or the sandbox left these running after stop()');
}

/** Fails instead of hanging when a promise never settles. */
async function settlesWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A session wired to a TailModel the way TailPanel wires it, recording states and notices. */
function tail(options: Partial<TailSessionOptions> = {}) {
  const model = new TailModel({ bufferSize: 1000 });
  const states: Array<{ state: ConnectionState; detail: string }> = [];
  const notices: string[] = [];
  const origins: string[] = [];
  const waiters: Array<() => void> = [];
  const changed = () => waiters.splice(0).forEach((wake) => wake());
  const session = new TailSession(
    {
      channelId: CHANNEL,
      mqttUrl: sandbox.mqttUrl,
      token: sandbox.token,
      client: new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl }),
      backfill: 3,
      gapLimit: 1000,
      filter: '',
      lastServerTimestamp: () => model.lastServerTimestamp(),
      log: silentLogger,
      reconnectPeriodMs: 100,
      ...options,
    },
    {
      messages(messages, origin) {
        origins.push(`${origin}:${messages.length}`);
        const added = model.add(messages, { dedupe: origin !== 'live' }).length;
        changed();
        return added;
      },
      state(state, detail) {
        states.push({ state, detail });
        changed();
      },
      notice(_level, text) {
        notices.push(text);
        changed();
      },
    },
  );
  sessions.push(session);
  /** Resolves once the condition holds (re-checked on every event); fails with what happened if it never does. */
  const until = async (condition: () => boolean): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`condition never held; states: ${JSON.stringify(states)}, notices: ${JSON.stringify(notices)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  };
  const values = (key: string) => model.all().map((i) => i.message[key]);
  return { session, model, states, notices, origins, until, values, lastState: () => states.at(-1)?.state };
}

function injectN(values: number[], extra: Partial<FlespiMessage> = {}) {
  return sandbox.inject(
    CHANNEL,
    values.map((n) => ({ ident: '352625333222111', 'position.speed': n, seq: n, ...extra })),
  );
}

test('backfills the newest N over REST, oldest first, then goes live over MQTT', async () => {
  injectN([1, 2, 3, 4, 5]);
  const t = tail({ backfill: 3 });
  t.session.start();
  try {
    assert.equal(t.states[0].state, 'connecting');
    await t.until(() => t.lastState() === 'live');
    assert.deepEqual(t.values('seq'), [3, 4, 5]);
    assert.equal(t.origins[0], 'backfill:3');
    injectN([6, 7]);
    await t.until(() => t.model.counters().received === 5);
    assert.deepEqual(t.values('seq'), [3, 4, 5, 6, 7]);
    assert.deepEqual(t.origins.slice(1), ['live:1', 'live:1']);
  } finally {
    await t.session.stop();
  }
});

test('after the connection drops it reconnects, fills the gap over REST without duplicates, and says so', async () => {
  const t = tail({ backfill: 2 });
  t.session.start();
  try {
    await t.until(() => t.lastState() === 'live');
    injectN([100, 101]);
    await t.until(() => t.values('seq').includes(101));
    const before = t.model.counters().received;
    // Cut the connection and store messages while the tail is away.
    sandbox.faults.dropMqttClients();
    injectN([102, 103, 104]);
    await t.until(() => t.notices.some((n) => n.startsWith('Reconnected')));
    assert.ok(
      t.states.some((s) => s.state === 'reconnecting'),
      'the drop showed as reconnecting',
    );
    assert.equal(t.notices.at(-1), 'Reconnected: filled 3 messages missed while offline.');
    await t.until(() => t.lastState() === 'live');
    assert.deepEqual(t.values('seq').slice(-5), [100, 101, 102, 103, 104]);
    assert.equal(t.model.counters().received, before + 3, 'the last message seen before the drop came back over REST and was not added twice');
    injectN([105]);
    await t.until(() => t.values('seq').includes(105));
  } finally {
    await t.session.stop();
  }
});

test('a server-side filter applies to both the backfill and the live subscription', async () => {
  injectN([10, 70, 20, 90], { tag: 'filtered' });
  const filter = 'position.speed>60';
  const t = tail({ backfill: 2, filter });
  assert.equal(t.session.topic, `$filter/payload=position.speed%3E60/flespi/message/gw/channels/${CHANNEL}/+`);
  t.session.start();
  try {
    await t.until(() => t.lastState() === 'live');
    assert.deepEqual(t.values('seq'), [70, 90]);
    assert.match(t.states.at(-1)?.detail ?? '', /position\.speed>60/);
    injectN([30, 65, 40, 99]);
    await t.until(() => t.values('seq').includes(99));
    assert.deepEqual(t.values('seq'), [70, 90, 65, 99]);
  } finally {
    await t.session.stop();
  }
});

test('an invalid filter expression: flespi refuses the subscription and the state says what to fix', async () => {
  const t = tail({ filter: 'position.speed >>> 60' });
  t.session.start();
  try {
    await t.until(() => t.lastState() === 'offline');
    // The filter as the user typed it, not the URL-encoded topic.
    assert.match(
      t.states.at(-1)?.detail ?? '',
      /refused the subscription to the messages of channel \d+ with the server filter position\.speed >>> 60: .* Check the server filter expression\./,
    );
  } finally {
    await t.session.stop();
  }
});

test('a wrong token ends offline with the broker refusal, without retrying', async () => {
  const t = tail({ token: 'x'.repeat(64) });
  t.session.start();
  try {
    await t.until(() => t.lastState() === 'offline');
    assert.match(t.states.at(-1)?.detail ?? '', /refused the MQTT connection: .*Check the token/);
    const count = t.states.length;
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(t.states.length, count, 'no reconnect attempts after a refusal');
  } finally {
    await t.session.stop();
  }
});

test('stop unsubscribes: nothing arrives afterwards', async () => {
  const t = tail({ backfill: 0 });
  t.session.start();
  await t.until(() => t.lastState() === 'live');
  injectN([200]);
  await t.until(() => t.model.counters().received === 1);
  await t.session.stop();
  const states = t.states.length;
  // A second session that is still subscribed proves the message below was published.
  const witness = tail({ backfill: 0 });
  witness.session.start();
  try {
    await witness.until(() => witness.lastState() === 'live');
    injectN([201]);
    await witness.until(() => witness.model.counters().received === 1);
    assert.equal(t.model.counters().received, 1);
    assert.equal(t.states.length, states, 'no state changes after stop');
  } finally {
    await witness.session.stop();
  }
});

/**
 * A real MQTT 5 server that stops cooperating after CONNACK, the way a broker behind a dead network
 * looks: it never answers SUBSCRIBE (or only that), and never closes its side of the connection.
 */
async function startUnresponsiveBroker(answersSubscribe: boolean) {
  const sockets: Socket[] = [];
  const received: string[] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.push(socket);
    const parser = createParser({ protocolVersion: 5 });
    parser.on('packet', (packet) => {
      received.push(packet.cmd);
      if (packet.cmd === 'connect') socket.write(generate({ cmd: 'connack', reasonCode: 0, sessionPresent: false }, { protocolVersion: 5 }));
      if (packet.cmd === 'subscribe' && answersSubscribe)
        socket.write(generate({ cmd: 'suback', messageId: packet.messageId, granted: [0] }, { protocolVersion: 5 }));
    });
    socket.on('data', (data) => parser.parse(data));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets,
    received,
    /** The client closed its side (this server never closes its own). */
    ended: (socket: Socket) => new Promise<void>((resolve) => (socket.readableEnded ? resolve() : socket.once('end', () => resolve()))),
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('stop closes the connection and resolves even when the broker stops answering', async () => {
  for (const answersSubscribe of [false, true]) {
    const broker = await startUnresponsiveBroker(answersSubscribe);
    const t = tail({ mqttUrl: broker.url, backfill: 0, reconnectPeriodMs: 50 });
    try {
      t.session.start();
      // Unanswered, the SUBSCRIBE stays in flight; answered, the tail goes live and the broker then ignores DISCONNECT.
      await t.until(() => broker.received.includes('subscribe') && (!answersSubscribe || t.lastState() === 'live'));
      await settlesWithin(t.session.stop(), 15_000, `stop() (broker ${answersSubscribe ? 'ignoring DISCONNECT' : 'not answering SUBSCRIBE'})`);
      await settlesWithin(broker.ended(broker.sockets[0]), 15_000, 'the client closing the connection');
      if (answersSubscribe) assert.equal(broker.received.at(-1), 'disconnect', 'a live tail says goodbye before it closes');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(broker.sockets.length, 1, 'no reconnect after stop');
    } finally {
      await t.session.stop();
      await broker.stop();
    }
  }
});

test('stop while reconnecting ends the retries; a stopped session cannot be started again', async () => {
  const t = tail({ backfill: 0, reconnectPeriodMs: 50 });
  t.session.start();
  try {
    await t.until(() => t.lastState() === 'live');
    sandbox.faults.dropMqttClients();
    await t.until(() => t.lastState() === 'reconnecting');
    await settlesWithin(t.session.stop(), 15_000, 'stop() while reconnecting');
    const states = t.states.length;
    t.session.start();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(sandbox.faults.dropMqttClients(), 0, 'no client of the stopped session is connected');
    assert.equal(t.states.length, states, 'no state changes after stop');
  } finally {
    await t.session.stop();
  }
});

test('topic: the filter expression is URL-encoded, so MQTT wildcards in it stay literal', () => {
  assert.equal(channelTopic(5, { filter: '' }), 'flespi/message/gw/channels/5/+');
  assert.equal(channelTopic(5, { filter: 'ident=="a/+#"' }), '$filter/payload=ident%3D%3D%22a%2F%2B%23%22/flespi/message/gw/channels/5/+');
});

test('a broker that closes every connection before CONNACK: the tail keeps retrying at its pace, and stop ends it', async () => {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const t = tail({ mqttUrl: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, backfill: 0, reconnectPeriodMs: 50 });
  try {
    t.session.start();
    await t.until(() => sockets.length >= 3);
    assert.match(t.states.at(-1)?.detail ?? '', /Cannot reach 127\.0\.0\.1:\d+|Reconnecting to 127\.0\.0\.1:\d+/);
    await settlesWithin(t.session.stop(), 15_000, 'stop() while retrying');
    const attempts = sockets.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(sockets.length, attempts, 'no attempt after stop');
  } finally {
    await t.session.stop();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
