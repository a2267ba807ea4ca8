// Bad sink settings and config files get one clear error naming the field, and crash nothing.
//
// Config mistakes (unknown or missing fields, a bad port, a bad topic template) are caught when the
// CLI reads the file: exit code 2, one stderr line naming the file and the field. Certificate and key
// files are read when the MQTT handler starts; the error names the setting and the file.
//
// The tests run as root, and root reads a chmod 000 file anyway: an "unreadable" key is a folder or
// a file that is not a PEM key instead.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mqttSpec } from '../../src/core/handlers/mqtt';
import type { Options } from '../../src/core/options';
import { startSandbox, type Sandbox } from '../../src/sandbox/index';
import { createTestPki, type TestPki } from '../support/certs';
import { memoryLogger } from '../support/logger';
import { startMosquitto, type RunningMosquitto } from '../support/mosquitto';
import { CHANNEL, assertOneLineError, runCli } from './support';

const TIMEOUT = { timeout: 60_000 };

let sandbox: Sandbox;
let pki: TestPki;
let broker: RunningMosquitto;
let dir: string;

before(async () => {
  sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  pki = await createTestPki();
  broker = await startMosquitto({ tls: { caFile: pki.ca.cert, certFile: pki.server.cert, keyFile: pki.server.key, requireCertificate: true } });
  dir = await mkdtemp(join(tmpdir(), 'reliability-settings-'));
});

after(async () => {
  await broker?.stop();
  await sandbox?.stop();
  await pki?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A valid config with `change` applied to it. */
function configWith(change: (config: Record<string, unknown>) => void): Record<string, unknown> {
  const config: Record<string, unknown> = {
    flespi: { baseUrl: sandbox.restUrl },
    channel: CHANNEL,
    handlers: [{ type: 'wialon', host: '127.0.0.1', port: 20163 }],
    checkpoint: join(dir, 'unused.checkpoint.json'),
  };
  change(config);
  return config;
}

async function runConfig(name: string, config: unknown, timeoutMs?: number) {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(config));
  return { file, ...(await runCli(['run', file], { env: { FLESPI_TOKEN: sandbox.token }, cwd: dir, timeoutMs })) };
}

const handler = (entry: Options) => (c: Record<string, unknown>) => (c.handlers = [entry]);

const CONFIG_MISTAKES: { name: string; change: (c: Record<string, unknown>) => void; says: RegExp }[] = [
  { name: 'an unknown top-level field', change: (c) => (c.chanel = 5), says: /: unknown setting "chanel" \(known: .*channel/ },
  { name: 'a missing "channel"', change: (c) => delete c.channel, says: /: "channel" is required/ },
  { name: 'missing "handlers"', change: (c) => delete c.handlers, says: /"handlers" is required: a list such as \[\{ "type": "stdout" \}\]/ },
  {
    name: 'an unknown handler field',
    change: handler({ type: 'wialon', host: '127.0.0.1', port: 20163, windw: 4 }),
    says: /handlers\[0\].*unknown setting "windw" \(known: .*window/,
  },
  { name: 'a handler without its "port"', change: handler({ type: 'wialon', host: '127.0.0.1' }), says: /handlers\[0\].*"port" is required/ },
  {
    name: 'a bad Wialon port',
    change: handler({ type: 'wialon', host: '127.0.0.1', port: 70000 }),
    says: /handlers\[0\].*"port" must be an integer from 1 to 65535, got number 70000/,
  },
  {
    name: 'a bad HTTP port',
    change: handler({ type: 'http', url: 'http://127.0.0.1:99999/ingest' }),
    says: /handlers\[0\].*"url" must be a URL like https:\/\/example\.com\/flespi, got "http:\/\/127\.0\.0\.1:99999\/ingest"/,
  },
  {
    name: 'a bad MQTT topic template',
    change: handler({ type: 'mqtt', url: 'mqtt://127.0.0.1:1883', topic: 'fleet/{ident' }),
    says: /handlers\[0\].*"topic": "\{" without "\}" at position 7 in topic template "fleet\/\{ident"/,
  },
  {
    name: 'a key pasted instead of a key file path',
    change: handler({ type: 'mqtt', url: 'mqtts://127.0.0.1:8883', certFile: 'client.crt', keyFile: '-----BEGIN PRIVATE KEY-----' }),
    says: /handlers\[0\].*"keyFile" must be the path of a PEM file, not the file's contents/,
  },
  {
    name: 'a certificate without its key',
    change: handler({ type: 'mqtt', url: 'mqtts://127.0.0.1:8883', certFile: 'client.crt' }),
    says: /handlers\[0\].*"certFile" and "keyFile" go together/,
  },
];

for (const mistake of CONFIG_MISTAKES) {
  test(`config file with ${mistake.name}: the CLI exits 2 with one line naming the file and the field`, TIMEOUT, async () => {
    const result = await runConfig(mistake.name.replace(/\W+/g, '-'), configWith(mistake.change));
    const line = assertOneLineError(result, mistake.says);
    assert.equal(result.status, 2);
    assert.ok(line.includes(result.file), `names the file: ${line}`);
  });
}

/** The paths of the MQTT sink's TLS files, as a user might get them wrong. */
async function tlsFiles(): Promise<Record<string, string>> {
  const files = {
    missing: join(dir, 'missing', 'client.crt'),
    folder: join(dir, 'a-folder.key'),
    notPem: join(dir, 'notes.key'),
  };
  await mkdir(files.folder, { recursive: true });
  await writeFile(files.notPem, 'this is not a key\n');
  return files;
}

const TLS_MISTAKES: { name: string; settings: (f: Record<string, string>) => Options; says: RegExp }[] = [
  {
    name: 'a missing certificate file',
    settings: (f) => ({ certFile: f.missing!, keyFile: pki.client.key }),
    says: /^certFile \S+client\.crt does not exist$/,
  },
  {
    name: 'a key path that is a folder',
    settings: (f) => ({ certFile: pki.client.cert, keyFile: f.folder! }),
    says: /^keyFile \S+a-folder\.key is a folder: point keyFile at the file inside it$/,
  },
  {
    name: 'a key file that is not a PEM key',
    settings: (f) => ({ certFile: pki.client.cert, keyFile: f.notPem! }),
    says: /^keyFile \S+notes\.key is not a private key in PEM or DER form/,
  },
  {
    name: 'a private key given as the CA file',
    settings: () => ({ caFile: pki.client.key, certFile: pki.client.cert, keyFile: pki.client.key }),
    says: /^caFile \S+ is not a certificate: .*\(this looks like a private key; it belongs in keyFile\)$/,
  },
];

for (const mistake of TLS_MISTAKES) {
  test(`MQTT sink with ${mistake.name}: start() fails with one sentence naming the setting and the file`, TIMEOUT, async () => {
    const mqtt = mqttSpec.create({ url: broker.url, caFile: pki.ca.cert, ...mistake.settings(await tlsFiles()) }, { resolvePath: (p) => p }, 'mqtt');
    const log = memoryLogger();
    mqtt.attachLogger(log);
    await assert.rejects(mqtt.start(), (error: Error) => {
      assert.match(error.message, mistake.says);
      assert.doesNotMatch(error.message, /PRIVATE KEY-----|\n/, 'no key material, one line');
      return true;
    });
    assert.equal(mqtt.health().connected, false);
    await mqtt.stop();
  });
}

// Was bug 3 in docs/reliability.md (fixed in c7f5d86): `run` retried a missing certificate file forever.
test('the CLI with a missing certificate file: exits 2 with one line naming certFile (instead of retrying forever)', TIMEOUT, async () => {
  const files = await tlsFiles();
  const result = await runConfig(
    'missing-cert',
    configWith(handler({ type: 'mqtt', url: broker.url, caFile: pki.ca.cert, certFile: files.missing!, keyFile: pki.client.key })),
    8000,
  );
  assertOneLineError(result, /certFile \S+client\.crt does not exist/);
  assert.equal(result.status, 2, 'a setting to fix');
});

test('a key file other users can read gets a warning saying how to restrict it; a private one (600) and the certificate (public) do not', TIMEOUT, async () => {
  const shared = join(dir, 'shared.key');
  const private_ = join(dir, 'private.key');
  const cert = join(dir, 'client.crt');
  await copyFile(pki.client.key, shared);
  await copyFile(pki.client.key, private_);
  await copyFile(pki.client.cert, cert);
  await chmod(shared, 0o644);
  await chmod(private_, 0o600);
  await chmod(cert, 0o644);
  for (const [keyFile, expectWarning] of [
    [shared, true],
    [private_, false],
  ] as const) {
    const mqtt = mqttSpec.create({ url: broker.url, caFile: pki.ca.cert, certFile: cert, keyFile }, { resolvePath: (p) => p }, 'mqtt');
    const log = memoryLogger();
    mqtt.attachLogger(log);
    try {
      await mqtt.start();
      assert.equal(mqtt.health().connected, true, 'the warning does not stop the sink');
    } finally {
      await mqtt.stop();
    }
    const warnings = log.at('warn');
    if (expectWarning) {
      assert.deepEqual(warnings, [`keyFile ${shared} can be read by other users (mode 644): restrict it with chmod 600 ${shared}`]);
    } else {
      assert.deepEqual(warnings, [], `no warning for ${keyFile} (mode 600) or the certificate (mode 644)`);
    }
    assert.ok(!log.lines.some((l) => l.message.includes('PRIVATE KEY')), 'no key material in the log');
  }
});
