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

/** Live counters change with every batch; the view redraws at most this often. */
const REDRAW_INTERVAL_MS = 300;

export class SinksTree implements vscode.TreeDataProvider<SinkNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<SinkNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[] = [];
  private redrawTimer?: NodeJS.Timeout;
  private lastRedraw = 0;

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
    this.subscriptions.push(sinks.onDidChange(() => this.redraw()));
  }

  /** Schedules a redraw, coalescing bursts of changes. */
  redraw(): void {
    if (this.redrawTimer) return;
    const wait = Math.max(0, this.lastRedraw + REDRAW_INTERVAL_MS - Date.now());
    this.redrawTimer = setTimeout(() => {
      this.redrawTimer = undefined;
      this.lastRedraw = Date.now();
      this.changed.fire(undefined);
    }, wait);
  }

  getTreeItem(node: SinkNode): vscode.TreeItem {
    const { sink } = node;
    const manager = this.forwarding();
    // A forwarding another window runs shows on its channel ("forwarding in another window"), not as a use here.
    const uses: SinkUse[] = (manager?.sinkStatus(sink.name) ?? []).filter(({ forwarding }) => !forwarding.owner).map(({ forwarding, stats }) => ({
      channelId: forwarding.spec.channelId,
      channelName: forwarding.spec.channelName,
      forwardingState: forwarding.state,
      stats,
    }));
    const row = sinkRow(sink, uses, this.problemOf(sink), this.deadLetters(sink));
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
    return this.sinks.all().map((sink) => ({ kind: 'sink', sink }));
  }

  dispose(): void {
    clearTimeout(this.redrawTimer);
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
  }
}
