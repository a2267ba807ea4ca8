/** Channel rows of the Channels view, computed without vscode so they can be tested on their own. */
import { FlespiError } from '../../core/errors';
import type { FlespiClient, FlespiItem } from '../../core/flespi/client';
import { escapeMarkdown } from '../markdown';

/** What the tree asks for. Some are 2018 fields (`connections_count`, `blocked`, `uri`) a current flespi may not know. */
export const CHANNEL_FIELDS = ['id', 'name', 'protocol_name', 'protocol_id', 'enabled', 'blocked', 'uri', 'messages_ttl', 'connections_count'];
/** Fields every flespi channel has (the 2018 API description and a 2026 channel object agree). */
export const MINIMAL_CHANNEL_FIELDS = ['id', 'name', 'protocol_name'];

/**
 * The account's channels for the tree. flespi answers an unknown field with 400 (code 2) for the
 * whole list, so when the full field set is refused the tree asks the minimal one, and then no
 * `fields` at all (every field of every channel); `degraded` says what was left out.
 */
export async function listChannelRows(client: Pick<FlespiClient, 'channels'>): Promise<{ channels: ChannelInfo[]; degraded?: string }> {
  let refused: FlespiError | undefined;
  for (const fields of [CHANNEL_FIELDS, MINIMAL_CHANNEL_FIELDS, undefined]) {
    let items: FlespiItem[];
    try {
      ({ items } = await client.channels('all', fields));
    } catch (error) {
      if (!(error instanceof FlespiError && error.kind === 'bad-request')) throw error;
      refused ??= error;
      continue;
    }
    const degraded =
      refused &&
      `flespi refused some channel fields (${
        refused.details
          .map((d) => d.reason)
          .filter(Boolean)
          .join('; ') || refused.message
      }); showing ${fields ? fields.join(', ') : 'what it answers without a field list'}`;
    return { channels: parseChannels(items), degraded };
  }
  throw refused as FlespiError;
}

export interface ChannelInfo {
  id: number;
  name: string;
  protocol?: string;
  enabled: boolean;
  /** flespi's block code; 0 = not blocked. */
  blocked: number;
  uri?: string;
  messagesTtl?: number;
  connections?: number;
}

export interface ChannelForwardingInfo {
  state: string;
  messages: number;
  sinks: readonly string[];
  /** Set when another window runs it: `another window (pid 123, …)`. */
  where?: string;
  /** Set while flespi refuses the forwarding's receiver with 403: `blocked by flespi: <reason>`. */
  blocked?: string;
}

export interface ChannelSummary {
  description: string;
  /** Markdown. */
  tooltip: string;
  /** A codicon id. */
  icon: string;
  /** A theme color id, when the state deserves one. */
  color?: string;
}

/** flespi's block codes (account limits), for the tooltip. */
const BLOCK_REASONS: Readonly<Record<number, string>> = {
  1: 'too many items',
  2: 'too many operations in a short time',
  3: 'too much traffic in a short time',
  4: 'too much storage used',
  5: 'item quantity out of the limit',
};

/** The channels of a `GET /gw/channels/all` answer, sorted by name; items without a numeric id are skipped. */
export function parseChannels(items: readonly Record<string, unknown>[]): ChannelInfo[] {
  const channels: ChannelInfo[] = [];
  for (const item of items) {
    if (typeof item.id !== 'number') continue;
    channels.push({
      id: item.id,
      name: typeof item.name === 'string' && item.name !== '' ? item.name : `channel ${item.id}`,
      protocol: typeof item.protocol_name === 'string' ? item.protocol_name : typeof item.protocol_id === 'number' ? `protocol ${item.protocol_id}` : undefined,
      enabled: item.enabled !== false,
      blocked: typeof item.blocked === 'number' ? item.blocked : item.blocked === true ? 1 : 0,
      uri: typeof item.uri === 'string' && item.uri !== '' ? item.uri : undefined,
      messagesTtl: typeof item.messages_ttl === 'number' ? item.messages_ttl : undefined,
      connections: typeof item.connections_count === 'number' ? item.connections_count : undefined,
    });
  }
  return channels.sort((a, b) => a.name.localeCompare(b.name) || a.id - b.id);
}

/** Description, tooltip and icon of a channel row. */
export function channelSummary(channel: ChannelInfo, forwarding?: ChannelForwardingInfo): ChannelSummary {
  const state = channel.blocked ? 'blocked' : channel.enabled ? undefined : 'disabled';
  const parts = [`#${channel.id}`, channel.protocol, state].filter(Boolean);
  if (forwarding?.where) parts.push('forwarding in another window');
  else if (forwarding?.blocked) parts.push('blocked by flespi');
  else if (forwarding)
    parts.push(forwarding.state === 'failed' ? 'forwarding failed' : `→ ${forwarding.sinks.length} sink${forwarding.sinks.length === 1 ? '' : 's'}`);

  const lines = [`**${escapeMarkdown(channel.name)}**`, '', `- id: \`${channel.id}\``];
  if (channel.protocol) lines.push(`- protocol: ${escapeMarkdown(channel.protocol)}`);
  if (channel.uri) lines.push(`- listens at: ${escapeMarkdown(channel.uri)}`);
  lines.push(
    `- state: ${channel.blocked ? `blocked (${BLOCK_REASONS[channel.blocked] ?? `code ${channel.blocked}`})` : channel.enabled ? 'enabled' : 'disabled'}`,
  );
  if (channel.connections !== undefined) lines.push(`- connections: ${channel.connections}`);
  if (channel.messagesTtl !== undefined) lines.push(`- keeps messages for: ${duration(channel.messagesTtl)}`);
  if (forwarding?.where) lines.push(`- forwarding → ${forwarding.sinks.map(escapeMarkdown).join(', ')}: runs in ${escapeMarkdown(forwarding.where)}`);
  else if (forwarding) lines.push(`- forwarding (${forwarding.state}): ${forwarding.messages} messages → ${forwarding.sinks.map(escapeMarkdown).join(', ')}`);
  if (forwarding?.blocked) lines.push(`- ${escapeMarkdown(forwarding.blocked)}: retrying until flespi lets it through`);

  let icon = 'broadcast';
  let color: string | undefined;
  if (channel.blocked) {
    icon = 'error';
    color = 'errorForeground';
  } else if (!channel.enabled) {
    icon = 'circle-slash';
    color = 'disabledForeground';
  } else if (forwarding?.where) {
    icon = 'radio-tower';
  } else if (forwarding) {
    icon = forwarding.state === 'failed' ? 'warning' : 'radio-tower';
    color = forwarding.state === 'failed' ? 'list.warningForeground' : forwarding.state === 'running' ? 'charts.green' : 'list.warningForeground';
  }
  return { description: parts.join(' · '), tooltip: lines.join('\n'), icon, color };
}

function duration(seconds: number): string {
  if (seconds === 0) return '0 s (messages are not stored)';
  if (seconds % 86400 === 0) return `${seconds / 86400} day${seconds === 86400 ? '' : 's'}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  return `${seconds} s`;
}
