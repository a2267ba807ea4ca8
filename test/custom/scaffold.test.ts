import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import * as api from '../../src/core/api';
import { buildReceiver, parseConfig } from '../../src/core/config';
import { startSandbox } from '../../src/sandbox/index';
import { defaultOutputFile, handlerTemplate, typingsTemplate, validateHandlerName } from '../../src/extension/custom/scaffold';

const run = promisify(execFile);

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

/** Parsed files that do not change between checks (TypeScript's libs, @types/node): parsing them again is most of a check's time. */
const parsed = new Map<string, ts.SourceFile | undefined>();

/** Type-checks files with the TypeScript compiler; returns the diagnostics as text lines. */
function typeCheck(files: string[], options: ts.CompilerOptions): string[] {
  const all: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipDefaultLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
    ...options,
  };
  const host = ts.createCompilerHost(all);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, ...rest) => {
    if (!name.includes('node_modules')) return getSourceFile(name, version, ...rest);
    if (!parsed.has(name)) parsed.set(name, getSourceFile(name, version, ...rest));
    return parsed.get(name);
  };
  const program = ts.createProgram(files, all, host);
  return ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName ?? ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
}

/** The typings of the handler API as the build generates them into dist/ (the same script, into a temp file). */
const apiTypings = (async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flespi-typings-'));
  try {
    const out = join(dir, 'handler-typings.d.ts');
    await run(process.execPath, ['scripts/handler-typings.mjs', out]);
    return await readFile(out, 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
})();

// The emit type-checks the API's files: seconds, more on a busy machine, so the tests wait for it here.
before(() => apiTypings, { timeout: 180_000 });

const NODE_TYPES: ts.CompilerOptions = { types: ['node'], typeRoots: [join(process.cwd(), 'node_modules/@types')] };

/** Type-checks the scaffold's handler `name` next to `typings` (with or without @types/node) in a temp folder. */
async function checkScaffold(name: string, typings: string, withNodeTypes: boolean): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'flespi-scaffold-'));
  try {
    const file = join(dir, `${name}.ts`);
    await writeFile(file, handlerTemplate(name));
    await writeFile(join(dir, 'flespi-receiver.d.ts'), typingsTemplate(typings, !withNodeTypes));
    return typeCheck([file], withNodeTypes ? NODE_TYPES : { types: [] });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('scaffold: the template type-checks against the typings generated from the source, with and without @types/node', async () => {
  const typings = await apiTypings;
  assert.deepEqual(await checkScaffold('Checked', typings, false), []);
  assert.deepEqual(await checkScaffold('Checked', typings, true), []);
});

test('scaffold: the type check fails when the typings lack what the template uses', async () => {
  const typings = await apiTypings;
  // The template extends Handler, imports FlespiMessage, calls this.log.info and overrides health().
  const mutations: [RegExp, string, RegExp][] = [
    [/^\s*protected log: Logger;$/m, '', /Property 'log' does not exist/],
    [/^\s*export import FlespiMessage = .*$/m, '', /has no exported member '?FlespiMessage'?/],
    [/^\s*export import Handler = .*$/m, '', /has no exported member '?Handler'?/],
    [/(?<=^\s*health\(\): )HandlerHealth(?=;$)/m, 'number', /Property 'health' in type '\w+' is not assignable/],
  ];
  for (const [part, replacement, error] of mutations) {
    assert.match(typings, part, `the generated typings no longer have ${part}`);
    const broken = typings.replace(part, replacement);
    assert.match((await checkScaffold('Broken', broken, false)).join('\n'), error, `${part} -> '${replacement}'`);
  }
});

test('scaffold: the generated typings export exactly the names src/core/api.ts exports, values as values', async () => {
  const source = ts.createSourceFile('api.ts', await readFile('src/core/api.ts', 'utf8'), ts.ScriptTarget.ES2022);
  const exported = new Map<string, boolean>(); // name -> is a value
  for (const statement of source.statements) {
    assert.ok(
      ts.isExportDeclaration(statement) && statement.exportClause && ts.isNamedExports(statement.exportClause),
      'src/core/api.ts only re-exports by name',
    );
    for (const element of statement.exportClause.elements) exported.set(element.name.text, !statement.isTypeOnly && !element.isTypeOnly);
  }
  assert.ok(exported.get('Handler'), 'src/core/api.ts exports the Handler class');

  const dir = await mkdtemp(join(tmpdir(), 'flespi-typings-'));
  try {
    const file = join(dir, 'flespi-receiver.d.ts');
    await writeFile(file, await apiTypings);
    const program = ts.createProgram([file], { noEmit: true, ...NODE_TYPES });
    const checker = program.getTypeChecker();
    const module = checker.getAmbientModules().find((m) => m.name === '"flespi-receiver"');
    assert.ok(module, "the typings declare module 'flespi-receiver'");
    const declared = new Map(
      checker
        .getExportsOfModule(module)
        .map((symbol) => [symbol.name, ((symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol).flags & ts.SymbolFlags.Value) !== 0]),
    );
    assert.deepEqual([...declared].sort(), [...exported].sort());
    // And the values exist at run time in the module the loader hands to handlers.
    assert.deepEqual(
      [...declared]
        .filter(([, value]) => value)
        .map(([name]) => name)
        .sort(),
      Object.keys(api)
        .filter((name) => typeof (api as Record<string, unknown>)[name] !== 'undefined' && name !== 'default')
        .sort(),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('scaffold: a new handler runs unchanged in the CLI receiver against the sandbox and writes every message', async (t) => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const dir = await mkdtemp(join(tmpdir(), 'flespi-scaffold-'));
  try {
    await mkdir(join(dir, 'flespi-handlers'));
    await writeFile(join(dir, 'flespi-handlers', 'TripLog.ts'), handlerTemplate('TripLog'));
    await writeFile(join(dir, 'flespi-handlers', 'flespi-receiver.d.ts'), typingsTemplate(await apiTypings, true));
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
