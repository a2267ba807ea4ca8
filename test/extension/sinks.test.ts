import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { handlerTypes } from '../../src/core/handlers/registry';
import { ConfigError } from '../../src/core/options';
import { handlerTemplate } from '../../src/extension/custom/scaffold';
import { createSinkHandler, UntrustedCodeError } from '../../src/extension/sinks/createSinkHandler';
import { connectOnce, deliverOnce } from '../../src/core/deliver';
import { answerValue, fieldProblem, SINK_TYPES, validateSinkName, type SinkField } from '../../src/extension/sinks/sinkFields';
import { handlerEntry, missingSecrets, parseSinks, splitSecrets, type SinkSetting } from '../../src/extension/sinks/sinkModel';
import { sinkOptions } from '../../src/extension/sinks/sinkSchema';

async function withDir<T>(run: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'flespi-sinks-'));
  try {
    return await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function listen(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function body(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

test('sink settings: valid entries pass, every broken one gets one problem line', () => {
  const { sinks, problems } = parseSinks([
    { name: 'a', type: 'http', url: 'https://x' },
    'nope',
    { type: 'mqtt' },
    { name: 'b' },
    { name: 'a', type: 'stdout' },
    { name: 'c', type: 'wialon', host: 'h', port: 1 },
  ]);
  assert.deepEqual(
    sinks.map((s) => s.name),
    ['a', 'c'],
  );
  assert.deepEqual(problems, [
    'flespi.sinks[1]: must be an object like { "name": "my-sink", "type": "http", ... }',
    'flespi.sinks[2]: "name" is required (a unique name for the sink)',
    'flespi.sinks[3] ("b"): "type" is required',
    'flespi.sinks[4]: another sink is named "a" too: sink names must be unique',
  ]);
  assert.deepEqual(parseSinks({}).problems, ['flespi.sinks must be a list of sink objects']);
  assert.deepEqual(parseSinks(undefined), { sinks: [], problems: [] });
});

test('sink settings: secrets are split off the setting and merged back only into the handler entry', () => {
  const collected: SinkSetting = { name: 'hook', type: 'http', url: 'https://example.com/in', headers: { 'X-Source': 'flespi' } };
  const { setting, secrets } = splitSecrets(collected, { Authorization: 'Bearer s3cret' }, undefined);
  assert.ok(!JSON.stringify(setting).includes('s3cret'), 'the setting carries no secret value');
  assert.deepEqual(setting.secretHeaders, ['Authorization']);
  assert.deepEqual(handlerEntry(setting, secrets), {
    type: 'http',
    name: 'hook',
    url: 'https://example.com/in',
    headers: { 'X-Source': 'flespi', Authorization: 'Bearer s3cret' },
  });

  const mqtt = splitSecrets({ name: 'broker', type: 'mqtt', url: 'mqtts://b:8883', username: 'u' }, {}, 'pw');
  assert.equal(mqtt.setting.secretPassword, true);
  assert.ok(!JSON.stringify(mqtt.setting).includes('pw"'));
  assert.deepEqual(handlerEntry(mqtt.setting, mqtt.secrets), { type: 'mqtt', name: 'broker', url: 'mqtts://b:8883', username: 'u', password: 'pw' });

  assert.deepEqual(splitSecrets({ name: 'plain', type: 'wialon', host: 'h', port: 1 }, {}, undefined).secrets, undefined);
});

test('sink settings: a secret that the marker promises but the secret storage lacks is named', () => {
  const setting: SinkSetting = { name: 'hook', type: 'http', url: 'https://x', secretHeaders: ['Authorization', 'X-Key'], secretPassword: true };
  assert.deepEqual(missingSecrets(setting, { headers: { Authorization: 'a' } }), ['header X-Key', 'password']);
  assert.throws(
    () => handlerEntry(setting, undefined),
    /sink "hook": the header Authorization and header X-Key and password are not in this machine's secret storage/,
  );
});

test('sink handler: an HTTP sink built from settings + stored secret posts the batch with the secret header', async () => {
  const received: { authorization?: string; source?: string; body: unknown }[] = [];
  const server = createServer((request, response) => {
    void (async () => {
      received.push({ authorization: request.headers.authorization, source: request.headers['x-source'] as string, body: JSON.parse(await body(request)) });
      response.writeHead(200).end();
    })();
  });
  const url = await listen(server);
  try {
    const { setting, secrets } = splitSecrets(
      { name: 'hook', type: 'http', url: `${url}/in`, headers: { 'X-Source': 'flespi' } },
      { Authorization: 'Bearer s3cret' },
      undefined,
    );
    const handler = await createSinkHandler(setting, secrets, { baseDir: tmpdir(), allowCustomCode: false });
    const messages = [
      { ident: 'a', timestamp: 1 },
      { ident: 'b', timestamp: 2 },
    ];
    const outcome = await deliverOnce(handler, messages, { timeoutMs: 10_000 });
    assert.deepEqual({ acknowledged: outcome.acknowledged, errors: outcome.errors }, { acknowledged: 2, errors: [] });
    assert.deepEqual(received, [{ authorization: 'Bearer s3cret', source: 'flespi', body: messages }]);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('sink handler: a send that gets no answer ends at the deadline with the reason', async () => {
  const server = createServer(() => {}); // accepts and never answers
  const url = await listen(server);
  try {
    const handler = await createSinkHandler({ name: 'silent', type: 'http', url, timeoutMs: 600_000 }, undefined, {
      baseDir: tmpdir(),
      allowCustomCode: false,
    });
    const outcome = await deliverOnce(handler, [{ ident: 'a' }], { timeoutMs: 300 });
    assert.equal(outcome.acknowledged, 0);
    assert.deepEqual(outcome.errors, ['no answer within 0.3 s']);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test("sink handler: the extension's stdout sink appends NDJSON to a file, by default under flespi-output/", async () => {
  await withDir(async (dir) => {
    const handler = await createSinkHandler({ name: 'my log', type: 'stdout' }, undefined, { baseDir: dir, allowCustomCode: false });
    const outcome = await deliverOnce(handler, [{ ident: 'a' }, { ident: 'b' }], { timeoutMs: 5000 });
    assert.deepEqual(outcome.errors, []);
    assert.equal(await readFile(join(dir, 'flespi-output', 'my_log.ndjson'), 'utf8'), '{"ident":"a"}\n{"ident":"b"}\n');
    await assert.rejects(
      createSinkHandler({ name: 'x', type: 'stdout', colour: 'red' }, undefined, { baseDir: dir, allowCustomCode: false }),
      /unknown setting "colour"/,
    );
  });
});

test('sink handler: custom code runs only when the workspace is trusted', async () => {
  await withDir(async (dir) => {
    await mkdir(join(dir, 'flespi-handlers'));
    await writeFile(join(dir, 'flespi-handlers', 'Keep.ts'), handlerTemplate('Keep'));
    const sink: SinkSetting = { name: 'Keep', type: 'custom', file: 'flespi-handlers/Keep.ts', options: { outputFile: join(dir, 'kept.ndjson') } };
    await assert.rejects(
      createSinkHandler(sink, undefined, { baseDir: dir, allowCustomCode: false }),
      (error: unknown) => error instanceof UntrustedCodeError && /not trusted: trust the workspace/.test(error.message),
    );
    const handler = await createSinkHandler(sink, undefined, { baseDir: dir, allowCustomCode: true });
    assert.deepEqual((await deliverOnce(handler, [{ ident: 'z' }], { timeoutMs: 5000 })).errors, []);
    assert.equal(await readFile(join(dir, 'kept.ndjson'), 'utf8'), '{"ident":"z"}\n');
  });
});

test('sink test: a Wialon receiver that cannot be reached fails the connection test, a listening one passes', async () => {
  const tcp = createTcpServer((socket) => socket.on('error', () => {}));
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  const port = (tcp.address() as AddressInfo).port;
  try {
    const up = await connectOnce(
      await createSinkHandler({ name: 'w', type: 'wialon', host: '127.0.0.1', port }, undefined, { baseDir: tmpdir(), allowCustomCode: false }),
      { timeoutMs: 5000 },
    );
    assert.equal(up.error, undefined);
  } finally {
    tcp.close();
  }
  await once(tcp, 'close');
  const down = await connectOnce(
    await createSinkHandler({ name: 'w', type: 'wialon', host: '127.0.0.1', port, connectTimeoutMs: 2000 }, undefined, {
      baseDir: tmpdir(),
      allowCustomCode: false,
    }),
    { timeoutMs: 5000 },
  );
  assert.match(down.error ?? '', /^started, but not connected/);
});

test('sink test: an HTTP sink is reached with an empty batch; nothing listening, or a refusal, fails the test', async () => {
  const requests: { method?: string; body: string; authorization?: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method, body: Buffer.concat(chunks).toString('utf8'), authorization: req.headers.authorization });
      if (req.headers.authorization !== 'Bearer right') res.writeHead(401).end('who are you');
      else res.writeHead(202).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/in`;
  const http = (authorization: string) =>
    createSinkHandler({ name: 'h', type: 'http', url, headers: { Authorization: authorization } }, undefined, { baseDir: tmpdir(), allowCustomCode: false });
  try {
    const ok = await connectOnce(await http('Bearer right'), { timeoutMs: 5000 });
    assert.equal(ok.error, undefined);
    assert.equal(ok.answer, `${url} answered 202 Accepted to POST [] (an empty batch, no messages)`);
    const refused = await connectOnce(await http('Bearer wrong'), { timeoutMs: 5000 });
    assert.match(refused.error ?? '', /answered 401 Unauthorized: who are you \(check the credentials/);
    assert.deepEqual(requests, [
      { method: 'POST', body: '[]', authorization: 'Bearer right' },
      { method: 'POST', body: '[]', authorization: 'Bearer wrong' },
    ]);
  } finally {
    server.close();
  }
  await once(server, 'close');
  const down = await connectOnce(await http('Bearer right'), { timeoutMs: 5000 });
  assert.match(down.error ?? '', /^cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  assert.equal(down.answer, undefined);
});

test('add sink: every type the flow offers is one the registry builds, and each answer is checked by the handler itself', async () => {
  assert.deepEqual(SINK_TYPES.map((t) => t.type).sort(), [...handlerTypes].sort());
  const field = (type: string, key: string): SinkField => SINK_TYPES.find((t) => t.type === type)!.fields.find((f) => f.key === key)!;
  const problem = async (sink: SinkSetting, f: SinkField) => {
    try {
      await createSinkHandler(sink, undefined, { baseDir: tmpdir(), allowCustomCode: sink.type === 'custom' });
      return undefined;
    } catch (error) {
      return fieldProblem(f, error);
    }
  };
  assert.match((await problem({ name: 'h', type: 'http', url: 'ftp://x' }, field('http', 'url'))) ?? '', /^"url" must start with http:\/\/ or https:\/\//);
  assert.equal(await problem({ name: 'h', type: 'http', url: 'https://x' }, field('http', 'url')), undefined);
  // While the host is typed, the missing port is a later field's business.
  assert.equal(await problem({ name: 'w', type: 'wialon', host: 'example.com' }, field('wialon', 'host')), undefined);
  assert.match(
    (await problem({ name: 'w', type: 'wialon', host: 'example.com:20163' }, field('wialon', 'host'))) ?? '',
    /"host" must be a host name or IP address only/,
  );
  assert.match(
    (await problem({ name: 'w', type: 'wialon', host: 'h', port: 70000 }, field('wialon', 'port'))) ?? '',
    /"port" must be an integer from 1 to 65535/,
  );
  assert.throws(
    () => answerValue(field('wialon', 'port'), 'abc'),
    (e: unknown) => e instanceof ConfigError && fieldProblem(field('wialon', 'port'), e) === '"port" must be a whole number, got "abc"',
  );
  assert.match((await problem({ name: 'm', type: 'mqtt', url: 'mqtt://u:p@b' }, field('mqtt', 'url'))) ?? '', /must not contain credentials/);
  assert.match(
    (await problem({ name: 'a', type: 'aws-iot', endpoint: 'https://abc.iot' }, field('aws-iot', 'endpoint'))) ?? '',
    /"endpoint" must be the host name/,
  );
  assert.match(
    (await problem({ name: 'a', type: 'aws-iot', endpoint: 'abc.iot', port: 0 }, field('aws-iot', 'port'))) ?? '',
    /"port" must be an integer from 1 to 65535/,
  );
  // A custom handler's options: JSON that does not parse, or JSON that is not an object, is named.
  const options = field('custom', 'options');
  assert.deepEqual(answerValue(options, '{"retries": 3}'), { retries: 3 });
  assert.throws(
    () => answerValue(options, '{retries: 3}'),
    (e: unknown) => e instanceof ConfigError && /^"options" must be a JSON object like/.test(fieldProblem(options, e) ?? ''),
  );
  assert.match((await problem({ name: 'c', type: 'custom', file: 'h.ts', options: [1] }, options)) ?? '', /"options" must be an object/);
});

test('add sink: TLS files are asked only where they apply', () => {
  const asked = (type: string, options: Record<string, unknown>) =>
    SINK_TYPES.find((t) => t.type === type)!
      .fields.filter((f) => !f.askIf || f.askIf(options))
      .map((f) => f.key);
  assert.deepEqual(asked('mqtt', { url: 'mqtt://broker' }), ['url', 'topic', 'username']);
  assert.deepEqual(asked('mqtt', { url: 'mqtts://broker', username: 'u' }), ['url', 'topic', 'username', 'password', 'caFile', 'certFile']);
  assert.deepEqual(asked('mqtt', { url: 'wss://broker', certFile: 'c.pem' }), ['url', 'topic', 'username', 'caFile', 'certFile', 'keyFile']);
  assert.deepEqual(asked('aws-iot', {}), ['endpoint', 'port', 'caFile', 'certFile', 'keyFile', 'topic']);
  // Optional files can be skipped from the quick pick, which says what applies then.
  for (const type of SINK_TYPES)
    for (const f of type.fields) if (f.kind === 'file' && f.optional) assert.ok(f.skipLabel, `${type.type}.${f.key} has no skip label`);
});

test('add sink: each question is an option of its sink type, asked with the input its type takes, and may be left empty exactly when the option is optional (unless asked only after another answer)', () => {
  const inputFor: Record<SinkField['kind'], string> = {
    text: 'string',
    file: 'string',
    password: 'string',
    integer: 'integer',
    secretHeader: 'stringMap',
    json: 'object',
  };
  let questions = 0;
  for (const type of SINK_TYPES) {
    const { settings, handler } = sinkOptions(type.type);
    for (const f of type.fields) {
      const option = settings[f.key] ?? handler[f.key];
      assert.ok(option, `${type.type}: Add Sink asks for "${f.key}", which is no option of the type`);
      assert.equal(inputFor[f.kind], option.type, `${type.type}.${f.key}: a ${f.kind} answer for a ${option.type} option`);
      if (f.optional !== !option.required)
        assert.ok(f.askIf, `${type.type}.${f.key}: optional is ${f.optional} but the option is ${option.required ? 'required' : 'optional'}`);
      questions++;
    }
    // Every required option is asked for.
    for (const [key, option] of Object.entries(settings))
      if (option.required)
        assert.ok(
          type.fields.some((f) => f.key === key && !f.optional),
          `${type.type}: required "${key}" is not asked for`,
        );
  }
  assert.equal(questions, 20);
  // The password is no setting (it goes to the secret storage) but an option of the handler.
  assert.equal(sinkOptions('mqtt').settings.password, undefined);
  assert.equal(sinkOptions('mqtt').handler.password?.type, 'string');
});

test('add sink: names must be unique and usable as secret keys', () => {
  assert.equal(validateSinkName('webhook', ['other']), undefined);
  assert.match(validateSinkName('webhook', ['webhook']) ?? '', /exists already/);
  assert.match(validateSinkName('', []) ?? '', /Enter a name/);
  assert.match(validateSinkName('a/b', []) ?? '', /Do not use \//);
  assert.match(validateSinkName(' a', []) ?? '', /spaces/);
});
