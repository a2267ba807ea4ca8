/** Add Sink…, Remove Sink, Test Sink Connection, Open Sink Settings. */
import * as vscode from 'vscode';
import { coreLogger } from '../log';
import type { SinkField } from './sinkFields';
import { splitSecrets, type SinkSetting } from './sinkModel';
import type { SinkStore } from './sinkStore';
import type { SinkNode } from './sinksTree';

export interface SinkCommandDeps {
  sinks: SinkStore;
  log: vscode.LogOutputChannel;
  baseDir(): string;
}

const TEST_TIMEOUT_MS = 20_000;

/** Asks for the type, a name and each setting of the type, checking every answer as it is typed. */
export async function addSink(deps: SinkCommandDeps): Promise<SinkSetting | undefined> {
  // Loaded here, not on activation: the questions are checked against the handlers' option schemas,
  // and the handler modules bring axios and MQTT.js with them.
  const { answerValue, fieldProblem, SINK_TYPES, validateSinkName } = await import('./sinkFields.js');
  /** A copy of `draft` with the answer to `field`; throws ConfigError for an answer of the wrong kind. */
  const withAnswer = (draft: Draft, field: SinkField, answer: string): Draft => {
    const next: Draft = { options: { ...draft.options }, headers: { ...draft.headers }, password: draft.password };
    if (field.kind === 'secretHeader') next.headers[field.header!] = answer;
    else if (field.kind === 'password') next.password = answer;
    else next.options[field.key] = answerValue(field, answer);
    return next;
  };
  const typePick = await vscode.window.showQuickPick(
    SINK_TYPES.map((info) => ({ label: info.label, description: info.type, detail: info.description, info })),
    { title: 'Add Sink: type', placeHolder: 'Where should messages go?', matchOnDescription: true },
  );
  if (!typePick) return undefined;
  const { info } = typePick;
  const existing = deps.sinks.all().map((s) => s.name);
  const name = await vscode.window.showInputBox({
    title: `Add ${info.label} sink: name`,
    prompt: 'A unique name for the sink',
    value: uniqueName(info.type, existing),
    validateInput: (value) => validateSinkName(value, existing),
  });
  if (name === undefined) return undefined;

  /** The answers so far; validation works on copies, so a rejected answer leaves no trace. */
  let draft: Draft = { options: {}, headers: {}, password: undefined };
  const build = async (d: Draft) => {
    const { setting, secrets } = splitSecrets({ ...d.options, name, type: info.type }, d.headers, d.password);
    await deps.sinks.createHandler(setting, secrets ?? {});
    return { setting, secrets };
  };

  for (const field of info.fields) {
    if (field.askIf && !field.askIf(draft.options)) continue;
    const title = `Add ${info.label} sink "${name}": ${field.kind === 'secretHeader' ? `${field.header} header` : field.key}`;
    let answer: string | undefined;
    if (field.kind === 'file') {
      answer = await pickFile(field, title, deps.baseDir());
    } else {
      answer = await vscode.window.showInputBox({
        title,
        prompt: field.prompt,
        placeHolder: field.placeholder,
        password: field.kind === 'secretHeader' || field.kind === 'password',
        ignoreFocusOut: true,
        validateInput: async (value) => {
          if (value === '') return field.optional ? undefined : 'Required';
          try {
            await build(withAnswer(draft, field, value));
            return undefined;
          } catch (error) {
            return fieldProblem(field, error);
          }
        },
      });
    }
    if (answer === undefined) return undefined;
    if (answer !== '') draft = withAnswer(draft, field, answer);
  }
  // The last check covers what no single field showed (e.g. a file that cannot be read).
  let built: Awaited<ReturnType<typeof build>>;
  try {
    built = await build(draft);
  } catch (error) {
    void vscode.window.showErrorMessage(`Sink "${name}" was not added: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
  await deps.sinks.save(built.setting, built.secrets);
  deps.log.info(`added sink "${name}" (${info.type})${built.secrets ? ' with secrets in the secret storage' : ''}`);
  const test = 'Test Connection';
  void vscode.window.showInformationMessage(`Sink "${name}" added.`, test).then((choice) => {
    if (choice === test) void testSink(deps, name);
  });
  return built.setting;
}

interface Draft {
  options: Record<string, unknown>;
  headers: Record<string, string>;
  password: string | undefined;
}

/** A path for `field`; '' when an optional file is skipped, undefined when the user cancelled. */
async function pickFile(field: SinkField, title: string, baseDir: string): Promise<string | undefined> {
  if (field.optional) {
    const select = { label: '$(folder-opened) Select a file…', detail: field.prompt };
    const skip = { label: field.skipLabel ?? 'Skip' };
    const choice = await vscode.window.showQuickPick([select, skip], { title, ignoreFocusOut: true });
    if (choice !== select) return choice === skip ? '' : undefined;
  }
  const uris = await vscode.window.showOpenDialog({
    title,
    openLabel: 'Select',
    canSelectMany: false,
    filters: field.filters,
    defaultUri: vscode.Uri.file(baseDir),
  });
  const picked = uris?.[0];
  if (!picked) return undefined;
  // Inside the workspace folder the path is kept relative, so the settings stay portable.
  const relative = vscode.workspace.asRelativePath(picked, false);
  return relative === picked.fsPath ? picked.fsPath : relative;
}

function uniqueName(type: string, existing: readonly string[]): string {
  for (let i = 1; ; i++) {
    const name = i === 1 ? type : `${type}-${i}`;
    if (!existing.includes(name)) return name;
  }
}

/** The sink a command was invoked on, or the one the user picks. */
export async function pickSink(deps: SinkCommandDeps, node: SinkNode | undefined, title: string): Promise<SinkSetting | undefined> {
  if (node?.kind === 'sink') return node.sink;
  const sinks = deps.sinks.all();
  if (sinks.length === 0) {
    void vscode.window.showInformationMessage('No sinks are configured: run "flespi: Add Sink…" first.');
    return undefined;
  }
  return (
    await vscode.window.showQuickPick(
      sinks.map((sink) => ({ label: sink.name, description: sink.type, sink })),
      { title },
    )
  )?.sink;
}

export async function removeSink(deps: SinkCommandDeps, node: SinkNode | undefined, inUse: (name: string) => boolean): Promise<void> {
  const sink = await pickSink(deps, node, 'Remove Sink');
  if (!sink) return;
  const remove = 'Remove';
  const warning = inUse(sink.name) ? ' Forwardings to it continue to their other sinks, or stop if it was their only one.' : '';
  if ((await vscode.window.showWarningMessage(`Remove sink "${sink.name}" and its stored secrets?${warning}`, { modal: true }, remove)) !== remove) return;
  await deps.sinks.remove(sink.name);
  deps.log.info(`removed sink "${sink.name}"`);
}

export async function testSink(deps: SinkCommandDeps, nodeOrName: SinkNode | string | undefined): Promise<void> {
  const sink = typeof nodeOrName === 'string' ? deps.sinks.get(nodeOrName) : await pickSink(deps, nodeOrName, 'Test Sink Connection');
  if (!sink) return;
  const { connectOnce } = await import('../../core/deliver.js');
  const { describeHandlerError } = await import('../../core/custom/loader.js');
  const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Testing sink "${sink.name}"…` }, async () => {
    try {
      const handler = await deps.sinks.createHandler(sink);
      return await connectOnce(handler, { timeoutMs: TEST_TIMEOUT_MS, log: coreLogger(deps.log, sink.name), describeError: describeHandlerError });
    } catch (error) {
      return { error: describeHandlerError(error), ms: 0 };
    }
  });
  if (result.error) {
    deps.log.warn(`test of sink "${sink.name}" failed: ${result.error}`);
    const settings = 'Open Sink Settings';
    if ((await vscode.window.showErrorMessage(`Sink "${sink.name}": ${result.error}`, settings)) === settings) await openSinkSettings(deps);
  } else {
    const what = 'answer' in result && result.answer ? result.answer : 'connected and disconnected';
    deps.log.info(`test of sink "${sink.name}": ${what} in ${result.ms} ms`);
    void vscode.window.showInformationMessage(`Sink "${sink.name}" works: ${what} in ${result.ms} ms.`);
  }
}

/** Opens the settings JSON that holds `flespi.sinks` (workspace or user). */
export async function openSinkSettings(deps: SinkCommandDeps): Promise<void> {
  const { target } = deps.sinks.scope();
  if (target === vscode.ConfigurationTarget.Global) {
    await vscode.commands.executeCommand('workbench.action.openSettingsJson', { revealSetting: { key: 'flespi.sinks' } });
  } else {
    await vscode.commands.executeCommand('workbench.action.openWorkspaceSettingsFile', { revealSetting: { key: 'flespi.sinks' } });
  }
}
