// Bench 6: start-up.
// - Extension activation in a real VS Code (the bench session: code-server + Chromium), as VS Code's
//   own "Developer: Show Running Extensions" reports it (code loading + activate call), next to the
//   built-in Git extension activated by the same extension host (baseline); the window is reloaded
//   (a new extension host) for every further run. Only if that VS Code cannot start: require + activate of
//   dist/extension.js with a minimal vscode stub (activation-stub.mjs), labelled as such.
// - VSIX size (`vsce package --no-dependencies` of the --production build) and what is in it.
// - CLI time to the first message on stdout (`node dist/cli.js`, no token: the built-in sandbox),
//   next to `node -e 0` (baseline: Node's own start-up).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildExtension, packageExtension } from '../test/e2e/support/host';
import { waitFor } from '../test/e2e/support/workbench';
import { measureInterleaved, sampleFromWorker, summarize, type Row, type Sample } from './harness';
import { vscodeSession, type VsCodeSession } from './vscode-session';

const root = resolve(__dirname, '..');
const BASELINE_EXTENSION = 'Git';

// ---- activation in VS Code -----------------------------------------------------------------------

/** Activation times (ms) per extension display name, read from "Developer: Show Running Extensions". */
async function runningExtensions(session: VsCodeSession): Promise<Map<string, number>> {
  const { workbench } = session;
  await workbench.runCommand('Developer: Show Running Extensions');
  return waitFor(
    'activation times of flespi and Git in Running Extensions',
    async () => {
      const rows = await workbench.page
        .locator('.runtime-extensions-editor .monaco-list-row')
        .evaluateAll((els) =>
          els.map((el) => [el.querySelector('.name')?.textContent ?? '', el.querySelector('.activation-time')?.textContent ?? ''] as const),
        );
      const times = new Map<string, number>();
      for (const [name, text] of rows) {
        const ms = /(\d+)\s*ms/.exec(text);
        if (ms) times.set(name.trim(), Number(ms[1]));
      }
      return times.has('flespi receiver') && times.has(BASELINE_EXTENSION) ? times : undefined;
    },
    60_000,
  );
}

/** Reloads the window (a new extension host activates everything again) and waits for the flespi item. */
async function restartExtensionHost(session: VsCodeSession): Promise<void> {
  const { workbench } = session;
  await workbench.page.keyboard.press('Escape');
  await workbench.reloadWindow();
  await workbench.activityItem('flespi').waitFor({ timeout: 60_000 });
}

async function activationInVsCode(session: VsCodeSession, runs: number): Promise<Row[]> {
  const flespi: Sample[] = [];
  const git: Sample[] = [];
  for (let run = 0; run < runs; run++) {
    if (run > 0) await restartExtensionHost(session);
    const times = await runningExtensions(session);
    flespi.push({ value: times.get('flespi receiver')! });
    git.push({ value: times.get(BASELINE_EXTENSION)! });
  }
  await session.workbench.page.keyboard.press('Escape');
  const bench = 'Activation in VS Code (code-server 4.100.3, Running Extensions: code loading + activate)';
  return [
    { bench, case: `built-in ${BASELINE_EXTENSION} extension`, unit: 'ms', summary: summarize(git) },
    { bench, case: 'flespi receiver', unit: 'ms', baseline: `built-in ${BASELINE_EXTENSION} extension`, target: '<50 ms', summary: summarize(flespi) },
  ];
}

// ---- VSIX -------------------------------------------------------------------------------------------

function folderBytes(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, name) => sum + folderBytes(join(path, name)), 0);
}

async function vsixRow(session: VsCodeSession | undefined): Promise<Row> {
  let vsix = session?.vsix;
  let temp: string | undefined;
  if (!vsix) {
    await buildExtension();
    temp = mkdtempSync(join(tmpdir(), 'flespi-bench-vsix-'));
    vsix = join(temp, 'flespi.vsix');
    await packageExtension(vsix);
  }
  const kb = (bytes: number) => bytes / 1024;
  const row: Row = {
    bench: 'VSIX (vsce package --no-dependencies, --production build)',
    case: 'flespi-receiver.vsix',
    unit: 'KB',
    target: '<1.5 MB (1,536 KB)',
    summary: summarize([
      {
        value: kb(statSync(vsix).size),
        extra: {
          'extension.js KB (loaded on activation)': kb(folderBytes(join(root, 'dist', 'extension.js'))),
          'loaded on first use KB': kb(lazyBundles().reduce((sum, name) => sum + folderBytes(join(root, 'dist', name)), 0)),
          'webview KB': kb(folderBytes(join(root, 'dist', 'webview')) - sumOf(join(root, 'dist', 'webview'), '.map')),
          'media KB': kb(folderBytes(join(root, 'media')) - folderBytes(join(root, 'media', 'screenshots'))),
        },
      },
    ]),
    note: 'sizes do not depend on the machine: no baseline',
  };
  if (temp) rmSync(temp, { recursive: true, force: true });
  return row;
}

/** The bundles dist/extension.js requires on first use (scripts/build.mjs makes them), read from the bundle itself. */
function lazyBundles(): string[] {
  const code = readFileSync(join(root, 'dist', 'extension.js'), 'utf8');
  return [...new Set([...code.matchAll(/require\("\.\/([\w-]+\.js)"\)/g)].map((m) => m[1]!))];
}

function sumOf(dir: string, suffix: string): number {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith(suffix))
        .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0)
    : 0;
}

// ---- CLI ----------------------------------------------------------------------------------------------

/** Milliseconds from spawning `node args` to its first stdout line (or to its exit, for `node -e 0`). */
function timeToFirstLine(args: string[]): Promise<Sample> {
  return new Promise((resolvePromise, reject) => {
    const env = { ...process.env };
    delete env.FLESPI_TOKEN; // the CLI must use its built-in sandbox
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolvePromise({ value: performance.now() - t0 });
      child.kill('SIGKILL');
    };
    child.stdout.once('data', finish);
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (args[0] === '-e') return finish();
      if (!done) reject(new Error(`node ${args.join(' ')} exited with ${code} before printing a message: ${stderr.trim()}`));
    });
  });
}

// ---- the bench -------------------------------------------------------------------------------------

/** Runs one part of the bench; a part that fails is reported and the others still run. */
async function part(name: string, rows: Row[], work: () => Promise<Row[]>): Promise<void> {
  try {
    rows.push(...(await work()));
  } catch (error) {
    console.error(`startup: ${name} failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}

export async function benchStartup(opts: { quick: boolean }): Promise<Row[]> {
  const rows: Row[] = [];
  const runs = opts.quick ? 1 : 5;
  let session: VsCodeSession | undefined;
  try {
    session = await vscodeSession();
  } catch (error) {
    console.error(
      `startup: no VS Code for the activation figure (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); falling back to the vscode stub`,
    );
  }

  await part('activation', rows, async () => {
    if (session) return activationInVsCode(session, runs);
    if (!existsSync(join(root, 'dist', 'extension.js'))) await buildExtension();
    const stub: Sample[] = [];
    for (let i = 0; i < runs; i++) stub.push(await sampleFromWorker(join(__dirname, 'activation-stub.mjs'), [], 'activation-stub', []));
    return [
      {
        bench: 'Activation, FALLBACK: require + activate with a minimal vscode stub (no VS Code available)',
        case: 'dist/extension.js',
        unit: 'ms',
        target: '<50 ms',
        summary: summarize(stub),
        note: 'not VS Code: a stub; code loading is real',
      },
    ];
  });

  await part('VSIX size', rows, async () => [await vsixRow(session)]);

  await part('CLI start-up', rows, async () => {
    if (!existsSync(join(root, 'dist', 'cli.js'))) await buildExtension();
    const cli = await measureInterleaved(
      opts.quick ? 2 : 7,
      { 'node -e 0': () => timeToFirstLine(['-e', '0']), 'node dist/cli.js': () => timeToFirstLine(['dist/cli.js']) },
      1,
    );
    const bench = 'CLI start-up: time to the first message on stdout (built-in sandbox, no token)';
    return [
      { bench, case: 'node -e 0', unit: 'ms', summary: cli['node -e 0']! },
      {
        bench,
        case: 'node dist/cli.js',
        unit: 'ms',
        baseline: 'node -e 0',
        summary: cli['node dist/cli.js']!,
        note: 'lower is better; the ratio is how many Node start-ups it takes',
      },
    ];
  });
  return rows;
}
