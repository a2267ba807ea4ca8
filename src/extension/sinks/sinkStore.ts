/**
 * The `flespi.sinks` setting plus the sinks' secrets in SecretStorage. All sinks live in one
 * settings scope (VS Code does not merge arrays across scopes): the workspace when a folder is
 * open, else the user settings.
 */
import * as vscode from 'vscode';
import type { Handler } from '../../core/handler';
import { parseSinks, secretKey, type SinkSecrets, type SinkSetting } from './sinkModel';

export class SinkStore implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly subscriptions: vscode.Disposable[] = [];
  private reportedProblems = '';

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subscriptions.push(
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('flespi.sinks')) this.changed.fire();
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.changed.fire()),
    );
  }

  /** The valid sinks; problems with the others are logged once per change. */
  all(): SinkSetting[] {
    const { sinks, problems } = parseSinks(vscode.workspace.getConfiguration('flespi').get('sinks'));
    const text = problems.join('\n');
    if (text !== this.reportedProblems) {
      this.reportedProblems = text;
      for (const problem of problems) this.log.warn(problem);
    }
    return sinks;
  }

  get(name: string): SinkSetting | undefined {
    return this.all().find((s) => s.name === name);
  }

  async secrets(name: string): Promise<SinkSecrets | undefined> {
    const text = await this.context.secrets.get(secretKey(name));
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as SinkSecrets;
    } catch {
      this.log.warn(`the stored secrets of sink "${name}" are unreadable; add the sink again to replace them`);
      return undefined;
    }
  }

  /** Adds a sink (or replaces the one with the same name) and stores its secrets. */
  async save(setting: SinkSetting, secrets: SinkSecrets | undefined): Promise<void> {
    if (secrets) await this.context.secrets.store(secretKey(setting.name), JSON.stringify(secrets));
    else await this.context.secrets.delete(secretKey(setting.name));
    const { target, list } = this.scope();
    const index = list.findIndex((s) => isNamed(s, setting.name));
    const next = index >= 0 ? list.map((s, i) => (i === index ? setting : s)) : [...list, setting];
    await vscode.workspace.getConfiguration('flespi').update('sinks', next, target);
  }

  async remove(name: string): Promise<void> {
    const { target, list } = this.scope();
    await vscode.workspace.getConfiguration('flespi').update(
      'sinks',
      list.filter((s) => !isNamed(s, name)),
      target,
    );
    await this.context.secrets.delete(secretKey(name));
  }

  /** Where the sink list is written: the scope whose value is in effect, else the workspace (or user settings without a folder). */
  scope(): { target: vscode.ConfigurationTarget; list: unknown[] } {
    const inspected = vscode.workspace.getConfiguration('flespi').inspect<unknown[]>('sinks');
    if (Array.isArray(inspected?.workspaceFolderValue)) return { target: vscode.ConfigurationTarget.WorkspaceFolder, list: inspected.workspaceFolderValue };
    if (Array.isArray(inspected?.workspaceValue)) return { target: vscode.ConfigurationTarget.Workspace, list: inspected.workspaceValue };
    if (Array.isArray(inspected?.globalValue) && inspected.globalValue.length > 0) return { target: vscode.ConfigurationTarget.Global, list: inspected.globalValue };
    const hasFolder = (vscode.workspace.workspaceFolders?.length ?? 0) > 0;
    return { target: hasFolder ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global, list: [] };
  }

  /** Builds the sink's handler with its stored secrets (or `secrets`); custom code only in a trusted workspace. */
  async createHandler(sink: SinkSetting, secrets?: SinkSecrets): Promise<Handler> {
    const { createSinkHandler } = await import('./createSinkHandler.js');
    return createSinkHandler(sink, secrets ?? (await this.secrets(sink.name)), { baseDir: baseDir(this.context), allowCustomCode: vscode.workspace.isTrusted });
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
  }
}

/** Relative paths in settings are relative to the first workspace folder (or the extension's storage without one). */
export function baseDir(context: vscode.ExtensionContext): string {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? context.globalStorageUri.fsPath;
}

function isNamed(entry: unknown, name: string): boolean {
  return typeof entry === 'object' && entry !== null && (entry as { name?: unknown }).name === name;
}
