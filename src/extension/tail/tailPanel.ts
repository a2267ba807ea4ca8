/**
 * One webview panel per flespi channel: the VS Code glue between a TailSession (messages in),
 * a TailModel (buffer, batching, counters) and the webview (webview/tail/).
 */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as vscode from 'vscode';
import { errorMessage } from '../../core/errors';
import type { FlespiClient } from '../../core/flespi/client';
import type { FlespiMessage } from '../../core/message';
import {
  DEFAULT_COLUMNS,
  LIMITS,
  checkWebviewMessage,
  type ConnectionState,
  type ExportFormat,
  type ForwardResult,
  type HostMessage,
  type NoticeLevel,
  type WebviewMessage,
} from '../../shared/tailProtocol';
import { clipboardText, csvLines, ndjsonLines } from './tailExport';
import { createNonce, renderTailHtml } from './tailHtml';
import { mapTiles, type MapTiles } from './mapTiles';
import { PageWatch, SendAllowance, TailFeed } from './tailFeed';
import { TAIL_VIEW_TYPE } from './index';
import { TailModel } from './tailModel';
import { filterProblem, TailSession } from './tailSession';

export type { ForwardResult } from '../../shared/tailProtocol';

/** What a tail needs from the connection: read when a session starts; a change restarts open tails. */
export interface TailConnection {
  client: Pick<FlespiClient, 'channelMessages' | 'serverNow'>;
  mqttUrl: string;
  /** Used as the MQTT username; never logged, never posted to the webview. */
  token: string;
  label: string;
}

export interface TailDeps {
  connection: { current(): TailConnection | undefined; onDidChange: vscode.Event<unknown> };
  /** Picks a sink, sends the messages once, returns the outcome (undefined: the user cancelled). */
  forward: (messages: FlespiMessage[]) => Promise<ForwardResult | undefined>;
  log: vscode.LogOutputChannel;
  extensionUri: vscode.Uri;
  context: vscode.ExtensionContext;
}

export interface TailChannel {
  id: number;
  name: string;
}

/** What the webview keeps across reloads (vscode.setState), read back by the serializer. */
interface RestoredPrefs {
  columns?: string[];
  filter?: string;
}

/** Batches go to the webview at most this often. */
const FLUSH_INTERVAL_MS = 250;
/** At most this many messages per second reach the webview, on average (SendAllowance); older pending ones count as dropped. */
const MAX_PER_SECOND = 10_000;
/** A batch's share of that when ticks come on time (also what a resync settles at once). */
const MAX_PER_BATCH = (MAX_PER_SECOND * FLUSH_INTERVAL_MS) / 1000;

const openPanels = new Map<number, TailPanel>();

export class TailPanel implements vscode.Disposable {
  private readonly model: TailModel;
  private readonly feed: TailFeed;
  private readonly pageWatch: PageWatch;
  /** What the notices' links open (exported files), by the id the webview sends back; the newest few. */
  private readonly links = new Map<number, vscode.Uri>();
  private nextLinkId = 1;
  private readonly backfill: number;
  private session: TailSession | undefined;
  private connection: TailConnection | undefined;
  private columns: string[];
  private filter: string;
  /** The map's tiles, read from flespi.map.tileUrl when the HTML is rendered (its CSP names their origin). */
  private tiles: MapTiles = mapTiles(undefined);
  /** The user pressed Stop: a connection change must not start the tail again. */
  private stoppedByUser = false;
  /** Counts session stops: a restart (or Stop) still waiting for the old session to close may have been overtaken by a newer one. */
  private stops = 0;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly disposables: vscode.Disposable[] = [];
  private disposed = false;

  /** Opens the tail of a channel, or reveals it when it is already open. */
  static open(channel: TailChannel, deps: TailDeps): TailPanel {
    const existing = openPanels.get(channel.id);
    if (existing) {
      existing.panel.reveal();
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(TAIL_VIEW_TYPE, tailTitle(channel), vscode.ViewColumn.Active, webviewOptions(deps.extensionUri));
    return new TailPanel(panel, channel, deps, {});
  }

  /** Takes over a panel VS Code restored after a reload. */
  static restore(panel: vscode.WebviewPanel, channel: TailChannel, deps: TailDeps, prefs: RestoredPrefs): TailPanel {
    const existing = openPanels.get(channel.id);
    if (existing) {
      // Two restored panels for one channel: keep the first.
      panel.dispose();
      return existing;
    }
    panel.webview.options = webviewOptions(deps.extensionUri);
    panel.title = tailTitle(channel);
    return new TailPanel(panel, channel, deps, prefs);
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    readonly channel: TailChannel,
    private readonly deps: TailDeps,
    prefs: RestoredPrefs,
  ) {
    openPanels.set(channel.id, this);
    const config = vscode.workspace.getConfiguration('flespi.tail');
    // The webview stays responsive with 100,000 rows (test/webview); more would only cost memory and resync time.
    const bufferSize = clampInt(config.get<number>('bufferSize'), 100, 100_000, 10_000);
    this.backfill = clampInt(config.get<number>('backfill'), 0, bufferSize, 100);
    this.model = new TailModel({ bufferSize, maxPerBatch: MAX_PER_BATCH });
    this.columns = prefs.columns ?? columnsSetting(config.get<unknown>('columns'));
    this.filter = prefs.filter ?? '';
    this.feed = new TailFeed(
      this.model,
      // A post can still race with the panel closing; nothing is lost that a resync would not resend.
      (message) => void panel.webview.postMessage(message).then(undefined, () => undefined),
      () => ({
        type: 'init',
        channel: { id: channel.id, name: channel.name },
        columns: this.columns,
        bufferSize: this.model.bufferSize,
        filter: this.filter,
        paused: this.model.isPaused,
        connectionLabel: this.connection?.label ?? 'not connected',
        map: this.tiles.settings,
      }),
    );

    this.pageWatch = new PageWatch({
      reload: (attempt, waitedMs) => {
        this.log('warn', `the tail's page did not start within ${waitedMs / 1000} s (a blank webview); loading it again (attempt ${attempt})`);
        this.renderHtml();
      },
      giveUp: (waitedMs) => {
        this.log('error', `the tail's page did not start within ${waitedMs / 1000} s after loading it again`);
        void vscode.window.showErrorMessage(
          `The live tail of ${channel.name} stays blank: its page did not start. Close the tail and open it again, or run "Developer: Reload Window".`,
        );
      },
    });

    const webview = panel.webview;
    this.renderHtml();
    this.disposables.push(
      // The CSP names the tile origin: a new tile URL needs a new page (it says `ready` and gets everything again).
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration('flespi.map.tileUrl')) this.renderHtml();
      }),
      webview.onDidReceiveMessage((raw: unknown) => this.onWebviewMessage(raw)),
      panel.onDidChangeViewState(() => {
        // A hidden webview is torn down (no retainContextWhenHidden) and says `ready` again when shown;
        // until then messages stay in the model.
        if (!panel.visible) {
          this.feed.detach();
          this.pageWatch.stop();
        } else if (!this.feed.isAttached) this.pageWatch.loading();
      }),
      panel.onDidDispose(() => this.dispose()),
      deps.connection.onDidChange(() => this.onConnectionChanged()),
    );
    const allowance = new SendAllowance(MAX_PER_SECOND, Date.now());
    this.timer = setInterval(() => allowance.spend(this.feed.tick(Math.max(1, allowance.available(Date.now())))), FLUSH_INTERVAL_MS);
    this.startSession();
  }

  private renderHtml(): void {
    const webview = this.panel.webview;
    this.tiles = mapTiles(vscode.workspace.getConfiguration('flespi.map').get<unknown>('tileUrl'));
    if (this.tiles.settings.problem) this.log('warn', this.tiles.settings.problem);
    this.feed.detach();
    if (this.panel.visible) this.pageWatch.loading();
    webview.html = renderTailHtml({
      cspSource: webview.cspSource,
      nonce: createNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(this.deps.extensionUri, 'dist', 'webview', 'tail.js')).toString(),
      title: tailTitle(this.channel),
      tileSource: this.tiles.imgSource,
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    openPanels.delete(this.channel.id);
    clearInterval(this.timer);
    this.pageWatch.stop();
    this.feed.detach();
    void this.stopSession();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }

  private log(level: 'info' | 'warn' | 'error', text: string): void {
    this.deps.log[level](`tail ${this.channel.id} (${this.channel.name}): ${text}`);
  }

  private startSession(): void {
    const connection = this.deps.connection.current();
    this.connection = connection;
    if (!connection) {
      this.setState('offline', 'Not connected to flespi. Connect with a token or start the sandbox, and the tail starts by itself.');
      return;
    }
    const session: TailSession = new TailSession(
      {
        channelId: this.channel.id,
        mqttUrl: connection.mqttUrl,
        token: connection.token,
        client: connection.client,
        backfill: this.backfill,
        gapLimit: this.model.bufferSize,
        filter: this.filter,
        lastServerTimestamp: () => this.model.lastServerTimestamp(),
        log: this.deps.log,
      },
      {
        messages: (messages, origin) => (session === this.session ? this.model.add(messages, { dedupe: origin !== 'live' }).length : 0),
        state: (state, detail) => {
          if (session === this.session) this.setState(state, detail);
        },
        notice: (level, text) => {
          if (session === this.session) this.notice(level, text);
        },
      },
    );
    this.session = session;
    session.start();
  }

  /** Resolves once the session is closed: true when no other stop or restart began meanwhile (the caller's follow-up still applies). */
  private async stopSession(): Promise<boolean> {
    const stop = ++this.stops;
    const session = this.session;
    this.session = undefined;
    await session?.stop();
    return stop === this.stops;
  }

  /** Stops, forgets the buffer, and starts again (restart, a new filter, another connection). */
  private async restart(): Promise<void> {
    // Overtaken by a newer restart, it must not start a second session.
    if (!(await this.stopSession()) || this.disposed) return;
    this.stoppedByUser = false;
    this.model.clear();
    this.model.resume();
    this.startSession(); // first, so the resync's init names the new connection
    this.feed.resync();
  }

  private onConnectionChanged(): void {
    const next = this.deps.connection.current();
    const same = next && this.connection && next.mqttUrl === this.connection.mqttUrl && next.token === this.connection.token;
    if (same || this.stoppedByUser) return;
    if (!next) {
      void this.stopSession().then((current) => {
        if (current) this.setState('offline', 'Disconnected from flespi. The messages received so far stay here.');
      });
      return;
    }
    this.notice('info', `Connection changed to ${next.label}: the tail restarted.`);
    void this.restart();
  }

  private onWebviewMessage(raw: unknown): void {
    const checked = checkWebviewMessage(raw);
    if (!checked.ok) {
      this.log('warn', `ignored an invalid message from the webview: ${checked.error}`);
      return;
    }
    void this.handle(checked.value).catch((error: unknown) => {
      this.log('error', `${checked.value.type} failed: ${errorMessage(error)}`);
      this.notice('error', `${checked.value.type} failed: ${errorMessage(error)}`);
    });
  }

  private async handle(message: WebviewMessage): Promise<void> {
    switch (message.type) {
      case 'ready':
        this.pageWatch.started();
        this.feed.ready();
        return;
      case 'pause':
        this.model.pause();
        this.feed.tick();
        return;
      case 'resume':
        this.model.resume();
        this.feed.tick();
        return;
      case 'stop':
        this.stoppedByUser = true;
        if (await this.stopSession()) this.setState('stopped', 'Stopped: unsubscribed. Restart to tail again; the buffer stays for copy, forward and export.');
        return;
      case 'restart':
        await this.restart();
        return;
      case 'setFilter': {
        if (message.expression === this.filter) return;
        const client = this.deps.connection.current()?.client;
        const refused = message.expression === '' || !client ? undefined : await filterProblem(client, this.channel.id, message.expression);
        if (refused !== undefined) {
          // The tail, its subscription and its buffer stay as they were.
          this.log('warn', `server filter refused: ${message.expression}: ${refused}`);
          this.notice('error', `Server filter not applied: ${refused}. The tail goes on ${this.filter === '' ? 'without a filter' : `with ${this.filter}`}.`);
          this.post({ type: 'filter', expression: this.filter, refused });
          return;
        }
        this.filter = message.expression;
        this.post({ type: 'filter', expression: this.filter });
        this.log('info', this.filter === '' ? 'server filter cleared' : `server filter set: ${this.filter}`);
        this.notice(
          'info',
          this.filter === '' ? 'Server filter cleared: the tail restarted.' : `Server filter applied: the tail restarted with ${this.filter}`,
        );
        await this.restart();
        return;
      }
      case 'setColumns':
        this.columns = message.columns;
        return;
      case 'openLink': {
        const uri = this.links.get(message.id);
        if (uri) await vscode.commands.executeCommand('vscode.open', uri);
        else this.notice('warning', 'That link is no longer open here: export again to get a new one.');
        return;
      }
      case 'forward':
        await this.forward(message.ids);
        return;
      case 'copy':
        await this.copy(message.ids);
        return;
      case 'export':
        await this.export(
          message.scope === 'selection' ? this.model.get(message.ids).map((i) => i.message) : this.model.all().map((i) => i.message),
          message.format,
          message.scope,
        );
        return;
    }
  }

  private async forward(ids: number[]): Promise<void> {
    const messages = this.model.get(ids).map((item) => item.message);
    if (messages.length === 0) {
      this.post({ type: 'forwardResult', count: 0, error: 'The selected messages are no longer in the buffer.' });
      return;
    }
    try {
      const result = await this.deps.forward(messages);
      if (!result) {
        this.post({ type: 'forwardResult', count: messages.length, cancelled: true });
        return;
      }
      this.log(
        'info',
        `forwarded ${messages.length} message(s) to ${result.sink}: ${result.acknowledged} acknowledged, ${result.errors.length} error(s), ${result.ms} ms`,
      );
      this.post({ type: 'forwardResult', count: messages.length, result });
    } catch (error) {
      this.log('error', `forward failed: ${errorMessage(error)}`);
      this.post({ type: 'forwardResult', count: messages.length, error: errorMessage(error) });
    }
  }

  private async copy(ids: number[]): Promise<void> {
    const messages = this.model.get(ids).map((item) => item.message);
    if (messages.length === 0) {
      this.notice('warning', 'Nothing copied: the selected messages are no longer in the buffer.');
      return;
    }
    await vscode.env.clipboard.writeText(clipboardText(messages));
    const missing = ids.length - messages.length;
    this.notice('info', `Copied ${plural(messages.length, 'message')} to the clipboard${missing > 0 ? ` (${missing} no longer buffered)` : ''}.`);
  }

  private async export(messages: FlespiMessage[], format: ExportFormat, scope: 'selection' | 'buffer'): Promise<void> {
    if (messages.length === 0) {
      this.notice(
        'warning',
        scope === 'selection' ? 'Nothing exported: the selected messages are no longer in the buffer.' : 'Nothing exported: the buffer is empty.',
      );
      return;
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
    const fileName = `flespi-channel-${this.channel.id}-${stamp}.${format}`;
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    const uri = await vscode.window.showSaveDialog({
      title: `Export ${plural(messages.length, 'message')} (${scope}) as ${format === 'csv' ? 'CSV' : 'NDJSON'}`,
      saveLabel: 'Export',
      defaultUri: folder ? vscode.Uri.joinPath(folder, fileName) : undefined,
      filters: format === 'csv' ? { CSV: ['csv'] } : { NDJSON: ['ndjson', 'jsonl'] },
    });
    if (!uri) return;
    const lines = format === 'csv' ? csvLines(messages) : ndjsonLines(messages);
    if (uri.scheme === 'file') {
      await pipeline(Readable.from(lines), createWriteStream(uri.fsPath));
    } else {
      await vscode.workspace.fs.writeFile(uri, Buffer.from([...lines].join(''), 'utf8'));
    }
    this.log('info', `exported ${messages.length} message(s) as ${format} to ${uri.toString(true)}`);
    const where = uri.scheme === 'file' ? uri.fsPath : uri.toString(true);
    this.notice('info', `Exported ${plural(messages.length, 'message')} to ${where}.`, { text: where, id: this.linkTo(uri) });
  }

  private setState(connection: ConnectionState, detail: string): void {
    this.feed.setState(connection, detail);
  }

  private notice(level: NoticeLevel, text: string, link?: { text: string; id: number }): void {
    this.log(level === 'error' ? 'error' : level === 'warning' ? 'warn' : 'info', text);
    this.feed.notice(level, text, link);
  }

  /** An id the webview may send back to open `uri`; only the newest ten are kept. */
  private linkTo(uri: vscode.Uri): number {
    const id = this.nextLinkId++;
    this.links.set(id, uri);
    for (const old of this.links.keys()) if (this.links.size > 10) this.links.delete(old);
    return id;
  }

  private post(message: HostMessage): void {
    if (!this.disposed) this.feed.send(message);
  }
}

/** Restores a tail panel after a window reload; the webview state holds the channel id and UI preferences, never a token. */
export function restoreTailPanel(panel: vscode.WebviewPanel, state: unknown, deps: TailDeps): void {
  const saved = (typeof state === 'object' && state !== null ? state : {}) as Record<string, unknown>;
  const id = saved.channelId;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) {
    deps.log.warn('tail: a restored panel had no channel id; closing it');
    panel.dispose();
    return;
  }
  const name = typeof saved.channelName === 'string' ? saved.channelName.slice(0, 255) : `channel ${id}`;
  const filter = typeof saved.filter === 'string' && saved.filter.length <= LIMITS.filterLength ? saved.filter : undefined;
  const columns = Array.isArray(saved.columns) ? columnsSetting(saved.columns) : undefined;
  TailPanel.restore(panel, { id, name }, deps, { filter, columns });
}

/** Closes every tail (extension deactivation). */
export function disposeAllTails(): void {
  for (const panel of [...openPanels.values()]) panel.dispose();
}

function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
  };
}

function tailTitle(channel: TailChannel): string {
  return `Tail: ${channel.name}`;
}

function clampInt(value: number | undefined, min: number, max: number, fallback: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, Math.round(value)));
}

function columnsSetting(value: unknown): string[] {
  if (!Array.isArray(value)) return [...DEFAULT_COLUMNS];
  const columns = value.filter((c): c is string => typeof c === 'string' && c.length > 0 && c.length <= LIMITS.columnNameLength).slice(0, LIMITS.columns);
  return columns.length > 0 ? columns : [...DEFAULT_COLUMNS];
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
