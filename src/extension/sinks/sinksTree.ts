/** The "Sinks" view: every configured sink with its live status while forwarding. */
import * as vscode from 'vscode';
import { StableRows } from '../stableRows';
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
  /** One node per sink name; a redraw names only the rows whose text changed, at most once a second. */
  private readonly rows = new StableRows<string, SinkSetting, SinkNode>({
    shows: (sink) => JSON.stringify(this.row(sink)),
    makeNode: (sink) => ({ kind: 'sink', sink }),
    valueOf: (node) => node.sink,
    update: (node, sink) => {
      node.sink = sink;
    },
    redraw: (nodes) => this.changed.fire(nodes),
    intervalMs: REDRAW_INTERVAL_MS,
  });

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
    this.rows.schedule();
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
    this.rows.drawn(sink.name, node);
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
    return this.rows.nodes(this.sinks.all(), (sink) => sink.name);
  }

  dispose(): void {
    this.rows.dispose();
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
  }
}
