// Runs test/vscode/suite.ts inside a real VS Code extension host with @vscode/test-electron.
// VS Code comes from VSCODE_EXECUTABLE, or is downloaded when the download service is reachable;
// with neither (as on machines without internet) this says so and exits 0.
// Usage: npm run test:vscode
import { spawnSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as esbuild from 'esbuild';
import { downloadAndUnzipVSCode, runTests } from '@vscode/test-electron';

const root = resolve(__dirname, '../..');
const downloadHost = 'update.code.visualstudio.com';
/** The VS Code the e2e flows run too (code-server 4.100.3); override with VSCODE_VERSION. */
const version = process.env.VSCODE_VERSION ?? '1.100.3';

function skip(reason: string): never {
  console.log(`test:vscode skipped: ${reason}`);
  console.log('  (the same extension is exercised in a real workbench by `npm run test:e2e`)');
  process.exit(0);
}

/** True when the download service answers within a few seconds. */
async function downloadReachable(): Promise<boolean> {
  try {
    await Promise.race([lookup(downloadHost), new Promise((_, reject) => setTimeout(() => reject(new Error('dns timeout')), 3000))]);
  } catch {
    return false;
  }
  return new Promise((resolvePromise) => {
    const req = request({ host: downloadHost, path: '/api/releases/stable', method: 'HEAD', timeout: 5000 }, (res) => {
      res.resume();
      resolvePromise((res.statusCode ?? 500) < 500);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolvePromise(false));
    req.end();
  });
}

async function main(): Promise<void> {
  let executable = process.env.VSCODE_EXECUTABLE;
  if (executable && !existsSync(executable)) {
    console.error(`VSCODE_EXECUTABLE points at ${executable}, which does not exist: set it to the VS Code binary (e.g. /usr/share/code/code) or unset it`);
    process.exit(1);
  }
  if (!executable && !(await downloadReachable())) {
    skip(`VSCODE_EXECUTABLE is not set and ${downloadHost} is not reachable to download VS Code ${version}`);
  }
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    const xvfb = spawnSync('sh', ['-c', 'command -v xvfb-run'], { encoding: 'utf8' }).stdout.trim();
    if (!xvfb) skip('VS Code needs a display: no DISPLAY is set and xvfb-run is not installed (apt-get install xvfb)');
    // Run this same script again inside a virtual display (xvfb-run sets DISPLAY, so this happens once).
    const again = spawnSync(xvfb, ['-a', process.execPath, ...process.execArgv, __filename], { stdio: 'inherit' });
    process.exit(again.status ?? 1);
  }

  const build = spawnSync(process.execPath, ['scripts/build.mjs', '--quiet'], { cwd: root, stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
  const suite = join(root, 'out', 'vscode-test', 'suite.js');
  await esbuild.build({
    entryPoints: [join(__dirname, 'suite.ts')],
    outfile: suite,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    external: ['vscode'],
    logLevel: 'error',
  });

  executable ??= await downloadAndUnzipVSCode(version);
  const profile = mkdtempSync(join(tmpdir(), 'flespi-vscode-test-'));
  try {
    const code = await runTests({
      vscodeExecutablePath: executable,
      extensionDevelopmentPath: root,
      extensionTestsPath: suite,
      launchArgs: [
        mkdtempSync(join(profile, 'workspace-')),
        '--disable-extensions',
        '--disable-workspace-trust',
        '--user-data-dir',
        join(profile, 'user-data'),
        '--extensions-dir',
        join(profile, 'extensions'),
      ],
    });
    process.exitCode = code;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
