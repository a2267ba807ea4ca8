import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import * as api from '../../src/core/api';
import { buildReceiver, parseConfig } from '../../src/core/config';
import { startSandbox } from '../../src/sandbox/index';
import { defaultOutputFile, handlerTemplate, typingsTemplate, validateHandlerName } from '../../src/extension/custom/scaffold';

test('scaffold: handler names must be PascalCase identifiers that do not shadow the API', () => {
  for (const good of ['MyHandler', 'Sink2', 'A', 'HttpToS3']) assert.equal(validateHandlerName(good), undefined, good);
  const bad: [string, RegExp][] = [
    ['', /Enter a name/],
    [' MyHandler', /spaces/],
    ['my handler', /not an identifier/],
    ['2Fast', /not an identifier/],
    ['my-handler', /not an identifier/],
    ['myHandler', /not PascalCase.*e\.g\. MyHandler/],
    ['my_handler', /not PascalCase.*e\.g\. MyHandler/],
    ['Handler', /taken by the API/],
    ['A'.repeat(65), /at most 64/],
  ];
  for (const [name, reason] of bad) assert.match(validateHandlerName(name) ?? '(accepted)', reason, JSON.stringify(name));
});

/** Type-checks files with the TypeScript compiler; returns the diagnostics as text lines. */
function typeCheck(files: string[], options: ts.CompilerOptions): string[] {
  const program = ts.createProgram(files, { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'], ...options });
  return ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

test('scaffold: the template type-checks against the written typings, with and without @types/node', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flespi-scaffold-'));
  try {
    const file = join(dir, 'Checked.ts');
    await writeFile(file, handlerTemplate('Checked'));
    await writeFile(join(dir, 'flespi-receiver.d.ts'), typingsTemplate(true));
    assert.deepEqual(typeCheck([file], { types: [] }), []);
    await writeFile(join(dir, 'flespi-receiver.d.ts'), typingsTemplate(false));
    assert.deepEqual(typeCheck([file], { types: ['node'], typeRoots: [join(process.cwd(), 'node_modules/@types')] }), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('scaffold: every value the typings declare exists in the library the loader hands to handlers', () => {
  const declared = [...typingsTemplate(false).matchAll(/export (?:abstract class|class|function) (\w+)/g)].map((m) => m[1]!);
  assert.deepEqual(declared.sort(), ['Handler', 'TransientError', 'UndeliverableError', 'numberParam', 'stringParam']);
  for (const name of declared) assert.equal(typeof (api as Record<string, unknown>)[name], 'function', name);
});

test('scaffold: a new handler runs unchanged in the CLI receiver against the sandbox and writes every message', async (t) => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'flespi-scaffold-'));
  try {
    await mkdir(join(dir, 'flespi-handlers'));
    await writeFile(join(dir, 'flespi-handlers', 'TripLog.ts'), handlerTemplate('TripLog'));
    await writeFile(join(dir, 'flespi-handlers', 'flespi-receiver.d.ts'), typingsTemplate(true));
    const channel = sandbox.channels[0]!.id;
    const sent = Array.from({ length: 7 }, (_, i) => ({ ident: `tracker-${i}`, timestamp: 1_700_000_000 + i, 'position.speed': i * 10 }));
    sandbox.inject(channel, sent);

    // The same configuration file a CLI user would write.
    const config = parseConfig(
      {
        flespi: { baseUrl: sandbox.restUrl },
        channel,
        source: { type: 'rest', timeout: 1 },
        handlers: [{ type: 'custom', name: 'trip-log', file: './flespi-handlers/TripLog.ts' }],
      },
      join(dir, 'receiver.json'),
    );
    const { receiver } = await buildReceiver(config, sandbox.token);
    t.after(() => receiver.stop()); // also when the test fails or times out before its own stop()
    let done = 0;
    const allDone = new Promise<void>((resolve) =>
      receiver.on('done', (event) => {
        done += event.messages;
        if (done >= sent.length) resolve();
      }),
    );
    await receiver.start();
    await allDone;
    await receiver.stop();

    const lines = (await readFile(join(dir, 'flespi-handlers', defaultOutputFile('TripLog')), 'utf8')).trim().split('\n');
    const written = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      written.map((m) => [m.ident, m.timestamp, m['position.speed'], m['channel.id']]),
      sent.map((m) => [m.ident, m.timestamp, m['position.speed'], channel]),
    );
    assert.equal(receiver.stats().handlers[0]!.health.detail, `${sent.length} messages written`);
  } finally {
    await sandbox.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
