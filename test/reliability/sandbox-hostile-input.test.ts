// Issue 11, case 6: no client input can crash or freeze the sandbox. The sandbox runs as its own
// process (`flespi-receiver sandbox`, simulated trackers on), and hostile clients talk to it over MQTT
// and REST while a well-behaved subscriber watches the stream: a `$filter/payload=` of 9,000 `!` used
// to pass parsing and overflow the stack on the next simulated message (the process died), and a
// REST filter `ident~"*a*a*a*a*a*a*a*a*a*a*a*b"` over a long ident used to block the event loop for
// as long as the RegExp backtracked (22 s at 30 characters; more than 100 s at 50).
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { matchMask, MAX_NESTING } from '../../src/sandbox/filter';
import { control, freePort, newToken, startCli, waitUntil } from './support';

const CHANNEL = 1001;

/** The anchored RegExp the sandbox used for masks, to check the new matcher against on small inputs. */
function maskRegExp(mask: string): RegExp {
  return new RegExp(
    `^${mask
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    's',
  );
}

test('matchMask agrees with the anchored RegExp on 20,000 random masks and texts (*, ?, literals, newlines)', () => {
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pick = (chars: string, max: number) => Array.from({ length: random(max + 1) }, () => chars[random(chars.length)]).join('');
  for (let i = 0; i < 20_000; i++) {
    const mask = pick('ab*?.', 7);
    const text = pick('ab.\n', 9);
    assert.equal(matchMask(mask, text), maskRegExp(mask).test(text), `mask ${JSON.stringify(mask)} on ${JSON.stringify(text)}`);
  }
});

interface RunningSandbox {
  restUrl: string;
  mqttUrl: string;
  token: string;
  alive(): boolean;
  stderr(): string;
  /** Messages a well-behaved MQTT subscriber of the channel got so far. */
  watched(): number;
}

/** `flespi-receiver sandbox` with one simulated tracker sending 20 messages a second, and a subscriber watching them. */
async function sandboxWithWatcher(t: TestContext): Promise<RunningSandbox> {
  const token = newToken();
  const restPort = await freePort();
  const mqttPort = await freePort();
  const cli = await startCli(['sandbox', '--rest-port', String(restPort), '--mqtt-port', String(mqttPort), '--token', token, '--devices', '1', '--rate', '20']);
  const alive = () => cli.child.exitCode === null && cli.child.signalCode === null;
  t.after(async () => {
    if (!alive()) return;
    cli.child.kill('SIGTERM');
    // A frozen event loop never runs the SIGTERM handler.
    const killer = setTimeout(() => cli.child.kill('SIGKILL'), 5000);
    await cli.exit;
    clearTimeout(killer);
  });
  await waitUntil(
    () => cli.stdout().includes('stop with Ctrl+C') || !alive(),
    () => `the sandbox did not start: ${cli.stderr()}`,
  );
  const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
  const watcher = await mqtt.connectAsync(mqttUrl, { username: token, reconnectPeriod: 0, protocolVersion: 5 });
  t.after(() => watcher.endAsync(true));
  let watched = 0;
  watcher.on('message', () => watched++);
  await watcher.subscribeAsync(`flespi/message/gw/channels/${CHANNEL}/#`, { qos: 0 });
  return { restUrl: `http://127.0.0.1:${restPort}`, mqttUrl, token, alive, stderr: cli.stderr, watched: () => watched };
}

/** Waits until the watcher got `count` more messages (or the sandbox died), then asserts it is alive. */
async function assertStreamGoesOn(sandbox: RunningSandbox, count: number): Promise<void> {
  const before = sandbox.watched();
  await waitUntil(
    () => sandbox.watched() >= before + count || !sandbox.alive(),
    () => `the watcher got ${sandbox.watched() - before} messages`,
  );
  assert.ok(sandbox.alive(), `the sandbox process died: ${sandbox.stderr().slice(0, 1000)}`);
}

test(
  'case 6: a $filter/payload= of 9,000 "!" is refused with a reason (MQTT 5 SUBACK 0x8F); the sandbox process and the stream go on',
  { timeout: 60_000 },
  async (t) => {
    const sandbox = await sandboxWithWatcher(t);
    const hostile = await mqtt.connectAsync(sandbox.mqttUrl, { username: sandbox.token, reconnectPeriod: 0, protocolVersion: 5 });
    t.after(() => hostile.endAsync(true));
    const deep = encodeURIComponent(`${'!'.repeat(9000)}ident`);
    let suback: { reasonCode?: number; reasonString?: string };
    try {
      const granted = await hostile.subscribeAsync(`$filter/payload=${deep}/flespi/message/gw/channels/#`, { qos: 1 });
      suback = { reasonCode: granted[0]?.qos };
    } catch (error) {
      const packet = (error as { packet?: { properties?: { reasonString?: string }; granted?: number[] } }).packet;
      suback = { reasonCode: packet?.granted?.[0], reasonString: packet?.properties?.reasonString };
    }
    t.diagnostic(`SUBACK: ${JSON.stringify(suback)}`);
    // Every simulated message is matched against every subscription: an accepted 9,000-deep filter overflowed the stack here.
    await assertStreamGoesOn(sandbox, 20);
    assert.equal(suback.reasonCode, 0x8f, 'topic filter invalid');
    assert.match(suback.reasonString ?? '', new RegExp(`nests deeper than ${MAX_NESTING} levels`));

    // REST: the same kind of expression is a 400 that says why.
    const deepRest = await fetch(
      `${sandbox.restUrl}/gw/channels/${CHANNEL}/messages?data=${encodeURIComponent(JSON.stringify({ filter: `${'!'.repeat(900)}ident` }))}`,
      { headers: { authorization: `FlespiToken ${sandbox.token}` } },
    );
    assert.equal(deepRest.status, 400);
    assert.match(await deepRest.text(), /nests deeper than 64 levels/);
    await assertStreamGoesOn(sandbox, 5);
  },
);

test('case 6: a REST filter ident~"*a*a*a*a*a*a*a*a*a*a*a*b" over a 50-character ident is answered, and the stream goes on', { timeout: 90_000 }, async (t) => {
  const sandbox = await sandboxWithWatcher(t);
  await control(sandbox.restUrl, sandbox.token, 'POST', `/sandbox/channels/${CHANNEL}/messages`, [{ ident: 'a'.repeat(50) }]);
  const ask = (filter: string, signal?: AbortSignal) =>
    fetch(`${sandbox.restUrl}/gw/channels/${CHANNEL}/messages?data=${encodeURIComponent(JSON.stringify({ filter }))}`, {
      headers: { authorization: `FlespiToken ${sandbox.token}` },
      signal,
    });
  const started = Date.now();
  let answer: Response;
  try {
    answer = await ask('ident~"*a*a*a*a*a*a*a*a*a*a*a*b"', AbortSignal.timeout(60_000)); // a liveness guard: with the RegExp this took hours
  } catch (error) {
    assert.fail(`no answer to the backtracking filter (${String(error)})`);
  }
  t.diagnostic(`the backtracking filter was answered in ${Date.now() - started} ms`);
  assert.equal(answer.status, 200);
  assert.deepEqual(JSON.parse(await answer.text()).result, []);
  const matching = await ask('ident~"*a*a*a*a*a*a*a*a*a*a*a*"');
  assert.equal(JSON.parse(await matching.text()).result.length, 1, 'the same mask ending in * still finds the ident');
  await assertStreamGoesOn(sandbox, 5);
});
