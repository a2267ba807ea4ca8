// The fleet panel of the tail webview (map, devices, chart, detail extras) in headless Chromium,
// under the panel's real CSP (test/webview/support.ts). Tiles are covered by the e2e flows in VS Code.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { TailItem } from '../../src/shared/tailProtocol';
import { counters, init, send, startWebviewHarness, testId, violations, type WebviewHarness } from './support';

let harness: WebviewHarness;

before(async () => {
  harness = await startWebviewHarness();
});

after(async () => {
  await harness?.close();
});

/** Two devices, taking turns: dev-a drives north (course 0), dev-b east (course 90). Ids from..to. */
function fleet(from: number, to: number): TailItem[] {
  const out: TailItem[] = [];
  for (let id = from; id <= to; id++) {
    const a = id % 2 === 1;
    const step = Math.floor((id - 1) / 2);
    out.push({
      id,
      receivedAt: Date.UTC(2024, 4, 1, 12, 0, 0) + id * 1000,
      message: {
        ident: a ? 'dev-a' : 'dev-b',
        ...(a ? { 'device.name': 'Truck A' } : {}),
        timestamp: 1714564800 + id,
        'server.timestamp': 1714564800.5 + id,
        'position.latitude': a ? round6(54.7 + step * 0.002) : 54.69,
        'position.longitude': a ? 25.3 : round6(25.28 + step * 0.003),
        'position.direction': a ? 0 : 90,
        'position.speed': a ? 30 + step : 60 - step,
      },
    });
  }
  return out;
}

function round6(n: number): number {
  return Number(n.toFixed(6));
}

async function openWithFleet(count: number): Promise<Page> {
  const page = await harness.open();
  await init(page);
  await send(page, { type: 'messages', batch: fleet(1, count), counters: counters({ received: count, shown: count }) });
  await page.waitForFunction((n) => document.querySelector('[role="grid"]')?.getAttribute('aria-rowcount') === String(n + 1), count);
  return page;
}

async function detailTitle(page: Page, expected: string): Promise<string> {
  await page
    .waitForFunction((t) => document.querySelector('[data-testid="detail-title"]')?.textContent === t, expected, { timeout: 10_000 })
    .catch(() => undefined);
  return testId(page, 'detail-title');
}

test('map without tiles: both tracks drawn on a plain background with grid and scale; a click on a device or a point selects its message, a selected row is marked', async () => {
  const page = await openWithFleet(20);
  await page.locator('[data-testid="open-map"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="map"]')?.getAttribute('data-points') === '20');
  const map = page.locator('[data-testid="map"]');
  assert.equal(await map.getAttribute('data-tracks'), '2');
  assert.equal(await map.getAttribute('data-tiles'), 'none');
  assert.match(await testId(page, 'map-note'), /No map tiles/);
  assert.equal(await page.locator('.leaflet-control-scale').count(), 1, 'a scale');
  assert.ok((await page.locator('.leaflet-tile').count()) === 0, 'no tile is requested');
  // The tracks are drawn: the overlay canvas has pixels in each device's colour range.
  const painted = await page.evaluate(() => {
    const canvas = document.querySelector<HTMLCanvasElement>('.leaflet-overlay-pane canvas')!;
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
    return n;
  });
  assert.ok(painted > 200, `the tracks should paint the overlay canvas (${painted} pixels)`);
  const devices = await page
    .locator('[data-testid="map-device"]')
    .evaluateAll((els) => els.map((e) => [(e as HTMLElement).dataset.ident, (e as HTMLElement).dataset.lastId]));
  assert.deepEqual(devices.sort(), [
    ['dev-a', '19'],
    ['dev-b', '20'],
  ]);

  // Map → table: dev-a's marker selects its newest message.
  await page.locator('[data-testid="map-device"][data-ident="dev-a"]').click();
  assert.equal(await detailTitle(page, 'Message #19'), 'Message #19');
  assert.equal(await page.locator('.rows [role="row"][data-id="19"]').getAttribute('aria-selected'), 'true');

  // Table → map: a selected row is marked where it was.
  await page.locator('.rows [role="row"][data-id="3"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="map-selected"]')?.getAttribute('data-id') === '3');
  const box = (await page.locator('[data-testid="map-selected"]').boundingBox())!;
  await page.locator('.rows [role="row"][data-id="10"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="map-selected"]')?.getAttribute('data-id') === '10');
  // A click on the map where message 3 lies selects it again.
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  assert.equal(await detailTitle(page, 'Message #3'), 'Message #3');
  assert.equal(await page.locator('.rows [role="row"][data-id="3"]').getAttribute('aria-selected'), 'true');

  // Follow the selected message's device.
  await page.locator('[data-testid="map-follow"]').click();
  assert.match(await testId(page, 'map-follow'), /Stop following dev-a/);
  assert.deepEqual(await violations(page), []);
  await page.context().close();
});

test('devices: idents with name, count and last position; a click filters the table, the map and back', async () => {
  const page = await openWithFleet(20);
  await page.locator('[data-testid="open-devices"]').click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="device-list"] [data-ident]').length === 2);
  const rows = await page.locator('[data-testid="device-list"] [data-ident]').evaluateAll((els) => els.map((e) => [...e.children].map((c) => c.textContent)));
  const a = rows.find((r) => r[0]?.startsWith('dev-a'))!;
  assert.equal(a[0], 'dev-a Truck A');
  assert.equal(a[1], '10');
  assert.equal(a[4], '54.718, 25.3');
  await page.locator('[data-testid="device-list"] [data-ident="dev-b"]').click();
  await page.waitForFunction(() => document.querySelector('[role="grid"]')?.getAttribute('aria-rowcount') === '11');
  const idents = await page.locator('.rows [role="row"] [aria-colindex="3"]').allTextContents();
  assert.ok(idents.length > 0 && idents.every((i) => i === 'dev-b'), `only dev-b rows: ${idents.join(',')}`);
  assert.match(await testId(page, 'device-filter'), /dev-b/);
  await page.locator('[data-testid="tab-map"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="map"]')?.getAttribute('data-tracks') === '1');
  assert.deepEqual(await page.locator('[data-testid="map-device"]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.ident)), ['dev-b']);
  // The chip shows all again.
  await page.locator('[data-testid="device-filter"]').click();
  await page.waitForFunction(() => document.querySelector('[role="grid"]')?.getAttribute('aria-rowcount') === '21');
  await page.context().close();
});

test("detail pane: readable times beside epoch values, the change since the device's previous message, and Plot opens a live, pause-aware, zoomable chart", async () => {
  const page = await openWithFleet(20);
  await page.locator('.rows [role="row"][data-id="5"]').click();
  assert.equal(await detailTitle(page, 'Message #5'), 'Message #5');
  const times = await page.locator('[data-testid="detail-time"]').allTextContents();
  assert.deepEqual(times, ['2024-05-01 12:00:05.000', '2024-05-01 12:00:05.500'], 'timestamp and server.timestamp (UTC page)');
  const diff = page.locator('[data-testid="detail-diff"]');
  assert.match((await diff.locator('summary').textContent()) ?? '', /changed since the previous message of this device \(#3, 2 s earlier\)/);
  const changed = await diff.locator('tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent).join(' ')));
  assert.deepEqual(changed, [
    'timestamp 1714564803 → 1714564805',
    'server.timestamp 1714564803.5 → 1714564805.5',
    'position.latitude 54.702 → 54.704',
    'position.speed 31 → 32',
  ]);

  await page.locator('[data-plot="position.speed"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="chart"]')?.getAttribute('data-series') === '2');
  const chart = page.locator('[data-testid="chart"]');
  assert.equal(await chart.getAttribute('data-points'), '20');
  assert.match(await testId(page, 'chart-params'), /position\.speed/);
  assert.equal(await page.locator('[data-testid="chart"] canvas').count(), 1);

  // Paused: new messages wait, and so does the chart.
  await page.getByRole('button', { name: 'Pause' }).click();
  await send(page, { type: 'messages', batch: fleet(21, 30), counters: counters({ received: 30, shown: 30 }) });
  await page.waitForTimeout(1500);
  assert.equal(await chart.getAttribute('data-points'), '20', 'the chart stays still while paused');
  assert.match(await testId(page, 'chart-note'), /paused/);
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.waitForFunction(() => document.querySelector('[data-testid="chart"]')?.getAttribute('data-points') === '30');

  // Drag to zoom; new data keeps the zoom; double-click goes back to live.
  const over = (await page.locator('[data-testid="chart"] .u-over').boundingBox())!;
  await page.mouse.move(over.x + over.width * 0.3, over.y + over.height / 2);
  await page.mouse.down();
  await page.mouse.move(over.x + over.width * 0.6, over.y + over.height / 2, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => document.querySelector('[data-testid="chart"]')?.getAttribute('data-zoomed') === 'true');
  await send(page, { type: 'messages', batch: fleet(31, 34), counters: counters({ received: 34, shown: 34 }) });
  await page.waitForFunction(() => document.querySelector('[data-testid="chart"]')?.getAttribute('data-points') === '34');
  assert.equal(await chart.getAttribute('data-zoomed'), 'true', 'live data keeps the zoom');
  await page.locator('[data-testid="chart-reset-zoom"]').click();
  assert.equal(await chart.getAttribute('data-zoomed'), 'false');
  assert.deepEqual(await violations(page), []);
  await page.context().close();
});

test('Columns… offers Plot beside numeric parameters; it opens the chart with that parameter', async () => {
  const page = await openWithFleet(10);
  await page.locator('[data-testid="columns"]').click();
  const plots = await page.locator('[data-plot-column]').evaluateAll((els) => els.map((e) => e.getAttribute('data-plot-column')));
  assert.ok(plots.includes('position.speed') && plots.includes('position.direction'), `numeric columns offer Plot: ${plots.join(', ')}`);
  assert.ok(!plots.includes('ident'), 'a text parameter does not');
  await page.locator('[data-plot-column="position.direction"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="chart"]')?.getAttribute('data-series') === '2');
  assert.match(await testId(page, 'chart-params'), /position\.direction/);
  assert.equal(await page.locator('[data-testid="columns-panel"]').isHidden(), true, 'the popover closed');
  await page.context().close();
});
