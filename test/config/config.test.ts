import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { buildReceiver, loadConfig, resolveToken } from '../../src/core/config';
import { createHandlers } from '../../src/core/handlers/registry';
import { StdoutHandler } from '../../src/core/handlers/stdout';
import { ConfigError } from '../../src/core/options';
import { CHANNEL, numbered, quietSandbox, range, until } from '../receiver/helpers';

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'receiver-config-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function writeConfig(dir: string, config: unknown, name = 'receiver.json'): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return file;
}

/** Asserts a ConfigError whose message names the file and every one of `words`. */
async function rejectsNaming(promise: Promise<unknown>, file: string, ...words: string[]): Promise<void> {
  await assert.rejects(promise, (error: Error) => {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error.name}: ${error.message}`);
    assert.ok(error.message.includes(file), `"${error.message}" should name ${file}`);
    for (const word of words) assert.ok(error.message.includes(word), `"${error.message}" should mention ${word}`);
    return true;
  });
}

const env = { resolvePath: (p: string) => p };

test('a valid config gets defaults: REST source, eu base URL, checkpoint next to the file', async () => {
  await withDir(async (dir) => {
    const file = await writeConfig(dir, { channel: 42, handlers: [{ type: 'stdout', pretty: true }] });
    const config = await loadConfig(file);
    assert.equal(config.channel, 42);
    assert.equal(config.flespi.baseUrl, 'https://flespi.io');
    assert.deepEqual(config.source, { type: 'rest', limitCount: 1000, timeout: 20, delete: false, startKey: 0 });
    assert.equal(config.checkpoint, join(dir, 'receiver.channel-42.checkpoint.json'));
    const [handler] = await createHandlers(config.handlers, env);
    assert.ok(handler instanceof StdoutHandler);
    assert.equal(handler.name, 'stdout');
  });
});

test('every field is read: region, tokenFile, source options, checkpoint path, receiver tuning', async () => {
  await withDir(async (dir) => {
    const file = await writeConfig(dir, {
      flespi: { region: 'ru', tokenFile: 'secret/token.txt' },
      channel: 7,
      source: { type: 'rest', limitCount: 50, limitSize: 100000, timeout: 5, delete: true, startKey: 1 },
      handlers: [{ type: 'stdout', name: 'out' }],
      checkpoint: 'state/cp.json',
      receiver: { prefetch: 2, handlerTimeoutMs: 1000, stopGraceMs: 100, retry: { initialMs: 10, maxMs: 100 } },
    });
    const config = await loadConfig(file);
    assert.equal(config.flespi.baseUrl, 'https://ru.flespi.io');
    assert.equal(config.flespi.tokenFile, join(dir, 'secret/token.txt'));
    assert.deepEqual(config.source, { type: 'rest', limitCount: 50, limitSize: 100000, timeout: 5, delete: true, startKey: 1 });
    assert.equal(config.checkpoint, join(dir, 'state/cp.json'));
    assert.deepEqual(config.receiver, { prefetch: 2, handlerTimeoutMs: 1000, stopGraceMs: 100, retry: { initialMs: 10, maxMs: 100 } });
  });
});

test('config mistakes are ConfigErrors that name the file and the field', async () => {
  await withDir(async (dir) => {
    const f1 = await writeConfig(dir, { channel: 1, chanel: 2, handlers: [{ type: 'stdout' }] }, 'unknown.json');
    await rejectsNaming(loadConfig(f1), f1, '"chanel"');
    const f2 = await writeConfig(dir, { handlers: [{ type: 'stdout' }] }, 'missing.json');
    await rejectsNaming(loadConfig(f2), f2, '"channel" is required');
    const f3 = await writeConfig(dir, { channel: 'abc', handlers: [{ type: 'stdout' }] }, 'type.json');
    await rejectsNaming(loadConfig(f3), f3, '"channel" must be an integer');
    const f4 = await writeConfig(dir, { channel: 1 }, 'nohandlers.json');
    await rejectsNaming(loadConfig(f4), f4, '"handlers" is required');
    const f5 = await writeConfig(dir, { channel: 1, source: { type: 'rest', timeout: 60 }, handlers: [{ type: 'stdout' }] }, 'timeout.json');
    await rejectsNaming(loadConfig(f5), f5, 'source', '"timeout"', 'from 1 to 30');
    const f6 = await writeConfig(dir, { channel: 1, flespi: { token: 'abc' }, handlers: [{ type: 'stdout' }] }, 'token.json');
    await rejectsNaming(loadConfig(f6), f6, '"token" does not belong', 'FLESPI_TOKEN');
    const f7 = await writeConfig(dir, '{ "channel": 1, ', 'broken.json');
    await rejectsNaming(loadConfig(f7), f7, 'not valid JSON');
    const f8 = await writeConfig(dir, { channel: 1, receiver: { retry: { initialMs: -1 } }, handlers: [{ type: 'stdout' }] }, 'retry.json');
    await rejectsNaming(loadConfig(f8), f8, 'receiver.retry', '"initialMs"');
    const f9 = await writeConfig(dir, { channel: 1, flespi: { baseUrl: 'flespi.io' }, handlers: [{ type: 'stdout' }] }, 'url.json');
    await rejectsNaming(loadConfig(f9), f9, '"baseUrl"');
    await rejectsNaming(loadConfig(join(dir, 'absent.json')), join(dir, 'absent.json'), 'no such config file');
  });
});

test('handler mistakes name the entry and the option', async () => {
  await withDir(async (dir) => {
    const build = async (handlers: unknown[]) =>
      createHandlers((await loadConfig(await writeConfig(dir, { channel: 1, handlers }))).handlers, env, `${dir}: handlers`);
    await rejectsNaming(build([{ type: 'stdout', pretty: 'yes' }]), dir, 'handlers[0]', '"pretty" must be true or false');
    await rejectsNaming(build([{ type: 'stdout' }, { type: 'stdoot' }]), dir, 'handlers[1]', '"type" must be one of', '"stdout"');
    await rejectsNaming(build([{ type: 'stdout', colour: true }]), dir, 'handlers[0]', '"colour"');
    await rejectsNaming(build([{ type: 'stdout' }, { type: 'stdout' }]), dir, 'handlers[1]', 'named "stdout" too');
    await rejectsNaming(build([{ type: 'wialon', host: 'localhost' }]), dir, 'handlers[0]', '"port" is required');
    await rejectsNaming(build([{ type: 'custom' }]), dir, 'handlers[0]', '"file" is required');
  });
});

test('a custom handler class without its own constructor is named after the class (or the entry name)', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'Bare.ts'), `import { Handler } from 'flespi-receiver';\nexport default class Bare extends Handler {\n  async handle() {}\n}\n`);
    const [bare, named] = await createHandlers(
      [
        { type: 'custom', file: './Bare.ts', options: { x: 1 } },
        { type: 'custom', name: 'second', file: './Bare.ts' },
      ],
      { resolvePath: (p) => join(dir, p) },
    );
    assert.equal(bare!.name, 'Bare');
    assert.equal(named!.name, 'second');
  });
});

test('the token comes from FLESPI_TOKEN, else from the named token file', async () => {
  await withDir(async (dir) => {
    const tokenFile = join(dir, 'token.txt');
    await writeFile(tokenFile, '  file-token\n');
    assert.equal(await resolveToken({ FLESPI_TOKEN: 'env-token' }, tokenFile), 'env-token');
    assert.equal(await resolveToken({}, tokenFile), 'file-token');
    assert.equal(await resolveToken({}, undefined), undefined);
    await writeFile(tokenFile, '\n');
    await assert.rejects(resolveToken({}, tokenFile), /token file .* is empty/);
    await assert.rejects(resolveToken({}, join(dir, 'none.txt')), /cannot read it \(ENOENT\)/);
  });
});

test('a config with a custom TypeScript handler runs end to end against the sandbox', { timeout: 60_000 }, async (t) => {
  const sandbox = await quietSandbox();
  try {
    await withDir(async (dir) => {
      const out = join(dir, 'received.ndjson');
      await writeFile(
        join(dir, 'AppendHandler.ts'),
        `import { appendFileSync } from 'node:fs';
import { Handler, type FlespiMessage } from 'flespi-receiver';

export default class AppendHandler extends Handler {
  private readonly file: string;
  constructor(options: { file?: string } = {}) {
    super();
    this.file = options.file ?? 'missing';
  }
  async handle(messages: readonly FlespiMessage[]): Promise<void> {
    appendFileSync(this.file, messages.map((m) => JSON.stringify(m) + '\\n').join(''));
  }
}
`,
      );
      const file = await writeConfig(dir, {
        flespi: { baseUrl: sandbox.restUrl },
        channel: CHANNEL,
        source: { timeout: 1, limitCount: 7 },
        handlers: [{ type: 'custom', name: 'append', file: './AppendHandler.ts', options: { file: out } }],
      });
      sandbox.inject(CHANNEL, numbered(1, 20));
      const { receiver, handlers } = await buildReceiver(await loadConfig(file), sandbox.token);
      t.after(() => receiver.stop()); // also when the test fails or times out before its own stop()
      assert.equal(handlers[0]!.name, 'append');
      await receiver.start();
      await until(receiver, () => receiver.stats().messagesDone >= 20);
      await receiver.stop();
      const lines = (await readFile(out, 'utf8')).trim().split('\n');
      assert.deepEqual(
        lines.map((l) => JSON.parse(l)['test.seq']),
        range(1, 20),
      );
      const checkpoint = JSON.parse(await readFile(join(dir, `receiver.channel-${CHANNEL}.checkpoint.json`), 'utf8'));
      assert.equal(checkpoint.currKey, 21);
    });
  } finally {
    await sandbox.stop();
  }
});

test('built-in types from the registry run from a config: http posts every batch to a real server', { timeout: 60_000 }, async (t) => {
  const sandbox = await quietSandbox();
  const received: number[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      received.push(...(JSON.parse(body) as { 'test.seq': number }[]).map((m) => m['test.seq']));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  try {
    await withDir(async (dir) => {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/flespi`;
      const file = await writeConfig(dir, {
        flespi: { baseUrl: sandbox.restUrl },
        channel: CHANNEL,
        source: { timeout: 1, limitCount: 4 },
        handlers: [
          { type: 'http', url },
          { type: 'http', name: 'again', url },
        ],
      });
      const config = await loadConfig(file);
      const { receiver, handlers } = await buildReceiver(config, sandbox.token);
      t.after(() => receiver.stop());
      assert.deepEqual(
        handlers.map((h) => h.name),
        ['http', 'again'],
      );
      sandbox.inject(CHANNEL, numbered(1, 10));
      await receiver.start();
      await until(receiver, () => receiver.stats().messagesDone >= 10);
      await receiver.stop();
      assert.deepEqual(
        received.sort((a, b) => a - b),
        range(1, 10).flatMap((n) => [n, n]),
      );
    });
  } finally {
    server.close();
    await sandbox.stop();
  }
});

test(
  'an MQTT source from a config: region default URL, required url with a custom server, delivery over the sandbox broker',
  { timeout: 60_000 },
  async (t) => {
    await withDir(async (dir) => {
      const ru = await loadConfig(
        await writeConfig(dir, { flespi: { region: 'ru' }, channel: 5, source: { type: 'mqtt', group: 'workers' }, handlers: [{ type: 'stdout' }] }, 'ru.json'),
      );
      assert.deepEqual(ru.source, { type: 'mqtt', url: 'mqtts://ru-mqtt.flespi.io:8883', gapFill: true, group: 'workers' });
      const noUrl = await writeConfig(
        dir,
        { flespi: { baseUrl: 'http://127.0.0.1:9' }, channel: 5, source: { type: 'mqtt' }, handlers: [{ type: 'stdout' }] },
        'nourl.json',
      );
      await rejectsNaming(loadConfig(noUrl), noUrl, 'source', '"url" is required');
      const badKey = await writeConfig(dir, { channel: 5, source: { type: 'mqtt', delete: true }, handlers: [{ type: 'stdout' }] }, 'badkey.json');
      await rejectsNaming(loadConfig(badKey), badKey, 'source', '"delete"');

      const sandbox = await quietSandbox();
      try {
        const out = join(dir, 'mqtt.ndjson');
        await writeFile(
          join(dir, 'Append.ts'),
          `import { appendFileSync } from 'node:fs';
import { Handler, type FlespiMessage } from 'flespi-receiver';
export default class Append extends Handler {
  async handle(messages: readonly FlespiMessage[]) { appendFileSync(${JSON.stringify(out)}, messages.map((m) => m['test.seq'] + '\\n').join('')); }
}
`,
        );
        const file = await writeConfig(dir, {
          flespi: { baseUrl: sandbox.restUrl },
          channel: CHANNEL,
          source: { type: 'mqtt', url: sandbox.mqttUrl, clientId: `config-test-${process.pid}`, batchMaxWaitMs: 20 },
          handlers: [{ type: 'custom', file: './Append.ts' }],
        });
        const { receiver } = await buildReceiver(await loadConfig(file), sandbox.token);
        t.after(() => receiver.stop());
        await receiver.start(); // resolves once subscribed
        sandbox.inject(CHANNEL, numbered(1, 12));
        await until(receiver, () => receiver.stats().messagesDone >= 12);
        await receiver.stop();
        assert.deepEqual((await readFile(out, 'utf8')).trim().split('\n').map(Number), range(1, 12));
      } finally {
        await sandbox.stop();
      }
    });
  },
);
