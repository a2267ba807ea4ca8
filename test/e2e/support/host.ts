// The VS Code host for the e2e flows: code-server 4.100.3 installed by scripts/e2e/install-host.sh,
// the extension built and packaged as a VSIX, installed into fresh user-data and extensions folders.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const projectRoot = resolve(__dirname, '../../..');
export const outputDir = join(projectRoot, 'test-output', 'e2e');

/**
 * Removes the screenshots and timings of an earlier run of one e2e file (files named `prefix…`),
 * leaving those of the other files.
 */
export function clearOutput(prefix: string): void {
  mkdirSync(outputDir, { recursive: true });
  for (const name of readdirSync(outputDir)) {
    if (name.startsWith(prefix) || name === `timings-${prefix}.json`) rmSync(join(outputDir, name), { force: true });
  }
}

/**
 * A home folder of this session for code-server and Chromium: they keep config, logs and a
 * heartbeat there (~/.config/code-server, ~/.local/share/code-server, ~/.config/chromium), so
 * nothing an earlier run left in the real home is read, and nothing is left there.
 */
export function isolatedHome(root: string): NodeJS.ProcessEnv {
  const home = join(root, 'home');
  mkdirSync(home, { recursive: true });
  return { HOME: home, XDG_CONFIG_HOME: join(home, '.config'), XDG_DATA_HOME: join(home, '.local/share'), XDG_CACHE_HOME: join(home, '.cache') };
}

/** Runs a command to completion; rejects with its output tail when it fails. Returns stdout. */
export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? projectRoot, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolvePromise(stdout);
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${(stdout + stderr).slice(-3000)}`));
    });
  });
}

/** Installs code-server if needed (reusing a complete install) and returns its entry script. */
export async function ensureHost(): Promise<string> {
  const out = await run('bash', [join(projectRoot, 'scripts/e2e/install-host.sh')]);
  const dir = out.trim().split('\n').pop() ?? '';
  const entry = join(dir, 'node_modules/code-server/out/node/entry.js');
  if (!existsSync(entry)) throw new Error(`install-host.sh did not produce ${entry}; run it by hand to see why`);
  return entry;
}

export async function buildExtension(): Promise<void> {
  await run(process.execPath, ['scripts/build.mjs', '--production', '--quiet']);
  if (!existsSync(join(projectRoot, 'dist/extension.js'))) {
    throw new Error('the build produced no dist/extension.js: src/extension/extension.ts is missing or failed to bundle');
  }
}

export async function packageExtension(vsix: string): Promise<void> {
  const vsce = join(projectRoot, 'node_modules/.bin/vsce');
  // vsce refuses relative README images without a repository URL to resolve them against; this
  // VSIX is never published, so any absolute base will do.
  const base = 'https://localhost/flespi-receiver-e2e';
  await run(vsce, ['package', '--no-dependencies', '--allow-missing-repository', '--baseContentUrl', base, '--baseImagesUrl', base, '-o', vsix]);
}

/** A fresh profile: user-data and extensions folders that no earlier run has touched. */
export interface Profile {
  userDataDir: string;
  extensionsDir: string;
}

/**
 * `machine`: settings of scope "machine". In a remote window (code-server is one) VS Code reads them
 * only from the remote machine's settings (user-data/Machine/settings.json), not the user's.
 */
export function freshProfile(root: string, settings: { user: Record<string, unknown>; machine: Record<string, unknown> }): Profile {
  const profile = { userDataDir: join(root, 'user-data'), extensionsDir: join(root, 'extensions') };
  mkdirSync(join(profile.userDataDir, 'User'), { recursive: true });
  mkdirSync(join(profile.userDataDir, 'Machine'), { recursive: true });
  mkdirSync(profile.extensionsDir, { recursive: true });
  writeFileSync(join(profile.userDataDir, 'User', 'settings.json'), JSON.stringify({ ...quietWorkbench, ...settings.user }, null, 2));
  writeFileSync(join(profile.userDataDir, 'Machine', 'settings.json'), JSON.stringify(settings.machine, null, 2));
  return profile;
}

/** Settings that keep the workbench from showing anything the flows did not ask for. */
const quietWorkbench = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'telemetry.telemetryLevel': 'off',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'security.workspace.trust.enabled': false,
  'update.mode': 'none',
  'files.simpleDialog.enable': true,
  'chat.commandCenter.enabled': false,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'window.commandCenter': false,
};

export async function installVsix(entry: string, profile: Profile, vsix: string, env: NodeJS.ProcessEnv): Promise<void> {
  const out = await run(
    process.execPath,
    [
      entry,
      '--config',
      join(profile.userDataDir, 'code-server.yaml'),
      '--user-data-dir',
      profile.userDataDir,
      '--extensions-dir',
      profile.extensionsDir,
      '--install-extension',
      vsix,
    ],
    { env: { ...process.env, ...env } },
  );
  if (!/successfully installed/i.test(out)) throw new Error(`code-server did not confirm the VSIX install:\n${out}`);
}

/** A running code-server; stop() ends it and the extension host it started (its process group). */
export class CodeServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly baseUrl: string,
    readonly log: () => string,
  ) {}

  /** `workspaceTrust`: ask whether to trust the folder (VS Code's default); off, every folder is trusted. */
  static async start(entry: string, profile: Profile, options: { env: NodeJS.ProcessEnv; workspaceTrust: boolean }): Promise<CodeServer> {
    const args = [
      entry,
      '--auth',
      'none',
      '--bind-addr',
      '127.0.0.1:0',
      '--disable-telemetry',
      '--disable-update-check',
      ...(options.workspaceTrust ? [] : ['--disable-workspace-trust']),
      '--disable-getting-started-override',
      '--user-data-dir',
      profile.userDataDir,
      '--extensions-dir',
      profile.extensionsDir,
      // Its own config file, so nothing is written to ~/.config/code-server.
      '--config',
      join(profile.userDataDir, 'code-server.yaml'),
    ];
    // detached: own process group, so stop() reaches the extension host and its children too.
    const child = spawn(process.execPath, args, {
      cwd: projectRoot,
      env: { ...process.env, ...options.env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const baseUrl = await new Promise<string>((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`code-server did not start within 60 s:\n${output.slice(-2000)}`)), 60_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        const m = /HTTP server listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolvePromise(m[1]);
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`code-server exited with ${code} before listening:\n${output.slice(-2000)}`));
      });
    });
    return new CodeServer(child, baseUrl, () => output);
  }

  folderUrl(folder: string): string {
    return `${this.baseUrl}/?folder=${encodeURIComponent(folder)}`;
  }

  async stop(): Promise<void> {
    const pid = this.child.pid;
    if (pid === undefined || this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 5_000);
    await exited;
    clearTimeout(timer);
  }
}
