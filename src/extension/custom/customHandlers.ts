/**
 * Custom handlers in the workspace: "flespi: New Handler…", reloading on save, and compile or
 * run-time errors shown on the line they come from (Problems view; a status bar item while a file does not load, a message for errors while forwarding).
 * Handler code runs only in a trusted workspace.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { SourceLocation } from '../../core/custom/loader';
import { resolveSinkPath, type SinkSetting } from '../sinks/sinkModel';
import type { SinkStore } from '../sinks/sinkStore';
import { API_TYPINGS_PATH, handlerTemplate, typingsTemplate, validateHandlerName } from './scaffold';

export interface CustomHandlerDeps {
  context: vscode.ExtensionContext;
  sinks: SinkStore;
  log: vscode.LogOutputChannel;
  baseDir(): string;
  /** Called after a handler file changed and compiled: forwardings using these sinks restart with the new code. */
  reloaded(sinkNames: string[]): void;
  /** The sinks tree redraws (a problem appeared or went away). */
  changed(): void;
}

const TYPINGS_FILE = 'flespi-receiver.d.ts';

export class CustomHandlers implements vscode.Disposable {
  private readonly diagnostics = vscode.languages.createDiagnosticCollection('flespi');
  /** While a handler file does not load: a status bar item (unlike a notification, it goes when the file is fixed). */
  private readonly problemItem = vscode.window.createStatusBarItem('flespi.handlerProblem', vscode.StatusBarAlignment.Left, 9);
  /** The current load problem of each custom sink, by sink name. */
  private readonly problems = new Map<string, string>();
  /** The last error shown per file, so saving a file again with the same error does not pop up again. */
  private readonly shown = new Map<string, string>();
  private watchers: vscode.Disposable[] = [];
  private readonly subscriptions: vscode.Disposable[] = [];
  private checking: Promise<void> = Promise.resolve();

  constructor(private readonly deps: CustomHandlerDeps) {
    this.problemItem.name = 'flespi handler problems';
    this.problemItem.command = 'workbench.actions.view.problems';
    this.problemItem.backgroundColor = new vscode.ThemeColor('statusBarItem.errorBackground');
    this.subscriptions.push(
      this.diagnostics,
      this.problemItem,
      deps.sinks.onDidChange(() => this.watch()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('flespi.handlersFolder')) this.watch();
      }),
      vscode.workspace.onDidGrantWorkspaceTrust(() => {
        this.watch();
        void this.checkAll(undefined);
      }),
    );
    this.watch();
  }

  /** Why a custom sink cannot run, for the Sinks view; undefined for other sinks and healthy ones. */
  problemOf(sink: SinkSetting): string | undefined {
    if (sink.type !== 'custom') return undefined;
    if (!vscode.workspace.isTrusted) return 'not run: the workspace is not trusted';
    return this.problems.get(sink.name);
  }

  /** The handler file of a custom sink. */
  fileOf(sink: SinkSetting): vscode.Uri | undefined {
    if (sink.type !== 'custom' || typeof sink.file !== 'string') return undefined;
    return vscode.Uri.file(resolveSinkPath(sink.file, this.deps.baseDir()));
  }

  /** Creates a handler class from the template, registers it as a sink and opens it. */
  async newHandler(): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0];
    if (!folder) {
      void vscode.window.showErrorMessage('Open a folder first: handlers are files in the workspace (setting flespi.handlersFolder).');
      return;
    }
    if (!vscode.workspace.isTrusted) {
      const manage = 'Manage Workspace Trust';
      if ((await vscode.window.showWarningMessage('Handlers are code that runs in VS Code: trust this workspace to create and run them.', manage)) === manage) {
        await vscode.commands.executeCommand('workbench.trust.manage');
      }
      return;
    }
    const relativeFolder = this.handlersFolder();
    if (relativeFolder === undefined) return;
    const dir = vscode.Uri.joinPath(folder.uri, relativeFolder);
    const existingSinks = this.deps.sinks.all().map((s) => s.name);
    const name = await vscode.window.showInputBox({
      title: 'New flespi handler',
      prompt: `Class name (PascalCase); the file goes to ${relativeFolder}/`,
      placeHolder: 'MyHandler',
      validateInput: async (value) => {
        const problem = validateHandlerName(value);
        if (problem) return problem;
        if (existingSinks.includes(value)) return `A sink named "${value}" exists already: choose another name`;
        if (await exists(vscode.Uri.joinPath(dir, `${value}.ts`))) return `${relativeFolder}/${value}.ts exists already: choose another name`;
        return undefined;
      },
    });
    if (!name) return;
    const file = vscode.Uri.joinPath(dir, `${name}.ts`);
    const typings = vscode.Uri.joinPath(dir, TYPINGS_FILE);
    // Read before anything is written, so a broken install leaves no half-made handler behind.
    const typingsText = (await exists(typings)) ? undefined : typingsTemplate(await this.apiTypings(), !hasNodeTypes(dir.fsPath));
    await vscode.workspace.fs.createDirectory(dir);
    await vscode.workspace.fs.writeFile(file, Buffer.from(handlerTemplate(name), 'utf8'));
    if (typingsText !== undefined) await vscode.workspace.fs.writeFile(typings, Buffer.from(typingsText, 'utf8'));
    // User settings apply in every window, where a workspace-relative path would name another file (or none).
    const inUserSettings = this.deps.sinks.scope().target === vscode.ConfigurationTarget.Global;
    await this.deps.sinks.save({ name, type: 'custom', file: inUserSettings ? file.fsPath : `${relativeFolder}/${name}.ts` }, undefined);
    this.deps.log.info(`created handler ${relativeFolder}/${name}.ts and the custom sink "${name}"`);
    await vscode.window.showTextDocument(file);
  }

  /** The typings of the handler API the build generated into the extension's folder (read here only, not on activation). */
  private async apiTypings(): Promise<string> {
    const uri = vscode.Uri.joinPath(this.deps.context.extensionUri, ...API_TYPINGS_PATH);
    try {
      return new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
    } catch (error) {
      throw new Error(
        `The flespi extension is incomplete: ${API_TYPINGS_PATH.join('/')} is missing (${error instanceof Error ? error.message : String(error)}). Reinstall it, or run "npm run build" in its source folder.`,
        { cause: error },
      );
    }
  }

  /** Shows an error thrown by a custom sink while forwarding on the line it came from. */
  async reportRuntimeError(sinkName: string, error: Error): Promise<void> {
    const sink = this.deps.sinks.get(sinkName);
    if (sink?.type !== 'custom') return;
    const { locateError, describeHandlerError } = await import('../../core/custom/loader.js');
    const location = locateError(error) ?? (error as { location?: SourceLocation }).location;
    // Not a load problem: the Sinks view shows it from the live counters; the diagnostic stays until the next save.
    this.setDiagnostic(location, this.fileOf(sink), `flespi handler "${sinkName}" failed while forwarding: ${describeHandlerError(error)}`, false);
  }

  /** Compiles every custom sink's file (all, or those affected by `changed`), updating problems and diagnostics. */
  checkAll(changed: vscode.Uri | undefined): Promise<void> {
    this.checking = this.checking.then(() => this.check(changed));
    return this.checking;
  }

  private async check(changed: vscode.Uri | undefined): Promise<void> {
    if (!vscode.workspace.isTrusted) return;
    const custom = this.deps.sinks.all().filter((s) => s.type === 'custom');
    if (custom.length === 0) return;
    const { loadHandlerClass, HandlerLoadError } = await import('../../core/custom/loader.js');
    const reloaded: string[] = [];
    const clearedFiles = new Set<string>();
    for (const sink of custom) {
      const file = this.fileOf(sink);
      if (!file) continue;
      // A change anywhere in the handler's folder may touch it (handlers can import their neighbours).
      if (changed && path.dirname(changed.fsPath) !== path.dirname(file.fsPath) && !changed.fsPath.startsWith(path.dirname(file.fsPath) + path.sep)) continue;
      if (!clearedFiles.has(file.fsPath)) {
        this.diagnostics.delete(file);
        clearedFiles.add(file.fsPath);
      }
      try {
        await loadHandlerClass(file.fsPath);
        const hadProblem = this.problems.delete(sink.name);
        this.shown.delete(file.fsPath);
        if (changed || hadProblem) reloaded.push(sink.name);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.problems.set(sink.name, message);
        const location = error instanceof HandlerLoadError ? error.location : undefined;
        if (location && !clearedFiles.has(location.file)) {
          this.diagnostics.delete(vscode.Uri.file(location.file));
          clearedFiles.add(location.file);
        }
        this.setDiagnostic(location, file, message, true, false);
        this.deps.log.error(`handler of sink "${sink.name}": ${message}`);
      }
    }
    this.showProblems();
    if (reloaded.length > 0) {
      this.deps.log.info(`reloaded handler code of ${reloaded.map((n) => `"${n}"`).join(', ')}`);
      this.deps.reloaded(reloaded);
    }
    this.deps.changed();
  }

  /** The status bar item says which handlers do not load, and goes away once they do. */
  private showProblems(): void {
    const names = [...this.problems.keys()];
    if (names.length === 0) {
      this.problemItem.hide();
      return;
    }
    this.problemItem.text = `$(error) flespi handler${names.length === 1 ? ` ${names[0]}` : `s ${names.join(', ')}`} does not load`;
    this.problemItem.tooltip =
      [...this.problems].map(([name, message]) => `${name}: ${message}`).join('\n\n') + '\n\nClick for the Problems view; saving a fix clears this.';
    this.problemItem.show();
  }

  /**
   * A diagnostic at the location (or the first line of `fallback`); with `notify`, also a notification
   * once per distinct error (for errors while forwarding: load errors show in the status bar instead).
   */
  private setDiagnostic(location: SourceLocation | undefined, fallback: vscode.Uri | undefined, message: string, prefix = true, notify = true): void {
    const uri = location ? vscode.Uri.file(location.file) : fallback;
    if (!uri) return;
    const line = Math.max(0, (location?.line ?? 1) - 1);
    const column = Math.max(0, (location?.column ?? 1) - 1);
    const diagnostic = new vscode.Diagnostic(new vscode.Range(line, column, line, Number.MAX_SAFE_INTEGER), message, vscode.DiagnosticSeverity.Error);
    diagnostic.source = 'flespi';
    const others = (this.diagnostics.get(uri) ?? []).filter((d) => d.message !== message);
    this.diagnostics.set(uri, [...others, diagnostic]);
    if (!notify || this.shown.get(uri.fsPath) === message) return;
    this.shown.set(uri.fsPath, message);
    const show = 'Go to Error';
    void vscode.window.showErrorMessage(prefix ? `flespi handler: ${message}` : message, show).then(async (choice) => {
      if (choice !== show) return;
      const editor = await vscode.window.showTextDocument(uri);
      const position = new vscode.Position(line, column);
      editor.selection = new vscode.Selection(position, position);
      editor.revealRange(new vscode.Range(position, position), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
    });
  }

  /** Watches the handlers folder and every custom sink's folder; a save reloads the affected handlers. */
  private watch(): void {
    for (const w of this.watchers) w.dispose();
    this.watchers = [];
    if (!vscode.workspace.isTrusted) return;
    const folders = new Set<string>();
    const root = vscode.workspace.workspaceFolders?.[0];
    const handlersFolder = this.handlersFolder(false);
    if (root && handlersFolder !== undefined) folders.add(vscode.Uri.joinPath(root.uri, handlersFolder).fsPath);
    for (const sink of this.deps.sinks.all()) {
      const file = this.fileOf(sink);
      if (file) folders.add(path.dirname(file.fsPath));
    }
    for (const folder of folders) {
      const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(folder), '**/*.{ts,js,mts,cts}'));
      const onChange = (uri: vscode.Uri) => {
        if (uri.fsPath.endsWith('.d.ts')) return;
        void this.checkAll(uri);
      };
      watcher.onDidChange(onChange);
      watcher.onDidCreate(onChange);
      this.watchers.push(watcher);
    }
  }

  /** `flespi.handlersFolder`, checked to stay inside the workspace folder. */
  private handlersFolder(complain = true): string | undefined {
    const value =
      vscode.workspace
        .getConfiguration('flespi')
        .get<string>('handlersFolder', 'flespi-handlers')
        .trim()
        .replace(/[\\/]+$/, '') || 'flespi-handlers';
    if (path.isAbsolute(value) || value.split(/[\\/]/).includes('..')) {
      if (complain)
        void vscode.window.showErrorMessage(
          `Setting flespi.handlersFolder must be a folder inside the workspace (a relative path without ".."), got "${value}".`,
        );
      return undefined;
    }
    return value.replace(/\\/g, '/');
  }

  dispose(): void {
    for (const w of this.watchers) w.dispose();
    for (const s of this.subscriptions) s.dispose();
  }
}

async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(uri);
    return true;
  } catch {
    return false;
  }
}

/** Is @types/node installed where the handler lives (then its own Node typings apply)? */
function hasNodeTypes(dir: string): boolean {
  try {
    require.resolve('@types/node/package.json', { paths: [dir] });
    return true;
  } catch {
    return false;
  }
}
