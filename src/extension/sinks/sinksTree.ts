/** The "Sinks" view: every configured sink with its live status while forwarding. */
import * as vscode from 'vscode';
import type { ForwardingManager } from '../forwarding/manager';
import type { SinkSetting } from './sinkModel';
import { sinkRow, type SinkUse } from './sinkStatus';
import type { SinkStore } from './sinkStore';

export interface SinkNode {
  kind: 'sink';
  sink: SinkSetting;
}

/**
 * Live counters change with every batch; rows whose text changed redraw at most this often (a
 * redrawn row hides its tooltip, so it must stay put long enough to be read).
 */
const REDRAW_INTERVAL_MS = 1000;

export class SinksTree implements vscode.TreeDataProvider<SinkNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<SinkNode | SinkNode[] | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[] = [];
  private redrawTimer?: NodeJS.Timeout;
  private lastRedraw = 0;
  /** The rows shown, one object per sink name (VS Code redraws a row given the same object), and what each shows. */
  private readonly nodes = new Map<string, { node: SinkNode; shown: string }>();

  constructor(
    private readonly sinks: SinkStore,
    private readonly forwarding: () => ForwardingManager | undefined,
    /** Why a sink cannot run right now (untrusted custom code, a compile error), if it cannot. */
    private readonly problemOf: (sink: SinkSetting) => string | undefined,
    /** The handler file of a custom sink, opened on click. */
    private readonly handlerFile: (sink: SinkSetting) => vscode.Uri | undefined,
    /** The sink's dead letters on the current connection, over all its forwardings. */
    private readonly deadLetters: (sink: SinkSetting) => number,
  ) {
    // The list itself changed: every row again, at once.
    this.subscriptions.push(sinks.onDidChange(() => this.changed.fire(undefined)));
  }

  /** Schedules a redraw of the rows whose text changed, coalescing bursts of changes. */
  redraw(): void {
    if (this.redrawTimer) return;
    const wait = Math.max(0, this.lastRedraw + REDRAW_INTERVAL_MS - Date.now());
    this.redrawTimer = setTimeout(() => {
      this.redrawTimer = undefined;
      this.lastRedraw = Date.now();
      const changed = [...this.nodes.values()].filter((entry) => JSON.stringify(this.row(entry.node.sink)) !== entry.shown).map((entry) => entry.node);
      if (changed.length > 0) this.changed.fire(changed);
    }, wait);
  }

  private row(sink: SinkSetting) {
    const manager = this.forwarding();
    // A forwarding another window runs shows on its channel ("forwarding in another window"), not as a use here.
    const uses: SinkUse[] = (manager?.sinkStatus(sink.name) ?? [])
      .filter(({ forwarding }) => !forwarding.owner)
      .map(({ forwarding, stats }) => ({
        channelId: forwarding.spec.channelId,
        channelName: forwarding.spec.channelName,
        forwardingState: forwarding.state,
        stats,
      }));
    return sinkRow(sink, uses, this.problemOf(sink), this.deadLetters(sink));
  }

  getTreeItem(node: SinkNode): vscode.TreeItem {
    const { sink } = node;
    const row = this.row(sink);
    const entry = this.nodes.get(sink.name);
    if (entry?.node === node) entry.shown = JSON.stringify(row);
    const item = new vscode.TreeItem(sink.name, vscode.TreeItemCollapsibleState.None);
    item.id = `sink-${sink.name}`;
    item.description = row.description;
    const tooltip = new vscode.MarkdownString(row.tooltip, true);
    item.tooltip = tooltip;
    item.iconPath = new vscode.ThemeIcon(row.icon, row.color ? new vscode.ThemeColor(row.color) : undefined);
    // `.deadLetters` turns on the dead-letter commands in its context menu.
    item.contextValue = `${sink.type === 'custom' ? 'sink.custom' : 'sink'}${row.deadLetters > 0 ? '.deadLetters' : ''}`;
    const file = this.handlerFile(sink);
    if (file) item.command = { command: 'vscode.open', title: 'Open Handler File', arguments: [file] };
    return item;
  }

  getChildren(parent?: SinkNode): SinkNode[] {
    if (parent) return [];
    const sinks = this.sinks.all();
    const names = new Set(sinks.map((s) => s.name));
    for (const name of this.nodes.keys()) if (!names.has(name)) this.nodes.delete(name);
    return sinks.map((sink) => {
      const entry = this.nodes.get(sink.name);
      if (entry) entry.node.sink = sink;
      else this.nodes.set(sink.name, { node: { kind: 'sink', sink }, shown: '' });
      return this.nodes.get(sink.name)!.node;
    });
  }

  dispose(): void {
    clearTimeout(this.redrawTimer);
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
  }
}
