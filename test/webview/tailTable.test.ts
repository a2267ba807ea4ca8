/**
 * The tail's table in the real webview bundle: default columns that fit, the time cell, resizable
 * columns kept in the webview state, the off-screen columns cue, sorting while paused, and the
 * narrow layout.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { PROTOCOLS } from '../../src/sandbox/catalog';
import { Random, imeiLike } from '../../src/sandbox/random';
import { SimulatedVehicle } from '../../src/sandbox/simulator';
import { DEFAULT_COLUMNS, type TailItem } from '../../src/shared/tailProtocol';
import { counters, items, send, startWebviewHarness, type WebviewHarness } from './support';

let harness: WebviewHarness;

before(async () => {
  harness = await startWebviewHarness();
});

after(async () => {
  await harness?.close();
});

async function initWith(page: Page, columns: readonly string[] = DEFAULT_COLUMNS, paused = false): Promise<void> {
  await send(page, {
    type: 'init',
    channel: { id: 42, name: 'trackers' },
    columns: [...columns],
    bufferSize: 10_000,
    filter: '',
    paused,
    connectionLabel: 'sandbox',
  });
}

async function showRows(page: Page, batch: TailItem[]): Promise<void> {
  await send(page, { type: 'messages', batch, counters: counters({ received: batch.length, shown: batch.length }) });
  await page.waitForFunction((n) => document.querySelectorAll('.rows [role="row"]').length === n, batch.length);
}

/** Messages as the sandbox's simulated vehicles send them. */
function sandboxItems(count: number): TailItem[] {
  const random = new Random(7);
  const protocol = PROTOCOLS[0]!;
  const vehicles = [0, 1, 2, 3].map((i) => new SimulatedVehicle({ ident: imeiLike(random), channelId: 1, protocol }, random, i));
  const start = Date.now() / 1000 - count;
  return Array.from({ length: count }, (_, i) => {
    const vehicle = vehicles[i % vehicles.length]!;
    vehicle.advance(5);
    return { id: i + 1, receivedAt: Date.now(), message: vehicle.message(start + i) };
  });
}

/** The text of one column, rows in the order shown (by aria-rowindex). */
async function columnTexts(page: Page, colIndex: number): Promise<string[]> {
  return page.locator('.rows [role="row"]').evaluateAll(
    (rows, c) =>
      rows
        .map((r) => ({ at: Number(r.getAttribute('aria-rowindex')), text: r.querySelector(`[aria-colindex="${c}"]`)?.textContent ?? '' }))
        .sort((a, b) => a.at - b.at)
        .map((r) => r.text),
    colIndex,
  );
}

/** Waits until a column shows these texts in this order (rows are repositioned on the next frame), then returns what it shows. */
async function settledColumn(page: Page, colIndex: number, expected: string[]): Promise<string[]> {
  try {
    await page.waitForFunction(
      ([c, e]) => {
        const rows = [...document.querySelectorAll('.rows [role="row"]')].sort(
          (a, b) => Number(a.getAttribute('aria-rowindex')) - Number(b.getAttribute('aria-rowindex')),
        );
        return JSON.stringify(rows.map((r) => r.querySelector(`[aria-colindex="${c}"]`)?.textContent ?? '')) === JSON.stringify(e);
      },
      [colIndex, expected] as const,
      { timeout: 5000 },
    );
  } catch {
    // The caller's assertion shows what it was.
  }
  return columnTexts(page, colIndex);
}

async function headerWidth(page: Page, label: string): Promise<number> {
  const box = await page.locator('[role="columnheader"]', { hasText: label }).boundingBox();
  assert.ok(box, `no header ${label}`);
  return box.width;
}

/** Drags the right edge of a header by dx px. */
async function dragEdge(page: Page, label: string, dx: number): Promise<void> {
  const box = await page.locator('[role="columnheader"]', { hasText: label }).locator('.resize-handle').boundingBox();
  assert.ok(box);
  const x = box.x + box.width / 2;
  const y = box.y + box.height / 2;
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move(x + dx / 2, y, { steps: 3 });
  await page.mouse.move(x + dx, y, { steps: 3 });
  await page.mouse.up();
}

test('the default columns fit a 1000 px editor with sandbox messages: no horizontal overflow, no cue', async () => {
  const page = await harness.open({ width: 1000 });
  await initWith(page);
  await showRows(page, sandboxItems(30));
  assert.deepEqual(await page.locator('[role="columnheader"]').allTextContents(), ['Time', 'Device', 'Speed', 'Position']);
  const fit = await page.locator('.viewport').evaluate((v) => ({ scroll: v.scrollWidth, client: v.clientWidth }));
  assert.ok(fit.client > 0 && fit.scroll <= fit.client, `columns need ${fit.scroll} px, the table has ${fit.client}`);
  // No cell is cut short either: each one's text fits its width.
  const cut = await page
    .locator('.rows [role="gridcell"]')
    .evaluateAll((cells) => cells.filter((c) => c.scrollWidth > c.clientWidth).map((c) => c.textContent));
  assert.deepEqual(cut, []);
  assert.equal(await page.getByTestId('overflow-right').isVisible(), false);
  await page.context().close();
});

test('the time cell: HH:MM:SS for today in the local time zone, the date too for an older day, ISO time in the tooltip', async () => {
  // 23:30 UTC is already the next morning in Tokyo (UTC+9).
  const page = await harness.open({ timezoneId: 'Asia/Tokyo' });
  await page.clock.setFixedTime(new Date('2024-05-01T23:30:00Z'));
  await initWith(page);
  const today = Date.parse('2024-05-01T23:10:00.250Z') / 1000; // 08:10 on 2 May in Tokyo
  const yesterday = Date.parse('2024-05-01T14:00:00Z') / 1000; // 23:00 on 1 May in Tokyo
  await showRows(page, [
    { id: 1, receivedAt: 0, message: { ident: 'a', timestamp: yesterday } },
    { id: 2, receivedAt: 0, message: { ident: 'b', timestamp: today } },
  ]);
  const cell = (id: number) => page.locator(`.rows [data-id="${id}"] [aria-colindex="1"]`);
  assert.equal(await cell(2).textContent(), '08:10:00');
  assert.equal(await cell(2).getAttribute('title'), '2024-05-02T08:10:00.250+09:00');
  assert.equal(await cell(1).textContent(), '2024-05-01 23:00:00');
  assert.equal(await cell(1).getAttribute('title'), '2024-05-01T23:00:00.000+09:00');
  await page.context().close();
});

test('dragging a header edge resizes its column, not below the minimum; the width survives a reload; double-click fits the text', async () => {
  const page = await harness.open();
  await initWith(page);
  await showRows(
    page,
    items(1, 5, (id) => ({ ident: `a-rather-long-device-name-${id}` })),
  );
  const before = await headerWidth(page, 'Time');
  await dragEdge(page, 'Time', 80);
  const wider = await headerWidth(page, 'Time');
  assert.ok(Math.abs(wider - (before + 80)) <= 2, `expected about ${before + 80} px, got ${wider}`);
  // The rows follow the header.
  const cellWidth = (await page.locator('.rows [data-id="1"] [aria-colindex="1"]').boundingBox())!.width;
  assert.ok(Math.abs(cellWidth - wider) <= 1);
  const state = (await page.evaluate(() => (window as unknown as { __state: { widths?: Record<string, number> } }).__state)) ?? {};
  assert.ok(Math.abs((state.widths?.timestamp ?? 0) - wider) <= 1, `saved widths: ${JSON.stringify(state.widths)}`);

  await dragEdge(page, 'Speed', -300);
  assert.equal(Math.round(await headerWidth(page, 'Speed')), 40, 'a column cannot be narrower than 40 px');

  // A reload of the webview with the saved state: same widths.
  const saved = await page.evaluate(() => (window as unknown as { __state: unknown }).__state);
  const reloaded = await harness.open({ state: saved });
  await initWith(reloaded);
  assert.ok(Math.abs((await headerWidth(reloaded, 'Time')) - wider) <= 1);
  assert.equal(Math.round(await headerWidth(reloaded, 'Speed')), 40);
  await reloaded.context().close();

  // Double-click on the Device edge: as wide as its longest text, which is then not cut.
  const device = page.locator('[role="columnheader"]', { hasText: 'Device' }).locator('.resize-handle');
  const narrow = await headerWidth(page, 'Device');
  await device.dblclick();
  await page.waitForFunction((w) => (document.querySelector('[role="columnheader"][data-key="ident"]')?.getBoundingClientRect().width ?? 0) > w + 20, narrow);
  const cut = await page.locator('.rows [aria-colindex="2"]').evaluateAll((cells) => cells.filter((c) => c.scrollWidth > c.clientWidth).length);
  assert.equal(cut, 0);

  // Keyboard: Shift+ArrowRight on a header widens its column by 10 px.
  const speed = page.locator('[role="columnheader"][data-key="position.speed"] button');
  await speed.focus();
  await page.keyboard.press('Shift+ArrowRight');
  assert.equal(Math.round(await headerWidth(page, 'Speed')), 50, 'Shift+ArrowRight: 40 + 10 px');
  // ArrowRight moves to the next header; ArrowDown goes back to the rows.
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.evaluate(() => document.activeElement?.closest('[role="columnheader"]')?.getAttribute('data-key')), 'position');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('role')), 'grid');
  await page.context().close();
});

test('the off-screen cue counts the columns out of view, scrolls to them, and goes when the columns fit', async () => {
  const page = await harness.open({ width: 1000 });
  const many = [...DEFAULT_COLUMNS, 'server.timestamp', 'position.altitude', 'position.direction', 'position.satellites', 'external.powersource.voltage'];
  await initWith(page, many);
  await showRows(page, sandboxItems(10));
  const right = page.getByTestId('overflow-right');
  await right.waitFor();
  // What the cue should say, measured independently: header cells whose right edge is past the view.
  const hidden = await page.locator('.viewport').evaluate((v) => {
    const edge = v.getBoundingClientRect().left + v.clientWidth;
    return [...v.querySelectorAll('[role="columnheader"]')].filter((h) => h.getBoundingClientRect().right > edge + 1).length;
  });
  assert.ok(hidden > 0);
  assert.equal(await right.textContent(), `+${hidden} columns →`);
  assert.equal(await page.locator('.grid-frame').getAttribute('data-overflow-right'), 'true');
  assert.equal(await page.getByTestId('overflow-left').isVisible(), false);

  await right.click();
  await page.waitForFunction(() => (document.querySelector('.viewport')?.scrollLeft ?? 0) > 0);
  await page.getByTestId('overflow-left').waitFor();
  assert.equal(await page.locator('.grid-frame').getAttribute('data-overflow-left'), 'true');

  // Wide enough for every column: no cue on either side.
  await page.setViewportSize({ width: 2400, height: 700 });
  await page.waitForFunction(() => document.querySelector('.grid-frame')?.getAttribute('data-overflow-right') === 'false');
  assert.equal(await right.isVisible(), false);
  assert.equal(await page.getByTestId('overflow-left').isVisible(), false);
  await page.context().close();
});

test('paused, a header click sorts by its column (numbers by value, text numeric-aware) and the selection stays; resume restores arrival order', async () => {
  const page = await harness.open();
  await initWith(page);
  const speeds = [5, 100, 20, 9, 60, 100];
  await showRows(
    page,
    items(1, 6, (id) => ({ ident: `dev-${13 - id * 2}`, 'position.speed': speeds[id - 1] })),
  );
  const arrival = await columnTexts(page, 3);
  assert.deepEqual(arrival, ['5', '100', '20', '9', '60', '100']);
  await page.locator('.rows [data-id="3"]').click();

  await page.getByRole('button', { name: 'Pause' }).click();
  const speed = page.locator('[role="columnheader"][data-key="position.speed"]');
  await speed.click();
  await page.waitForFunction(() => document.querySelector('[data-key="position.speed"]')?.getAttribute('aria-sort') === 'ascending');
  assert.deepEqual(await settledColumn(page, 3, ['5', '9', '20', '60', '100', '100']), ['5', '9', '20', '60', '100', '100']);
  assert.equal(await page.locator('.rows [data-id="3"]').getAttribute('aria-selected'), 'true', 'the selected message is still selected');
  assert.equal(await page.locator('.rows [aria-selected="true"]').count(), 1);
  assert.match((await page.getByTestId('detail').textContent()) ?? '', /dev-7/);

  await speed.click();
  await page.waitForFunction(() => document.querySelector('[data-key="position.speed"]')?.getAttribute('aria-sort') === 'descending');
  assert.deepEqual(await settledColumn(page, 3, ['100', '100', '60', '20', '9', '5']), ['100', '100', '60', '20', '9', '5']);
  // Equal values keep their arrival order.
  assert.deepEqual((await columnTexts(page, 2)).slice(0, 2), ['dev-9', 'dev-1']);

  // Text: dev-1, dev-3, ... dev-11 (not dev-1, dev-11, dev-3).
  const device = page.locator('[role="columnheader"][data-key="ident"]');
  await device.click();
  await page.waitForFunction(() => document.querySelector('[data-key="ident"]')?.getAttribute('aria-sort') === 'ascending');
  assert.equal(await speed.getAttribute('aria-sort'), null, 'one sorted column at a time');
  const byDevice = ['dev-1', 'dev-3', 'dev-5', 'dev-7', 'dev-9', 'dev-11'];
  assert.deepEqual(await settledColumn(page, 2, byDevice), byDevice);

  await page.getByRole('button', { name: 'Resume' }).click();
  await page.waitForFunction(() => !document.querySelector('[aria-sort]'));
  assert.deepEqual(await settledColumn(page, 3, arrival), arrival);
  assert.equal(await page.locator('.rows [data-id="3"]').getAttribute('aria-selected'), 'true');
  await page.context().close();
});

test('live, a header click does not sort, and the header says why', async () => {
  const page = await harness.open();
  await initWith(page);
  await showRows(
    page,
    items(1, 4, (id) => ({ 'position.speed': [30, 10, 40, 20][id - 1] })),
  );
  const button = page.locator('[role="columnheader"][data-key="position.speed"] button');
  // force: Playwright does not click what is aria-disabled; a user can.
  await button.click({ force: true });
  await page.waitForTimeout(200); // a sort would show on the next frame
  assert.deepEqual(await columnTexts(page, 3), ['30', '10', '40', '20']);
  assert.equal(await page.locator('[aria-sort]').count(), 0);
  assert.equal(await button.getAttribute('aria-disabled'), 'true');
  assert.match((await button.getAttribute('title')) ?? '', /Pause the tail to sort/);
  await page.context().close();
});

test('narrow, the detail pane goes below the table; wide again, beside it', async () => {
  const page = await harness.open({ width: 600 });
  await initWith(page);
  await showRows(page, items(1, 3));
  const split = page.locator('vscode-split-layout.split');
  await page.waitForFunction(() => document.querySelector('vscode-split-layout.split')?.getAttribute('split') === 'horizontal');
  let table = (await page.locator('.grid').boundingBox())!;
  let detail = (await page.getByTestId('detail').boundingBox())!;
  assert.ok(detail.y >= table.y + table.height - 1, `detail at y=${detail.y}, table ends at ${table.y + table.height}`);

  await page.setViewportSize({ width: 1200, height: 700 });
  await page.waitForFunction(() => document.querySelector('vscode-split-layout.split')?.getAttribute('split') === 'vertical');
  assert.equal(await split.getAttribute('split'), 'vertical');
  table = (await page.locator('.grid').boundingBox())!;
  detail = (await page.getByTestId('detail').boundingBox())!;
  assert.ok(detail.x >= table.x + table.width - 1, `detail at x=${detail.x}, table ends at ${table.x + table.width}`);
  await page.context().close();
});
