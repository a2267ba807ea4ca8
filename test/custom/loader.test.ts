import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unexpectedReject } from '../support/logger';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Handler } from '../../src/core/handler';
import { HandlerLoadError, describeHandlerError, loadHandlerClass, locateError } from '../../src/core/custom/loader';

async function withDir(run: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'flespi-loader-'));
  try {
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** 1-based line and column of the first occurrence of `needle` in `text`. */
function positionOf(text: string, needle: string): { line: number; column: number } {
  const index = text.indexOf(needle);
  assert.ok(index >= 0, `${needle} not in source`);
  const before = text.slice(0, index).split('\n');
  return { line: before.length, column: before.at(-1)!.length + 1 };
}

test("loader: a TypeScript handler gets the library's own Handler class, options, and Node modules", async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'Counter.ts');
    await writeFile(
      file,
      `import { Handler, numberParam, type FlespiMessage } from 'flespi-receiver';
import { join } from 'node:path';
interface Options { factor?: number }
export default class Counter extends Handler {
  total = 0;
  readonly where: string = join('a', 'b');
  constructor(private readonly options: Options = {}) { super(); }
  async handle(messages: readonly FlespiMessage[]): Promise<void> {
    for (const m of messages) this.total += (numberParam(m, 'x') ?? 0) * (this.options.factor ?? 1);
  }
}
`,
    );
    const Counter = await loadHandlerClass(file);
    const handler = new Counter({ factor: 10 }) as Handler & { total: number; where: string };
    assert.ok(handler instanceof Handler, "the default export extends the library's Handler");
    assert.equal(handler.name, 'Counter');
    await handler.handle([{ x: 1 }, { x: 2 }, { y: 3 }], {
      signal: new AbortController().signal,
      attempt: 1,
      log: { debug() {}, info() {}, warn() {}, error() {} },
      reject: unexpectedReject,
    });
    assert.equal(handler.total, 30);
    assert.equal(handler.where, join('a', 'b'));
  });
});

test('loader: relative .ts imports and flespi-receiver/* subpaths load too', async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, 'double.ts'), `export const double = (n: number): number => n * 2;\n`);
    const file = join(dir, 'Main.ts');
    await writeFile(
      file,
      `import { Handler } from 'flespi-receiver/handler';\nimport { double } from './double';\nexport default class Main extends Handler {\n  value = double(21);\n  async handle() {}\n}\n`,
    );
    const Main = await loadHandlerClass(file);
    assert.equal((new Main() as Handler & { value: number }).value, 42);
  });
});

test('loader: a syntax error names file:line:column of the source', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'Broken.ts');
    const source = `import { Handler } from 'flespi-receiver';\n\nexport default class Broken extends Handler {\n  async handle(messages: unknown[]) {\n    const count: number = ;\n  }\n}\n`;
    await writeFile(file, source);
    const error = await loadHandlerClass(file).then(
      () => assert.fail('should not load'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof HandlerLoadError);
    const expected = positionOf(source, '= ;');
    assert.deepEqual(error.location, { file, line: expected.line, column: expected.column + 2 });
    assert.match(error.message, new RegExp(`^${escape(file)}:5:${expected.column + 2}: syntax error: Unexpected token`));
  });
});

test('loader: an error thrown while the module loads points at its source line', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'Throws.ts');
    const source = `import { Handler } from 'flespi-receiver';\ntype Config = { url: string };\nconst config: Config = JSON.parse('{"url": 1}');\nif (typeof config.url !== 'string') throw new TypeError('url must be a string');\nexport default class Throws extends Handler { async handle() {} }\n`;
    await writeFile(file, source);
    const error = await loadHandlerClass(file).then(
      () => assert.fail('should not load'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof HandlerLoadError);
    assert.equal(error.location?.line, 4);
    // V8 places the stack at the `new` expression.
    assert.equal(error.location?.column, positionOf(source, 'new TypeError').column);
    assert.match(error.message, /TypeError: url must be a string \(while loading the handler\)$/);
  });
});

test('loader: a run-time error inside handle() maps back to the TypeScript line and column', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'Faulty.ts');
    // Type annotations before the failing access shift columns in the compiled code; the map undoes that.
    const source = `import { Handler, type FlespiMessage } from 'flespi-receiver';\n\nexport default class Faulty extends Handler {\n  async handle(messages: readonly FlespiMessage[]): Promise<void> {\n    const first: Record<string, unknown> | null = messages.length > 5 ? messages[0]! : null; const value: string = (first as any).ident;\n    this.log.info(value);\n  }\n}\n`;
    await writeFile(file, source);
    const Faulty = await loadHandlerClass(file);
    const error = await new Faulty()
      .handle([{ ident: 'a' }], {
        signal: new AbortController().signal,
        attempt: 1,
        log: { debug() {}, info() {}, warn() {}, error() {} },
        reject: unexpectedReject,
      })
      .then(
        () => assert.fail('should throw'),
        (e: unknown) => e,
      );
    const expected = positionOf(source, 'ident;');
    assert.deepEqual(locateError(error), { file, line: 5, column: expected.column });
    assert.equal(describeHandlerError(error), `TypeError: Cannot read properties of null (reading 'ident') (at ${file}:5:${expected.column})`);
  });
});

test("loader: columns stay right after a template literal (where sucrase's own source map drifts) and on unchanged lines", async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'Templated.ts');
    const source = `import { Handler, type FlespiMessage } from 'flespi-receiver';\nexport default class Templated extends Handler {\n  private label: string = \`batch \${1 + 1}\`;\n  async handle(messages: readonly FlespiMessage[]): Promise<void> {\n    if (messages.length > 1) throw new Error(\`\${this.label}: too many\`);\n    const n: number = (messages[0] as any).nested.value;\n    this.log.info(String(n));\n  }\n}\n`;
    await writeFile(file, source);
    const Templated = await loadHandlerClass(file);
    const handler = new Templated();
    const ctx = { signal: new AbortController().signal, attempt: 1, log: { debug() {}, info() {}, warn() {}, error() {} }, reject: unexpectedReject };
    const thrown = await handler.handle([{}, {}], ctx).then(
      () => assert.fail('should throw'),
      (e: unknown) => e,
    );
    assert.deepEqual(locateError(thrown), { file, line: 5, column: positionOf(source, 'new Error').column });
    const typed = await handler.handle([{}], ctx).then(
      () => assert.fail('should throw'),
      (e: unknown) => e,
    );
    assert.deepEqual(locateError(typed), { file, line: 6, column: positionOf(source, 'value;').column });
  });
});

test('loader: a default export that is not a Handler class is refused with what to write instead', async () => {
  await withDir(async (dir) => {
    const cases: [string, RegExp][] = [
      [`export const x = 1;\n`, /missing \(the file has no default export\)/],
      [`export default class NotAHandler { async handle() {} }\n`, /"NotAHandler" that does not extend Handler/],
      [
        `import { Handler } from 'flespi-receiver';\nclass H extends Handler { async handle() {} }\nexport default new H();\n`,
        /an object \(export the class itself, not an instance\)/,
      ],
    ];
    for (const [index, [source, reason]] of cases.entries()) {
      const file = join(dir, `Case${index}.ts`);
      await writeFile(file, source);
      await assert.rejects(loadHandlerClass(file), (error: unknown) => {
        assert.ok(error instanceof HandlerLoadError);
        assert.match(error.message, /the default export must be a class that extends Handler/);
        assert.match(error.message, reason);
        return true;
      });
    }
  });
});

test('loader: a missing file says so', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'Nope.ts');
    await assert.rejects(loadHandlerClass(file), new RegExp(`^HandlerLoadError: ${escape(file)}: cannot read the handler: the file does not exist`));
  });
});

test('loader: each load reads the file afresh', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'Versioned.ts');
    const version = (n: number) =>
      `import { Handler } from 'flespi-receiver';\nexport default class Versioned extends Handler { version = ${n}; async handle() {} }\n`;
    await writeFile(file, version(1));
    assert.equal((new (await loadHandlerClass(file))() as Handler & { version: number }).version, 1);
    await writeFile(file, version(2));
    assert.equal((new (await loadHandlerClass(file))() as Handler & { version: number }).version, 2);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
