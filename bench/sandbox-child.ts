// A sandbox in its own process, so a benchmark measures only the client side's CPU and memory.
// argv[2] = messages to preload into channel 1001 (0 for none); argv[3] = its token (default: random).
// Sends { restUrl, mqttUrl, token, channelId, count, bytes } over IPC. Then:
// - on { publish: n }: injects n more messages as fast as it can (chunks of 1000, yielding between
//   chunks so the MQTT broker can write) and answers { published, ms };
// - on { rate: r, seconds: s }: injects r messages/s for s seconds (every 10 ms what is due) and
//   answers { published, ms }. Paced messages are for live consumers (MQTT): afterwards the channel
//   keeps only the newest LIVE_KEEP of them, as a reader that deletes would, so that cases in a row
//   never fill the buffer (a full channel blocks, as flespi's does, and the next case would get nothing).
import { startSandbox } from '../src/sandbox/index';
import { BENCH_CHANNEL_ID, realisticMessages } from './messages';

const count = Number(process.argv[2] ?? 200_000);
const channelId = BENCH_CHANNEL_ID;
const CHUNK = 1000;
const LIVE_KEEP = 100_000;

async function main(): Promise<void> {
  const sandbox = await startSandbox({
    simulate: false,
    capacity: Math.max(count, 1_000_000),
    channelBufferBytes: Infinity,
    token: process.argv[3] || undefined,
  });
  let bytes = 0;
  const messages = realisticMessages(count);
  for (let i = 0; i < messages.length; i += 10_000) {
    for (const stored of sandbox.inject(channelId, messages.slice(i, i + 10_000))) bytes += Buffer.byteLength(stored.json);
  }
  process.on('message', (command: { publish?: number; rate?: number; seconds?: number }) => {
    if (command.rate !== undefined) return paced(command.rate, command.seconds ?? 10);
    const live = realisticMessages(command.publish ?? 0, 11);
    const t0 = performance.now();
    let next = 0;
    const chunk = () => {
      sandbox.inject(channelId, live.slice(next, next + CHUNK));
      next += CHUNK;
      if (next < live.length) setImmediate(chunk);
      else process.send?.({ published: live.length, ms: performance.now() - t0 });
    };
    chunk();
  });
  const paced = (rate: number, seconds: number) => {
    const pool = realisticMessages(Math.min(rate, 20_000), 13);
    const t0 = performance.now();
    let published = 0;
    let lastKey = 0;
    const timer = setInterval(() => {
      const elapsed = Math.min(performance.now() - t0, seconds * 1000);
      const due = Math.floor((elapsed / 1000) * rate) - published;
      const batch: typeof pool = [];
      for (let i = 0; i < due; i++) batch.push(pool[(published + i) % pool.length]!);
      if (batch.length > 0) lastKey = sandbox.inject(channelId, batch).at(-1)?.key ?? lastKey;
      published += due;
      if (elapsed >= seconds * 1000) {
        clearInterval(timer);
        const ms = performance.now() - t0;
        void trimTo(lastKey - LIVE_KEEP).then(() => process.send?.({ published, ms }));
      }
    }, 10);
  };
  /** Deletes the channel's messages with keys up to `key` through the REST API, as a receiver would. */
  const trimTo = async (key: number) => {
    if (key < 2) return;
    const url = `${sandbox.restUrl}/gw/channels/${channelId}/messages?data=${encodeURIComponent(JSON.stringify({ delete_key: key + 1 }))}`;
    const answer = await fetch(url, { method: 'DELETE', headers: { Authorization: `FlespiToken ${sandbox.token}` } });
    if (!answer.ok) console.error(`sandbox-child: deleting up to key ${key} failed: ${answer.status} ${await answer.text()}`);
  };
  process.send?.({ restUrl: sandbox.restUrl, mqttUrl: sandbox.mqttUrl, token: sandbox.token, channelId, count, bytes });
  process.on('disconnect', () => void sandbox.stop().then(() => process.exit(0)));
}

if (require.main === module && process.send) void main();
