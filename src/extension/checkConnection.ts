/**
 * *flespi: Check Connection…*: the CLI's `doctor` checks (src/core/doctor.ts) on the current connection
 * and a channel, shown as a Markdown report in an untitled document. The token is never in it.
 */
import * as vscode from 'vscode';
import type { DoctorReport } from '../core/doctor';
import type { ConnectionInfo } from './connection';
import { reportMarkdown } from './doctorReport';

export async function checkConnection(info: ConnectionInfo, channel: { id: number; name: string }, log: vscode.LogOutputChannel): Promise<DoctorReport> {
  // The checks and MQTT.js load on first use, not on activation.
  const { DOCTOR_CHECKS, doctorSummary, runDoctor } = await import('../core/doctor.js');
  const report = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Checking flespi (${info.label}) with channel ${channel.name}`, cancellable: true },
    (progress, cancel) => {
      const stop = new AbortController();
      cancel.onCancellationRequested(() => stop.abort());
      return runDoctor({
        restUrl: info.restUrl,
        mqttUrl: info.mqttUrl,
        token: info.token,
        channel: String(channel.id),
        sandbox: info.mode === 'sandbox',
        appName: 'flespi-receiver-vscode',
        signal: stop.signal,
        onCheck: (check) => progress.report({ message: `${check.id}: ${check.status}`, increment: 100 / DOCTOR_CHECKS.length }),
      });
    },
  );
  const summary = doctorSummary(report);
  for (const check of report.checks)
    if (check.status === 'fail' || check.status === 'warn') log.warn(`check connection: ${check.id} ${check.status}: ${check.finding}`);
  log.info(`check connection (${info.label}, channel ${channel.id}): ${summary}`);
  const titles = new Map(DOCTOR_CHECKS.map((c) => [c.id, c.title]));
  const document = await vscode.workspace.openTextDocument({
    language: 'markdown',
    content: reportMarkdown(report, { title: (id) => titles.get(id) ?? id, label: info.label, summary }),
  });
  await vscode.window.showTextDocument(document, { preview: false });
  // The rendered table beside the source, where the built-in Markdown extension is there to draw it.
  await vscode.commands
    .executeCommand('markdown.showPreviewToSide', document.uri)
    .then(undefined, (error: unknown) => log.debug(`no Markdown preview of the report: ${String(error)}`));
  const failed = report.checks.filter((c) => c.status === 'fail').map((c) => c.id);
  if (failed.length > 0) void vscode.window.showWarningMessage(`flespi check: ${failed.join(', ')} failed (${summary}). The report says what to do.`);
  return report;
}
