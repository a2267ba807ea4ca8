// The npm package as a consumer gets it: `npm pack`, installed into a project of its own, a Handler
// subclass type-checked against the shipped declarations, and a receiver run through the library.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const ROOT = resolve(__dirname, '../..');
const run = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const HANDLER = `import { Handler, TransientError, numberParam, type FlespiMessage, type HandlerContext } from 'flespi-receiver';

export default class SpeedCounter extends Handler {
  fast = 0;
  async handle(messages: readonly FlespiMessage[], ctx: HandlerContext): Promise<void> {
    for (const [index, message] of messages.entries()) {
      const speed = numberParam(message, 'position.speed');
      if (speed === undefined) ctx.reject(index, 'no speed');
      else if (speed > 60) this.fast += 1;
    }
    if (ctx.signal.aborted) throw new TransientError('stopped');
  }
}
`;

// The type checker must refuse what the API does not allow, or the check above proves nothing.
const WRONG = `import { Handler } from 'flespi-receiver';
export default class Wrong extends Handler {
  async handle(messages: string[]): Promise<number> { return messages.length; }
}
`;

const RUN = `const { FlespiClient, Handler, MemoryDeadLetterStore, Receiver, RestSource, startSandbox } = require('flespi-receiver');

class Collect extends Handler {
  seen = [];
  async handle(messages, ctx) {
    messages.forEach((m, i) => (m.bad ? ctx.reject(i, 'bad') : this.seen.push(m.n)));
  }
}

(async () => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  const channelId = sandbox.channels[0].id;
  sandbox.inject(channelId, Array.from({ length: 10 }, (_, i) => ({ ident: 'pack-test', n: i + 1, bad: i === 4 })));
  const handler = new Collect('collect');
  const deadLetters = new MemoryDeadLetterStore();
  const receiver = new Receiver({ source: new RestSource({ client: new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl }), channelId, timeout: 1 }), handlers: [handler], deadLetters });
  await receiver.start();
  while (handler.seen.length < 9 || (await deadLetters.read()).length < 1) await new Promise((r) => setTimeout(r, 20));
  await receiver.stop();
  await sandbox.stop();
  console.log(JSON.stringify({ seen: handler.seen, dead: (await deadLetters.read()).map((l) => l.message.n) }));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
`;

test('npm pack gives a library a project installs, type-checks a Handler subclass against, and runs a receiver with', { timeout: 240_000 }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'flespi-pack-'));
  try {
    // The package folder: this project's manifest and ignore rules, with a build of its own.
    const pkg = join(work, 'package');
    await run(process.execPath, [join(ROOT, 'scripts/build.mjs'), '--quiet', `--outdir=${join(pkg, 'dist')}`], { cwd: ROOT });
    await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.lib.json'), '--outDir', join(pkg, 'dist/types')], {
      cwd: ROOT,
    });
    for (const file of ['package.json', '.npmignore', 'README.md', 'LICENSE', 'CHANGELOG.md']) copyFileSync(join(ROOT, file), join(pkg, file));
    cpSync(join(ROOT, 'schemas'), join(pkg, 'schemas'), { recursive: true });
    await run(npm, ['pack', '--silent', '--pack-destination', work], { cwd: pkg });
    const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack wrote no tarball');
    const listing = (await run('tar', ['-tzf', join(work, tarball)])).stdout.split('\n');
    // The config file's JSON schema too: the README's example config names it with "$schema".
    for (const file of [
      'package/dist/lib.js',
      'package/dist/types/index.d.ts',
      'package/dist/types/core/handler.d.ts',
      'package/LICENSE',
      'package/schemas/flespi-receiver.schema.json',
    ])
      assert.ok(listing.includes(file), `${file} is not in the package`);
    assert.ok(
      !listing.some((f) => f.startsWith('package/src/') || f.startsWith('package/test/') || f.includes('extension.js')),
      'sources, tests and the extension stay out of the npm package',
    );

    // A consumer project installs it (its dependencies come from npm's cache or registry).
    const consumer = join(work, 'consumer');
    mkdirSync(consumer);
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
    await run(npm, ['install', join(work, tarball), '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], {
      cwd: consumer,
      timeout: 180_000,
    });
    writeFileSync(join(consumer, 'SpeedCounter.ts'), HANDLER);
    const tsconfig = {
      compilerOptions: {
        strict: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
        typeRoots: [join(ROOT, 'node_modules/@types')],
      },
      files: ['SpeedCounter.ts'],
    };
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(tsconfig));
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    await run(process.execPath, [tsc, '-p', consumer]).catch((error: { stdout?: string }) =>
      assert.fail(`the handler does not type-check against the package:\n${error.stdout ?? String(error)}`),
    );
    writeFileSync(join(consumer, 'SpeedCounter.ts'), WRONG);
    const wrong = await run(process.execPath, [tsc, '-p', consumer]).then(
      () => '',
      (error: { stdout?: string }) => error.stdout ?? '',
    );
    assert.match(wrong, /Wrong\.handle|handle.*not assignable|error TS2416/, 'a handle() of the wrong type is refused');

    writeFileSync(join(consumer, 'run.js'), RUN);
    const { stdout } = await run(process.execPath, [join(consumer, 'run.js')], { cwd: consumer, timeout: 60_000 });
    assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1)!), { seen: [1, 2, 3, 4, 6, 7, 8, 9, 10], dead: [5] });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
