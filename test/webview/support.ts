/**
 * Runs the tail webview in headless Chromium the way VS Code hosts it: the HTML comes from the
 * host's own renderTailHtml (same CSP, fresh nonce per request), served over a real HTTP server,
 * and `acquireVsCodeApi` is a stub that records what the webview posts.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, errors, type Browser, type Page } from 'playwright-core';
import { createNonce, renderTailHtml } from '../../src/extension/tail/tailHtml';
import type { HostMessage, TailCounters, TailItem, WebviewMessage } from '../../src/shared/tailProtocol';

export interface WebviewHarness {
  origin: string;
  browser: Browser;
  /** A fresh page with the tail loaded, after its `ready`. */
  open(options?: { state?: unknown; timezoneId?: string; width?: number }): Promise<Page>;
  close(): Promise<void>;
}

export function buildWebview(): void {
  const result = spawnSync(process.execPath, ['scripts/build.mjs', '--quiet'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`build failed: ${result.stderr || result.stdout}`);
}

export async function startWebviewHarness(): Promise<WebviewHarness> {
  buildWebview();
  const bundle = readFileSync('dist/webview/tail.js');
  let origin = '';
  const server: Server = createServer((req, res) => {
    if (req.url === '/tail.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    } else if (req.url === '/') {
      const html = renderTailHtml({ cspSource: origin, nonce: createNonce(), scriptUri: `${origin}/tail.js`, title: 'Tail: test' });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return {
    origin,
    browser,
    async open(options = {}) {
      const context = await browser.newContext({ timezoneId: options.timezoneId ?? 'UTC', viewport: { width: options.width ?? 1200, height: 700 } });
      const page = await context.newPage();
      // A string, not a function: tsx would put its `__name` helper into a function's source.
      await page.addInitScript({ content: stubScript(options.state ?? null) });
      await page.goto(`${origin}/`);
      await page.waitForFunction(() => ((window as unknown as { __posted: Array<{ type: string }> }).__posted ?? []).some((m) => m.type === 'ready'));
      return page;
    },
    async close() {
      await browser.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Stands in for VS Code's webview API: records posts and state, and every CSP violation. */
function stubScript(state: unknown): string {
  return `
    window.__posted = [];
    window.__state = ${JSON.stringify(state)};
    window.__violations = [];
    window.acquireVsCodeApi = function () {
      return {
        postMessage: function (message) { window.__posted.push(JSON.parse(JSON.stringify(message))); },
        getState: function () { return window.__state; },
        setState: function (next) { window.__state = next; },
      };
    };
    document.addEventListener('securitypolicyviolation', function (event) {
      window.__violations.push(event.violatedDirective + ' ' + event.blockedURI);
    });
  `;
}

/** Delivers a host message the way VS Code does: a `message` event on the webview's window. */
export async function send(page: Page, message: HostMessage): Promise<void> {
  await page.evaluate((m) => window.postMessage(m, '*'), message);
}

export async function posted(page: Page): Promise<WebviewMessage[]> {
  return page.evaluate(() => (window as unknown as { __posted: WebviewMessage[] }).__posted);
}

export async function violations(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { __violations: string[] }).__violations);
}

export function counters(partial: Partial<TailCounters> = {}): TailCounters {
  return { received: 0, shown: 0, dropped: 0, rate: 0, lastMessageAt: null, paused: false, pending: 0, ...partial };
}

/** Messages with ids from..to, each a plausible flespi message. */
export function items(from: number, to: number, extra: (id: number) => Record<string, unknown> = () => ({})): TailItem[] {
  const out: TailItem[] = [];
  for (let id = from; id <= to; id++) {
    out.push({
      id,
      receivedAt: Date.UTC(2024, 4, 1, 12, 0, 0) + id,
      message: {
        ident: `dev-${id}`,
        timestamp: 1714564800.123 + id,
        'server.timestamp': 1714564800.5 + id,
        'position.latitude': Number((54.7 + id / 1000).toFixed(6)),
        'position.longitude': 25.3,
        'position.speed': id % 120,
        ...extra(id),
      },
    });
  }
  return out;
}

export async function init(page: Page, bufferSize = 10_000): Promise<void> {
  await send(page, {
    type: 'init',
    channel: { id: 42, name: 'trackers' },
    columns: ['timestamp', 'server.timestamp', 'ident', 'position', 'position.speed'],
    bufferSize,
    filter: '',
    paused: false,
    connectionLabel: 'sandbox',
  });
}

/** Ids of the rows in the DOM, in id order. */
export async function rowIds(page: Page): Promise<number[]> {
  const ids = await page.locator('.rows [role="row"]').evaluateAll((rows) => rows.map((r) => Number((r as HTMLElement).dataset.id)));
  return ids.sort((a, b) => a - b);
}

export async function testId(page: Page, id: string): Promise<string> {
  return (await page.locator(`[data-testid="${id}"]`).first().textContent()) ?? '';
}

/**
 * An attribute of the first element matching `selector`, read once it holds `expected` or after
 * 10 s. The table updates row attributes on the next animation frame, after the counters, so a
 * read straight after a click can see the previous frame. The caller still asserts the value:
 * a wrong one fails with what it was.
 */
export async function settledAttribute(page: Page, selector: string, name: string, expected: string): Promise<string | null> {
  try {
    await page.waitForFunction(([s, n, v]) => document.querySelector(s)?.getAttribute(n) === v, [selector, name, expected] as const, { timeout: 10_000 });
  } catch (error) {
    if (!(error instanceof errors.TimeoutError)) throw error;
  }
  return page.locator(selector).first().getAttribute(name);
}
