// The messages every bench uses: realistic tracker messages (teltonika-like, 24 parameters, ~550 bytes
// of JSON) from 20 simulated vehicles, the same for the same seed.
import type { FlespiMessage } from '../src/core/message';
import { protocolByName } from '../src/sandbox/catalog';
import { Random, imeiLike } from '../src/sandbox/random';
import { SimulatedVehicle } from '../src/sandbox/simulator';

export const BENCH_CHANNEL_ID = 1001;

/** `total` messages from 20 simulated vehicles, one per second each, ending now. */
export function realisticMessages(total: number, seed = 7): FlespiMessage[] {
  const random = new Random(seed);
  const protocol = protocolByName('teltonika')!;
  const vehicles = Array.from({ length: 20 }, (_, i) => new SimulatedVehicle({ ident: imeiLike(random), channelId: BENCH_CHANNEL_ID, protocol }, random, i));
  const start = Date.now() / 1000 - total / vehicles.length;
  const out: FlespiMessage[] = [];
  for (let i = 0; out.length < total; i++) {
    for (const v of vehicles) {
      if (out.length === total) break;
      v.advance(1);
      out.push(v.message(start + i));
    }
  }
  return out;
}

/** As a flespi channel hands them out: with channel.id, protocol.id and server.timestamp added (27 parameters). */
export function channelMessages(total: number, seed = 7): FlespiMessage[] {
  return realisticMessages(total, seed).map((m) => ({
    ...m,
    'channel.id': BENCH_CHANNEL_ID,
    'protocol.id': 16,
    'server.timestamp': (m.timestamp as number) + 0.5,
  }));
}

/** Bytes of the messages as JSON, for MB/s figures. */
export function jsonBytes(messages: readonly FlespiMessage[]): number {
  let bytes = 0;
  for (const m of messages) bytes += Buffer.byteLength(JSON.stringify(m));
  return bytes;
}
