/** What a messages-history request asks flespi for, and the text of its document. No vscode here. */
import type { ChannelHistoryParams } from '../../core/flespi/client';
import { formatLocalTime } from '../timeInput';

/** flespi returns at most this many messages per request; a longer range shows its first part. */
export const HISTORY_MAX_COUNT = 10_000;

export type HistoryRange = { kind: 'latest'; count: number } | { kind: 'range'; fromMs: number; toMs: number };

/** The request for a range (times on `server.timestamp`, in seconds), and a title for its document. */
export function historyRequest(range: HistoryRange): { params: ChannelHistoryParams; title: string } {
  if (range.kind === 'latest') {
    const count = Math.min(Math.max(1, Math.floor(range.count)), HISTORY_MAX_COUNT);
    return { params: { count, reverse: true }, title: `latest ${count}` };
  }
  return {
    params: { from: Math.floor(range.fromMs / 1000), to: Math.ceil(range.toMs / 1000), count: HISTORY_MAX_COUNT },
    title: `${formatLocalTime(range.fromMs)} to ${formatLocalTime(range.toMs)}`.replace(/:/g, '.'),
  };
}

/** Messages as flespi sent them (newest first when `newestFirst`), as a JSON array in time order. */
export function historyDocument(messages: readonly Record<string, unknown>[], newestFirst = true): string {
  return JSON.stringify(newestFirst ? [...messages].reverse() : messages, null, 2) + '\n';
}
