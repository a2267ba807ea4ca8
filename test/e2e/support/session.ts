// One e2e session: the host installed, the extension built, packaged and installed into a fresh
// profile, the test peers running, code-server serving a fresh workspace, Chromium showing it.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import {
  buildExtension,
  clearOutput,
  CodeServer,
  ensureHost,
  freshProfile,
  installVsix,
  isolatedHome,
  outputDir,
  packageExtension,
  type Profile,
} from './host';
import { SandboxProcess, startTlsBroker, startWialonReceiver, type TlsBroker } from './peers';
import { timed } from './timings';
import { launchChromium, Workbench } from './workbench';
import type { WialonTestReceiver } from '../../support/wialonReceiver';

/**
 * The token the external sandbox accepts: new for every run, so a search for it (flow 9) cannot
 * match what an earlier run left, and random, so no storage compresses it out of sight.
 */
export const SANDBOX_TOKEN = randomBytes(32).toString('hex');

export interface Peers {
  sandbox: SandboxProcess;
  tls: TlsBroker;
  wialon: { receiver: WialonTestReceiver; port: number };
}

/** Everything up to a serving code-server (what scripts/e2e/serve.ts shows a person). */
export interface ServedSession {
  root: string;
  workspace: string;
  profile: Profile;
  /** HOME and XDG folders of code-server and Chromium, inside `root`. */
  home: NodeJS.ProcessEnv;
  peers: Peers;
  server: CodeServer;
  /** Stops everything started, last first; keepFiles leaves the temp folder for inspection. */
  stop(options: { keepFiles: boolean }): Promise<void>;
  /** Adds something for stop() to end. */
  onStop(cleanup: () => Promise<void>): void;
}

/** A served session with Chromium showing the workbench. */
export interface Session extends ServedSession {
  browser: BrowserContext;
  /** Chromium's profile folder (inside `root`). */
  browserProfile: string;
  workbench: Workbench;
}

export interface SessionOptions {
  /** The start of this file's screenshot names (`flow3-02-….png`); its timings go to timings-<name>.json. */
  name: string;
  /** Ask whether to trust the workspace folder, as VS Code does by default. Off: every folder is trusted. */
  workspaceTrust?: boolean;
  /** Writes files into the fresh workspace folder before code-server opens it. */
  prepareWorkspace?(workspace: string): void;
  /** Settings written before code-server starts, given the running peers (see freshProfile). */
  settings(peers: Peers): { user: Record<string, unknown>; machine: Record<string, unknown> };
  /** Topic filter the broker's subscriber listens on from the start. */
  brokerTopics: string;
}

export async function serveSession(options: SessionOptions): Promise<ServedSession> {
  const cleanups: (() => Promise<void>)[] = [];
  const root = mkdtempSync(join(tmpdir(), 'flespi-e2e-'));
  const stop = async ({ keepFiles }: { keepFiles: boolean }) => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((e: unknown) => console.error('e2e cleanup:', e));
    cleanups.length = 0;
    if (!keepFiles) rmSync(root, { recursive: true, force: true });
  };
  try {
    const entry = await timed('install host (reused when present)', ensureHost);
    await timed('build (--production)', buildExtension);
    const vsix = join(root, 'flespi.vsix');
    await timed('package VSIX', () => packageExtension(vsix));

    const peers = await timed('start peers (sandbox, Mosquitto TLS, Wialon receiver)', async () => {
      const sandbox = await SandboxProcess.start(SANDBOX_TOKEN);
      cleanups.push(() => sandbox.stop());
      const tls = await startTlsBroker(options.brokerTopics);
      cleanups.push(() => tls.stop());
      const wialon = await startWialonReceiver();
      cleanups.push(() => wialon.receiver.close());
      return { sandbox, tls, wialon };
    });

    const profile = freshProfile(root, options.settings(peers));
    const home = isolatedHome(root);
    await timed('install VSIX into a fresh profile', () => installVsix(entry, profile, vsix, home));
    const workspace = join(root, 'workspace');
    mkdirSync(workspace);
    options.prepareWorkspace?.(workspace);

    const server = await timed('start code-server', () => CodeServer.start(entry, profile, { env: home, workspaceTrust: options.workspaceTrust ?? false }));
    cleanups.push(() => server.stop());
    return { root, workspace, profile, home, peers, server, stop, onStop: (cleanup) => cleanups.push(cleanup) };
  } catch (error) {
    await stop({ keepFiles: true });
    throw error;
  }
}

export async function startSession(options: SessionOptions): Promise<Session> {
  // Screenshots of an earlier run would mix with this run's.
  clearOutput(options.name);
  const served = await serveSession(options);
  try {
    const browserProfile = join(served.root, 'browser');
    const browser = await launchChromium(browserProfile, served.home);
    served.onStop(() => browser.close());
    const workbench = await timed('open the workbench in Chromium', () => Workbench.open(browser, served.server.folderUrl(served.workspace), outputDir));
    return { ...served, browser, browserProfile, workbench };
  } catch (error) {
    await served.stop({ keepFiles: true });
    throw error;
  }
}

/** The extension host's log files of this profile (the first place to look when a flow fails). */
export function extensionHostLogs(profile: Profile): string {
  const logs = join(profile.userDataDir, 'logs');
  return existsSync(logs) ? logs : '(no logs folder yet)';
}
