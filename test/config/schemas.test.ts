/**
 * The generated JSON schemas (package.json's flespi.sinks, schemas/flespi-receiver.schema.json)
 * match the option schemas in the source, and say what the readers (create, parseConfig) say.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { parseConfig } from '../../src/core/config';
import {
  CONFIG_FILE_PATTERNS,
  CONFIG_SCHEMA_PATH,
  deadLetterOptions,
  flespiOptions,
  mqttSourceOptions,
  receiverConfigJsonSchema,
  receiverTuningOptions,
  restSourceOptions,
  retryOptions,
  topLevelOptions,
} from '../../src/core/configSchema';
import { handlerEntryJsonSchema, handlerTypeSchemas } from '../../src/core/handlers/entrySchema';
import { builtinHandlerSpecs } from '../../src/core/handlers/registry';
import type { OptionSchema, OptionsSchema } from '../../src/core/optionSchema';
import { ConfigError, type Options } from '../../src/core/options';
import { createSinkHandler } from '../../src/extension/sinks/createSinkHandler';
import { sinksSettingSchema, sinkTypeSchemas } from '../../src/extension/sinks/sinkSchema';
import { schemaFiles } from '../../scripts/schemas';

function validator(schema: object): ValidateFunction {
  const ajv = new Ajv({ strict: true, strictTypes: false, allErrors: true });
  // VS Code's own annotations: allowed, and checked for nothing.
  for (const keyword of ['enumDescriptions', 'markdownDescription', 'patternErrorMessage']) ajv.addKeyword(keyword);
  return ajv.compile(schema);
}

const configSchema = JSON.parse(readFileSync(CONFIG_SCHEMA_PATH, 'utf8')) as object;
const validConfig = validator(configSchema);
const validEntry = validator(handlerEntryJsonSchema(handlerTypeSchemas()));
const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
  contributes: { configuration: { properties: Record<string, object> }; jsonValidation: { fileMatch: string[]; url: string }[] };
};
const validSinks = validator(manifest.contributes.configuration.properties['flespi.sinks']!);
const errors = (v: ValidateFunction) => JSON.stringify(v.errors);

test('schemas: package.json and schemas/flespi-receiver.schema.json are what the source generates (npm run schemas)', () => {
  for (const file of schemaFiles()) assert.equal(file.actual, file.expected, `${file.path} differs from the option schemas in the source: run npm run schemas`);
  assert.deepEqual(manifest.contributes.configuration.properties['flespi.sinks'], sinksSettingSchema());
  assert.deepEqual(configSchema, receiverConfigJsonSchema());
});

test('schemas: the drift check sees a changed package.json and a missing schema file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flespi-schemas-'));
  try {
    const text = readFileSync('package.json', 'utf8');
    writeFileSync(join(dir, 'package.json'), text.replace('"default": 10000', '"default": 9999'));
    assert.notEqual(text.indexOf('"default": 10000'), -1);
    const stale = schemaFiles(dir)
      .filter((f) => f.actual !== f.expected)
      .map((f) => f.path);
    assert.deepEqual(stale, ['package.json', CONFIG_SCHEMA_PATH]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('schemas: VS Code checks the config file names the README recommends against the schema file, which ships in the VSIX and the npm package', () => {
  assert.deepEqual(manifest.contributes.jsonValidation, [{ fileMatch: [...CONFIG_FILE_PATTERNS], url: `./${CONFIG_SCHEMA_PATH}` }]);
  const readme = readFileSync('README.md', 'utf8');
  for (const pattern of CONFIG_FILE_PATTERNS) assert.ok(readme.includes(`\`${pattern}\``), `the README does not recommend ${pattern}`);
  assert.match(readFileSync('.vscodeignore', 'utf8'), /^!schemas\/\*\.json$/m);
  assert.match(readFileSync('.npmignore', 'utf8'), /^!\/schemas\/$/m);
});

/** The ```json blocks of the README and docs/*.md. */
function jsonBlocks(): { where: string; value: unknown }[] {
  const files = [
    'README.md',
    ...readdirSync('docs')
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  return files.flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(/```json\n([\s\S]*?)```/g)].map((m, i) => {
      try {
        return { where: `${file} json block ${i + 1}`, value: JSON.parse(m[1]!) as unknown };
      } catch (error) {
        throw new Error(`${file} json block ${i + 1} is not JSON: ${String(error)}`, { cause: error });
      }
    }),
  );
}

test("schemas: the README's example config (with $schema) validates against the schema and loads; so do the docs' handler examples", () => {
  const blocks = jsonBlocks();
  const configs = blocks.filter((b) => typeof b.value === 'object' && b.value !== null && 'handlers' in b.value);
  assert.ok(
    configs.some((c) => c.where.startsWith('README.md')),
    'the README has an example config',
  );
  for (const { where, value } of configs) {
    assert.ok(validConfig(value), `${where}: ${errors(validConfig)}`);
    const config = value as { $schema?: string };
    assert.equal(typeof config.$schema, 'string', `${where} names its schema`);
    // The $schema of the example resolves to the schema file once the npm package is installed next to the config.
    assert.equal(resolve('/project', config.$schema!), resolve('/project/node_modules/flespi-receiver', CONFIG_SCHEMA_PATH), where);
    assert.equal(parseConfig(value, '/project/receiver.flespi.json').channel, (value as { channel: number }).channel);
  }
  const entries = blocks.filter((b) => typeof b.value === 'object' && b.value !== null && 'type' in b.value && !('handlers' in b.value));
  assert.ok(entries.some((e) => e.where.startsWith('docs/wialon.md')));
  for (const { where, value } of entries) assert.ok(validEntry(value), `${where}: ${errors(validEntry)}`);
});

test('schemas: $schema is read and ignored by the config loader, and an unknown top-level key is refused by both', () => {
  const base = { channel: 1, handlers: [{ type: 'stdout' }] };
  const withSchema = { $schema: './node_modules/flespi-receiver/schemas/flespi-receiver.schema.json', ...base };
  assert.ok(validConfig(withSchema), errors(validConfig));
  assert.deepEqual(parseConfig(withSchema, '/p/a.flespi.json'), parseConfig(base, '/p/a.flespi.json'));
  assert.throws(() => parseConfig({ ...base, $schema: 7 }, '/p/a.flespi.json'), /"\$schema" must be a non-empty string, got number 7/);
  assert.equal(validConfig({ ...base, $schema: 7 }), false);
  assert.throws(() => parseConfig({ ...base, chanel: 2 }, '/p/a.flespi.json'), /unknown setting "chanel"/);
  assert.equal(validConfig({ ...base, chanel: 2 }), false);
});

// ---- the schema against create: each option of each built-in type -------------------------------

process.env.FLESPI_SCHEMA_TEST_SECRET = 'secret';

/** Valid settings for an entry of each type: its required options. */
const MINIMAL: Readonly<Record<string, Options>> = {
  stdout: {},
  http: { url: 'https://example.com/flespi' },
  mqtt: { url: 'mqtts://broker.example.com:8883' },
  'aws-iot': { endpoint: 'abc123-ats.iot.eu-west-1.amazonaws.com', certFile: 'device.pem.crt', keyFile: 'private.pem.key' },
  wialon: { host: 'wialon.example.com', port: 20163 },
};

/** A valid value of each option, as the settings it needs. */
function validSetting(key: string, option: OptionSchema): Options {
  const special: Record<string, Options> = {
    password: { username: 'u', password: 'p' },
    passwordEnv: { username: 'u', passwordEnv: 'FLESPI_SCHEMA_TEST_SECRET' },
    headers: { headers: { 'X-Fleet': 'north' } },
    headersEnv: { headersEnv: { Authorization: 'FLESPI_SCHEMA_TEST_SECRET' } },
    certFile: { certFile: 'client.crt', keyFile: 'client.key' },
    keyFile: { certFile: 'client.crt', keyFile: 'client.key' },
    topic: { topic: 'fleet/{ident}' },
  };
  if (special[key]) return special[key];
  if ('default' in option && option.default !== undefined) return { [key]: option.default };
  if ('examples' in option && option.examples?.length) return { [key]: option.examples[0] };
  if ('enum' in option && option.enum?.length) return { [key]: option.enum[0] };
  if (option.type === 'string') return { [key]: 'value' };
  if (option.type === 'integer' || option.type === 'number') return { [key]: option.minimum ?? 1 };
  throw new Error(`no valid sample for ${key}`);
}

/** Values each option's type refuses, with why. */
function wrongValues(option: OptionSchema): unknown[] {
  const wrong: unknown[] = [];
  switch (option.type) {
    case 'string':
      wrong.push(42, '', ['a']);
      if (option.enum) wrong.push('NOT-ONE-OF-THEM');
      break;
    case 'integer':
    case 'number':
      wrong.push('7', true);
      if (option.type === 'integer') wrong.push(1.5);
      if (option.enum) wrong.push(Math.max(...option.enum) + 1, Math.min(...option.enum) - 1);
      if (option.minimum !== undefined) wrong.push(option.minimum - 1);
      if (option.maximum !== undefined) wrong.push(option.maximum + 1);
      break;
    case 'boolean':
      wrong.push('true', 1);
      break;
    case 'stringMap':
      wrong.push('x', { a: 1 }, ['a']);
      break;
    case 'object':
    case 'stringList':
      wrong.push('x');
      break;
  }
  return wrong;
}

const resolvePath = (path: string) => path;

test('schemas: for each option of each built-in handler type, create and the JSON schema accept a valid value and refuse wrong types and out-of-range values, naming the option', () => {
  let checked = 0;
  for (const spec of builtinHandlerSpecs) {
    const minimal = MINIMAL[spec.type];
    assert.ok(minimal, `no minimal settings for ${spec.type}`);
    const accept = (options: Options, what: string) => {
      assert.doesNotThrow(() => spec.create(options, { resolvePath }, 'h'), what);
      assert.ok(validEntry({ type: spec.type, ...options }), `${what}: ${errors(validEntry)}`);
    };
    const refuse = (options: Options, key: string, what: string) => {
      assert.throws(
        () => spec.create(options, { resolvePath }, 'h'),
        (error: Error) => error instanceof ConfigError && error.message.includes(`"${key}"`),
        `${what}: create should throw a ConfigError naming "${key}"`,
      );
      assert.equal(validEntry({ type: spec.type, ...options }), false, `${what}: the schema should refuse it`);
    };
    accept(minimal, `${spec.type} with its required options`);
    for (const key of Object.keys(minimal)) {
      const { [key]: _left, ...without } = minimal;
      refuse(without, key, `${spec.type} without ${key}`);
    }
    for (const [key, option] of Object.entries(spec.options as OptionsSchema)) {
      accept({ ...minimal, ...validSetting(key, option) }, `${spec.type}.${key} valid`);
      for (const value of wrongValues(option))
        refuse({ ...minimal, ...validSetting(key, option), [key]: value }, key, `${spec.type}.${key} = ${JSON.stringify(value)}`);
      if (option.type === 'string' && option.pattern) {
        const bad = key.endsWith('File') ? '-----BEGIN CERTIFICATE-----' : key === 'endpoint' ? 'https://abc.iot' : 'ftp://example.com';
        assert.ok(!new RegExp(option.pattern).test(bad));
        refuse({ ...minimal, ...validSetting(key, option), [key]: bad }, key, `${spec.type}.${key} not matching ${option.pattern}`);
      }
      checked++;
    }
    refuse({ ...minimal, colour: 'blue' }, 'colour', `${spec.type} with an unknown key`);
  }
  assert.ok(checked >= 30, `only ${checked} options checked`);
});

test('schemas: the flespi.sinks schema takes what createSinkHandler takes: the NDJSON file sink, secret markers, no password in settings', async () => {
  const env = { baseDir: tmpdir(), allowCustomCode: false };
  const sink = (type: string, options: Options) => ({ name: 's', type, ...options });
  for (const t of sinkTypeSchemas().filter((t) => t.type !== 'custom')) {
    const settings = sink(t.type, MINIMAL[t.type]!);
    assert.ok(validSinks([settings]), `${t.type}: ${errors(validSinks)}`);
    await createSinkHandler(settings, undefined, env);
  }
  const stdout = sink('stdout', { file: 'out/a.ndjson', pretty: true });
  assert.ok(validSinks([stdout]), errors(validSinks));
  await createSinkHandler(stdout, undefined, env);
  for (const [key, value] of [
    ['file', 5],
    ['pretty', 'yes'],
    ['onUndeliverable', 'drop'],
  ] as const) {
    assert.equal(validSinks([{ ...stdout, [key]: value }]), false, key);
    await assert.rejects(
      createSinkHandler({ ...stdout, [key]: value }, undefined, env),
      (e: Error) => e instanceof ConfigError && e.message.includes(`"${key}"`),
    );
  }
  const mqtt = sink('mqtt', { ...MINIMAL.mqtt, username: 'u', secretPassword: true });
  assert.ok(validSinks([mqtt]), errors(validSinks));
  await createSinkHandler(mqtt, { password: 'p' }, env);
  assert.equal(validSinks([{ ...mqtt, password: 'p' }]), false, 'a password in settings is refused');
  assert.ok(validSinks([sink('http', { ...MINIMAL.http, secretHeaders: ['Authorization'] })]), errors(validSinks));
  assert.equal(validSinks([sink('http', { ...MINIMAL.http, secretHeaders: 'Authorization' })]), false);
  assert.equal(validSinks([{ type: 'http', ...MINIMAL.http }]), false, 'a sink needs a name');
});

test('schemas: for each option of each section of the config file, parseConfig and the JSON schema accept a valid value and refuse wrong types and out-of-range values, naming the option', () => {
  const base = { channel: 1, handlers: [{ type: 'stdout' }] };
  const file = '/project/receiver.flespi.json';
  type Place = (settings: Options) => Record<string, unknown>;
  const sections: [string, OptionsSchema, Place][] = [
    ['top level', topLevelOptions, (o) => ({ ...base, ...o })],
    ['flespi', flespiOptions, (o) => ({ ...base, flespi: o })],
    ['source (rest)', restSourceOptions, (o) => ({ ...base, source: o })],
    ['source (mqtt)', mqttSourceOptions, (o) => ({ ...base, source: { type: 'mqtt', ...o } })],
    ['deadLetters', deadLetterOptions, (o) => ({ ...base, deadLetters: o })],
    ['receiver', receiverTuningOptions, (o) => ({ ...base, receiver: o })],
    ['receiver.retry', retryOptions, (o) => ({ ...base, receiver: { retry: o } })],
  ];
  let checked = 0;
  for (const [section, options, place] of sections) {
    for (const [key, option] of Object.entries(options)) {
      if (key === 'type' && section === 'source (mqtt)') continue; // what chooses the section
      const valid = validSetting(key, option);
      const what = `${section}: ${key}`;
      assert.doesNotThrow(() => parseConfig(place(valid), file), what);
      assert.ok(validConfig(place(valid)), `${what}: ${errors(validConfig)}`);
      for (const value of wrongValues(option)) {
        if (key === 'type' && value === 'NOT-ONE-OF-THEM') continue;
        const config = place({ ...valid, [key]: value });
        assert.throws(
          () => parseConfig(config, file),
          (e: Error) => e instanceof ConfigError && e.message.includes(`"${key}"`),
          `${what} = ${JSON.stringify(value)}: parseConfig should name "${key}"`,
        );
        assert.equal(validConfig(config), false, `${what} = ${JSON.stringify(value)}: the schema should refuse it`);
      }
      checked++;
    }
    if (section !== 'top level') {
      const unknown = place({ colour: 'blue' });
      assert.throws(() => parseConfig(unknown, file), /unknown setting "colour"/, section);
      assert.equal(validConfig(unknown), false, `${section}: the schema should refuse an unknown key`);
    }
  }
  assert.ok(checked >= 30, `only ${checked} options checked`);
  // What the readers check beyond one option's type, the schema leaves to them; the rest it says too.
  assert.equal(validConfig({ handlers: base.handlers }), false, 'channel is required');
  assert.equal(validConfig({ channel: 1 }), false, 'handlers are required');
  assert.equal(validConfig({ channel: 1, handlers: [] }), false, 'at least one handler');
  assert.equal(validConfig({ ...base, flespi: { token: 'secret' } }), false, 'no token in the file');
});
