/**
 * Where a new forwarding starts in the channel buffer: from now, from the oldest message, or from a
 * time. The REST source starts at a `curr_key`; messages carry no key, so the keys are found by
 * reading the buffer by key one message at a time (`limit_count` 1, no long-poll): a read at key K
 * returns the first message with a key ≥ K and `next_key` = its key + 1. Keys grow with
 * `server.timestamp`, so the end of the buffer and the first message at or after a time are found
 * by binary search, in about 2·log2(buffer size) small requests. No vscode here: tested against the sandbox.
 */
import type { FlespiClient } from '../../core/flespi/client';

type Reader = Pick<FlespiClient, 'pollChannelMessages'>;

export interface BufferExtent {
  /** The key of the oldest message (0 when the buffer is empty). */
  oldestKey: number;
  /** The key after the newest message: a forwarding that starts here gets only what arrives from now on. */
  endKey: number;
  /** Messages in the buffer (keys are consecutive). */
  count: number;
  /** `server.timestamp` of the oldest and the newest message, in ms. */
  oldestMs?: number;
  newestMs?: number;
}

interface Found {
  key: number;
  stampMs: number | undefined;
}

/** The first message with a key ≥ `key`, or undefined when there is none. */
async function firstFrom(client: Reader, channelId: number, key: number, signal?: AbortSignal): Promise<Found | undefined> {
  const { messages, nextKey } = await client.pollChannelMessages(channelId, { currKey: key, limitCount: 1 }, signal);
  const first = messages[0];
  if (!first || nextKey === undefined) return undefined;
  // flespi may return a little more than limit_count: the first of n messages has key next_key - n.
  const stamp = first['server.timestamp'];
  return { key: Math.max(key, nextKey - messages.length), stampMs: typeof stamp === 'number' ? stamp * 1000 : undefined };
}

/** The oldest and newest keys of the channel buffer and how many messages it holds. */
export async function bufferExtent(client: Reader, channelId: number, signal?: AbortSignal): Promise<BufferExtent> {
  const oldest = await firstFrom(client, channelId, 0, signal);
  if (!oldest) return { oldestKey: 0, endKey: 0, count: 0 };
  // lo: a key that has a message; hi: a key after the newest. Grow the step until a read comes back empty.
  let lo = oldest;
  let step = 1;
  let hi = lo.key + step;
  for (;;) {
    const found = await firstFrom(client, channelId, hi, signal);
    if (!found) break;
    lo = found;
    step *= 2;
    hi = found.key + step;
  }
  while (hi - lo.key > 1) {
    const mid = Math.floor((lo.key + hi) / 2);
    const found = await firstFrom(client, channelId, mid, signal);
    if (found) lo = found;
    else hi = mid;
  }
  return { oldestKey: oldest.key, endKey: lo.key + 1, count: lo.key + 1 - oldest.key, oldestMs: oldest.stampMs, newestMs: lo.stampMs };
}

/** The key of the first message whose `server.timestamp` is at or after `timeMs` (`extent.endKey` when there is none). */
export async function keyAtTime(client: Reader, channelId: number, timeMs: number, extent: BufferExtent, signal?: AbortSignal): Promise<number> {
  if (extent.count === 0 || (extent.oldestMs !== undefined && extent.oldestMs >= timeMs)) return extent.oldestKey;
  if (extent.newestMs !== undefined && extent.newestMs < timeMs) return extent.endKey;
  // lo: the key of a message before timeMs; hi: a key whose first message is at or after it (or none).
  let lo = extent.oldestKey;
  let hi = extent.endKey;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const found = await firstFrom(client, channelId, mid, signal);
    if (!found || found.stampMs === undefined || found.stampMs >= timeMs) hi = mid;
    else lo = Math.max(mid, found.key);
  }
  return hi;
}
