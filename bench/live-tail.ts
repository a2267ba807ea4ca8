// Bench 5: the live tail in a real VS Code (the bench session: code-server + Chromium, see
// vscode-session.ts). The bench sandbox (own process) publishes to channel 1001 at 1k, 5k and 10k
// messages/s for 60 s each (10 s with --quick); the tail is open on that channel. Per rate:
// messages published (the baseline), received by the extension host, shown and dropped (the tail's own
// counters), long tasks in the webview (PerformanceObserver 'longtask' injected into its frame by
// Playwright) after a warm-up, and memory of the extension host (RSS) and of the webview (JS heap) at
// the start and the end, and how much its floor (lowest sample) rose from the first half to the second;
// also the extension host's JS heap after a full GC (through its inspector) before and after each rate.
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CDPSession, Frame } from 'playwright-core';
import { LiveTail } from '../test/e2e/support/liveTail';
import { waitFor } from '../test/e2e/support/workbench';
import { PROFILE_DIR_ENV, forkWorker, summarize, type Row } from './harness';
import { extensionHostPid, extensionHostRssMb, vscodeSession, type VsCodeSession } from './vscode-session';

const RATES = [1000, 5000, 10_000];
/** Then 10k msg/s again with the fleet panel open: the map in front, then a chart of position.speed. */
const FLEET_VIEWS = ['map', 'chart'] as const;
const CHANNEL = 'sandbox-teltonika';

/**
 * Installed into the webview's frame: records every long task (start in epoch ms, duration, and who
 * it is attributed to: 'self' = the webview's own code; others = code of the workbench, which shares
 * the renderer's main thread with the webview in code-server).
 */
const OBSERVE_LONG_TASKS = `(() => {
  if (window.__benchLongTasks) return true;
  window.__benchLongTasks = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.__benchLongTasks.push([performance.timeOrigin + entry.startTime, entry.duration, entry.name]);
  }).observe({ type: 'longtask' });
  return true;
})()`;

/** A deliberate 120 ms task in the frame (a timer task, like the app's own): proves the observer sees this frame's long tasks. */
const BUSY_120_MS = `(() => { setTimeout(() => { const end = performance.now() + 120; while (performance.now() < end) {} }, 0); return true; })()`;

interface LongTask {
  duration: number;
  /** 'self' when the webview's own code ran it. */
  attribution: string;
}

async function longTasks(frame: Frame, from: number, to: number): Promise<LongTask[]> {
  const all = (await frame.evaluate('window.__benchLongTasks')) as [number, number, string][];
  return all.filter(([start]) => start >= from && start <= to).map(([, duration, attribution]) => ({ duration, attribution }));
}

async function webviewHeapMb(frame: Frame): Promise<number> {
  return ((await frame.evaluate('performance.memory ? performance.memory.usedJSHeapSize : 0')) as number) / 2 ** 20;
}

async function openTail(session: VsCodeSession): Promise<LiveTail> {
  const { workbench } = session;
  await workbench.runCommand('flespi: Open Live Tail');
  await workbench.pick(CHANNEL);
  const tail = await LiveTail.find(workbench);
  await waitFor('the tail to be live', async () => (await tail.text('state')) === 'live', 60_000);
  await tail.frame.evaluate(OBSERVE_LONG_TASKS);
  const before = Date.now();
  await tail.frame.evaluate(BUSY_120_MS);
  await waitFor(
    'the long-task observer to see a deliberate 120 ms task in the webview',
    async () => (await longTasks(tail.frame, before - 1000, Date.now())).some((t) => t.duration >= 100 && t.attribution === 'self'),
    10_000,
  );
  return tail;
}

/**
 * With --profile: a CPU profile of the renderer thread that runs the webview (its own CDP session when
 * the webview is an out-of-process frame, else the page's, which then includes the workbench).
 */
async function startRendererProfile(session: VsCodeSession, tail: LiveTail): Promise<CDPSession | undefined> {
  if (!process.env[PROFILE_DIR_ENV]) return undefined;
  const context = session.workbench.page.context();
  const cdp = await context.newCDPSession(tail.frame).catch(() => context.newCDPSession(session.workbench.page));
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.start');
  return cdp;
}

async function saveRendererProfile(cdp: CDPSession | undefined, rate: number): Promise<void> {
  if (!cdp) return;
  const { profile } = await cdp.send('Profiler.stop');
  const dir = join(process.env[PROFILE_DIR_ENV]!, 'live-tail-renderer');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `rate-${rate}.cpuprofile`), JSON.stringify(profile));
  await cdp.detach();
}

/** Runs bench/inspect-host.mjs against the extension host; `next()` resolves with its next IPC message. */
function inspectHost(args: string[]): { child: ChildProcess; next: () => Promise<unknown> } {
  const child = forkWorker(join(__dirname, 'inspect-host.mjs'), args, 'inspect-host', undefined, ['--experimental-websocket', '--no-warnings']);
  const next = () =>
    new Promise<unknown>(
      (resolve, reject) => (child.once('message', resolve), child.once('exit', (code) => reject(new Error(`inspect-host exited with ${code}`)))),
    );
  return { child, next };
}

/** The extension host's JS heap in use after a full GC (MB), or NaN when its inspector cannot be reached. */
async function hostHeapAfterGcMb(session: VsCodeSession): Promise<number> {
  const pid = extensionHostPid(session.profile);
  if (pid === undefined) return NaN;
  const answer = await inspectHost(['heap', String(pid)])
    .next()
    .catch((error: unknown) => void console.error(`live-tail: no extension host heap: ${String(error)}`));
  return (answer as { usedMB?: number } | undefined)?.usedMB ?? NaN;
}

/** With --profile: a CPU profile of the extension host (bench/inspect-host.mjs); returns its stop function. */
async function startHostProfile(session: VsCodeSession, rate: number): Promise<(() => Promise<void>) | undefined> {
  const pid = extensionHostPid(session.profile);
  if (!process.env[PROFILE_DIR_ENV] || pid === undefined) return undefined;
  const dir = join(process.env[PROFILE_DIR_ENV]!, 'live-tail-extension-host');
  mkdirSync(dir, { recursive: true });
  const { child, next } = inspectHost(['profile', String(pid), join(dir, `rate-${rate}.cpuprofile`)]);
  await next();
  return async () => {
    child.send('stop');
    await next();
  };
}

/** Opens the fleet panel's map, or a chart of position.speed (Plot beside it in the detail pane of a row). */
async function openFleetView(tail: LiveTail, view: 'map' | 'chart'): Promise<void> {
  if (view === 'map') {
    await tail.frame.locator('[data-testid="open-map"]').click();
    await waitFor('tracks on the map', async () => Number(await tail.frame.locator('[data-testid="map"]').getAttribute('data-points')) > 0, 30_000);
    return;
  }
  await tail.pause();
  const id = (await tail.rowIds()).at(-1)!;
  await tail.row(id).click();
  await tail.frame.locator('[data-plot="position.speed"]').click();
  await waitFor('a chart of position.speed', async () => Number(await tail.frame.locator('[data-testid="chart"]').getAttribute('data-points')) > 0, 30_000);
  await tail.resume();
}

async function counters(tail: LiveTail): Promise<{ received: number; shown: number; dropped: number }> {
  return { received: await tail.count('received'), shown: await tail.count('shown'), dropped: await tail.count('dropped') };
}

export async function benchLiveTail(opts: { quick: boolean }): Promise<Row[]> {
  const session = await vscodeSession(); // throws when the e2e host cannot run: the bench is reported as failed
  const seconds = opts.quick ? 10 : 60;
  const warmupSeconds = opts.quick ? 2 : 5;
  const tail = await openTail(session);
  // Errors in the page (the workbench or the webview) go to stderr: a figure from a broken page is no figure.
  session.workbench.page.on('pageerror', (error) => console.error(`live-tail: page error: ${error.message}`));
  session.workbench.page.on('console', (message) => {
    if (message.type() === 'error') console.error(`live-tail: console error: ${message.text().slice(0, 500)}`);
  });
  const rows: Row[] = [];
  const bench = `Live tail in VS Code, ${seconds} s per rate (code-server + Chromium)`;
  const cases: Array<{ rate: number; view?: (typeof FLEET_VIEWS)[number] }> = [
    ...RATES.map((rate) => ({ rate })),
    ...FLEET_VIEWS.map((view) => ({ rate: 10_000, view })),
  ];
  for (const { rate, view } of cases) {
    if (view) await openFleetView(tail, view);
    const sandbox = session.sandbox.child;
    const start = await counters(tail);
    const hostStart = extensionHostRssMb(session.profile) ?? NaN;
    const hostHeapStart = await hostHeapAfterGcMb(session);
    const heapStart = await webviewHeapMb(tail.frame);
    const cdp = await startRendererProfile(session, tail);
    const stopHostProfile = await startHostProfile(session, rate).catch(
      (error: unknown) => void console.error(`live-tail: no extension host profile: ${String(error)}`),
    );
    const t0 = Date.now();
    // Memory every second while publishing, to tell growth that levels off from growth that goes on.
    const memory: { at: number; host: number; heap: number }[] = [];
    const sampler = setInterval(() => {
      void webviewHeapMb(tail.frame).then(
        (heap) => memory.push({ at: Date.now(), host: extensionHostRssMb(session.profile) ?? NaN, heap }),
        () => undefined,
      );
    }, 1000);
    const published = await new Promise<{ published: number; ms: number }>((resolve) => {
      sandbox.once('message', (m) => resolve(m as { published: number; ms: number }));
      sandbox.send({ rate, seconds });
    });
    clearInterval(sampler);
    const t1 = Date.now();
    await saveRendererProfile(cdp, rate);
    await stopHostProfile?.();
    // Let what is in flight arrive: until all arrived, or the received counter stood still for 3 s (at most 60 s).
    let last = -1;
    let stillSince = Date.now();
    await waitFor(
      'the tail to settle after publishing stopped',
      async () => {
        const now = (await counters(tail)).received - start.received;
        if (now !== last) stillSince = Date.now();
        last = now;
        return now >= published.published || Date.now() - stillSince >= 3000;
      },
      60_000,
    ).catch(() => undefined);
    const end = await counters(tail);
    const hostEnd = extensionHostRssMb(session.profile) ?? NaN;
    const hostHeapEnd = await hostHeapAfterGcMb(session);
    const heapEnd = await webviewHeapMb(tail.frame);
    // Memory is a sawtooth (GC); its floor (the lowest sample) in each half tells growth that goes on from a heap that is just sized.
    const mid = (t0 + t1) / 2;
    const floorGrowth = (key: 'host' | 'heap') => {
      const floor = (samples: typeof memory) => Math.min(...samples.map((m) => m[key]).filter(Number.isFinite));
      return floor(memory.filter((m) => m.at >= mid)) - floor(memory.filter((m) => m.at < mid));
    };
    const tasks = await longTasks(tail.frame, t0 + warmupSeconds * 1000, t1);
    const received = end.received - start.received;
    const offered = `${rate.toLocaleString('en-US')} msg/s offered${view ? `, ${view === 'map' ? 'map' : 'chart of position.speed'} open` : ''}`;
    rows.push({
      bench,
      case: `${offered}: sandbox published`,
      unit: 'msgs',
      summary: summarize([{ value: published.published }]),
    });
    rows.push({
      bench,
      case: `${offered}: tail received`,
      unit: 'msgs',
      baseline: `${offered}: sandbox published`,
      target: rate === 10_000 ? 'no long task >200 ms after warm-up, flat memory' : undefined,
      ...(view ? { note: 'the fleet panel beside the table, redrawn once a second' } : {}),
      summary: summarize([
        {
          value: received,
          extra: {
            shown: end.shown - start.shown,
            dropped: end.dropped - start.dropped,
            'tasks >50ms': tasks.filter((t) => t.duration > 50).length,
            '>200ms': tasks.filter((t) => t.duration > 200).length,
            'longest ms': Math.max(0, ...tasks.map((t) => t.duration)),
            'webview own >50ms': tasks.filter((t) => t.duration > 50 && t.attribution === 'self').length,
            'own longest ms': Math.max(0, ...tasks.filter((t) => t.attribution === 'self').map((t) => t.duration)),
            'host RSS MB start': hostStart,
            'host RSS MB end': hostEnd,
            'host RSS MB floor 2nd − 1st half': floorGrowth('host'),
            'host heap after GC MB start': hostHeapStart,
            'host heap after GC MB end': hostHeapEnd,
            'webview heap MB start': heapStart,
            'webview heap MB end': heapEnd,
            'webview heap MB floor 2nd − 1st half': floorGrowth('heap'),
          },
        },
      ]),
    });
  }
  return rows;
}
