import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { counters, init, items, posted, rowIds, send, settledAttribute, startWebviewHarness, testId, violations, type WebviewHarness } from './support';

let harness: WebviewHarness;
const pages: Page[] = [];

before(async () => {
  harness = await startWebviewHarness();
});

after(async () => {
  await harness?.close();
});

async function open(options?: { state?: unknown }): Promise<Page> {
  const page = await harness.open(options);
  pages.push(page);
  return page;
}

interface RowCheck {
  length?: number;
  includes?: number;
  excludes?: number;
}

/** Waits until the rows in the DOM pass the check. (A function, not a string: the page's CSP forbids eval.) */
async function waitForRows(page: Page, check: RowCheck): Promise<void> {
  await page.waitForFunction((c: RowCheck) => {
    const ids = [...document.querySelectorAll<HTMLElement>('.rows [role="row"]')].map((r) => Number(r.dataset.id));
    return (
      (c.length === undefined || ids.length === c.length) &&
      (c.includes === undefined || ids.includes(c.includes)) &&
      (c.excludes === undefined || !ids.includes(c.excludes))
    );
  }, check);
}

test('the webview says ready first and posts nothing else until asked', async () => {
  const page = await open();
  assert.deepEqual(await posted(page), [{ type: 'ready' }]);
  await init(page);
  await page.waitForFunction(() => document.querySelector('[data-testid="title"]')?.textContent?.includes('trackers'));
  assert.equal(await testId(page, 'title'), 'trackers (#42) · sandbox');
  assert.deepEqual(await posted(page), [{ type: 'ready' }]);
  await page.context().close();
});

test('rows show the columns the host asks for: device and server time (the date for an older day), device, position, speed', async () => {
  const page = await open();
  await init(page);
  await send(page, {
    type: 'messages',
    batch: items(1, 3),
    counters: counters({ received: 3, shown: 3, rate: 1.5, lastMessageAt: Date.UTC(2024, 4, 1, 12, 0, 1, 7) }),
  });
  await waitForRows(page, { length: 3 });
  const headers = await page.locator('[role="columnheader"]').allTextContents();
  assert.deepEqual(headers, ['Time', 'Server time', 'Device', 'Position', 'Speed']);
  const cells = await page.locator('.rows [role="row"][data-id="2"] [role="gridcell"]').allTextContents();
  assert.deepEqual(cells, ['2024-05-01 12:00:02', '2024-05-01 12:00:02', 'dev-2', '54.702, 25.3', '2']);
  assert.equal(await testId(page, 'received'), '3');
  assert.equal(await testId(page, 'shown'), '3');
  assert.equal(await testId(page, 'dropped'), '0');
  assert.equal(await testId(page, 'rate'), '1.5');
  assert.equal(await testId(page, 'last'), '12:00:01.007');
  await send(page, { type: 'state', connection: 'live', detail: 'Live' });
  await page.waitForFunction(() => document.querySelector('[data-testid="state"]')?.textContent === 'live');
  assert.deepEqual(await violations(page), [], 'rendering must not need anything the CSP forbids');
  await page.context().close();
});

test('100,000 messages: only the visible rows exist in the DOM, and scrolling to the end shows the last one', async () => {
  const page = await open();
  await init(page, 100_000);
  await page.evaluate(() => {
    const batch = [];
    for (let id = 1; id <= 100_000; id++) {
      batch.push({
        id,
        receivedAt: 1714564800000 + id,
        message: { ident: `dev-${id}`, timestamp: 1714564800 + id, 'server.timestamp': 1714564800 + id, 'position.speed': id % 90 },
      });
    }
    const counters = { received: 100_000, shown: 100_000, dropped: 0, rate: 0, lastMessageAt: null, paused: false, pending: 0 };
    window.postMessage({ type: 'messages', batch, counters }, '*');
  });
  await page.waitForFunction(() => document.querySelector('[role="grid"]')?.getAttribute('aria-rowcount') === '100001');
  // It follows the tail: the newest message is in view.
  await waitForRows(page, { includes: 100000 });
  const rendered = await page.locator('.rows [role="row"]').count();
  assert.ok(rendered > 5 && rendered < 100, `expected a few dozen rows in the DOM, got ${rendered}`);

  // Scroll to the top, then back to the end with the keyboard.
  await page.locator('.viewport').evaluate((v) => (v.scrollTop = 0));
  await waitForRows(page, { includes: 1, excludes: 100000 });
  assert.ok((await page.locator('.rows [role="row"]').count()) < 100);
  await page.locator('[role="grid"]').focus();
  await page.keyboard.press('End');
  await waitForRows(page, { includes: 100000 });
  const last = page.locator('.rows [role="row"][data-id="100000"]');
  assert.equal(await last.locator('[role="gridcell"]').nth(2).textContent(), 'dev-100000');
  assert.ok(await last.isVisible());
  assert.equal(
    await settledAttribute(page, '.rows [role="row"][data-id="100000"]', 'aria-selected', 'true'),
    'true',
    'End moves the selection to the last row',
  );
  assert.ok((await page.locator('.rows [role="row"]').count()) < 100);
  await page.context().close();
});

test('the webview keeps at most bufferSize messages: the oldest go first', async () => {
  const page = await open();
  await init(page, 10);
  await send(page, { type: 'messages', batch: items(1, 8), counters: counters() });
  await send(page, { type: 'messages', batch: items(9, 15), counters: counters() });
  await page.waitForFunction(() => document.querySelector('[role="grid"]')?.getAttribute('aria-rowcount') === '11');
  await waitForRows(page, { includes: 15 });
  const ids = await rowIds(page);
  assert.equal(ids[0], 6);
  assert.equal(ids[ids.length - 1], 15);
  await page.context().close();
});

test('pause: new batches raise the "new" counter without changing the rows; resume shows them', async () => {
  const page = await open();
  await init(page);
  await send(page, { type: 'messages', batch: items(1, 5), counters: counters({ received: 5, shown: 5 }) });
  await waitForRows(page, { length: 5 });

  await page.getByRole('button', { name: 'Pause' }).click();
  assert.deepEqual((await posted(page)).at(-1), { type: 'pause' });
  await page.getByRole('button', { name: 'Resume' }).waitFor();
  assert.ok(await page.locator('[data-testid="new"]').isVisible());
  // Already on its way when the user paused.
  await send(page, { type: 'messages', batch: items(6, 8), counters: counters({ received: 8, shown: 8, paused: true }) });
  await page.waitForFunction(() => document.querySelector('[data-testid="new"]')?.textContent === '3');
  // The host holds back 4 more and keeps counting.
  await send(page, { type: 'counters', counters: counters({ received: 12, shown: 8, paused: true, pending: 4 }) });
  await page.waitForFunction(() => document.querySelector('[data-testid="new"]')?.textContent === '7');
  assert.equal(await testId(page, 'received'), '12');
  assert.deepEqual(await rowIds(page), [1, 2, 3, 4, 5]);

  await page.getByRole('button', { name: 'Resume' }).click();
  assert.deepEqual((await posted(page)).at(-1), { type: 'resume' });
  await waitForRows(page, { includes: 8 });
  assert.deepEqual(await rowIds(page), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.ok(await page.locator('[data-testid="new"]').isHidden());
  await page.context().close();
});

test('quick search filters the rows by any text in the message', async () => {
  const page = await open();
  await init(page);
  const names = ['alpha', 'beta', 'alphabet', 'gamma'];
  await send(page, { type: 'messages', batch: items(1, 4, (id) => ({ 'custom.name': names[id - 1] })), counters: counters() });
  await waitForRows(page, { length: 4 });
  await page.getByRole('textbox', { name: 'Search messages' }).fill('ALPHA');
  await waitForRows(page, { length: 2 });
  assert.deepEqual(await rowIds(page), [1, 3]);
  assert.equal(await testId(page, 'matching'), '2');
  // New messages that match appear, others do not.
  await send(page, { type: 'messages', batch: items(5, 6, (id) => ({ 'custom.name': id === 5 ? 'no' : 'alpha again' })), counters: counters() });
  await waitForRows(page, { includes: 6 });
  assert.deepEqual(await rowIds(page), [1, 3, 6]);
  await page.getByRole('textbox', { name: 'Search messages' }).fill('');
  await waitForRows(page, { length: 6 });
  assert.deepEqual((await page.evaluate(() => (window as unknown as { __state: { search: string } }).__state)).search, '');
  await page.context().close();
});

test('click, shift-click and ctrl-click select; Forward posts the selected ids and shows the result', async () => {
  const page = await open();
  await init(page);
  await send(page, { type: 'messages', batch: items(1, 6), counters: counters() });
  await waitForRows(page, { length: 6 });
  const rowSelector = (id: number) => `.rows [role="row"][data-id="${id}"]`;
  const row = (id: number) => page.locator(rowSelector(id));
  assert.ok(await page.getByRole('button', { name: 'Forward to sink…' }).isDisabled(), 'nothing selected yet');

  await row(2).click();
  await row(5).click({ modifiers: ['Shift'] });
  await row(3).click({ modifiers: ['Control'] });
  await page.waitForFunction(() => document.querySelector('[data-testid="selected"]')?.textContent === '3');
  // The counter changes at once, the rows on the next frame.
  assert.equal(await settledAttribute(page, rowSelector(3), 'aria-selected', 'false'), 'false');
  assert.equal(await settledAttribute(page, rowSelector(4), 'aria-selected', 'true'), 'true');
  // The detail pane shows the last clicked message.
  assert.equal(await testId(page, 'detail-title'), 'Message #3');

  await page.getByRole('button', { name: 'Forward to sink…' }).click();
  assert.deepEqual((await posted(page)).at(-1), { type: 'forward', ids: [2, 4, 5] });
  await send(page, { type: 'forwardResult', count: 3, result: { sink: 'my-http', acknowledged: 3, errors: [], ms: 15 } });
  await page.waitForFunction(() => document.querySelector('[data-testid="forward-result"]')?.textContent?.startsWith('Forwarded'));
  assert.equal(await testId(page, 'forward-result'), 'Forwarded 3 messages to my-http: 3 acknowledged, 0 errors, 15 ms');
  await send(page, { type: 'forwardResult', count: 3, result: { sink: 'my-http', acknowledged: 1, errors: ['HTTP 500 from http://x'], ms: 9 } });
  await page.waitForFunction(() => document.querySelector('[data-testid="forward-result"]')?.getAttribute('data-outcome') === 'partial');
  assert.match(await testId(page, 'forward-result'), /1 acknowledged, 1 error, 9 ms.*HTTP 500 from http:\/\/x/);

  await page.getByRole('button', { name: 'Copy' }).click();
  assert.deepEqual((await posted(page)).at(-1), { type: 'copy', ids: [2, 4, 5] });
  await page.context().close();
});

test('keyboard: arrows move the selection, shift extends it, Ctrl+A selects all, Escape clears', async () => {
  const page = await open();
  await init(page);
  await send(page, { type: 'messages', batch: items(1, 5), counters: counters() });
  await waitForRows(page, { length: 5 });
  await page.locator('[role="grid"]').focus();
  await page.keyboard.press('Home');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Shift+ArrowDown');
  await page.waitForFunction(() => document.querySelector('[data-testid="selected"]')?.textContent === '2');
  assert.equal(await settledAttribute(page, '[role="grid"]', 'aria-activedescendant', 'row-3'), 'row-3');
  await page.keyboard.press('Control+a');
  await page.waitForFunction(() => document.querySelector('[data-testid="selected"]')?.textContent === '5');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.querySelector('[data-testid="selected"]')?.textContent === '0');
  await page.context().close();
});

test('Export… posts the scope and format chosen, with the selected ids for a selection', async () => {
  const page = await open();
  await init(page);
  await send(page, { type: 'messages', batch: items(1, 4), counters: counters() });
  await waitForRows(page, { length: 4 });
  await page.locator('.rows [role="row"][data-id="1"]').click();
  await page.locator('.rows [role="row"][data-id="3"]').click({ modifiers: ['Control'] });

  await page.getByRole('button', { name: 'Export…' }).click();
  await page.getByRole('button', { name: 'Export selection as CSV' }).click();
  assert.deepEqual((await posted(page)).at(-1), { type: 'export', scope: 'selection', format: 'csv', ids: [1, 3] });
  assert.ok(await page.getByRole('dialog', { name: 'Export' }).isHidden());

  await page.getByRole('button', { name: 'Export…' }).click();
  await page.getByRole('button', { name: 'Export buffer as NDJSON' }).click();
  assert.deepEqual((await posted(page)).at(-1), { type: 'export', scope: 'buffer', format: 'ndjson' });
  await page.context().close();
});

test('server filter and column picker post setFilter and setColumns', async () => {
  const page = await open();
  await init(page);
  await send(page, { type: 'messages', batch: items(1, 2, () => ({ 'battery.voltage': 12.5 })), counters: counters() });
  await waitForRows(page, { length: 2 });
  await page.getByRole('textbox', { name: 'Server filter expression' }).fill('position.speed>60');
  await page.getByRole('button', { name: 'Apply filter' }).click();
  assert.deepEqual((await posted(page)).at(-1), { type: 'setFilter', expression: 'position.speed>60' });

  await page.getByRole('button', { name: 'Columns…' }).click();
  await page.locator('vscode-checkbox[data-column="battery.voltage"]').click();
  assert.deepEqual((await posted(page)).at(-1), {
    type: 'setColumns',
    columns: ['timestamp', 'server.timestamp', 'ident', 'position', 'position.speed', 'battery.voltage'],
  });
  await page.waitForFunction(() => [...document.querySelectorAll('[role="columnheader"]')].some((h) => h.textContent === 'battery.voltage'));
  assert.equal(await page.locator('.rows [role="row"][data-id="1"] [role="gridcell"]').nth(5).textContent(), '12.5');
  const state = await page.evaluate(() => (window as unknown as { __state: Record<string, unknown> }).__state);
  assert.deepEqual(state.columns, ['timestamp', 'server.timestamp', 'ident', 'position', 'position.speed', 'battery.voltage']);
  assert.equal(state.filter, 'position.speed>60');
  assert.equal(state.channelId, 42);
  assert.ok(!JSON.stringify(state).includes('dev-1'), 'the saved state holds preferences, not messages');
  await page.context().close();
});

test('payload markup is shown as text: no element is created, no script runs', async () => {
  const page = await open();
  let dialogs = 0;
  page.on('dialog', (dialog) => {
    dialogs++;
    void dialog.dismiss();
  });
  await init(page);
  const hostile = '<img src=x onerror=alert(1)>';
  await send(page, {
    type: 'messages',
    batch: items(1, 1, () => ({ ident: hostile, [`<b onmouseover=alert(2)>key</b>`]: '<script>alert(3)</script>' })),
    counters: counters(),
  });
  await waitForRows(page, { length: 1 });
  assert.equal(await page.locator('.rows [role="row"][data-id="1"] [role="gridcell"]').nth(2).textContent(), hostile);
  await page.locator('.rows [role="row"][data-id="1"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="detail-json"]') !== null);
  const detail = await testId(page, 'detail-json');
  assert.ok(detail.includes(JSON.stringify(hostile)), 'the detail shows the value literally');
  assert.ok(detail.includes('<script>alert(3)</script>'));
  await send(page, { type: 'notice', level: 'error', text: hostile });
  await send(page, { type: 'forwardResult', count: 1, error: hostile });
  await page.waitForFunction(() => document.querySelector('[data-testid="notice"]')?.textContent !== '');
  assert.equal(await testId(page, 'notice'), hostile);
  const created = await page.evaluate(() => document.querySelectorAll('img, script:not([src]), b').length);
  assert.equal(created, 0);
  assert.equal(dialogs, 0);
  await page.context().close();
});

test('CSP: default-src none, scripts only with the per-render nonce; a script without it does not run', async () => {
  const first = await (await fetch(`${harness.origin}/`)).text();
  const second = await (await fetch(`${harness.origin}/`)).text();
  const csp = (/http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(first)?.[1] ?? '').replace(/&#39;/g, "'");
  const directives = new Map(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .map(([name, ...values]) => [name, values]),
  );
  assert.deepEqual(directives.get('default-src'), ["'none'"]);
  const scriptSrc = directives.get('script-src') ?? [];
  assert.equal(scriptSrc.length, 1);
  assert.match(scriptSrc[0], /^'nonce-[A-Za-z0-9_-]{20,}'$/);
  assert.deepEqual(directives.get('style-src'), [harness.origin], 'no inline styles');
  const nonceOf = (html: string) => /<script nonce="([^"]+)"/.exec(html)?.[1];
  assert.ok(nonceOf(first) && nonceOf(first) !== nonceOf(second), 'a fresh nonce per render');
  assert.equal(scriptSrc[0], `'nonce-${nonceOf(first)}'`, 'the script tag carries the nonce the policy names');

  const page = await open();
  const outcome = await page.evaluate(async () => {
    const w = window as unknown as Record<string, unknown>;
    const violated = new Promise<string>((resolve) =>
      document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), { once: true }),
    );
    const script = document.createElement('script');
    script.textContent = 'window.__injected = true';
    document.body.append(script);
    const directive = await violated;
    return { directive, ran: w.__injected === true };
  });
  assert.equal(outcome.ran, false);
  assert.match(outcome.directive, /^script-src/);
  await page.context().close();
});

test('after a reload: saved columns and search apply, and a resync replaces the buffer', async () => {
  const page = await open({ state: { channelId: 42, columns: ['ident', 'battery.voltage'], search: 'dev-2' } });
  await init(page);
  await send(page, { type: 'messages', batch: items(1, 3), counters: counters() });
  await waitForRows(page, { length: 1 });
  assert.deepEqual(await page.locator('[role="columnheader"]').allTextContents(), ['Device', 'battery.voltage']);
  assert.equal(await page.getByRole('textbox', { name: 'Search messages' }).inputValue(), 'dev-2');
  assert.deepEqual(await rowIds(page), [2]);
  // The host resends its buffer (as after the panel was hidden): dev-2 is gone, dev-20..dev-25 match.
  await send(page, { type: 'messages', batch: items(20, 25), counters: counters(), reset: true });
  await waitForRows(page, { includes: 22, excludes: 2 });
  assert.deepEqual(await rowIds(page), [20, 21, 22, 23, 24, 25]);
  await page.getByRole('textbox', { name: 'Search messages' }).fill('dev-22');
  await waitForRows(page, { length: 1 });
  assert.deepEqual(await rowIds(page), [22]);
  assert.equal(await page.locator('[role="grid"]').getAttribute('aria-rowcount'), '2');
  await page.context().close();
});

/** A message row in the table. */
const sel = (id: number) => `.rows [role="row"][data-id="${id}"]`;

test('a new buffer (restart, a new filter) clears the selection and the detail pane; a refused filter keeps the rows and marks the field', async () => {
  const page = await open();
  await init(page);
  await send(page, { type: 'messages', batch: items(1, 5), counters: counters() });
  await waitForRows(page, { length: 5 });
  await page.locator(sel(3)).click();
  await page.waitForFunction(() => document.querySelector('[data-testid="detail-title"]')?.textContent === 'Message #3', undefined, { timeout: 5000 });
  // The host refuses the expression: nothing is replaced, the field says it is invalid.
  await page.getByRole('textbox', { name: 'Server filter expression' }).fill('position.speed>>');
  await page.getByRole('button', { name: 'Apply filter' }).click();
  await send(page, { type: 'filter', expression: '', refused: 'unexpected ">" at position 16' });
  await page.waitForFunction(
    () => (document.querySelector('vscode-textfield[data-testid="filter"]') as HTMLElement & { invalid: boolean }).invalid,
    undefined,
    { timeout: 5000 },
  );
  assert.equal(
    await page.getByRole('textbox', { name: 'Server filter expression' }).inputValue(),
    'position.speed>>',
    'the typed expression stays to be fixed',
  );
  assert.deepEqual(await rowIds(page), [1, 2, 3, 4, 5]);
  assert.equal(await testId(page, 'detail-title'), 'Message #3');
  assert.equal(await testId(page, 'selected'), '1');
  // Accepted: the host restarts and sends a new buffer whose ids start again at 1.
  await send(page, { type: 'filter', expression: 'position.speed>1' });
  await send(page, { type: 'messages', batch: items(1, 2), counters: counters(), reset: true });
  await waitForRows(page, { length: 2 });
  await page.waitForFunction(() => document.querySelector('[data-testid="detail"]')?.textContent === 'Select a message to see it here.', undefined, {
    timeout: 5000,
  });
  assert.equal(await testId(page, 'selected'), '0');
  assert.equal(await page.locator('[aria-selected="true"]').count(), 0);
  await page.context().close();
});

test('shown again after a tab switch: the selection and the detail pane come back when the buffer is the same one', async () => {
  const first = await open();
  await init(first);
  await send(first, { type: 'messages', batch: items(1, 40), counters: counters() });
  await waitForRows(first, { includes: 40 });
  await first.locator('[role="grid"]').focus();
  await first.keyboard.press('End');
  await first.keyboard.press('Shift+ArrowUp');
  await first.waitForFunction(() => document.querySelector('[data-testid="selected"]')?.textContent === '2');
  const state = await first.evaluate(() => (window as unknown as { __state: unknown }).__state);
  await first.context().close();

  const again = await open({ state });
  await init(again);
  await send(again, { type: 'messages', batch: items(1, 40), counters: counters(), reset: true });
  await again.waitForFunction(() => document.querySelector('[data-testid="selected"]')?.textContent === '2');
  assert.equal(await testId(again, 'detail-title'), 'Message #39');
  assert.equal(await settledAttribute(again, sel(40), 'aria-selected', 'true'), 'true');
  await again.context().close();

  // Another buffer under the same ids (the tail restarted while hidden): nothing is restored.
  const other = await open({ state });
  await init(other);
  await send(other, {
    type: 'messages',
    batch: items(1, 40).map((item) => ({ ...item, receivedAt: item.receivedAt + 60_000 })),
    counters: counters(),
    reset: true,
  });
  await waitForRows(other, { includes: 40 });
  assert.equal(await testId(other, 'selected'), '0');
  await other.context().close();
});

test('keyboard: ArrowUp and Home keep the active row below the sticky header; Escape and an outside click close Export', async () => {
  const page = await open();
  await init(page);
  await send(page, { type: 'messages', batch: items(1, 200), counters: counters() });
  await waitForRows(page, { includes: 200 });
  const grid = page.locator('[role="grid"]');
  await grid.focus();
  await page.keyboard.press('End');
  const belowHeader = async () =>
    page.evaluate(() => {
      const active = document.querySelector('[role="grid"]')!.getAttribute('aria-activedescendant');
      const rowBox = document.getElementById(active ?? '')!.getBoundingClientRect();
      const header = document.querySelector('.row.header')!.getBoundingClientRect();
      const viewport = document.querySelector('.viewport')!.getBoundingClientRect();
      return rowBox.top >= header.bottom - 0.5 && rowBox.bottom <= viewport.bottom + 0.5;
    });
  const rowsInView = Math.floor((await page.locator('.viewport').evaluate((v) => v.clientHeight)) / 22);
  for (let i = 0; i < rowsInView + 3; i++) await page.keyboard.press('ArrowUp');
  await page.waitForFunction(() => document.querySelector('[role="grid"]')?.getAttribute('aria-activedescendant') !== null);
  await page.waitForTimeout(100);
  assert.ok(await belowHeader(), 'after ArrowUp the active row is hidden under the header or out of view');
  await page.keyboard.press('Home');
  assert.equal(await settledAttribute(page, '[role="grid"]', 'aria-activedescendant', 'row-1'), 'row-1');
  await page.waitForTimeout(100);
  assert.ok(await belowHeader(), 'after Home the first row is hidden under the header');

  const exportPanel = page.getByRole('dialog', { name: 'Export' });
  await page.getByRole('button', { name: 'Export…' }).click();
  await exportPanel.waitFor({ state: 'visible' });
  await page.keyboard.press('Escape');
  await exportPanel.waitFor({ state: 'hidden' });
  await page.getByRole('button', { name: 'Export…' }).click();
  await exportPanel.waitFor({ state: 'visible' });
  await page.locator('[data-testid="detail"]').click();
  await exportPanel.waitFor({ state: 'hidden' });
  await page.context().close();
});

test('the state pill says "paused" while paused; after Stop, Pause is disabled; nothing acknowledged reads as a failure', async () => {
  const page = await open();
  await init(page);
  await send(page, { type: 'state', connection: 'live', detail: 'Live' });
  await page.waitForFunction(() => document.querySelector('[data-testid="state"]')?.textContent === 'live');
  await page.getByRole('button', { name: 'Pause' }).click();
  await page.waitForFunction(() => document.querySelector('[data-testid="state"]')?.textContent === 'paused');
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.waitForFunction(() => document.querySelector('[data-testid="state"]')?.textContent === 'live');
  await send(page, { type: 'state', connection: 'stopped', detail: 'Stopped' });
  await page.waitForFunction(() => document.querySelector('vscode-button[data-testid="pause"]')?.getAttribute('aria-disabled') === 'true');
  await send(page, { type: 'state', connection: 'connecting', detail: 'Connecting' });
  await page.waitForFunction(() => document.querySelector('vscode-button[data-testid="pause"]')?.getAttribute('aria-disabled') === 'false');

  await send(page, { type: 'forwardResult', count: 3, result: { sink: 'picky', acknowledged: 0, errors: ['HTTP 400 from http://x'], ms: 5 } });
  await page.waitForFunction(() => document.querySelector('[data-testid="forward-result"]')?.getAttribute('data-outcome') === 'error');
  assert.match(await testId(page, 'forward-result'), /^Forward failed: picky acknowledged none of 3 messages \(0 acknowledged, 1 error, 5 ms\)HTTP 400/);
  await send(page, { type: 'forwardResult', count: 3, result: { sink: 'picky', acknowledged: 2, errors: ['message 2 refused: 400'], ms: 5 } });
  await page.waitForFunction(() => document.querySelector('[data-testid="forward-result"]')?.getAttribute('data-outcome') === 'partial');
  assert.match(await testId(page, 'forward-result'), /^Forwarded 2 of 3 messages to picky: 2 acknowledged, 1 error/);
  await page.context().close();
});
