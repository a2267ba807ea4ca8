// `flespi-receiver doctor` through the real CLI (a child process): it passes against the sandbox, and
// each check fails or warns, saying what to do, against an injected fault: the sandbox's own fault
// switches, a fake flespi that passes everything on to the sandbox but the one answer under test, a
// scripted MQTT broker, and Mosquitto over TLS.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runDoctor } from '../../src/core/doctor';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { runCli } from '../reliability/support';
import { createTestPki, type TestPki } from '../support/certs';
import { startFakeFlespi, type FakeAnswer, type FakeFlespi, type FakeRequest } from '../support/fakeFlespi';
import { startFakeMqtt } from '../support/fakeMqtt';
import { startMosquitto } from '../support/mosquitto';

const CHANNEL = 1001;
const TIMEOUT = { timeout: 60_000 };
const CHECKS = ['token', 'channel', 'read-by-key', 'read-by-time', 'long-poll', 'mqtt', 'mqtt-share', 'clock', 'buffer', 'rate-limit'];

let sandbox: Sandbox;

before(async () => {
  // Two trackers per channel, twice a second each: messages keep arriving for the long-poll and MQTT checks.
  sandbox = await startSandbox({ restPort: 0, mqttPort: 0, devicesPerChannel: 2, rateHz: 2, simulate: true });
  sandbox.inject(CHANNEL, [
    { ident: 'doctor-test', 'position.speed': 12 },
    { ident: 'doctor-test', 'position.speed': 13 },
  ]);
});

after(async () => {
  await sandbox?.stop();
});

interface Doctor {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** The output line of each check, by name. */
  lines: Map<string, string>;
}

async function doctor(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Doctor> {
  const started = Date.now();
  const result = await runCli(['doctor', ...args], { env, timeoutMs: 55_000 });
  const lines = new Map<string, string>();
  for (const line of result.stdout.split('\n')) {
    const match = /^(PASS|WARN|FAIL|SKIP) {2}(\S+)/.exec(line);
    if (match) lines.set(match[2]!, line);
  }
  return { ...result, ms: Date.now() - started, lines };
}

/** The line of `check`, asserting its status. */
function line(result: Doctor, check: string, status: 'PASS' | 'WARN' | 'FAIL' | 'SKIP'): string {
  const text = result.lines.get(check);
  assert.ok(text, `no line for ${check}; stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  assert.ok(text.startsWith(`${status}  `), `${check} should be ${status}:\n${result.stdout}`);
  return text;
}

/** The sandbox's token and URLs, for a doctor run against it (or a fake in front of it). */
function sandboxArgs(restUrl = sandbox.restUrl, mqttUrl = sandbox.mqttUrl): { args: string[]; env: NodeJS.ProcessEnv } {
  return { args: [String(CHANNEL), '--base-url', restUrl, '--mqtt-url', mqttUrl], env: { FLESPI_TOKEN: sandbox.token } };
}

/** A fake flespi that passes every GET on to the sandbox (with the sandbox's token) unless a test scripts it. */
async function proxyToSandbox(t: { after(fn: () => Promise<void>): void }): Promise<FakeFlespi> {
  const fake = await startFakeFlespi();
  t.after(() => fake.close());
  fake.on('GET', /.*/, (request) => forward(request));
  return fake;
}

async function forward(request: FakeRequest, edit?: (body: Record<string, unknown>) => void): Promise<FakeAnswer> {
  const query = request.query.toString();
  const response = await fetch(`${sandbox.restUrl}${request.path}${query ? `?${query}` : ''}`, { headers: { Authorization: `FlespiToken ${sandbox.token}` } });
  const text = await response.text();
  if (!edit) return { status: response.status, body: text };
  const body = JSON.parse(text) as Record<string, unknown>;
  edit(body);
  return { status: response.status, body };
}

const messagesPath = `/gw/channels/${CHANNEL}/messages`;

test('doctor with no token checks the built-in sandbox: every check passes, exit code 0', TIMEOUT, async () => {
  const result = await doctor([]);
  assert.equal(result.status, 0, result.stdout + result.stderr);
  for (const check of CHECKS) line(result, check, 'PASS');
  assert.match(result.stdout, /^10 passed, 0 warnings, 0 failed in [\d.]+ s$/m);
  assert.match(result.stderr, /checking the built-in flespi sandbox/);
  assert.match(line(result, 'mqtt', 'PASS'), /without TLS \(a local sandbox, which has no TLS; flespi itself is mqtts:\/\/mqtt\.flespi\.io:8883\)/);
});

test('doctor against a sandbox by URL: every check passes with what it saw, and the token is printed nowhere', TIMEOUT, async () => {
  const { args, env } = sandboxArgs();
  const result = await doctor(args, env);
  assert.equal(result.status, 0, result.stdout + result.stderr);
  for (const check of CHECKS) line(result, check, 'PASS');
  assert.match(line(result, 'token', 'PASS'), /flespi accepted the token \(master, id \d+, account 1000001\)/);
  assert.match(line(result, 'channel', 'PASS'), /channel 1001 "sandbox-teltonika" \(teltonika\) is visible; not blocked/);
  assert.match(line(result, 'read-by-key', 'PASS'), /curr_key 0 returned the oldest message of the buffer and next_key 2\b/);
  assert.match(line(result, 'read-by-time', 'PASS'), /from \/ to \/ count gave [1-5] message\(s\) inside the range, oldest first/);
  assert.match(line(result, 'long-poll', 'PASS'), /answered after [\d.]+ s, as soon as a message arrived/);
  assert.match(line(result, 'mqtt', 'PASS'), /subscribed flespi\/message\/gw\/channels\/1001\/\+ \(granted QoS 1\); a message from ident \S+ arrived/);
  assert.match(line(result, 'mqtt-share', 'PASS'), /subscribed \$share\/doctor-[0-9a-f]+\/flespi\/message\/gw\/channels\/1001\/\+/);
  assert.doesNotMatch(result.stdout + result.stderr, new RegExp(sandbox.token));
  assert.ok(result.ms < 20_000, `took ${result.ms} ms`);
});

test('a wrong token: token fails with what to do, the checks that need it are skipped, exit code 1', TIMEOUT, async () => {
  const { args } = sandboxArgs();
  const result = await doctor(args, { FLESPI_TOKEN: 'not-the-sandbox-token' });
  assert.equal(result.status, 1);
  assert.match(
    line(result, 'token', 'FAIL'),
    /flespi rejected the token on GET \/auth\/info \(401.*— to do: check the token at https:\/\/flespi\.io\/#\/panel\/tokens/,
  );
  for (const check of ['channel', 'read-by-key', 'read-by-time', 'long-poll', 'mqtt', 'mqtt-share', 'buffer']) line(result, check, 'SKIP');
  assert.match(result.stdout, /1 failed.*: fix what failed, then run the doctor again$/m);
  assert.doesNotMatch(result.stdout + result.stderr, /not-the-sandbox-token/);
});

test("the token's ACL and expiry from /auth/info: an ACL without gw/channels warns, and so does an expire within days", TIMEOUT, async (t) => {
  const acl = await proxyToSandbox(t);
  acl.on('GET', '/auth/info', {
    body: { result: [{ id: 5, cid: 7, access: { type: 2, acl: [{ uri: 'gw/devices', methods: ['GET'] }] }, expire: 0, ttl: 86400 }] },
  });
  const narrow = await doctor(sandboxArgs(acl.url).args, sandboxArgs().env);
  assert.match(
    line(narrow, 'token', 'WARN'),
    /flespi accepted the token \(ACL, id 5, account 7\); ACL grants gw\/devices: none of them is gw\/channels — to do: give the token's ACL read access to gw\/channels/,
  );

  const expiring = await proxyToSandbox(t);
  expiring.on('GET', '/auth/info', { body: { result: [{ id: 6, cid: 7, access: { type: 0 }, expire: Math.floor(Date.now() / 1000) + 2 * 86400, ttl: 0 }] } });
  const soon = await doctor(sandboxArgs(expiring.url).args, sandboxArgs().env);
  assert.match(line(soon, 'token', 'WARN'), /flespi accepted the token \(standard, id 6, account 7\); it expires in [12]\.\d days .*— to do: extend it/);
  assert.equal(soon.status, 0);
});

test('a channel the sandbox blocked because its buffer is full fails the channel check, naming the block', TIMEOUT, async (t) => {
  const small = await startSandbox({ restPort: 0, mqttPort: 0, devicesPerChannel: 1, simulate: false, channelBufferBytes: 4096 });
  t.after(() => small.stop());
  for (let i = 0; i < 100 && small.store.channel(CHANNEL).item.blocked === 0; i++) {
    try {
      small.inject(CHANNEL, [{ ident: 'filler', 'payload.text': 'x'.repeat(200) }]);
    } catch {
      break; // a blocked channel refuses new messages
    }
  }
  assert.equal(small.store.channel(CHANNEL).item.blocked, 4, 'the sandbox blocked the full channel');
  const result = await doctor([String(CHANNEL), '--base-url', small.restUrl, '--mqtt-url', small.mqttUrl], { FLESPI_TOKEN: small.token });
  assert.equal(result.status, 1);
  assert.match(
    line(result, 'channel', 'FAIL'),
    /flespi has blocked it \(blocked 4: too much storage used\) — to do: a full buffer or an account limit blocks a channel/,
  );
});

test('an unknown channel fails the channel check and skips the checks that read it', TIMEOUT, async () => {
  const result = await doctor(['4242', '--base-url', sandbox.restUrl, '--mqtt-url', sandbox.mqttUrl], { FLESPI_TOKEN: sandbox.token });
  assert.equal(result.status, 1);
  assert.match(line(result, 'channel', 'FAIL'), /channel 4242 is not visible to this token \(404.*— to do: check the id/);
  for (const check of ['read-by-key', 'read-by-time', 'long-poll', 'mqtt', 'mqtt-share', 'buffer']) line(result, check, 'SKIP');
});

test(
  "an unknown channel answered 200 with errors (the sandbox's notFoundStatus 200) fails the channel check the same way, naming the form",
  TIMEOUT,
  async (t) => {
    const other = await startSandbox({ restPort: 0, mqttPort: 0, devicesPerChannel: 1, simulate: false, notFoundStatus: 200 });
    t.after(() => other.stop());
    const result = await doctor(['4242', '--base-url', other.restUrl, '--mqtt-url', other.mqttUrl], { FLESPI_TOKEN: other.token });
    assert.equal(result.status, 1);
    assert.match(line(result, 'channel', 'FAIL'), /channel 4242 is not visible to this token \(200 with errors: .*4242.*\)/);
  },
);

test('a sandbox without key-based reading (keyReading: false): read-by-key warns with the way out, long-poll is skipped, exit code 0', TIMEOUT, async (t) => {
  const byTime = await startSandbox({ restPort: 0, mqttPort: 0, devicesPerChannel: 2, rateHz: 2, keyReading: false });
  t.after(() => byTime.stop());
  const result = await doctor([String(CHANNEL), '--base-url', byTime.restUrl, '--mqtt-url', byTime.mqttUrl], { FLESPI_TOKEN: byTime.token });
  assert.equal(result.status, 0, result.stdout);
  assert.match(
    line(result, 'read-by-key', 'WARN'),
    /flespi refused key-based reading \(curr_key \/ limit_count\) with 400: .*\(code 2\) — to do: the REST source .* then reads by time instead/,
  );
  assert.match(line(result, 'long-poll', 'SKIP'), /flespi long-polls only key-based reads/);
  line(result, 'read-by-time', 'PASS');
  line(result, 'buffer', 'PASS');
});

test('time-based reading refused fails read-by-time; a range answered outside from/to fails it too', TIMEOUT, async (t) => {
  const refusing = await proxyToSandbox(t);
  refusing.on('GET', messagesPath, (request) =>
    request.data && ('reverse' in request.data || 'from' in request.data)
      ? { status: 400, body: { errors: [{ code: 2, reason: 'unknown field reverse' }] } }
      : forward(request),
  );
  const refused = await doctor(sandboxArgs(refusing.url).args, sandboxArgs().env);
  assert.equal(refused.status, 1);
  assert.match(
    line(refused, 'read-by-time', 'FAIL'),
    /flespi refused time-based reading \(reverse \/ count\) with 400: unknown field reverse.*— to do: messages history, the live tail backfill and the MQTT gap fill read by time/,
  );
  line(refused, 'read-by-key', 'PASS');

  const ignoring = await proxyToSandbox(t);
  ignoring.on('GET', messagesPath, (request) =>
    request.data && 'from' in request.data ? { body: { result: [{ ident: 'x', 'server.timestamp': 1_000_000_000 }] } } : forward(request),
  );
  const ignored = await doctor(sandboxArgs(ignoring.url).args, sandboxArgs().env);
  assert.equal(ignored.status, 1);
  assert.match(line(ignored, 'read-by-time', 'FAIL'), /returned messages outside the range \(server\.timestamp 1000000000\)/);
});

test('a long-poll that answers at once although timeout was given warns', TIMEOUT, async (t) => {
  const fake = await proxyToSandbox(t);
  fake.on('GET', messagesPath, (request) =>
    request.data && 'timeout' in request.data ? { body: { result: [], next_key: request.data.curr_key } } : forward(request),
  );
  const { args, env } = sandboxArgs(fake.url);
  const result = await doctor(args, env);
  assert.equal(result.status, 0);
  assert.match(
    line(result, 'long-poll', 'WARN'),
    /a long-poll with timeout 5 s answered empty after 0\.\d s: flespi does not wait — to do: a receiver at the end of the buffer then polls continually/,
  );
});

test(
  "clock skew against the server's Date header (the sandbox's clockOffsetMs): beyond the gap fills' 300 s it fails, 10 seconds warns",
  TIMEOUT,
  async (t) => {
    for (const [offsetS, status, pattern] of [
      [
        400,
        'FAIL',
        /the local clock is (39\d|40\d)\.\d s behind the server's .*more than the 300 s margin of the gap fills.*— to do: sync the local clock \(NTP\)/,
      ],
      [-10, 'WARN', /the local clock is (9|10|11)\.\d s ahead of the server's .*: times you enter .* are off by that much/],
    ] as const) {
      const shifted = await startSandbox({ restPort: 0, mqttPort: 0, devicesPerChannel: 2, rateHz: 2, clockOffsetMs: offsetS * 1000 });
      t.after(() => shifted.stop());
      const result = await doctor([String(CHANNEL), '--base-url', shifted.restUrl, '--mqtt-url', shifted.mqttUrl], { FLESPI_TOKEN: shifted.token });
      assert.match(line(result, 'clock', status), pattern);
      line(result, 'read-by-time', 'PASS');
      assert.equal(result.status, status === 'FAIL' ? 1 : 0, result.stdout);
    }
  },
);

test("a channel buffer near a free account's 100 MB warns, and so does one that will get there within messages_ttl", TIMEOUT, async (t) => {
  const full = await proxyToSandbox(t);
  full.on('GET', `/gw/channels/${CHANNEL}`, (request) =>
    forward(request, (body) => ((body.result as Record<string, unknown>[])[0]!.messages_size = 90 * 1024)),
  );
  const nearlyFull = await doctor(sandboxArgs(full.url).args, sandboxArgs().env);
  assert.equal(nearlyFull.status, 0);
  assert.match(
    line(nearlyFull, 'buffer', 'WARN'),
    /90\.0 MB in the buffer, 90% of the 100 MB a free account holds.*— to do: with delete off \(the default\) only messages_ttl empties it/,
  );

  // 10 MB in one hour with messages kept a day: about 240 MB by then.
  const filling = await proxyToSandbox(t);
  filling.on('GET', `/gw/channels/${CHANNEL}`, (request) =>
    forward(request, (body) => ((body.result as Record<string, unknown>[])[0]!.messages_size = 10 * 1024)),
  );
  filling.on('GET', messagesPath, (request) =>
    request.data?.curr_key === 0 && request.data.limit_count === 1
      ? forward(request, (body) => ((body.result as Record<string, unknown>[])[0]!['server.timestamp'] = Date.now() / 1000 - 3600))
      : forward(request),
  );
  const growing = await doctor(sandboxArgs(filling.url).args, sandboxArgs().env);
  assert.match(
    line(growing, 'buffer', 'WARN'),
    /10\.0 MB in the buffer.*86400 s of messages \(messages_ttl\) come to about 2\d\d\.\d MB, over a free account's 100 MB/,
  );
});

test(
  'a 429 from the sandbox fault switch: the request is retried after Retry-After and rate-limit warns; rate-limit headers are listed',
  TIMEOUT,
  async (t) => {
    sandbox.faults.inject('429', 1, { match: '/auth/info', retryAfter: 1 });
    const { args, env } = sandboxArgs();
    const limited = await doctor(args, env);
    assert.equal(limited.status, 0, limited.stdout);
    line(limited, 'token', 'PASS');
    assert.match(
      line(limited, 'rate-limit', 'WARN'),
      /flespi answered 429 \(too many requests\) 1 time\(s\) \(Retry-After 1\).*— to do: the account is near its API call limits/,
    );

    const fake = await proxyToSandbox(t);
    fake.on('GET', /.*/, async (request) => ({ ...(await forward(request)), headers: { 'X-RateLimit-Limit': '600', 'X-RateLimit-Remaining': '0' } }));
    const usedUp = await doctor(sandboxArgs(fake.url).args, env);
    assert.match(line(usedUp, 'rate-limit', 'WARN'), /the rate limit is used up \(headers seen: x-ratelimit-limit: 600, x-ratelimit-remaining: 0\)/);
  },
);

test('a server that never answers the message reads: those checks fail within their time limit and the run ends in seconds', TIMEOUT, async () => {
  sandbox.faults.inject('hang', 50, { match: '/messages' });
  try {
    const { args, env } = sandboxArgs();
    const result = await doctor(args, env);
    assert.equal(result.status, 1);
    assert.match(
      line(result, 'read-by-key', 'FAIL'),
      /no complete answer from http:\/\/127\.0\.0\.1:\d+ within 6\.0 s — to do: the server is slow or unreachable/,
    );
    assert.match(line(result, 'read-by-time', 'FAIL'), /within 6\.0 s/);
    line(result, 'long-poll', 'SKIP');
    line(result, 'mqtt', 'PASS');
    assert.ok(result.ms < 20_000, `took ${result.ms} ms`);
  } finally {
    sandbox.faults.clear();
  }
});

test('MQTT faults: a closed port, a refused token, a broker that never answers, a refused channel subscription and a refused $share', TIMEOUT, async (t) => {
  const { args, env } = sandboxArgs();
  const withBroker = (url: string) => [...args.slice(0, -1), url];

  const closed = await startFakeMqtt();
  const closedUrl = closed.url;
  await closed.close();
  const refusedPort = await doctor(withBroker(closedUrl), env);
  assert.equal(refusedPort.status, 1);
  assert.match(line(refusedPort, 'mqtt', 'FAIL'), /cannot connect to mqtt:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\) — to do: check the MQTT URL/);
  assert.match(line(refusedPort, 'mqtt-share', 'SKIP'), /no MQTT connection/);

  const badToken = await startFakeMqtt({ connack: 135 });
  t.after(() => badToken.close());
  const refusedToken = await doctor(withBroker(badToken.url), env);
  assert.match(line(refusedToken, 'mqtt', 'FAIL'), /refused the token \(CONNACK 135.*— to do: check the token/);
  assert.equal(badToken.usernames[0], sandbox.token, 'the token goes as the MQTT username');

  const silent = await startFakeMqtt({ connack: 'never' });
  t.after(() => silent.close());
  const silence = await doctor(withBroker(silent.url), env);
  assert.match(
    line(silence, 'mqtt', 'FAIL'),
    /accepted the connection but sent no CONNACK: no CONNACK within 8\.0 s — to do: check that the MQTT URL points at an MQTT broker/,
  );

  const noAccess = await startFakeMqtt({ suback: (topic) => (topic.startsWith('flespi/') ? 0x87 : 1) });
  t.after(() => noAccess.close());
  const refusedTopic = await doctor(withBroker(noAccess.url), env);
  assert.match(
    line(refusedTopic, 'mqtt', 'FAIL'),
    /refused the subscription of flespi\/message\/gw\/channels\/1001\/\+ \(SUBACK 135: not authorized\) — to do: the token has no access to channel 1001 over MQTT/,
  );

  const noShare = await startFakeMqtt({ suback: (topic) => (topic.startsWith('$share/') ? 0x9e : 1) });
  t.after(() => noShare.close());
  const refusedShare = await doctor(withBroker(noShare.url), env);
  assert.equal(refusedShare.status, 0, refusedShare.stdout);
  assert.match(line(refusedShare, 'mqtt', 'PASS'), /no message in 5\.0 s/);
  assert.match(
    line(refusedShare, 'mqtt-share', 'WARN'),
    /refused the subscription of \$share\/doctor-[0-9a-f]+\/flespi\/message\/gw\/channels\/1001\/\+ \(SUBACK 158\) — to do: do not set "group"/,
  );
  assert.ok(noShare.subscriptions.some((s) => s.startsWith('$share/doctor-')));
});

test('MQTT over TLS: an untrusted broker certificate fails; trusted (NODE_EXTRA_CA_CERTS), the connection passes as TLS', TIMEOUT, async (t) => {
  const pki: TestPki = await createTestPki();
  t.after(() => pki.cleanup());
  const broker = await startMosquitto({ tls: { caFile: pki.ca.cert, certFile: pki.server.cert, keyFile: pki.server.key, requireCertificate: false } });
  t.after(() => broker.stop());
  const { args, env } = sandboxArgs(sandbox.restUrl, broker.url);

  const untrusted = await doctor(args, env);
  assert.equal(untrusted.status, 1);
  assert.match(line(untrusted, 'mqtt', 'FAIL'), /TLS to mqtts:\/\/127\.0\.0\.1:\d+ failed: the broker's certificate is not trusted \(\w+\)/);

  const trusted = await doctor(args, { ...env, NODE_EXTRA_CA_CERTS: pki.ca.cert });
  assert.equal(trusted.status, 0, trusted.stdout);
  assert.match(
    line(trusted, 'mqtt', 'PASS'),
    /connected to 127\.0\.0\.1:\d+ over TLS; MQTT 5 connected, subscribed flespi\/message\/gw\/channels\/1001\/\+ \(granted QoS 1\)/,
  );
  line(trusted, 'mqtt-share', 'PASS');
});

test('text from the server reaches the terminal escaped, and a token it echoes is masked', TIMEOUT, async (t) => {
  const fake = await proxyToSandbox(t);
  fake.on('GET', `/gw/channels/${CHANNEL}`, (request) =>
    forward(request, (body) => ((body.result as Record<string, unknown>[])[0]!.name = 'evil\u001b]0;owned\u0007\u001b[2J')),
  );
  const named = await doctor(sandboxArgs(fake.url).args, sandboxArgs().env);
  assert.ok(!named.stdout.includes('\u001b') && !named.stdout.includes('\u0007'), 'no raw ESC or BEL reaches the terminal');
  assert.match(line(named, 'channel', 'PASS'), /"evil\\x1b\]0;owned\\x07\\x1b\[2J"/);

  const echo = await proxyToSandbox(t);
  echo.on('GET', '/auth/info', (request) => ({
    status: 403,
    body: { errors: [{ code: 403, reason: `token ${String(request.headers.authorization).replace(/^FlespiToken /, '')} is blocked` }] },
  }));
  const echoed = await doctor(sandboxArgs(echo.url).args, sandboxArgs().env);
  assert.match(line(echoed, 'token', 'FAIL'), /flespi refused GET \/auth\/info \(403: token <token> is blocked/);
  assert.doesNotMatch(echoed.stdout + echoed.stderr, new RegExp(sandbox.token));
});

test('doctor refuses a bad --mqtt-url and an option it does not take, in one line', TIMEOUT, async () => {
  const badUrl = await runCli(['doctor', '--mqtt-url', 'http://example.com'], { env: {} });
  assert.equal(badUrl.status, 2);
  assert.match(badUrl.stderr, /^flespi-receiver: --mqtt-url must be an MQTT URL such as mqtts:\/\/mqtt\.flespi\.io:8883, got "http:\/\/example\.com"\n$/);
  const badOption = await runCli(['doctor', '--pretty'], { env: {} });
  assert.equal(badOption.status, 2);
  assert.match(badOption.stderr, /--pretty is not an option of doctor: flespi-receiver doctor \[channel\] \[--mqtt-url url\]/);
});

test('the whole run is cut off at its deadline: checks still running then fail, and it returns in time', TIMEOUT, async (t) => {
  const slow = await startFakeFlespi();
  t.after(() => slow.close());
  slow.on('GET', /.*/, async (request) => ({ ...(await forward(request)), delayMs: 1_500 }));
  const report = await runDoctor({ restUrl: slow.url, token: sandbox.token, channel: String(CHANNEL), limits: { totalMs: 4_000 } });
  assert.ok(report.ms < 5_500, `took ${report.ms} ms`);
  assert.equal(report.ok, false);
  const cut = report.checks.filter((c) => c.status === 'fail' && /no result within|were up|did not finish/.test(c.finding));
  assert.ok(cut.length > 0, JSON.stringify(report.checks, null, 2));
  assert.equal(report.checks.find((c) => c.id === 'token')?.status, 'pass');
});
