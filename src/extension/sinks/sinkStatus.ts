/** How a sink row looks in the Sinks view, from its settings and live counters. No vscode here. */
import { redactUrl } from '../../core/security';
import { escapeMarkdown } from '../markdown';
import { sinkTarget, type SinkSetting } from './sinkModel';

/** One forwarding's view of a sink (from the receiver's per-handler stats). */
export interface SinkUse {
  channelId: number;
  channelName: string;
  forwardingState: string;
  /** Undefined while the receiver is being built. */
  stats?: {
    started: boolean;
    totalMessages: number;
    totalFailures: number;
    consecutiveFailures: number;
    lastError?: string;
    health: { connected?: boolean; detail?: string };
  };
}

export interface SinkRow {
  description: string;
  /** Markdown. */
  tooltip: string;
  icon: string;
  color?: string;
  /** ok: forwarding and healthy; trouble: failing or disconnected; idle: not in use. */
  status: 'idle' | 'ok' | 'trouble';
  /** Messages this sink could never deliver, kept in the dead-letter stores (0 when none or unknown). */
  deadLetters: number;
}

const TYPE_ICONS: Readonly<Record<string, string>> = {
  stdout: 'file',
  http: 'globe',
  mqtt: 'broadcast',
  'aws-iot': 'cloud',
  wialon: 'server',
  custom: 'code',
};

/** `deadLetters`: the sink's messages in the dead-letter stores of the current connection. */
export function sinkRow(sink: SinkSetting, uses: readonly SinkUse[], problem?: string, deadLetters = 0): SinkRow {
  // A URL's user:password never shows; everything else in the tooltip (Markdown) is escaped: names,
  // paths and error texts come from settings, servers and flespi.
  const target = redactUrl(sinkTarget(sink));
  const icon = TYPE_ICONS[sink.type] ?? 'symbol-event';
  const md = escapeMarkdown;
  const header = [`**${md(sink.name)}** (${md(sink.type)})`, target ? `\n\n${md(target)}` : ''].join('');
  if (problem) {
    // The row names the file without its folder; the tooltip keeps the full path.
    const short = problem.replace(/^(?:[A-Za-z]:)?[^:]*[\\/]([^\\/:]+(?::\d+:\d+)?:)/, '$1');
    return {
      description: `${sink.type} · ${short}`,
      tooltip: `${header}\n\n$(error) ${md(problem)}`,
      icon: 'error',
      color: 'errorForeground',
      status: 'trouble',
      deadLetters,
    };
  }
  const dead = deadLetters > 0 ? `${deadLetters} dead letter${deadLetters === 1 ? '' : 's'}` : '';
  const deadNote = dead
    ? `\n\n$(mail) ${dead}: messages it could never deliver. *Open Dead Letters* shows them with why; *Send Dead Letters Again* retries them after a fix.`
    : '';
  if (uses.length === 0) {
    return {
      description: [sink.type, target, dead].filter(Boolean).join(' · '),
      tooltip: `${header}\n\nNot forwarding.${deadNote}`,
      icon: dead ? 'mail' : icon,
      color: dead ? 'list.warningForeground' : undefined,
      status: 'idle',
      deadLetters,
    };
  }

  const messages = uses.reduce((sum, u) => sum + (u.stats?.totalMessages ?? 0), 0);
  const failures = uses.reduce((sum, u) => sum + (u.stats?.totalFailures ?? 0), 0);
  const connected = uses.map((u) => u.stats?.health.connected).filter((c): c is boolean => c !== undefined);
  const failing = uses.some((u) => (u.stats?.consecutiveFailures ?? 0) > 0 || u.forwardingState === 'failed');
  const lastError = uses.map((u) => u.stats?.lastError).find((e) => e !== undefined);
  const trouble = failing || connected.includes(false);

  const parts: string[] = [];
  if (connected.length > 0) parts.push(connected.every(Boolean) ? '● connected' : '○ disconnected');
  parts.push(`${messages} forwarded`);
  if (dead) parts.push(dead);
  if (failures > 0) parts.push(`${failures} failure${failures === 1 ? '' : 's'}`);
  if (failing && lastError) parts.push(lastError);

  const lines = [header, ''];
  for (const use of uses) {
    const s = use.stats;
    const state = s ? (s.health.connected === undefined ? '' : s.health.connected ? 'connected, ' : 'disconnected, ') : 'starting, ';
    lines.push(
      `- channel ${md(use.channelName)} (#${use.channelId}, ${md(use.forwardingState)}): ${state}${s?.totalMessages ?? 0} forwarded, ${s?.totalFailures ?? 0} failures${s?.health.detail ? ` — ${md(s.health.detail)}` : ''}`,
    );
  }
  if (lastError) lines.push('', `Last error: ${md(lastError)}`);
  return {
    description: parts.join(' · '),
    tooltip: lines.join('\n') + deadNote,
    icon: trouble ? 'warning' : dead ? 'mail' : icon,
    color: trouble || dead ? 'list.warningForeground' : 'charts.green',
    status: trouble ? 'trouble' : 'ok',
    deadLetters,
  };
}

/** The status bar text: `$(radio-tower) flespi: forwarding 1234 → 2 sinks`, and `· 3 dead letters` when the stores hold any. */
export function statusBarText(
  forwardings: readonly { messages: number; sinks: readonly string[]; failed: boolean }[],
  dead = 0,
): { text: string; trouble: boolean } | undefined {
  if (forwardings.length === 0) return undefined;
  const messages = forwardings.reduce((sum, f) => sum + f.messages, 0);
  const sinks = new Set(forwardings.flatMap((f) => f.sinks)).size;
  const trouble = forwardings.some((f) => f.failed);
  const icon = trouble ? '$(warning)' : '$(radio-tower)';
  const deadText = dead > 0 ? ` · ${dead} dead letter${dead === 1 ? '' : 's'}` : '';
  return { text: `${icon} flespi: forwarding ${messages} → ${sinks} sink${sinks === 1 ? '' : 's'}${deadText}`, trouble };
}
