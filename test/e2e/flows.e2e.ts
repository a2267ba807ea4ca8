// End-to-end flows: the packaged extension in a real VS Code (code-server 4.100.3) driven through
// its UI by Playwright in Chromium, against real peers (flespi sandbox, Mosquitto with TLS client
// certificates, the Wialon test receiver). Screenshots of every step go to test-output/e2e/.
// Run: npm run test:e2e   (docs/e2e.md)
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { outputDir } from './support/host';
import { LiveTail } from './support/liveTail';
import { AWS_SINK, AWS_TOPIC_PREFIX, sessionOptions } from './setup';
import { extensionHostLogs, SANDBOX_TOKEN, startSession, type Session } from './support/session';
import { record, writeTimings } from './support/timings';
import { waitFor, type Workbench } from './support/workbench';

const WIALON_SINK = 'e2e-wialon';
const HANDLER = 'E2eHandler';
/** The channel tailed in flows 2-7, one of the sandbox's defaults. */
const TAIL_CHANNEL = 'sandbox-teltonika';

let session: Session;
let failed = false;

/** Runs one flow: names its screenshots, times it, and on failure saves a screenshot of the moment. */
function flow(name: string, title: string, body: (wb: Workbench) => Promise<void>): void {
  test(`${name}: ${title}`, { timeout: 180_000 }, async () => {
    assert.ok(session, 'the e2e session did not start (see the error of the "before" hook)');
    const wb = session.workbench;
    wb.beginFlow(name);
    const start = performance.now();
    try {
      await body(wb);
    } catch (error) {
      failed = true;
      await wb.shot('FAILED').catch(() => undefined);
      throw error;
    } finally {
      record(`${name}: ${title}`, (performance.now() - start) / 1000);
      await wb.closeQuickInput().catch(() => undefined);
    }
  });
}

describe('flespi extension in VS Code (code-server)', { concurrency: false }, () => {
  before(async () => {
    session = await startSession(sessionOptions);
  });

  after(async () => {
    if (session) {
      if (failed) console.log(`e2e: kept ${session.root} for inspection; extension host logs: ${extensionHostLogs(session.profile)}`);
      await session.stop({ keepFiles: failed });
    }
    console.log(`e2e timings:\n${writeTimings(join(outputDir, 'timings.json'))}\nscreenshots: ${outputDir}`);
  });

  flow('flow0', 'smoke: the workbench loads with the flespi activity-bar item', async (wb) => {
    await wb.activityItem('flespi').waitFor({ timeout: 30_000 });
    await wb.openContainer('flespi');
    await wb.expandView('Channels');
    await wb.expandView('Sinks');
    await wb.shot('flespi-container');
  });

  flow('flow1', 'fresh profile without a token: the welcome view offers the sandbox, which lists its channels', async (wb) => {
    await wb.openContainer('flespi');
    const channels = await wb.expandView('Channels');
    const sandboxButton = channels.getByRole('button', { name: 'Use local sandbox' });
    await sandboxButton.waitFor({ timeout: 30_000 });
    assert.ok(await channels.getByRole('button', { name: 'Set flespi token' }).isVisible(), 'the welcome view has no "Set flespi token" button');
    await wb.shot('welcome');
    await sandboxButton.click();
    const labels = await waitFor('the Channels tree to list channels', async () => {
      const rows = await wb.treeLabels('Channels');
      return rows.length > 0 ? rows : undefined;
    });
    await wb.shot('channels');
    // The extension runs its own sandbox; its channels are those of every sandbox with default settings.
    assert.deepEqual(channelNames(labels), (await session.peers.sandbox.channelNames()).sort());
  });

  flow('flow2', 'live tail: messages stream in, pause holds the list while "new" counts, resume', async (wb) => {
    await wb.runCommand('flespi: Open Live Tail');
    await wb.pick(TAIL_CHANNEL);
    const tail = await LiveTail.find(wb);
    const firstReceived = await tail.waitForCount('received', 1);
    await tail.waitForCount('received', firstReceived + 3);
    await waitFor('rows in the live tail', async () => (await tail.rowIds()).length >= 3);
    await wb.shot('streaming');

    await tail.click('Pause');
    const heldIds = await waitFor('the list to settle after Pause', async () => {
      const before = await tail.rowIds();
      await new Promise((r) => setTimeout(r, 500));
      const afterwards = await tail.rowIds();
      return JSON.stringify(before) === JSON.stringify(afterwards) ? afterwards : undefined;
    });
    const shownWhenPaused = await tail.count('shown');
    const newAtPause = await tail.count('new');
    await tail.waitForCount('new', newAtPause + 3);
    await wb.shot('paused');
    assert.deepEqual(await tail.rowIds(), heldIds, 'the list changed while paused');
    assert.equal(await tail.count('shown'), shownWhenPaused, 'the shown counter rose while paused');

    await tail.click('Resume');
    const newestHeld = Math.max(...heldIds);
    await waitFor('newer rows after Resume', async () => Math.max(...(await tail.rowIds())) > newestHeld);
    await wb.shot('resumed');
  });

  flow('flow3', 'forward three selected messages to an AWS IoT sink (Mosquitto with TLS client certificates)', async (wb) => {
    const { subscriber } = session.peers.tls;
    const { tail, ids, expected } = await pickThreeMessages(wb);
    const before = subscriber.messages.length;
    await forwardSelection(tail, AWS_SINK);
    await subscriber.waitForCount(before + 3);
    const got = subscriber.messages.slice(before);
    await wb.shot('forwarded');
    assert.equal(got.length, 3, `the broker got ${got.length} messages, expected the 3 selected (#${ids.join(', #')})`);
    assert.deepEqual(
      sortByKey(got.map((m) => ({ topic: m.topic, message: m.json }))),
      sortByKey(expected.map((message) => ({ topic: `${AWS_TOPIC_PREFIX}/${String(message.ident)}`, message }))),
    );
  });

  flow('flow4', 'forward three selected messages to a Wialon Retranslator sink', async (wb) => {
    const { receiver, port } = session.peers.wialon;
    await wb.runCommand('flespi: Add Sink…');
    await wb.pick('Wialon Retranslator');
    await wb.answer(WIALON_SINK, /sink: name/);
    await wb.answer('127.0.0.1', /: host/);
    await wb.answer(String(port), /: port/);
    await wb.waitForNotification(new RegExp(`Sink "${WIALON_SINK}" added`));
    await waitFor(`the Sinks view to list ${WIALON_SINK}`, async () => (await wb.treeLabels('Sinks')).some((l) => l.startsWith(WIALON_SINK)));
    await wb.shot('sink-added');
    const { tail, expected } = await pickThreeMessages(wb);
    const before = receiver.received.length;
    await forwardSelection(tail, WIALON_SINK);
    const packets = (await receiver.waitFor(before + 3)).slice(before);
    await wb.shot('forwarded');
    assert.equal(packets.length, 3);
    assert.deepEqual(receiver.rejected, [], 'the receiver rejected packets');
    const seen = packets.map((p) => {
      const pos = p.blocks.find((b) => b.name === 'posinfo');
      return { ident: p.unitId, time: p.time, position: pos?.type === 'posinfo' ? [pos.value.latitude, pos.value.longitude] : undefined };
    });
    const wanted = expected.map((m) => ({ ident: m.ident, time: Math.floor(Number(m.timestamp)), position: [m['position.latitude'], m['position.longitude']] }));
    assert.deepEqual(sortByKey(seen), sortByKey(wanted));
  });

  flow('flow5', 'New Handler…: the file appears, becomes a sink, and forwarded messages reach its output file', async (wb) => {
    await wb.runCommand('flespi: New Handler…');
    await wb.answer(HANDLER, /New flespi handler/);
    const file = join(session.workspace, 'flespi-handlers', `${HANDLER}.ts`);
    await waitFor(`${file} to be written`, () => existsSync(file));
    await waitFor(`an editor showing ${HANDLER}.ts`, async () => (await wb.editorTabs()).includes(`${HANDLER}.ts`));
    await waitFor(`the Sinks view to list ${HANDLER}`, async () => (await wb.treeLabels('Sinks')).some((l) => l.startsWith(HANDLER)));
    await wb.shot('handler-created');
    await wb.showEditor(`Tail: ${TAIL_CHANNEL}`);
    const { tail, expected } = await pickThreeMessages(wb);
    await forwardSelection(tail, HANDLER);
    // The scaffold's example appends each message as a JSON line to <Name>.out.ndjson next to it.
    const output = join(dirname(file), `${HANDLER}.out.ndjson`);
    assert.ok(existsSync(output), `the handler wrote no ${output}`);
    const lines = readFileSync(output, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as unknown);
    await wb.shot('forwarded');
    assert.deepEqual(sortByKey(lines), sortByKey(expected));
  });

  flow('flow7', 'export the buffer to NDJSON through the save dialog: the file holds the shown messages', async (wb) => {
    const tail = await LiveTail.find(wb);
    await tail.resume();
    // Stop (unsubscribe) so the buffer holds still; it stays for export.
    await tail.click('Stop');
    await waitFor('the tail to stop', async () => (await tail.text('state')) === 'stopped');
    // Messages already on their way when it stopped are still shown.
    const shown = await waitFor('every received message to be shown', async () => {
      const [received, shownNow] = [await tail.count('received'), await tail.count('shown')];
      return received === shownNow ? shownNow : undefined;
    });
    assert.equal(await tail.count('dropped'), 0, 'messages were dropped, so the buffer is not what was shown');
    assert.equal(await tail.rowCount(), shown, 'the table does not hold every shown message');
    const sample: Record<string, unknown>[] = [];
    for (const id of (await tail.rowIds()).slice(0, 5)) sample.push(await tail.message(id));
    const file = join(session.workspace, 'export', 'tail.ndjson');
    mkdirSync(dirname(file), { recursive: true });
    await tail.click('Export…');
    await tail.click('Export buffer as NDJSON');
    await wb.saveAs(file, /Export \d+ messages \(buffer\) as NDJSON/);
    await waitFor(`the export file ${file}`, () => existsSync(file) && readFileSync(file, 'utf8').endsWith('\n'));
    await wb.shot('exported');
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(lines.length, shown, `the file has ${lines.length} messages; the tail showed ${shown}`);
    for (const message of sample) assert.ok(lines.some((line) => isDeepStrictEqual(line, message)), `the export lacks the shown message ${JSON.stringify(message)}`);
    await tail.click('Restart');
  });

  // Last: it switches the connection from the extension's sandbox to the separate one.
  flow('flow6', 'a wrong token: a clear error, and the extension keeps working', async (wb) => {
    const tail = await LiveTail.find(wb);
    await tail.resume();
    if ((await tail.text('state')) === 'stopped') await tail.click('Restart');
    await waitFor('the tail to be live', async () => (await tail.text('state')) === 'live');
    await wb.clearNotifications();
    await wb.runCommand('flespi: Set Token…');
    await wb.answer('Wrong'.padEnd(64, 'x'), /flespi token/);
    const error = await wb.waitForNotification(/token/i);
    await wb.shot('wrong-token');
    assert.match(error, /401|not accepted|rejected|invalid|unauthori[sz]ed/i, `the error does not say the token was refused: ${error}`);
    // Still connected to the sandbox: the tail keeps receiving.
    const received = await tail.count('received');
    await tail.waitForCount('received', received + 2);
    assert.deepEqual(channelNames(await wb.treeLabels('Channels')), (await session.peers.sandbox.channelNames()).sort());

    await wb.clearNotifications();
    await wb.runCommand('flespi: Set Token…');
    await wb.answer(SANDBOX_TOKEN, /flespi token/);
    await wb.waitForNotification(/token accepted/i);
    // Now connected with the token to the separate sandbox (flespi.baseUrl), shown as its host.
    const host = new URL(session.peers.sandbox.restUrl).host;
    await waitFor(`the Channels view to say it is connected to ${host}`, async () => (await wb.view('Channels').locator('.pane-header').textContent())?.includes(host));
    const labels = await waitFor('the Channels tree to list channels', async () => {
      const rows = await wb.treeLabels('Channels');
      return rows.length > 0 ? rows : undefined;
    });
    await wb.shot('right-token');
    assert.deepEqual(channelNames(labels), (await session.peers.sandbox.channelNames()).sort());
  });
});

/** Pauses the tail, reads three shown messages from the detail pane, then selects those three rows. */
async function pickThreeMessages(wb: Workbench): Promise<{ tail: LiveTail; ids: number[]; expected: Record<string, unknown>[] }> {
  const tail = await LiveTail.find(wb);
  await tail.pause();
  const ids = (await tail.rowIds()).slice(0, 3);
  assert.equal(ids.length, 3, 'the tail shows fewer than three messages');
  const expected: Record<string, unknown>[] = [];
  for (const id of ids) expected.push(await tail.message(id));
  await tail.select(ids);
  assert.deepEqual((await tail.selectedIds()).sort(), [...ids].sort(), 'the three rows are not all selected');
  await wb.shot('selected');
  return { tail, ids, expected };
}

/** "Forward to sink…", pick the sink, wait for the tail to report the outcome; asserts full success. */
async function forwardSelection(tail: LiveTail, sink: string): Promise<void> {
  await tail.click('Forward to sink…');
  await tail.workbench.pick(sink);
  const outcome = await tail.forwardOutcome();
  assert.match(outcome, new RegExp(`Forwarded 3 messages to ${sink}: 3 acknowledged, 0 errors`), `the forward did not fully succeed: ${outcome}`);
}

/** Channel names from the tree rows ("sandbox-teltonika #1001 · teltonika" → "sandbox-teltonika"), sorted. */
function channelNames(treeLabels: string[]): string[] {
  return treeLabels.map((label) => label.split(/\s/)[0]).sort();
}

function sortByKey<T>(items: T[]): T[] {
  return [...items].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}
