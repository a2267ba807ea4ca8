// Restricted Mode: a second code-server session that asks whether to trust the workspace folder,
// and is told No. The folder brings a handler whose module code leaves a marker file when it is
// evaluated, and names it as a sink in its own .vscode/settings.json; the user settings name the
// same file as a sink too. Whatever the user tries, that code must not run, and the UI must say
// why. Last, a control: trusting the folder runs it. Screenshots: test-output/e2e/untrusted*.png.
// Run: npm run test:e2e   (docs/e2e.md)
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe } from 'node:test';
import { sessionFlows } from './support/flow';
import { LiveTail } from './support/liveTail';
import { SANDBOX_TOKEN, type SessionOptions } from './support/session';
import { waitFor } from './support/workbench';

/** The sink the user settings define (they apply in Restricted Mode). */
const USER_SINK = 'user-marker';
/** The sink the workspace's .vscode/settings.json defines (flespi.sinks is a restricted setting). */
const WORKSPACE_SINK = 'workspace-marker';
const HANDLER_FILE = 'handlers/MarkerHandler.ts';
const TAIL_CHANNEL = 'sandbox-teltonika';
/** Written by the handler's module code, next to the workspace folder (outside it). */
let marker = '';

const untrustedOptions: SessionOptions = {
  name: 'untrusted',
  workspaceTrust: true,
  brokerTopics: 'e2e/untrusted/#',
  prepareWorkspace(workspace) {
    marker = join(dirname(workspace), 'handler-was-evaluated.txt');
    const file = join(workspace, HANDLER_FILE);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(
      file,
      [
        "import { writeFileSync } from 'node:fs';",
        "import { Handler, type FlespiMessage } from 'flespi-receiver';",
        '',
        '// Runs as soon as the module is evaluated: the test looks for this file.',
        `writeFileSync(${JSON.stringify(marker)}, 'module evaluated\\n', { flag: 'a' });`,
        '',
        'export default class MarkerHandler extends Handler {',
        '  async handle(messages: readonly FlespiMessage[]): Promise<void> {',
        `    writeFileSync(${JSON.stringify(marker)}, \`handled \${messages.length}\\n\`, { flag: 'a' });`,
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    mkdirSync(join(workspace, '.vscode'));
    writeFileSync(
      join(workspace, '.vscode', 'settings.json'),
      JSON.stringify({ 'flespi.sinks': [{ name: WORKSPACE_SINK, type: 'custom', file: HANDLER_FILE }] }, null, 2),
    );
  },
  settings: (peers) => ({
    machine: { 'flespi.baseUrl': peers.sandbox.restUrl, 'flespi.mqttUrl': peers.sandbox.mqttUrl },
    user: {
      // VS Code's default, which the other session turns off.
      'security.workspace.trust.enabled': true,
      // Relative paths of sinks are relative to the workspace folder, so this is the workspace's handler.
      'flespi.sinks': [{ name: USER_SINK, type: 'custom', file: HANDLER_FILE }],
    },
  }),
};

describe('flespi extension in an untrusted workspace (Restricted Mode)', { concurrency: false }, () => {
  const e2e = sessionFlows(untrustedOptions);
  const flow = e2e.flow;

  flow('untrusted1', 'the trust prompt: "No, I don\'t trust the authors" opens the folder in Restricted Mode', async (wb) => {
    const no = wb.dialogButton(/No, I don't trust/);
    await no.waitFor({ timeout: 60_000 });
    await wb.shot('trust-prompt');
    await no.click();
    await wb.waitForStatusBar(/Restricted Mode/);
    await wb.shot('restricted');
    assert.ok(!existsSync(marker), 'the handler module was evaluated');
  });

  flow('untrusted2', "the Sinks view: the workspace's sink setting is ignored, the user's custom sink says the workspace must be trusted", async (wb) => {
    await wb.openContainer('flespi');
    await wb.expandView('Sinks');
    const rows = await waitFor('the Sinks view to list a sink', async () => {
      const labels = await wb.treeLabels('Sinks');
      return labels.length > 0 ? labels : undefined;
    });
    await wb.shot('sinks');
    assert.equal(rows.length, 1, `the Sinks view lists ${rows.join(' | ')}`);
    assert.ok(rows[0].startsWith(USER_SINK), `the Sinks view lists ${rows[0]}, not the user's sink ${USER_SINK}`);
    assert.match(rows[0], /not trusted/, `the sink's row does not say the workspace must be trusted: ${rows[0]}`);
    assert.ok(!existsSync(marker), 'the handler module was evaluated');
  });

  flow('untrusted3', 'Start Forwarding, Test Sink Connection and New Handler… refuse to run workspace code, saying why', async (wb) => {
    await wb.runCommand('flespi: Set Token…');
    await wb.answer(SANDBOX_TOKEN, /flespi token/);
    await wb.waitForNotification(/token accepted/i);
    await wb.clearNotifications();

    await wb.runCommandAndPick('flespi: Start Forwarding…', TAIL_CHANNEL);
    await waitFor('the sink pick', async () => (await wb.quickPickLabels()).length > 0);
    const offered = await wb.quickPickLabels();
    assert.ok(!offered.some((label) => label.includes(WORKSPACE_SINK)), `the workspace's own sink is offered: ${offered.join(' | ')}`);
    await wb.pickMany([USER_SINK]);
    await wb.pick('From now');
    const failure = await wb.waitForNotification(/Forwarding of channel/);
    await wb.shot('forwarding-refused');
    assert.match(failure, new RegExp(`${USER_SINK}.*not trusted.*trust the workspace`), `the error does not say the workspace must be trusted: ${failure}`);
    await wb.clearNotifications();

    // The answer is a toast; one was missed once (shown while the palette closed): ask a second time then.
    let tested = '';
    for (let attempt = 1; attempt <= 2 && !tested; attempt++) {
      await wb.runCommandAndPick('flespi: Test Sink Connection', USER_SINK);
      tested = await wb.waitForNotification(new RegExp(`Sink "${USER_SINK}"`), 20_000).catch((error: unknown) => {
        if (attempt === 2) throw error;
        return '';
      });
    }
    assert.match(tested, /not trusted/, `the sink test does not say the workspace must be trusted: ${tested}`);
    await wb.clearNotifications();

    await wb.runCommand('flespi: New Handler…');
    const refused = await wb.waitForNotification(/trust this workspace/i);
    await wb.shot('new-handler-refused');
    assert.match(refused, /Handlers are code/, refused);
    assert.ok(!existsSync(join(e2e.session.workspace, 'flespi-handlers')), 'New Handler… wrote files in an untrusted workspace');
    assert.ok(!existsSync(marker), 'the handler module was evaluated');
  });

  flow('untrusted4', "the live tail's Forward to sink… refuses the custom sink; its module was never evaluated", async (wb) => {
    await wb.clearNotifications();
    await wb.runCommandAndPick('flespi: Open Live Tail', TAIL_CHANNEL);
    const tail = await LiveTail.find(wb);
    await waitFor('rows in the live tail', async () => (await tail.rowIds()).length >= 1);
    await tail.pause();
    const [id] = await tail.rowIds();
    await tail.select([id]);
    await tail.click('Forward to sink…');
    await wb.pick(USER_SINK);
    const outcome = await tail.forwardOutcome();
    await wb.shot('tail-forward-refused');
    assert.match(outcome, /^Forward failed: .* acknowledged none of 1 message \(0 acknowledged/, `the tail does not say the forward failed: ${outcome}`);
    assert.match(outcome, /not trusted/, `the tail does not say the workspace must be trusted: ${outcome}`);
    assert.ok(!existsSync(marker), `the handler module was evaluated (marker ${marker})`);
  });

  // Control: the same code does run once the folder is trusted, so the checks above could fail.
  flow('untrusted5', "control: trusting the folder loads the handler (its marker appears) and applies the workspace's sink", async (wb) => {
    await wb.runCommand('Workspaces: Manage Workspace Trust');
    const trust = wb.page.getByRole('button', { name: /^Trust( Folder)?$/ }).first();
    await trust.waitFor({ timeout: 30_000 });
    await wb.shot('trust-editor');
    await trust.click();
    await waitFor('the Restricted Mode indicator to go', async () => !(await wb.statusBarTexts()).some((text) => /Restricted Mode/.test(text)));
    await wb.openContainer('flespi');
    await waitFor(`the Sinks view to list ${WORKSPACE_SINK}`, async () => (await wb.treeLabels('Sinks')).some((label) => label.startsWith(WORKSPACE_SINK)));
    await waitFor(`the handler's marker ${marker}`, () => existsSync(marker));
    await wb.shot('trusted');
  });
});
