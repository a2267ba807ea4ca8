/** The doctor's report as Markdown, for *flespi: Check Connection…*. No vscode here: tested on its own. */
import type { DoctorCheck, DoctorReport, DoctorStatus } from '../core/doctor';

const ICON: Readonly<Record<DoctorStatus, string>> = { pass: '✅ pass', warn: '⚠️ warn', fail: '❌ fail', skip: '➖ skip' };

/**
 * Text from elsewhere (flespi's reasons, a channel name) made inert in a table cell: no line break,
 * cell break, link, image, HTML, code span, emphasis, math (`$`) or entity can come out of it. Lighter
 * than `escapeMarkdown` so the source stays readable: quotes stay, and `_` inside a word (`curr_key`)
 * cannot start emphasis in CommonMark, so only a `_` without a letter or digit on both sides is escaped.
 */
export function cell(text: string): string {
  return (
    text
      // eslint-disable-next-line no-control-regex -- control characters are what is being replaced
      .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ')
      .replace(/[\\`*[\]<>|$~&]/g, '\\$&')
      .replace(/_/g, (underscore, at: number, whole: string) =>
        /[\p{L}\p{N}]/u.test(whole[at - 1] ?? '') && /[\p{L}\p{N}]/u.test(whole[at + 1] ?? '') ? underscore : '\\_',
      )
  );
}

/** The report as Markdown: a summary and one table row per check. Text from the server is escaped. */
export function reportMarkdown(
  report: DoctorReport,
  { title, label, summary }: { title: (id: DoctorCheck['id']) => string; label: string; summary: string },
): string {
  const channel = report.channel ? `channel ${report.channel.id} "${cell(report.channel.name)}"` : 'no channel';
  const verdict = report.ok ? 'Nothing failed.' : 'Something failed: fix it, then run *flespi: Check Connection…* again.';
  return [
    `# flespi connection check (${cell(label)})`,
    '',
    `${cell(report.restUrl)}${report.mqttUrl ? `, MQTT ${cell(report.mqttUrl)}` : ''}, ${channel}, ${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC`,
    '',
    `**${cell(summary)}.** ${verdict}`,
    '',
    '| result | check | what it found | what to do |',
    '|---|---|---|---|',
    ...report.checks.map((c) => `| ${ICON[c.status]} | **${c.id}**<br>${cell(title(c.id))} | ${cell(c.finding)} | ${c.advice ? cell(c.advice) : ''} |`),
    '',
    'Each check reads only: nothing is deleted or published. Which flespi behaviour each one settles is listed in docs/flespi-assumptions.md of the flespi receiver project.',
    '',
  ].join('\n');
}
