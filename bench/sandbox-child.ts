// A sandbox in its own process, preloaded with realistic messages, so a benchmark measures only
// the client side's CPU and memory. Sends { restUrl, mqttUrl, token, channelId, count, bytes } over IPC.
import { startSandbox } from '../src/sandbox/index';
import { BENCH_CHANNEL_ID, realisticMessages } from './messages';

const count = Number(process.argv[2] ?? 200_000);
const channelId = BENCH_CHANNEL_ID;

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

if (require.main === module && process.send) void main();
