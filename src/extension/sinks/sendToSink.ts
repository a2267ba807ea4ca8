/**
 * "Send to sink" for the live tail: the user picks a configured sink, the selected messages are
 * delivered to a fresh handler of it once (start → handle → stop), and the outcome is returned.
 */
import * as vscode from 'vscode';
import type { FlespiMessage } from '../../core/message';
import type { ForwardResult } from '../../shared/tailProtocol';
import { coreLogger } from '../log';
import type { SinkStore } from './sinkStore';
import { sinkTarget } from './sinkModel';

/** What a one-off send returns (shared with the tail webview, which shows it). */
export type { ForwardResult } from '../../shared/tailProtocol';

export interface ForwardDeps {
  sinks: SinkStore;
  log: vscode.LogOutputChannel;
  /** For start and handle together. */
  timeoutMs?: number;
}

/**
 * Asks which sink to send `messages` to and sends them once. Undefined when the user cancels (or
 * has no sinks and did not add one); otherwise the result, also logged.
 */
export async function forwardToSink(messages: readonly FlespiMessage[], deps: ForwardDeps): Promise<ForwardResult | undefined> {
  const sinks = deps.sinks.all();
  if (sinks.length === 0) {
    const add = 'Add Sink…';
    if ((await vscode.window.showInformationMessage('No sinks are configured yet: add one first.', add)) === add)
      await vscode.commands.executeCommand('flespi.addSink');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    sinks.map((sink) => ({ label: sink.name, description: sink.type, detail: sinkTarget(sink), sink })),
    { title: `Send ${messages.length} message${messages.length === 1 ? '' : 's'} to a sink`, placeHolder: 'Pick a sink' },
  );
  if (!picked) return undefined;
  return sendToSink(picked.sink.name, messages, deps);
}

/** Sends `messages` once to the named sink and logs the outcome. */
export async function sendToSink(sinkName: string, messages: readonly FlespiMessage[], deps: ForwardDeps): Promise<ForwardResult> {
  const sink = deps.sinks.get(sinkName);
  if (!sink) return { sink: sinkName, acknowledged: 0, errors: [`no sink named "${sinkName}" in flespi.sinks`], ms: 0 };
  // Loaded on first use: the loader brings the TypeScript compiler for custom handlers.
  const { describeHandlerError } = await import('../../core/custom/loader.js');
  const { deliverOnce } = await import('../../core/deliver.js');
  let result: ForwardResult;
  try {
    const handler = await deps.sinks.createHandler(sink);
    const { rejected, errors, acknowledged, ms } = await deliverOnce(handler, messages, {
      timeoutMs: deps.timeoutMs ?? 30_000,
      log: coreLogger(deps.log, sink.name),
      describeError: describeHandlerError,
    });
    // A message the sink can never take is an error of this send (nothing is dead-lettered from the tail).
    result = { sink: sink.name, acknowledged, errors: [...errors, ...rejected.map((r) => `message ${r.index + 1} refused: ${r.reason}`)], ms };
  } catch (error) {
    result = { sink: sink.name, acknowledged: 0, errors: [describeHandlerError(error)], ms: 0 };
  }
  const summary = `sent ${messages.length} message${messages.length === 1 ? '' : 's'} to sink "${sink.name}": ${result.acknowledged} acknowledged in ${result.ms} ms`;
  if (result.errors.length === 0) deps.log.info(summary);
  else deps.log.warn(`${summary}; ${result.errors.join('; ')}`);
  return result;
}
