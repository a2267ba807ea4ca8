/** The "Channels" view: the channels of the connected flespi account, or what to do to see them. */
import * as vscode from 'vscode';
import { FlespiError, errorMessage } from '../../core/errors';
import type { Connection } from '../connection';
import type { ForwardingManager } from '../forwarding/manager';
import { channelSummary, parseChannels, type ChannelInfo } from './channelModel';

/** A row of the tree: a channel, or a message row (connecting, error, empty). */
export type ChannelNode = { kind: 'channel'; channel: ChannelInfo } | { kind: 'message'; item: vscode.TreeItem };

const FIELDS = ['id', 'name', 'protocol_name', 'protocol_id', 'enabled', 'blocked', 'uri', 'messages_ttl', 'connections_count'];

export class ChannelsTree implements vscode.TreeDataProvider<ChannelNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ChannelNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly subscriptions: vscode.Disposable[] = [];
  /** The last listing, for pick lists; undefined until the view or a picker asked for it. */
  private channels?: ChannelInfo[];

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

  /** Redraws rows without listing again (forwarding started or stopped). */
  redraw(): void {
    this.changed.fire(undefined);
  }

  /** The channels of the current connection (listed once, then cached until refresh). */
  async list(): Promise<ChannelInfo[]> {
    const info = this.connection.current;
    if (!info) throw new Error('not connected to flespi: set a token or use the local sandbox first');
    if (!this.channels) {
      const { items } = await info.client.channels('all', FIELDS);
      this.channels = parseChannels(items);
    }
    return this.channels;
  }

  getTreeItem(node: ChannelNode): vscode.TreeItem {
    if (node.kind === 'message') return node.item;
    const { channel } = node;
    const forwarding = this.forwarding()?.get(channel.id);
    const summary = channelSummary(channel, forwarding ? { state: forwarding.state, messages: forwarding.messagesForwarded, sinks: forwarding.spec.sinks, where: forwarding.where } : undefined);
    const item = new vscode.TreeItem(channel.name, vscode.TreeItemCollapsibleState.None);
    item.id = `channel-${channel.id}`;
    item.description = summary.description;
    item.tooltip = new vscode.MarkdownString(summary.tooltip);
    item.iconPath = new vscode.ThemeIcon(summary.icon, summary.color ? new vscode.ThemeColor(summary.color) : undefined);
    item.contextValue = forwarding ? 'channel.forwarding' : 'channel';
    item.command = { command: 'flespi.openTail', title: 'Open Live Tail', arguments: [node] };
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
        return [message('No channels yet — click to create one in flespi.io', 'info', 'Channels receive the messages of your trackers. Create one in the flespi panel, then refresh this view.', { command: 'vscode.open', title: 'Open flespi.io', arguments: [vscode.Uri.parse('https://flespi.io/#/panel/list/channels')] })];
      }
      return channels.map((channel) => ({ kind: 'channel', channel }));
    } catch (error) {
      const kind = error instanceof FlespiError ? error.kind : undefined;
      return [failureRow(this.connection.mode() ?? 'token', errorMessage(error), kind)];
    }
  }

  dispose(): void {
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
