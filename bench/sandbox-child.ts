// A sandbox in its own process, preloaded with realistic messages, so a benchmark measures only
// the client side's CPU and memory. Sends { restUrl, mqttUrl, token, channelId, count, bytes } over IPC.
import { protocolByName } from '../src/sandbox/catalog';
import { startSandbox } from '../src/sandbox/index';
import { Random, imeiLike } from '../src/sandbox/random';
import { SimulatedVehicle } from '../src/sandbox/simulator';
import type { FlespiMessage } from '../src/core/message';

const count = Number(process.argv[2] ?? 200_000);
const channelId = 1001;

/** `count` messages from 20 simulated vehicles, one per second each, ending now. */
export function realisticMessages(total: number, seed = 7): FlespiMessage[] {
  const random = new Random(seed);
  const protocol = protocolByName('teltonika')!;
  const vehicles = Array.from({ length: 20 }, (_, i) => new SimulatedVehicle({ ident: imeiLike(random), channelId, protocol }, random, i));
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

async function main(): Promise<void> {
  const sandbox = await startSandbox({ simulate: false, capacity: Math.max(count, 1_000_000) });
  let bytes = 0;
  const messages = realisticMessages(count);
  for (let i = 0; i < messages.length; i += 10_000) {
    for (const stored of sandbox.inject(channelId, messages.slice(i, i + 10_000))) bytes += Buffer.byteLength(stored.json);
  }
  process.send?.({ restUrl: sandbox.restUrl, mqttUrl: sandbox.mqttUrl, token: sandbox.token, channelId, count, bytes });
  process.on('disconnect', () => void sandbox.stop().then(() => process.exit(0)));
}

if (process.send) void main();
