// End-to-end flows: the packaged extension in a real VS Code (code-server 4.100.3) driven through
// its UI by Playwright in Chromium, against real peers (flespi sandbox, Mosquitto with TLS client
// certificates, the Wialon test receiver). Screenshots of every step go to test-output/e2e/.
// Run: npm run test:e2e   (docs/e2e.md)
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { outputDir } from './support/host';
import { LiveTail } from './support/liveTail';
import { extensionHostLogs, startSession, type Session } from './support/session';
import { record, writeTimings } from './support/timings';
import { waitFor, type Workbench } from './support/workbench';

/** The AWS IoT sink publishes under this prefix; the broker's subscriber listens to all of it. */
const AWS_TOPIC_PREFIX = 'e2e/flespi';
const AWS_SINK = 'e2e-aws-iot';
const WIALON_SINK = 'e2e-wialon';

let session: Session;
let failed = false;

/** Runs one flow: names its screenshots, times it, and on failure saves a screenshot of the moment. */
function flow(name: string, title: string, body: (wb: Workbench) => Promise<void>): void {
  test(title, { timeout: 180_000 }, async () => {
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
    session = await startSession({
      brokerTopics: `${AWS_TOPIC_PREFIX}/#`,
      settings: (peers) => ({
        // Flow 6 talks to the separately started sandbox, which accepts only its own token.
        'flespi.baseUrl': peers.sandbox.restUrl,
        'flespi.mqttUrl': peers.sandbox.mqttUrl,
        // Flows 3 and 4: sinks pointing at the test peers (certificates made at test time).
        'flespi.sinks': [
          {
            name: AWS_SINK,
            type: 'aws-iot',
            // AWS IoT's endpoint is a host name; the Mosquitto stand-in listens on 127.0.0.1.
            endpoint: peers.tls.broker.host,
            port: peers.tls.broker.port,
            topic: `${AWS_TOPIC_PREFIX}/{ident}`,
            caFile: peers.tls.pki.ca.cert,
            certFile: peers.tls.pki.client.cert,
            keyFile: peers.tls.pki.client.key,
          },
          { name: WIALON_SINK, type: 'wialon', host: '127.0.0.1', port: peers.wialon.port },
        ],
      }),
    });
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
    assert.ok(labels.length >= 1, `expected the sandbox's channels, got ${JSON.stringify(labels)}`);
  });

  flow('flow2', 'live tail: messages stream in, pause holds the list while "new" counts, resume', async (wb) => {
    await wb.runCommand('flespi: Open Live Tail');
    // The command asks which channel when none is selected in the tree.
    if (await wb.page.locator('.quick-input-widget .monaco-list-row').first().isVisible().catch(() => false)) {
      await wb.page.locator('.quick-input-widget .monaco-list-row').first().click();
    }
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
});
