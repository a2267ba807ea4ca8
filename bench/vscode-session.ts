// One real VS Code for the benches that need it (start-up: activation time; live tail), started once
// per `npm run bench` with the e2e harness's own functions (test/e2e/support/host.ts): code-server
// 4.100.3, the extension built with --production, packaged, installed into a fresh profile, and
// Chromium (playwright-core) showing the workbench. Its flespi is a bench sandbox in its own process,
// reached through the flespi.baseUrl/mqttUrl settings and a token set through "flespi: Set Token…".
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { buildExtension, CodeServer, ensureHost, freshProfile, installVsix, isolatedHome, packageExtension, type Profile } from '../test/e2e/support/host';
import { waitFor, Workbench } from '../test/e2e/support/workbench';
import { startPreloadedSandbox, type SandboxInfo } from './rest-pipeline';

/** The bench sandbox's token (a test value, not a secret). */
const TOKEN = 'BenchSandboxToken'.padEnd(64, '0');

export interface VsCodeSession {
  root: string;
  vsix: string;
  profile: Profile;
  server: CodeServer;
  browser: Browser;
  workbench: Workbench;
  sandbox: { info: SandboxInfo; child: ChildProcess };
  /** Milliseconds from opening the workbench URL to the flespi activity-bar item. */
  workbenchReadyMs: number;
}

let session: Promise<VsCodeSession> | undefined;
const cleanups: (() => Promise<void> | void)[] = [];

/** The shared session, started on first use. Rejects (every time) if it cannot start. */
export function vscodeSession(): Promise<VsCodeSession> {
  session ??= start();
  return session;
}

/** Ends whatever the session started; safe to call when it never started. */
export async function stopVsCodeSession(): Promise<void> {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch((e: unknown) => console.error('bench VS Code cleanup:', e));
  cleanups.length = 0;
  session = undefined;
}

async function start(): Promise<VsCodeSession> {
  const root = mkdtempSync(join(tmpdir(), 'flespi-bench-vscode-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const entry = await ensureHost();
  await buildExtension();
  const vsix = join(root, 'flespi.vsix');
  await packageExtension(vsix);

  const sandbox = await startPreloadedSandbox(0, TOKEN);
  cleanups.push(() => {
    if (sandbox.child.connected) sandbox.child.disconnect();
  });
  const profile = freshProfile(root, { user: {}, machine: { 'flespi.baseUrl': sandbox.info.restUrl, 'flespi.mqttUrl': sandbox.info.mqttUrl } });
  const env = isolatedHome(root);
  await installVsix(entry, profile, vsix, env);
  const workspace = join(root, 'workspace');
  mkdirSync(workspace);
  const server = await CodeServer.start(entry, profile, { env, workspaceTrust: false });
  cleanups.push(() => server.stop());

  // The e2e harness's Chromium flags, plus exact (not bucketed) performance.memory figures.
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--enable-precise-memory-info',
    ],
  });
  cleanups.push(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const opened = performance.now();
  const workbench = await Workbench.open(context, server.folderUrl(workspace), join(root, 'shots'));
  await workbench.activityItem('flespi').waitFor({ timeout: 60_000 });
  const workbenchReadyMs = performance.now() - opened;

  await workbench.runCommand('flespi: Set Token…');
  await workbench.answer(TOKEN, /flespi token/);
  await workbench.openContainer('flespi');
  await workbench.expandView('Channels');
  await waitFor(
    'the Channels view to list the bench sandbox channels',
    async () => (await workbench.treeLabels('Channels')).some((l) => l.includes('sandbox-teltonika')),
    60_000,
  );
  return { root, vsix, profile, server, browser, workbench, sandbox, workbenchReadyMs };
}

/** The process id of the session's extension host: the process of code-server's group started with --type=extensionHost. */
export function extensionHostPid(profile: Profile): number | undefined {
  const pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  const cmdline = (pid: string) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      return [];
    }
  };
  const group = (pid: string) => {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2];
    } catch {
      return undefined;
    }
  };
  const server = pids.find((pid) => cmdline(pid).includes(profile.userDataDir));
  if (!server) return undefined;
  const serverGroup = group(server);
  const host = pids.find((pid) => group(pid) === serverGroup && cmdline(pid).some((arg) => arg.includes('extensionHost')));
  return host === undefined ? undefined : Number(host);
}

/** Resident memory (MB) of the session's extension host. */
export function extensionHostRssMb(profile: Profile): number | undefined {
  const pid = extensionHostPid(profile);
  if (pid === undefined) return undefined;
  try {
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return rss ? Number(rss[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
