// The stdout sink at its edges: its defaults (name, one line per message), characters a terminal would act
// on written escaped (every one, not just the first), no write at all when every message was rejected, the
// spec's texts, and `pretty` from the configuration reaching the real standard output (in a child process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { StdoutHandler, stdoutSpec } from '../../src/core/handlers/stdout';
import { ConfigError } from '../../src/core/options';
import { recordingContext } from '../support/rejects';

const env = { resolvePath: (p: string) => p };

/** A stream that keeps every chunk written to it, one entry per write() call. */
function recorder(): { output: Writable; writes: string[] } {
  const writes: string[] = [];
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      writes.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { output, writes };
}

test('defaults: named "stdout", one JSON object per line; health() counts what was written', async () => {
  const { output, writes } = recorder();
  const handler = new StdoutHandler({ output });
  assert.equal(handler.name, 'stdout');
  await handler.handle(
    [
      { ident: 'a', seq: 1 },
      { ident: 'b', seq: 2 },
    ],
    recordingContext(),
  );
  assert.deepEqual(writes, ['{"ident":"a","seq":1}\n{"ident":"b","seq":2}\n']);
  assert.deepEqual(handler.health(), { detail: '2 messages written' });
});

test('DEL, C1 controls and bidi overrides are written as \\u escapes, every one of them; the JSON value is unchanged', async () => {
  const { output, writes } = recorder();
  const handler = new StdoutHandler({ output }, 'out');
  const text = 'a\u009b[2Jb\u202ec\u007fd\u2066e\u009b';
  await handler.handle([{ text }], recordingContext());
  assert.deepEqual(writes, ['{"text":"a\\u009b[2Jb\\u202ec\\u007fd\\u2066e\\u009b"}\n']);
  assert.deepEqual(JSON.parse(writes[0]), { text });
});

test('a batch that is empty, or whose every message is rejected, writes nothing', async () => {
  const { output, writes } = recorder();
  const handler = new StdoutHandler({ output }, 'out');
  await handler.handle([], recordingContext());
  const ctx = recordingContext();
  await handler.handle([{ big: 1n as unknown as number }], ctx);
  assert.deepEqual(ctx.reasons(), ['0: the message cannot be written as JSON: it holds a BigInt, which JSON cannot represent']);
  assert.deepEqual(writes, []);
  assert.deepEqual(handler.health(), { detail: '0 messages written' });
});

test('spec: its title; bad settings are refused naming the handler', () => {
  assert.equal(stdoutSpec.title, 'Print messages as JSON lines on standard output');
  assert.throws(
    () => stdoutSpec.create({ pretty: 'yes' }, env, 'out'),
    (e: unknown) => e instanceof ConfigError && e.message === 'handler "out" (stdout): "pretty" must be true or false, got "yes"',
  );
  assert.throws(
    () => stdoutSpec.create({ prety: true }, env, 'out'),
    (e: unknown) => e instanceof ConfigError && e.message === 'handler "out" (stdout): unknown setting "prety" (known: pretty)',
  );
});

test('spec: "pretty" from the configuration indents what reaches standard output; without it, one line per message', async () => {
  // A child process, so the handler writes to a real standard output of its own.
  const script = `
    const { stdoutSpec } = require(${JSON.stringify(join(__dirname, '../../src/core/handlers/stdout.ts'))});
    const ctx = { signal: new AbortController().signal, attempt: 1, log: console, reject: () => {} };
    (async () => {
      for (const options of [{ pretty: true }, {}]) {
        const handler = stdoutSpec.create(options, { resolvePath: (p) => p }, 'out');
        await handler.handle([{ ident: 'a', seq: 1 }], ctx);
      }
    })();`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--eval', script]);
  assert.equal(stdout, '{\n  "ident": "a",\n  "seq": 1\n}\n{"ident":"a","seq":1}\n');
});
