// The Markdown report of *flespi: Check Connection…* (src/extension/doctorReport.ts), from a real doctor
// run against the sandbox, and with server text that tries to break out of its table cell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DOCTOR_CHECKS, doctorSummary, runDoctor, type DoctorReport } from '../../src/core/doctor';
import { cell, reportMarkdown } from '../../src/extension/doctorReport';
import { startSandbox } from '../../src/sandbox/index';

const title = (id: string) => DOCTOR_CHECKS.find((c) => c.id === id)?.title ?? id;

test('a doctor run against the sandbox becomes a report with one passed row per check and no token', { timeout: 60_000 }, async (t) => {
  const sandbox = await startSandbox({ restPort: 0, mqttPort: 0, devicesPerChannel: 2, rateHz: 2 });
  t.after(() => sandbox.stop());
  const report = await runDoctor({ restUrl: sandbox.restUrl, mqttUrl: sandbox.mqttUrl, token: sandbox.token, channel: '1001', sandbox: true });
  const text = reportMarkdown(report, { title, label: 'sandbox', summary: doctorSummary(report) });
  assert.match(text, /^# flespi connection check \(sandbox\)$/m);
  assert.match(text, /channel 1001 "sandbox-teltonika"/);
  for (const { id } of DOCTOR_CHECKS) assert.match(text, new RegExp(`^\\| ✅ pass \\| \\*\\*${id}\\*\\*`, 'm'), `no passed row for ${id}:\n${text}`);
  assert.match(text, /\*\*10 passed, 0 warnings, 0 failed in [\d.]+ s\.\*\* Nothing failed\./);
  assert.equal(text.split('\n').filter((line) => line.startsWith('| ')).length, 1 + DOCTOR_CHECKS.length, 'a header and one row per check');
  assert.ok(!text.includes(sandbox.token));
});

test('text from the server cannot end a table cell, start a line, or form a link in the report', () => {
  const hostile = 'x | y\n# heading [click](https://evil.example) <img src=x> `code`';
  const report: DoctorReport = {
    restUrl: 'http://127.0.0.1:1',
    channel: { id: 7, name: hostile },
    checks: [{ id: 'channel', status: 'fail', finding: hostile, advice: hostile, ms: 1 }],
    ok: false,
    ms: 5,
  };
  const text = reportMarkdown(report, { title, label: 'eu', summary: '0 passed, 0 warnings, 1 failed in 0.0 s' });
  const row = text.split('\n').find((line) => line.startsWith('| ❌ fail'));
  assert.ok(row, text);
  assert.equal(row.split(/(?<!\\)\|/).length - 2, 4, `four cells: ${row}`);
  assert.doesNotMatch(text, /^# heading/m);
  assert.doesNotMatch(text, /(?<!\\)\[click\]/);
  assert.doesNotMatch(text, /(?<!\\)<img/);
  assert.match(text, /Something failed: fix it, then run \*flespi: Check Connection…\* again\./);
});

test('a cell keeps quotes and underscores inside words readable, and escapes what could format', () => {
  assert.equal(cell('curr_key 0 answered next_key 2 for "sandbox"'), 'curr_key 0 answered next_key 2 for "sandbox"');
  assert.equal(
    cell('_x_ a__b *y* $share `c` [l](u) <b> a|b ~~s~~ &amp;'),
    '\\_x\\_ a\\_\\_b \\*y\\* \\$share \\`c\\` \\[l\\](u) \\<b\\> a\\|b \\~\\~s\\~\\~ \\&amp;',
  );
  assert.equal(cell('line\nbreak\u0007bell'), 'line break bell');
});
