/** The "Channels" view: the channels of the connected flespi account, or what to do to see them. */
import * as vscode from 'vscode';
import { FlespiError, errorMessage } from '../../core/errors';
import type { Connection } from '../connection';
import { StableRows } from '../stableRows';
import type { ForwardingManager } from '../forwarding/manager';
import { channelSummary, listChannelRows, type ChannelInfo } from './channelModel';

/** A row of the tree: a channel, or a message row (connecting, error, empty). */
export type ChannelNode = { kind: 'channel'; channel: ChannelInfo } | { kind: 'message'; item: vscode.TreeItem };

/** Rows redraw at most this often (a forwarding reports a change with every batch). */
const REDRAW_INTERVAL_MS = 300;

export class ChannelsTree implements vscode.TreeDataProvider<ChannelNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ChannelNode | ChannelNode[] | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[] = [];
  /** The last listing, for pick lists; undefined until the view or a picker asked for it. */
  private channels?: ChannelInfo[];
  /** One node per channel id; a redraw names only the rows whose text or icon changed. */
  private readonly rows = new StableRows<number, ChannelInfo, ChannelNode & { kind: 'channel' }>({
    shows: (channel) => this.rowKey(channel),
    makeNode: (channel) => ({ kind: 'channel', channel }),
    valueOf: (node) => node.channel,
    update: (node, channel) => {
      node.channel = channel;
    },
    redraw: (nodes) => this.changed.fire(nodes),
    intervalMs: REDRAW_INTERVAL_MS,
  });

  constructor(
    private readonly connection: Connection,
    private readonly forwarding: () => ForwardingManager | undefined,
    private readonly ensureRestored: () => Promise<void>,
  ) {
    this.subscriptions.push(connection.onDidChange(() => this.refresh()));
  }

  refresh(): void {
    this.channels = undefined;
    this.changed.fire(undefined);
  }

  /**
   * Redraws the rows whose text or icon changed (a forwarding started, stopped or failed), without
   * listing again; at most every REDRAW_INTERVAL_MS. Forwarding counters are only in the tooltip,
   * filled in when it is shown: redrawing a row hides its tooltip, so rows must not redraw per batch.
   */
  redraw(): void {
    this.rows.schedule();
  }

  private summary(channel: ChannelInfo) {
    const forwarding = this.forwarding()?.get(channel.id);
    return {
      forwarding,
      summary: channelSummary(
        channel,
        forwarding
          ? {
              state: forwarding.state,
              messages: forwarding.messagesForwarded,
              sinks: forwarding.spec.sinks,
              where: forwarding.where,
              blocked: forwarding.stats()?.blocked,
            }
          : undefined,
      ),
    };
  }

  /** What a row shows, apart from its tooltip. */
  private rowKey(channel: ChannelInfo): string {
    const { forwarding, summary } = this.summary(channel);
    return JSON.stringify([channel.name, summary.description, summary.icon, summary.color, forwarding !== undefined]);
  }

  /** The channels of the current connection (listed once, then cached until refresh). */
  async list(): Promise<ChannelInfo[]> {
    const info = this.connection.current;
    if (!info) throw new Error('not connected to flespi: set a token or use the local sandbox first');
    if (!this.channels) {
      // A field flespi does not know (a 400 for the whole list) degrades the rows instead of failing the tree.
      this.channels = (await listChannelRows(info.client)).channels;
    }
    return this.channels;
  }

  getTreeItem(node: ChannelNode): vscode.TreeItem {
    if (node.kind === 'message') return node.item;
    const { channel } = node;
    const { forwarding, summary } = this.summary(channel);
    this.rows.drawn(channel.id, node);
    const item = new vscode.TreeItem(channel.name, vscode.TreeItemCollapsibleState.None);
    item.id = `channel-${channel.id}`;
    item.description = summary.description;
    // The tooltip (with live counters) is filled in by resolveTreeItem when it is about to show.
    item.iconPath = new vscode.ThemeIcon(summary.icon, summary.color ? new vscode.ThemeColor(summary.color) : undefined);
    item.contextValue = forwarding ? 'channel.forwarding' : 'channel';
    item.command = { command: 'flespi.openTail', title: 'Open Live Tail', arguments: [node] };
    return item;
  }

  resolveTreeItem(item: vscode.TreeItem, node: ChannelNode): vscode.TreeItem {
    if (node.kind === 'channel') item.tooltip = new vscode.MarkdownString(this.summary(node.channel).summary.tooltip);
    return item;
  }

  async getChildren(parent?: ChannelNode): Promise<ChannelNode[]> {
    if (parent) return [];
    await this.ensureRestored();
    const state = this.connection.state;
    switch (state.kind) {
      case 'none':
        return []; // the welcome view offers the ways to connect
      case 'connecting':
        return [message(`Connecting to ${state.label}…`, 'loading~spin')];
      case 'failed':
        return [failureRow(state.mode, state.message, state.errorKind)];
      case 'connected':
        break;
    }
    try {
      const channels = await this.list();
      if (channels.length === 0) {
        return [
          message(
            'No channels yet — click to create one in flespi.io',
            'info',
            'Channels receive the messages of your trackers. Create one in the flespi panel, then refresh this view.',
            { command: 'vscode.open', title: 'Open flespi.io', arguments: [vscode.Uri.parse('https://flespi.io/#/panel/list/channels')] },
          ),
        ];
      }
      return this.rows.nodes(channels, (channel) => channel.id);
    } catch (error) {
      const kind = error instanceof FlespiError ? error.kind : undefined;
      return [failureRow(this.connection.mode() ?? 'token', errorMessage(error), kind)];
    }
  }

  dispose(): void {
    this.rows.dispose();
    for (const s of this.subscriptions) s.dispose();
    this.changed.dispose();
  }
}

function message(label: string, icon: string, tooltip?: string, command?: vscode.Command, color?: string): ChannelNode {
  const item = new vscode.TreeItem(label, vscode.TreeItemCollapsibleState.None);
  item.iconPath = new vscode.ThemeIcon(icon, color ? new vscode.ThemeColor(color) : undefined);
  item.tooltip = tooltip;
  item.command = command;
  item.contextValue = 'message';
  return { kind: 'message', item };
}

/** An error row that says what happened and, on click, does what fixes it. */
function failureRow(mode: 'token' | 'sandbox', text: string, kind: string | undefined): ChannelNode {
  const error = 'errorForeground';
  if (kind === 'auth' || kind === 'forbidden') {
    const label = kind === 'auth' ? 'Token rejected — click to set a new token' : 'Access refused — click to set another token';
    return message(label, 'error', text, { command: 'flespi.setToken', title: 'Set Token' }, error);
  }
  if (mode === 'sandbox') return message('Sandbox failed — click to retry', 'error', text, { command: 'flespi.useSandbox', title: 'Use Local Sandbox' }, error);
  const label = kind === 'network' || kind === 'timeout' ? 'Cannot reach flespi — click to retry' : 'Cannot list channels — click to retry';
  return message(label, 'error', text, { command: 'flespi.reconnect', title: 'Reconnect' }, error);
}
