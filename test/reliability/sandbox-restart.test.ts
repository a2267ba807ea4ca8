// The flespi side dies: the sandbox process is SIGKILLed mid-stream and started again on the same
// ports with the same token, while messages keep coming in.
//
// What "nothing lost" means here. The sandbox keeps its channel buffer in memory, so what it held
// at the kill is gone with it (flespi's own buffer survives a restart; the sandbox's cannot):
// - every message the receiver had fetched before the kill reaches every sink;
// - every message injected after the restart reaches every sink, without anyone touching the receiver;
// - no poll after the restart asks for a key below the last checkpoint (acknowledged messages are
//   never requested again).
// Messages stored by the first run but not yet fetched are counted and reported, not asserted.
//
// The MQTT source keeps its position in the broker session, which dies with the sandbox too: on
// reconnecting it finds no session, subscribes again and reads what it missed over REST (gapFill,
// from the last server.timestamp it saw). Same promise: what it had received, and everything
// injected after the restart, reaches every sink; nothing handled before the kill comes again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiClient, type PollParams, type PollResult } from '../../src/core/flespi/client';
import { FlespiError } from '../../src/core/errors';
import { HttpHandler } from '../../src/core/handlers/http';
import { WialonHandler } from '../../src/core/handlers/wialon';
import { Receiver } from '../../src/core/receiver/receiver';
import { MqttSource } from '../../src/core/sources/mqtt';
import { RestSource } from '../../src/core/sources/rest';
import { CHANNEL, HttpSink, Injector, Ledger, WialonSink, delay, idsOf, startSandboxProcess, waitUntil, watchedSource, type SandboxProcess } from './support';

/** How long the sandbox stays dead. */
const DOWNTIME_MS = 1500;
const TIMEOUT = { timeout: 90_000 };

/** A real FlespiClient that remembers every curr_key it asked for and every id it got. */
class WatchedClient extends FlespiClient {
  readonly polls: { currKey: number; at: number }[] = [];
  readonly fetched = new Set<number>();

  override async pollChannelMessages(channelId: number, params: PollParams, signal?: AbortSignal): Promise<PollResult> {
    this.polls.push({ currKey: params.currKey, at: Date.now() });
    const result = await super.pollChannelMessages(channelId, params, signal);
    for (const id of idsOf(result.messages)) this.fetched.add(id);
    return result;
  }
}

let sandbox: SandboxProcess;

before(async () => {
  sandbox = await startSandboxProcess();
});

after(async () => {
  await sandbox?.stop();
});

test(
  'REST source: the sandbox is SIGKILLed mid-stream and restarted on the same ports; the receiver resumes by itself and every message it can still get arrives at every sink',
  TIMEOUT,
  async (t) => {
    const ledger = new Ledger(['http', 'wialon']);
    const http = await new HttpSink(ledger, 'http').listen();
    const wialon = await new WialonSink(ledger, 'wialon').listen();
    const client = new WatchedClient({ token: sandbox.token, baseUrl: sandbox.restUrl, timeoutMs: 1000 });
    const receiver = new Receiver({
      source: new RestSource({ client, channelId: CHANNEL, limitCount: 50, timeout: 1 }),
      handlers: [
        new HttpHandler({ url: http.url, method: 'POST', headers: {}, timeoutMs: 5000 }, 'http'),
        new WialonHandler({ host: '127.0.0.1', port: wialon.port, ackTimeoutMs: 2000, window: 16, connectTimeoutMs: 2000 }, 'wialon'),
      ],
      retry: { initialMs: 100, maxMs: 500 },
    });
    const sourceErrors: string[] = [];
    receiver.on('source-error', (e) => sourceErrors.push(e.error instanceof FlespiError ? e.error.kind : e.error.name));
    const injector = new Injector(sandbox);
    try {
      await receiver.start();
      injector.start(10, 25);
      await waitUntil(
        () => ledger.distinct('http') >= 300,
        () => `before the kill: ${ledger.summary(injector.injected)}`,
      );

      const checkpointAtKill = receiver.stats().lastCheckpoint?.currKey ?? 0;
      await sandbox.kill();
      const killedAt = Date.now();
      const fetchedBeforeKill = [...client.fetched];
      await delay(DOWNTIME_MS);
      assert.equal(receiver.state, 'retrying', 'the receiver reports that the source is failing');
      assert.ok(sourceErrors.includes('network'), `a network error was reported, got ${sourceErrors.join(', ')}`);

      await sandbox.restart();
      await waitUntil(
        () => injector.injected.filter((id) => injector.acceptedBy.get(id) === 2).length >= 300,
        () => 'the injector could not feed the restarted sandbox',
      );
      await injector.stop();

      const afterRestart = injector.injected.filter((id) => injector.acceptedBy.get(id) === 2);
      const expected = [...new Set([...fetchedBeforeKill, ...afterRestart])].sort((a, b) => a - b);
      const lostWithSandbox = injector.injected.filter((id) => injector.acceptedBy.get(id) === 1 && !client.fetched.has(id));
      t.diagnostic(
        `injected ${injector.injected.length} (${afterRestart.length} after the restart); fetched before the kill ${fetchedBeforeKill.length}; gone with the killed sandbox's memory (never fetched) ${lostWithSandbox.length}`,
      );
      await ledger.waitForAll(expected, () => wialon.sync(), 10_000);
      wialon.sync();
      // Bug 1 in docs/reliability.md (fixed): a restarted sandbox numbered keys from 1 again, below the
      // receiver's checkpoint; the CLI's sandbox now starts from a clock-based key.
      ledger.assertAllArrived(t, expected);
      const lowPolls = client.polls.filter((p) => p.at > killedAt && p.currKey < checkpointAtKill);
      assert.equal(lowPolls.length, 0, `after the restart no poll asks for a key below the checkpoint ${checkpointAtKill}`);
      assert.equal(receiver.state, 'running');
    } finally {
      await injector.stop();
      await receiver.stop();
      await Promise.all([http.close(), wialon.close()]);
    }
  },
);

test(
  'MQTT source: the sandbox (and its broker) is SIGKILLed mid-stream and restarted; the source reconnects, fills the gap over REST, and every message it can still get arrives at every sink',
  TIMEOUT,
  async (t) => {
    const channel = 1002; // not the REST case's channel, whose keys that case already used
    const ledger = new Ledger(['http', 'wialon']);
    const http = await new HttpSink(ledger, 'http').listen();
    const wialon = await new WialonSink(ledger, 'wialon').listen();
    const handedOut = new Set<number>();
    const states: string[] = [];
    const source = new MqttSource({
      url: `mqtt://127.0.0.1:${sandbox.mqttPort}`,
      token: sandbox.token,
      channelId: channel,
      clientId: `reliability-${Date.now()}`,
      batchMaxMessages: 50,
      batchMaxWaitMs: 50,
      reconnect: { initialMs: 100, maxMs: 500 },
      gapFill: { client: new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl, timeoutMs: 2000 }) },
      onState: (state, detail) => states.push(`${state}${detail ? ` (${detail})` : ''}`),
    });
    const receiver = new Receiver({
      source: watchedSource(source, handedOut),
      handlers: [
        new HttpHandler({ url: http.url, method: 'POST', headers: {}, timeoutMs: 5000 }, 'http'),
        new WialonHandler({ host: '127.0.0.1', port: wialon.port, ackTimeoutMs: 2000, window: 16, connectTimeoutMs: 2000 }, 'wialon'),
      ],
      retry: { initialMs: 100, maxMs: 500 },
    });
    const injector = new Injector(sandbox, channel);
    try {
      await receiver.start();
      injector.start(10, 25);
      await waitUntil(
        () => ledger.distinct('http') >= 300,
        () => `before the kill: ${ledger.summary(injector.injected)}`,
      );

      wialon.sync();
      const hadBeforeKill = new Map(ledger.sinkNames.map((sink) => [sink, ledger.ids(sink)]));
      await sandbox.kill();
      const handedOutBeforeKill = [...handedOut];
      await delay(DOWNTIME_MS);
      await sandbox.restart();
      const restartEpoch = sandbox.epoch;
      await waitUntil(
        () => injector.injected.filter((id) => injector.acceptedBy.get(id) === restartEpoch).length >= 300,
        () => 'the injector could not feed the restarted sandbox',
      );
      await injector.stop();

      const afterRestart = injector.injected.filter((id) => injector.acceptedBy.get(id) === restartEpoch);
      const expected = [...new Set([...handedOutBeforeKill, ...afterRestart])].sort((a, b) => a - b);
      const lostWithSandbox = injector.injected.filter((id) => injector.acceptedBy.get(id) !== restartEpoch && !handedOut.has(id));
      await ledger.waitForAll(expected, () => wialon.sync(), 15_000);
      wialon.sync();
      t.diagnostic(
        `injected ${injector.injected.length} (${afterRestart.length} after the restart); handed out before the kill ${handedOutBeforeKill.length}; gone with the killed sandbox (never received) ${lostWithSandbox.length}; filled over REST ${source.stats.gapFilled}, reconnects ${source.stats.reconnects}`,
      );
      t.diagnostic(`source states: ${states.join(' → ')}`);
      ledger.assertAllArrived(t, expected);
      for (const [sink, had] of hadBeforeKill) {
        const again = had.filter((id) => ledger.count(sink, id) > 1);
        assert.equal(again.length, 0, `${sink}: nothing it had before the kill came again (${again.length} did)`);
      }
      assert.ok(
        states.some((s) => s.startsWith('connected (new session)')) && states.filter((s) => s.startsWith('connected')).length >= 2,
        'the source reconnected by itself to a broker without its session',
      );
    } finally {
      await injector.stop();
      await receiver.stop();
      await Promise.all([http.close(), wialon.close()]);
    }
  },
);
