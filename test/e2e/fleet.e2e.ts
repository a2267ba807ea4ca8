// The tail's map, devices and chart in a real VS Code (code-server), on the extension's own sandbox:
// tracks drawn from sandbox messages over tiles from a local tile server this file starts, click to
// select both ways, the devices list narrowing the table and the map, a chart of a parameter opened
// from the detail pane, and the map when no tile loads (the empty setting: test/webview/fleet.test.ts). Screenshots: test-output/e2e/fleet*.png.
// Run: node --import tsx --test --test-concurrency=1 test/e2e/fleet.e2e.ts   (docs/e2e.md)
import assert from 'node:assert/strict';
import { before, describe } from 'node:test';
import { sessionFlows } from './support/flow';
import { LiveTail } from './support/liveTail';
import { TileServer } from './support/tileServer';
import { waitFor } from './support/workbench';

const TAIL_CHANNEL = 'sandbox-teltonika';

describe("the live tail's map, devices and chart in VS Code (code-server)", { concurrency: false }, () => {
  let tiles: TileServer;
  // Registered before the session's own hook, so the settings can name the tile server.
  before(async () => {
    tiles = await TileServer.start();
  });
  const e2e = sessionFlows({
    name: 'fleet',
    brokerTopics: 'e2e/fleet/#',
    settings: () => ({ machine: {}, user: { 'flespi.map.tileUrl': tiles.template } }),
  });
  const flow = e2e.flow;
  let tail: LiveTail;

  flow(
    'fleet1',
    'map: sandbox tracks over tiles from the local tile server; a device click selects its message, a selected row is marked, a click on that point selects it again',
    async (wb) => {
      await wb.activityItem('flespi').waitFor({ timeout: 60_000 });
      // As a new user following "Get started": the walkthrough is open while they connect and open a tail (fleet5).
      await wb.runCommandAndPick('Welcome: Open Walkthrough...', 'Get started with flespi');
      await wb.openContainer('flespi');
      const channels = await wb.expandView('Channels');
      const sandboxButton = channels.getByRole('button', { name: 'Use local sandbox' });
      await sandboxButton.waitFor({ timeout: 60_000 });
      await sandboxButton.click();
      await waitFor('the sandbox channels', async () => (await wb.treeLabels('Channels')).some((l) => l.includes(TAIL_CHANNEL)), 60_000);
      // A click on the channel opens its tail (fleet5 checks that the walkthrough counts it).
      // A click while the tree redraws can reach a row whose command VS Code has already let go ("Actual
      // command not found" in the console): as a user would, click again when no tail opens.
      for (let attempt = 1; ; attempt++) {
        await wb.view('Channels').locator('.monaco-list-row').filter({ hasText: TAIL_CHANNEL }).first().click();
        const opened = await LiveTail.find(wb, 15_000).catch((error: unknown) => (attempt < 3 ? undefined : Promise.reject(error)));
        if (opened) {
          tail = opened;
          break;
        }
      }
      await tail.waitForCount('received', 30, 60_000);
      await tail.frame.locator('[data-testid="open-map"]').click();
      const map = tail.frame.locator('[data-testid="map"]');
      await waitFor(
        'tracks on the map',
        async () => Number(await map.getAttribute('data-points')) >= 20 && Number(await map.getAttribute('data-tracks')) >= 2,
        30_000,
      );
      await waitFor('tiles from the local tile server', async () => (await map.getAttribute('data-tiles')) === 'loaded', 30_000);
      assert.ok(tiles.served.length > 0, 'the tile server was asked for tiles');
      await tail.frame.locator('[data-testid="map-fit"]').click();
      await wb.shot('map');

      await tail.pause();
      // Map → table: a device's marker selects its newest message.
      const marker = tail.frame.locator('[data-testid="map-device"]').first();
      // The map redraws once a second: rows shown just before the pause may still reach it.
      const lastId = await waitFor('the map to settle after the pause', async () => {
        const before = await marker.getAttribute('data-last-id');
        await new Promise((r) => setTimeout(r, 1500));
        return before === (await marker.getAttribute('data-last-id')) ? Number(before) : undefined;
      });
      await marker.click();
      await waitFor(
        `the detail pane to show #${lastId}`,
        async () => (await tail.frame.locator('[data-testid="detail-title"]').textContent()) === `Message #${lastId}`,
      );
      await waitFor(`row #${lastId} to be selected`, async () => (await tail.selectedIds()).join() === String(lastId));

      // Table → map: a row is marked where it lies. Two rows of one device at different places: A is
      // selected and the map zoomed in around it (the wheel zooms around the pointer), then its
      // neighbour B; a click where A lies selects A again.
      const [a, b] = (await tail.frame.evaluate(`(() => {
      const column = (key) => document.querySelector('[role="columnheader"][data-key="' + key + '"]')?.getAttribute('aria-colindex');
      const cell = (r, key) => r.querySelector('[aria-colindex="' + column(key) + '"]')?.textContent ?? '';
      const rows = [...document.querySelectorAll('.rows [role="row"][data-id]')].map((r) => ({ id: Number(r.getAttribute('data-id')), ident: cell(r, 'ident'), position: cell(r, 'position') }));
      rows.sort((x, y) => x.id - y.id);
      for (const [i, x] of rows.entries()) {
        const y = rows.slice(i + 1).find((r) => r.ident === x.ident);
        // A must be the only message at its place (a parked vehicle's messages lie on one point).
        const alone = rows.filter((r) => r.position === x.position).length === 1;
        if (y && alone && /\\d/.test(x.position) && /\\d/.test(y.position) && y.position !== x.position) return [x.id, y.id];
      }
      return [];
    })()`)) as number[];
      assert.ok(a !== undefined && b !== undefined, 'two rows of one device at different places');
      await tail.row(a).click();
      const selected = tail.frame.locator('[data-testid="map-selected"]');
      await waitFor(`message #${a} marked on the map`, async () => (await selected.getAttribute('data-id')) === String(a));
      for (let i = 0; i < 12 && Number(await map.getAttribute('data-zoom')) < 18; i++) {
        const ring = (await selected.boundingBox())!;
        await wb.page.mouse.move(ring.x + ring.width / 2, ring.y + ring.height / 2);
        await wb.page.mouse.wheel(0, -300);
        await new Promise((r) => setTimeout(r, 700));
      }
      assert.ok(Number(await map.getAttribute('data-zoom')) >= 17, `zoomed in around #${a} (zoom ${await map.getAttribute('data-zoom')})`);
      const box = (await selected.boundingBox())!;
      await tail.row(b).click();
      await waitFor(`message #${b} marked on the map`, async () => (await selected.getAttribute('data-id')) === String(b));
      await wb.page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
      await waitFor(
        `a click where #${a} lies to select it`,
        async () => (await tail.frame.locator('[data-testid="detail-title"]').textContent()) === `Message #${a}`,
      );
      assert.deepEqual(await tail.selectedIds(), [a]);
      await wb.shot('map-selected');
    },
  );

  flow('fleet2', 'devices: the idents seen with their counts; a click narrows the table and the map to one device', async (wb) => {
    await tail.frame.locator('[data-testid="open-devices"]').click();
    const rows = tail.frame.locator('[data-testid="device-list"] [data-ident]');
    await waitFor('at least two devices listed', async () => (await rows.count()) >= 2);
    await wb.shot('devices');
    const ident = (await rows.first().getAttribute('data-ident'))!;
    const count = Number(await rows.first().locator('[data-testid="device-count"]').textContent());
    assert.ok(count > 0, `${ident} counts ${count} messages`);
    await rows.first().click();
    await waitFor(`only ${ident}'s rows in the table`, async () => {
      const identColumn = await tail.frame.locator('[role="columnheader"][data-key="ident"]').getAttribute('aria-colindex');
      const idents = await tail.frame.locator(`.rows [role="row"] [aria-colindex="${identColumn}"]`).allTextContents();
      return idents.length > 0 && idents.every((i) => i === ident);
    });
    await tail.frame.locator('[data-testid="tab-map"]').click();
    const map = tail.frame.locator('[data-testid="map"]');
    await waitFor(`one track (${ident}) on the map`, async () => (await map.getAttribute('data-tracks')) === '1');
    assert.deepEqual(await tail.frame.locator('[data-testid="map-device"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-ident'))), [ident]);
    await wb.shot('device-filtered');
    await tail.frame.locator('[data-testid="device-filter"]').click();
    await waitFor('every track back', async () => Number(await map.getAttribute('data-tracks')) >= 2);
  });

  flow('fleet3', 'chart: "Plot" beside position.speed in the detail pane opens a chart of it per device, which grows while live', async (wb) => {
    const id = (await tail.rowIds()).at(-1)!;
    await tail.row(id).click();
    await tail.frame.locator('[data-plot="position.speed"]').click();
    const chart = tail.frame.locator('[data-testid="chart"]');
    await waitFor(
      'a chart of position.speed',
      async () => Number(await chart.getAttribute('data-series')) >= 2 && Number(await chart.getAttribute('data-points')) > 10,
    );
    const points = Number(await chart.getAttribute('data-points'));
    assert.match((await tail.frame.locator('[data-testid="chart-note"]').textContent()) ?? '', /position\.speed over device time .* paused/);
    await tail.resume();
    await waitFor('the chart to grow while live', async () => Number(await chart.getAttribute('data-points')) > points, 30_000);
    await wb.shot('chart');
  });

  flow(
    'fleet4',
    'no tiles: with the tile server gone, a new tail still draws the tracks, on a plain background with a grid and a scale, and says why',
    async (wb) => {
      await tiles.stop();
      const served = tiles.served.length;
      await wb.runCommand('View: Close All Editors');
      await wb.runCommandAndPick('flespi: Open Live Tail', TAIL_CHANNEL);
      tail = await LiveTail.find(wb);
      await tail.waitForCount('received', 10, 60_000);
      const open = tail.frame.locator('[data-testid="open-map"]');
      if ((await open.getAttribute('aria-pressed')) !== 'true') await open.click();
      const map = tail.frame.locator('[data-testid="map"]');
      await waitFor(
        'tracks drawn without tiles',
        async () => Number(await map.getAttribute('data-points')) >= 5 && Number(await map.getAttribute('data-tracks')) >= 2,
        30_000,
      );
      await waitFor('the map to say tiles failed', async () => (await map.getAttribute('data-tiles')) === 'failed', 30_000);
      assert.match(
        (await tail.frame.locator('[data-testid="map-note"]').textContent()) ?? '',
        /Map tiles could not be loaded from 127\.0\.0\.1:\d+: tracks are drawn on a plain background/,
      );
      assert.equal(await tail.frame.locator('.leaflet-control-scale').count(), 1, 'a scale');
      assert.ok((await tail.frame.locator('.leaflet-grid-pane canvas, .leaflet-grid-pane svg').count()) > 0, 'a grid');
      assert.equal(await tail.frame.locator('.leaflet-tile-loaded').count(), 0, 'no tile shown');
      assert.equal(tiles.served.length, served, 'no tile was served');
      await wb.shot('map-no-tiles');
    },
  );

  flow('fleet5', 'the walkthrough\'s "Watch a channel live" is checked: fleet1 opened the tail with a click on the channel', async (wb) => {
    await wb.runCommandAndPick('Welcome: Open Walkthrough...', 'Get started with flespi');
    const step = (id: string) => wb.page.locator(`.getting-started-step[data-step-id$="#${id}"]`).first();
    await step('tail').waitFor({ timeout: 30_000 });
    assert.equal(await step('connect').getAttribute('aria-checked'), 'true', 'the walkthrough did not see the connection either');
    await waitFor('the step "Watch a channel live" to be checked', async () => (await step('tail').getAttribute('aria-checked')) === 'true', 15_000);
    await wb.shot('walkthrough');
  });
});
