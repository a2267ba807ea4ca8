/**
 * The VS Code side of forwarding: Start/Stop Forwarding commands, the status bar item, one record
 * per forwarding plus its lock and checkpoint in globalStorage (shared by every window), and errors
 * shown once with an action. A forwarding runs in the one window that holds its lock; the others
 * show where it runs and take it over when that window goes away.
 */
import { createHash } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { FlespiError, errorMessage } from '../../core/errors';
import { MemoryCheckpointStore, FileCheckpointStore } from '../../core/receiver/checkpoint';
import { FileLock } from '../../core/receiver/lock';
import type { Source } from '../../core/sources/source';
import type { Connection } from '../connection';
import { coreLogger } from '../log';
import type { ChannelInfo } from '../channels/channelModel';
import { escapeMarkdown } from '../markdown';
import { formatLocalTime, parseStartTime } from '../timeInput';
import { statusBarText } from '../sinks/sinkStatus';
import type { SinkStore } from '../sinks/sinkStore';
import type { DeadLetterFiles } from './deadLetterFiles';
import type { Forwarding, ForwardingManager, ForwardingSpec } from './manager';
import { ForwardingRecords, isForwardingSpec, recordName } from './records';

/** globalState: the list of forwardings of versions before per-forwarding records (moved into the records once). */
export const FORWARDINGS_KEY = 'flespi.forwardings';
/** How often a window looks whether a forwarding that ran in another window is free to run here. */
const ADOPT_EVERY_MS = 15_000;

export interface ForwardingControllerDeps {
  context: vscode.ExtensionContext;
  connection: Connection;
  sinks: SinkStore;
  log: vscode.LogOutputChannel;
  /** Redraw the trees (throttled by them). */
  changed(): void;
  /** A sink's handler threw while forwarding (custom handlers show it on the line). */
  handlerError(sink: string, error: Error): void;
}

/** Read-only documents listing a sink's dead letters. */
const DEAD_LETTERS_SCHEME = 'flespi-dead-letters';

export class ForwardingController implements vscode.Disposable {
  private managerPromise?: Promise<ForwardingManager>;
  private manager?: ForwardingManager;
  private readonly statusBar = vscode.window.createStatusBarItem('flespi.forwarding', vscode.StatusBarAlignment.Left, 10);
  private readonly subscriptions: vscode.Disposable[] = [];
  private statusTimer?: NodeJS.Timeout;
  /** The connection the running receivers belong to. */
  private connectionKey?: string;
  private deadLetterFilesPromise?: Promise<DeadLetterFiles>;
  /** Dead letters per sink on the current connection. */
  private deadLetterCounts = new Map<string, number>();
  /** Fires for a dead-letters document whose content changed. */
  private readonly deadLetterDocuments = new vscode.EventEmitter<vscode.Uri>();
  /** Sinks whose first dead letter in this window was announced. */
  private readonly warnedDeadLetters = new Set<string>();
  private readonly records: ForwardingRecords;
  private adoptTimer?: NodeJS.Timeout;

  constructor(private readonly deps: ForwardingControllerDeps) {
    this.records = new ForwardingRecords(join(deps.context.globalStorageUri.fsPath, 'forwardings'));
    this.statusBar.name = 'flespi forwarding';
    this.statusBar.command = 'flespi.showForwardings';
    this.subscriptions.push(
      this.statusBar,
      this.deadLetterDocuments,
      deps.connection.onDidChange(() => void this.connectionChanged()),
      vscode.workspace.registerTextDocumentContentProvider(DEAD_LETTERS_SCHEME, {
        onDidChange: this.deadLetterDocuments.event,
        provideTextDocumentContent: (uri) => this.deadLettersText(uri),
      }),
    );
  }

  /** True when forwardings were persisted: they resume as soon as their connection is up. */
  hasPersisted(): boolean {
    return this.records.any() || (this.deps.context.globalState.get<unknown[]>(FORWARDINGS_KEY) ?? []).length > 0;
  }

  /** The manager, if it was created (it is created on first use: it pulls in the receiver). */
  current(): ForwardingManager | undefined {
    return this.manager;
  }

  async start(channel: ChannelInfo): Promise<void> {
    const info = this.deps.connection.current;
    if (!info) {
      void vscode.window.showErrorMessage('Connect to flespi first (set a token or use the local sandbox).');
      return;
    }
    const sinks = this.deps.sinks.all();
    if (sinks.length === 0) {
      const add = 'Add Sink…';
      if ((await vscode.window.showInformationMessage('Forwarding needs a sink to send messages to: add one first.', add)) === add) {
        await vscode.commands.executeCommand('flespi.addSink');
      }
      return;
    }
    const manager = await this.getManager();
    const previous = new Set(manager.get(channel.id)?.spec.sinks ?? []);
    const picked = await vscode.window.showQuickPick(
      sinks.map((sink) => ({ label: sink.name, description: sink.type, picked: previous.has(sink.name) })),
      { title: `Forward channel ${channel.name} (#${channel.id}) to…`, placeHolder: 'Pick one or more sinks', canPickMany: true },
    );
    if (!picked || picked.length === 0) return;
    const start = await this.askStart(info, channel, manager.get(channel.id));
    if (!start) return;
    const spec: ForwardingSpec = {
      channelId: channel.id,
      channelName: channel.name,
      sinks: picked.map((p) => p.label),
      connection: info.label,
      ...(start.startKey === undefined ? {} : { startKey: start.startKey }),
    };
    const forwarding = await manager.start(spec);
    if (forwarding.owner) {
      void vscode.window.showWarningMessage(
        `Channel ${channel.name} is already forwarded in ${forwarding.where}: stop it there first (one window forwards a channel, so that messages are not delivered twice).`,
      );
      this.scheduleAdopt();
    } else if (!forwarding.error) void vscode.window.showInformationMessage(`Forwarding channel ${channel.name} to ${spec.sinks.join(', ')}.`);
  }

  /**
   * Where a new forwarding starts: where it stopped (when a checkpoint is kept), from now, from the
   * oldest message in the buffer (with how many there are), or from a time. Not asked when the
   * channel is forwarded already (it keeps its position) or read over MQTT (the broker's session
   * starts now). Undefined when the user cancelled; a start other than the checkpoint removes it.
   */
  private async askStart(
    info: NonNullable<Connection['current']>,
    channel: ChannelInfo,
    running: Forwarding | undefined,
  ): Promise<{ startKey?: number } | undefined> {
    if (running && !running.owner) return { startKey: running.spec.startKey };
    if (vscode.workspace.getConfiguration('flespi').get('forwarding.source') === 'mqtt') return {};
    const { bufferExtent, keyAtTime } = await import('./startPosition.js');
    const checkpointFile = info.mode === 'sandbox' ? undefined : this.checkpointPath(info.label, channel.id);
    const hasCheckpoint =
      checkpointFile !== undefined &&
      (await stat(checkpointFile).then(
        () => true,
        () => false,
      ));
    let extent: Awaited<ReturnType<typeof bufferExtent>>;
    try {
      extent = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Reading the buffer of channel ${channel.name}…` },
        () => bufferExtent(info.client, channel.id),
      );
    } catch (error) {
      void vscode.window.showErrorMessage(`Cannot read the buffer of channel ${channel.name}: ${errorMessage(error)}`);
      return undefined;
    }
    type Choice = vscode.QuickPickItem & { start: 'checkpoint' | 'now' | 'oldest' | 'time' };
    const plural = (n: number) => `${n} message${n === 1 ? '' : 's'}`;
    const choices: Choice[] = [
      ...(hasCheckpoint
        ? [{ label: 'Where it stopped last time', detail: 'After the last message it forwarded (its checkpoint)', start: 'checkpoint' as const }]
        : []),
      { label: 'From now', detail: 'Only messages that arrive from now on', start: 'now' },
      {
        label: 'From the oldest message in the buffer',
        description: plural(extent.count),
        detail:
          extent.count === 0
            ? 'The buffer is empty: the same as from now'
            : `All ${plural(extent.count)} in the buffer${extent.oldestMs ? `, from ${formatLocalTime(extent.oldestMs)}` : ''}, then what arrives`,
        start: 'oldest',
      },
      { label: 'From a time…', detail: 'The first message flespi received at or after a time you give', start: 'time' },
    ];
    const choice = await vscode.window.showQuickPick(choices, {
      title: `Forward channel ${channel.name}: start where?`,
      placeHolder: `The buffer holds ${plural(extent.count)}`,
    });
    if (!choice) return undefined;
    let startKey: number | undefined;
    if (choice.start === 'checkpoint') return {};
    if (choice.start === 'now') startKey = extent.endKey;
    else if (choice.start === 'oldest') startKey = extent.oldestKey;
    else {
      const answer = await vscode.window.showInputBox({
        title: `Forward channel ${channel.name}: from what time?`,
        prompt: 'Local time (2026-11-26 14:05), an ISO time with a zone, or how long ago (15m, 2h, 1d)',
        value: formatLocalTime(Date.now() - 3_600_000),
        validateInput: (value) => (parseStartTime(value) === undefined ? 'A time like 2026-11-26 14:05, or 15m, 2h, 1d (ago)' : undefined),
      });
      const time = answer === undefined ? undefined : parseStartTime(answer);
      if (time === undefined) return undefined;
      try {
        startKey = await vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: `Finding the first message at ${formatLocalTime(time)}…` },
          () => keyAtTime(info.client, channel.id, time, extent),
        );
      } catch (error) {
        void vscode.window.showErrorMessage(`Cannot read the buffer of channel ${channel.name}: ${errorMessage(error)}`);
        return undefined;
      }
    }
    this.deps.log.info(
      `forwarding channel ${channel.id} starts ${choice.start === 'time' ? 'at a time' : choice.start === 'now' ? 'from now' : 'from the oldest message'}: key ${startKey} (buffer keys ${extent.oldestKey}..${extent.endKey - 1})`,
    );
    if (hasCheckpoint && checkpointFile) await rm(checkpointFile, { force: true });
    return { startKey };
  }

  /** The checkpoint file of a forwarding with a token (with the sandbox they are kept in memory). */
  private checkpointPath(connection: string, channelId: number): string {
    return vscode.Uri.joinPath(this.deps.context.globalStorageUri, 'checkpoints', `${safe(connection)}-channel-${channelId}.json`).fsPath;
  }

  /** Stops forwarding a channel: the one given (the row clicked), or one the user picks among those forwarded. */
  async stop(channelId?: number): Promise<void> {
    const manager = await this.getManager();
    if (channelId === undefined) {
      const forwardings = manager.list();
      if (forwardings.length === 0) {
        void vscode.window.showInformationMessage('No channel is being forwarded.');
        return;
      }
      const picked = await vscode.window.showQuickPick(
        forwardings.map((f) => ({
          label: f.spec.channelName,
          description: `#${f.spec.channelId} → ${f.spec.sinks.join(', ')}`,
          detail: f.owner ? `runs in ${f.where}` : undefined,
          id: f.spec.channelId,
        })),
        { title: 'Stop Forwarding', placeHolder: 'Pick a forwarded channel' },
      );
      if (!picked) return;
      channelId = picked.id;
    }
    const forwarding = manager.get(channelId);
    if (!forwarding) {
      void vscode.window.showInformationMessage(`Channel #${channelId} is not being forwarded.`);
      return;
    }
    await manager.stop(channelId);
    vscode.window.setStatusBarMessage(`Stopped forwarding channel ${forwarding.spec.channelName}`, 5000);
  }

  /** This sink's dead letters on the current connection (cached; refreshed when letters are added or sent again). */
  deadLetterCount(sink: string): number {
    return this.deadLetterCounts.get(sink) ?? 0;
  }

  /** Shows a sink's dead letters (every channel of the current connection) as a read-only JSON document. */
  async openDeadLetters(sink: string): Promise<void> {
    const info = this.deps.connection.current;
    if (!info) {
      void vscode.window.showErrorMessage('Connect to flespi first: dead letters are kept per connection.');
      return;
    }
    if (((await (await this.deadLetterFiles()).counts(info.label)).get(sink) ?? 0) === 0) {
      void vscode.window.showInformationMessage(`Sink "${sink}" has no dead letters on ${info.label}.`);
      return;
    }
    const uri = vscode.Uri.from({
      scheme: DEAD_LETTERS_SCHEME,
      path: `/${sink}.dead-letters.json`,
      query: new URLSearchParams({ connection: info.label, sink }).toString(),
    });
    this.deadLetterDocuments.fire(uri); // an open one shows what is there now
    const document = await vscode.workspace.openTextDocument(uri);
    await vscode.languages.setTextDocumentLanguage(document, 'json');
    await vscode.window.showTextDocument(document, { preview: false });
  }

  /** The text of a dead-letters document (see openDeadLetters): read from the files each time it is shown. */
  private async deadLettersText(uri: vscode.Uri): Promise<string> {
    const query = new URLSearchParams(uri.query);
    const found = await (await this.deadLetterFiles()).read(query.get('connection') ?? '', query.get('sink') ?? '');
    const { deadLettersDocument } = await import('./deadLetterFiles.js');
    return deadLettersDocument(found);
  }

  /** Sends a sink's dead letters again through a fresh handler (after a fix); those it accepts leave the store. */
  async resendDeadLetters(sink: string): Promise<void> {
    const info = this.deps.connection.current;
    const setting = this.deps.sinks.get(sink);
    if (!info || !setting) {
      void vscode.window.showErrorMessage(info ? `No sink named "${sink}" in flespi.sinks.` : 'Connect to flespi first: dead letters are kept per connection.');
      return;
    }
    const files = await this.deadLetterFiles();
    const count = (await files.counts(info.label)).get(sink) ?? 0;
    if (count === 0) {
      void vscode.window.showInformationMessage(`Sink "${sink}" has no dead letters on ${info.label}.`);
      return;
    }
    const send = 'Send Again';
    const question = `Send the ${count} dead letter${count === 1 ? '' : 's'} of sink "${sink}" again? Those it accepts leave the store; the others stay with their new reason.`;
    if ((await vscode.window.showWarningMessage(question, { modal: true }, send)) !== send) return;
    const { describeHandlerError } = await import('../../core/custom/loader.js');
    const outcome = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Sending the dead letters of sink "${sink}" again…` },
      () =>
        files.resend(info.label, sink, () => this.deps.sinks.createHandler(setting), {
          timeoutMs: 60_000,
          log: coreLogger(this.deps.log, sink),
          describeError: describeHandlerError,
          // Another window runs that forwarding and appends to its file: leave it to that window.
          skip: (channelId) => this.manager?.get(channelId)?.owner !== undefined,
        }),
    );
    for (const error of outcome.errors.slice(0, 10)) this.deps.log.warn(`sending dead letters of "${sink}" again: ${error}`);
    await this.refreshDeadLetters();
    const left = outcome.remaining + outcome.skipped;
    const summary = `Sink "${sink}": ${outcome.sent} dead letter${outcome.sent === 1 ? '' : 's'} sent again${left > 0 ? `, ${left} still kept${outcome.skipped > 0 ? ` (${outcome.skipped} of forwardings running in another window)` : ''}` : ''}.`;
    this.deps.log.info(summary);
    if (outcome.remaining > 0 && outcome.errors.length > 0) {
      void vscode.window.showWarningMessage(`${summary} ${outcome.errors[0]}`, 'Show Log').then((choice) => {
        if (choice) this.deps.log.show();
      });
    } else void vscode.window.showInformationMessage(summary);
  }

  /** Lists forwardings; picking one offers to stop it. */
  async show(): Promise<void> {
    const manager = await this.getManager();
    const forwardings = manager.list();
    if (forwardings.length === 0) {
      void vscode.window.showInformationMessage('Nothing is being forwarded. Use "Start Forwarding…" on a channel in the flespi view.');
      return;
    }
    const picked = await vscode.window.showQuickPick(
      forwardings.map((f) => ({
        label: `$(${f.state === 'failed' ? 'warning' : 'radio-tower'}) ${f.spec.channelName}`,
        description: `#${f.spec.channelId} → ${f.spec.sinks.join(', ')}`,
        detail: f.owner ? `runs in ${f.where}` : f.error ? `failed: ${errorMessage(f.error)}` : `${f.state}, ${f.messagesForwarded} messages forwarded`,
        forwarding: f,
      })),
      { title: 'flespi forwardings — pick one to stop it' },
    );
    if (!picked) return;
    const stop = 'Stop Forwarding';
    if ((await vscode.window.showWarningMessage(`Stop forwarding channel ${picked.forwarding.spec.channelName}?`, stop)) === stop)
      await this.stop(picked.forwarding.spec.channelId);
  }

  /** Restarts forwardings that use these sinks (their code or settings changed). */
  async restartUsing(sinks: string[]): Promise<void> {
    await this.manager?.restartUsing(sinks);
  }

  /** Takes removed sinks out of the forwardings (persisted ones too, so they do not fail on the next resume). */
  async dropSinks(sinks: string[]): Promise<void> {
    if (sinks.length === 0 || (!this.manager && !this.hasPersisted())) return;
    const manager = await this.getManager();
    for (const sink of sinks) await manager.dropSink(sink);
  }

  /** Stops every receiver, keeping the list for the next window. */
  async suspend(): Promise<void> {
    await this.manager?.suspendAll();
  }

  /** Called when the connection changes: receivers of the old connection stop, those of the new one resume. */
  private async connectionChanged(): Promise<void> {
    const info = this.deps.connection.current;
    const key = info?.label;
    if (key === this.connectionKey) return;
    this.connectionKey = key;
    void this.refreshDeadLetters();
    if (this.manager) await this.manager.suspendAll();
    if (!info || !this.hasPersisted()) return;
    const manager = await this.getManager();
    const problems = await manager.resume(info.label);
    const here = manager.list().filter((f) => !f.owner).length;
    const elsewhere = manager.list().length - here;
    if (here > 0) this.deps.log.info(`resumed ${here - problems.length} forwarding(s) on ${info.label}`);
    if (elsewhere > 0) {
      this.deps.log.info(`${elsewhere} forwarding(s) run in another window; this window takes them over when that one closes`);
      this.scheduleAdopt();
    }
  }

  /** While forwardings run in other windows, looks every few seconds whether they are free to run here. */
  private scheduleAdopt(): void {
    if (this.adoptTimer) return;
    this.adoptTimer = setTimeout(() => {
      this.adoptTimer = undefined;
      void this.manager?.adoptOrphans().then(
        (waiting) => waiting && this.scheduleAdopt(),
        (error: unknown) => this.deps.log.warn(`forwarding: ${errorMessage(error)}`),
      );
    }, ADOPT_EVERY_MS);
  }

  /** Forwardings saved by earlier versions as one list in globalState become records, once. */
  private async migrateLegacyList(): Promise<void> {
    const legacy = this.deps.context.globalState.get<unknown[]>(FORWARDINGS_KEY);
    if (!Array.isArray(legacy) || legacy.length === 0) return;
    const existing = await this.records.list();
    for (const spec of legacy.filter(isForwardingSpec)) {
      if (!existing.some((r) => r.channelId === spec.channelId && r.connection === spec.connection)) await this.records.put(spec);
    }
    await this.deps.context.globalState.update(FORWARDINGS_KEY, undefined);
    this.deps.log.info(`moved ${legacy.length} forwarding(s) from the old list into per-forwarding records`);
  }

  private deadLetterFiles(): Promise<DeadLetterFiles> {
    this.deadLetterFilesPromise ??= import('./deadLetterFiles.js').then(
      ({ DeadLetterFiles }) => new DeadLetterFiles(join(this.deps.context.globalStorageUri.fsPath, 'dead-letters')),
    );
    return this.deadLetterFilesPromise;
  }

  /** Reads the dead-letter counts of the current connection again, and redraws. */
  private async refreshDeadLetters(): Promise<void> {
    const info = this.deps.connection.current;
    try {
      this.deadLetterCounts = info ? await (await this.deadLetterFiles()).counts(info.label) : new Map();
    } catch (error) {
      this.deps.log.warn(`cannot read the dead-letter files: ${errorMessage(error)}`);
    }
    this.deps.changed();
    this.scheduleStatus();
    for (const document of vscode.workspace.textDocuments) if (document.uri.scheme === DEAD_LETTERS_SCHEME) this.deadLetterDocuments.fire(document.uri);
  }

  private getManager(): Promise<ForwardingManager> {
    this.managerPromise ??= this.createManager();
    return this.managerPromise;
  }

  private async createManager(): Promise<ForwardingManager> {
    const { ForwardingManager } = await import('./manager.js');
    const { connection, sinks, log } = this.deps;
    await this.migrateLegacyList().catch((error: unknown) => log.warn(`cannot move the old list of forwardings: ${errorMessage(error)}`));
    const owner = vscode.workspace.name ? `workspace "${vscode.workspace.name}"` : 'no folder open';
    const manager = new ForwardingManager({
      build: async (spec) => {
        const info = connection.current;
        if (!info || info.label !== spec.connection) throw new Error(`not connected to ${spec.connection}`);
        const handlers = [];
        for (const name of spec.sinks) {
          const sink = sinks.get(name);
          if (!sink) throw new Error(`sink "${name}" is no longer in flespi.sinks: start forwarding again with the sinks you have`);
          handlers.push(await sinks.createHandler(sink));
        }
        const source = await this.createSource(spec);
        // The sandbox starts empty after every reload, so its keys do not survive it: keep its checkpoints in memory.
        const checkpoints = info.mode === 'sandbox' ? new MemoryCheckpointStore() : new FileCheckpointStore(this.checkpointPath(info.label, spec.channelId));
        const deadLetters = (await this.deadLetterFiles()).store(info.label, spec.channelId);
        return { source, handlers, checkpoints, deadLetters };
      },
      records: this.records,
      lock: (spec) => new FileLock(this.lockPath(spec), owner),
      scope: () => sinks.scopeId(),
      log: coreLogger(log, 'forwarding'),
      // VS Code waits only a few seconds for deactivate(): in-flight batches get 2 s to finish.
      receiverOptions: { stopGraceMs: 2000 },
    });
    manager.on('change', () => {
      this.deps.changed();
      this.scheduleStatus();
    });
    manager.on('failed', (forwarding, error) => void this.showFailure(forwarding, error));
    manager.on('handler-error', (_forwarding, event) => this.deps.handlerError(event.handler, event.error));
    manager.on('dead-letter', (forwarding, event) => {
      void this.refreshDeadLetters();
      if (this.warnedDeadLetters.has(event.handler)) return;
      this.warnedDeadLetters.add(event.handler);
      const open = 'Open Dead Letters';
      const text = `Sink "${event.handler}" cannot deliver ${event.letters.length === 1 ? 'a message' : `${event.letters.length} messages`} of channel ${forwarding.spec.channelName}: ${event.letters[0]?.error ?? ''}. ${event.letters.length === 1 ? 'It is' : 'They are'} kept as dead letters; the rest goes on.`;
      void vscode.window.showWarningMessage(text, open).then(async (choice) => {
        if (choice === open) await this.openDeadLetters(event.handler);
      });
    });
    this.manager = manager;
    return manager;
  }

  /**
   * The channel's messages: REST (the channel buffer by key, resumed from the checkpoint file) by
   * default, or MQTT (`flespi.forwarding.source`), where the broker's persistent session keeps the
   * position and a lost session is filled in over REST.
   */
  private async createSource(spec: ForwardingSpec): Promise<Source> {
    const info = this.deps.connection.current!;
    const channelId = spec.channelId;
    if (vscode.workspace.getConfiguration('flespi').get('forwarding.source') === 'mqtt') {
      const { MqttSource } = await import('../../core/sources/mqtt.js');
      // One stable session per forwarding (machine, profile storage, connection, channel), apart from
      // the CLI's sessions and from other VS Code profiles on the same host: never shared by two receivers.
      const owner = createHash('sha256')
        .update(`${vscode.env.machineId}\n${this.lockPath(spec)}`)
        .digest('hex')
        .slice(0, 10);
      return new MqttSource({
        url: info.mqttUrl,
        token: info.token,
        channelId,
        clientId: `flespi-vscode-${channelId}-${owner}`,
        gapFill: { client: info.client },
        log: coreLogger(this.deps.log, `mqtt ${channelId}`),
      });
    }
    const { RestSource } = await import('../../core/sources/rest.js');
    return new RestSource({ client: info.client, channelId, startKey: spec.startKey, log: coreLogger(this.deps.log, `channel ${channelId}`) });
  }

  /** The lock file a window holds while it runs the forwarding (next to its record, shared by every window). */
  private lockPath(spec: Pick<ForwardingSpec, 'connection' | 'channelId'>): string {
    return join(this.records.dir, `${recordName(spec)}.lock`);
  }

  /** Shown once per failure, with the action that fixes it. */
  private async showFailure(forwarding: Forwarding, error: Error): Promise<void> {
    const auth = error instanceof FlespiError && (error.kind === 'auth' || error.kind === 'forbidden');
    const action = auth ? 'Set Token…' : 'Restart';
    const choice = await vscode.window.showErrorMessage(
      `Forwarding of channel ${forwarding.spec.channelName} stopped: ${errorMessage(error)}`,
      action,
      'Show Log',
    );
    if (choice === 'Set Token…') await vscode.commands.executeCommand('flespi.setToken');
    else if (choice === 'Restart') await this.manager?.start(forwarding.spec);
    else if (choice === 'Show Log') this.deps.log.show();
  }

  /** The status bar shows the totals, updated at most a few times per second. */
  private scheduleStatus(): void {
    if (this.statusTimer) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      this.updateStatus();
    }, 250);
  }

  private updateStatus(): void {
    const all = this.manager?.list() ?? [];
    const forwardings = all.filter((f) => !f.owner);
    const elsewhere = all.filter((f) => f.owner);
    const status = statusBarText(
      forwardings.map((f) => ({ messages: f.messagesForwarded, sinks: f.spec.sinks, failed: f.state === 'failed' || f.state === 'retrying' })),
      [...this.deadLetterCounts.values()].reduce((sum, n) => sum + n, 0),
    );
    if (!status) {
      this.statusBar.hide();
      return;
    }
    this.statusBar.text = status.text;
    this.statusBar.backgroundColor = status.trouble ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    const tooltip = new vscode.MarkdownString('**flespi forwarding**\n\n', true);
    // Channel and sink names come from flespi and the settings: escaped, so they cannot add links or icons.
    const md = escapeMarkdown;
    for (const f of forwardings)
      tooltip.appendMarkdown(
        `- ${md(f.spec.channelName)} (#${f.spec.channelId}) → ${f.spec.sinks.map(md).join(', ')}: ${f.state}, ${f.messagesForwarded} messages\n`,
      );
    for (const f of elsewhere) tooltip.appendMarkdown(`- ${md(f.spec.channelName)} (#${f.spec.channelId}): runs in ${md(f.where ?? 'another window')}\n`);
    const dead = [...this.deadLetterCounts].filter(([, n]) => n > 0);
    if (dead.length > 0) tooltip.appendMarkdown(`\nDead letters: ${dead.map(([sink, n]) => `${md(sink)} ${n}`).join(', ')} (Sinks view → Open Dead Letters)\n`);
    tooltip.appendMarkdown('\nClick to stop one.');
    this.statusBar.tooltip = tooltip;
    this.statusBar.show();
  }

  dispose(): void {
    clearTimeout(this.statusTimer);
    clearTimeout(this.adoptTimer);
    for (const s of this.subscriptions) s.dispose();
  }
}

function safe(label: string): string {
  return label.replace(/[^\w.-]+/g, '_');
}
