/**
 * The `flespi.sinks` setting plus the sinks' secrets in SecretStorage. All sinks live in one
 * settings scope (VS Code does not merge arrays across scopes): the workspace when a folder is
 * open, else the user settings. Secrets are kept per scope (sinkSecrets.ts), so one workspace never
 * receives another's.
 */
import * as vscode from 'vscode';
import type { Handler } from '../../core/handler';
import { redactUrl } from '../../core/security';
import { parseSinks, sinkTarget, type SinkSecrets, type SinkSetting } from './sinkModel';
import { SinkSecretVault, USER_SCOPE, workspaceScope, type LegacyQuestion } from './sinkSecrets';

/** workspaceState: sink names whose unscoped secrets the user did not want for this workspace. */
const DECLINED_KEY = 'flespi.legacySinkSecretsDeclined';

export class SinkStore implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  private readonly subscriptions: vscode.Disposable[] = [];
  private reportedProblems = '';
  private readonly vault: SinkSecretVault;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.vault = new SinkSecretVault(
      context.secrets,
      (question) => this.askLegacy(question),
      (message) => log.info(message),
    );
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

  /**
   * Whose sinks are in effect: `user` (user settings) or this workspace's scope. VS Code reads
   * `flespi.sinks` from the workspace when it sets it (and is trusted), else from the user settings.
   */
  scopeId(): string {
    const inspected = vscode.workspace.getConfiguration('flespi').inspect<unknown[]>('sinks');
    const fromWorkspace = vscode.workspace.isTrusted && (Array.isArray(inspected?.workspaceFolderValue) || Array.isArray(inspected?.workspaceValue));
    return fromWorkspace ? this.workspaceScopeId() : USER_SCOPE;
  }

  /** The scope id of the open workspace: its `.code-workspace` file, else its first folder. */
  workspaceScopeId(): string {
    const identity = vscode.workspace.workspaceFile ?? vscode.workspace.workspaceFolders?.[0]?.uri;
    return identity ? workspaceScope(identity.toString()) : USER_SCOPE;
  }

  async secrets(name: string): Promise<SinkSecrets | undefined> {
    const text = await this.vault.read(this.scopeId(), name);
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
    const { target, list } = this.scope();
    await this.vault.write(this.scopeOf(target), setting.name, secrets && JSON.stringify(secrets));
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
    await this.vault.remove(this.scopeOf(target), name);
  }

  /** The secrets scope of a settings target. */
  private scopeOf(target: vscode.ConfigurationTarget): string {
    return target === vscode.ConfigurationTarget.Global ? USER_SCOPE : this.workspaceScopeId();
  }

  /** Asks once per sink whether secrets stored before scopes belong to this workspace's sink. */
  private async askLegacy({ sinkName }: LegacyQuestion): Promise<boolean> {
    const declined = this.context.workspaceState.get<string[]>(DECLINED_KEY) ?? [];
    if (declined.includes(sinkName)) return false;
    const sink = this.get(sinkName);
    const target = sink ? redactUrl(sinkTarget(sink)) : '';
    const use = 'Use Them for This Workspace';
    const choice = await vscode.window.showWarningMessage(
      `Sink "${sinkName}" of this workspace has no secrets of its own. Secrets stored for a sink named "${sinkName}" before secrets were kept per workspace exist, and may belong to another workspace's sink. Use them for this workspace's sink${target ? ` (${target})` : ''}?`,
      { modal: true, detail: 'If not, run "flespi: Add Sink…" for this sink to store its own secrets.' },
      use,
    );
    if (choice === use) return true;
    await this.context.workspaceState.update(DECLINED_KEY, [...declined, sinkName]);
    return false;
  }

  /** Where the sink list is written: the scope whose value is in effect, else the workspace (or user settings without a folder). */
  scope(): { target: vscode.ConfigurationTarget; list: unknown[] } {
    const inspected = vscode.workspace.getConfiguration('flespi').inspect<unknown[]>('sinks');
    if (Array.isArray(inspected?.workspaceFolderValue)) return { target: vscode.ConfigurationTarget.WorkspaceFolder, list: inspected.workspaceFolderValue };
    if (Array.isArray(inspected?.workspaceValue)) return { target: vscode.ConfigurationTarget.Workspace, list: inspected.workspaceValue };
    if (Array.isArray(inspected?.globalValue) && inspected.globalValue.length > 0)
      return { target: vscode.ConfigurationTarget.Global, list: inspected.globalValue };
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
