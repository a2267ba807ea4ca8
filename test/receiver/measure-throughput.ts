// Quick measurement (not a test): the `npm start` receiver path, in one process like the CLI:
// an in-process sandbox preloaded with N simulated messages → RestSource → Receiver → a counting
// handler, or (mode `client`) a bare FlespiClient paging loop over the same data, for comparison.
// Usage: node --import tsx test/receiver/measure-throughput.ts [N=50000] [limitCount=1000] [receiver|client]
import { FlespiClient } from '../../src/core/flespi/client';
import { Handler } from '../../src/core/handler';
import type { FlespiMessage } from '../../src/core/message';
import { Receiver } from '../../src/core/receiver/receiver';
import { RestSource } from '../../src/core/sources/rest';
import { startSandbox } from '../../src/sandbox/index';

const total = Number(process.argv[2] ?? 50_000);
const limitCount = Number(process.argv[3] ?? 1000);
const mode = process.argv[4] ?? 'receiver';
const CHANNEL = 1001;

class CountingHandler extends Handler {
  count = 0;
  constructor(private readonly reached: () => void) {
    super('count');
  }
  async handle(messages: readonly FlespiMessage[]): Promise<void> {
    this.count += messages.length;
    if (this.count >= total) this.reached();
  }
}

async function main(): Promise<void> {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 3, seed: 1 });
  // Realistic messages: let the simulated trackers produce templates, then inject copies of them.
  sandbox.setSimulation({ rateHz: 50, running: true });
  await new Promise((resolve) => setTimeout(resolve, 300));
  sandbox.setSimulation({ running: false });
  const log = sandbox.store.channel(CHANNEL).log;
  const templates = log.fromKey(0, 100, 1e9).map((entry) => {
    const { 'server.timestamp': _stamp, 'channel.id': _channel, ...message } = JSON.parse(entry.json) as FlespiMessage;
    return message;
  });
  const startKey = log.nextKey;
  for (let i = 0; i < total; i += 1000) {
    sandbox.inject(CHANNEL, Array.from({ length: Math.min(1000, total - i) }, (_, j) => templates[(i + j) % templates.length]!));
  }
  const megabytes = log.chars / 1e6;
  const client = new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl });
  const began = performance.now();
  const cpuBefore = process.cpuUsage();
  if (mode === 'receiver') {
    let reached!: () => void;
    const done = new Promise<void>((resolve) => (reached = resolve));
    const receiver = new Receiver({ source: new RestSource({ client, channelId: CHANNEL, limitCount, startKey }), handlers: [new CountingHandler(reached)] });
    await receiver.start();
    await done;
    await receiver.stop();
  } else {
    for (let key = startKey, got = 0; got < total; ) {
      const { messages, nextKey } = await client.pollChannelMessages(CHANNEL, { currKey: key, limitCount });
      got += messages.length;
      key = nextKey ?? key;
    }
  }
  const seconds = (performance.now() - began) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  console.log(`${mode}, limit_count ${limitCount}: ${total} msgs (${megabytes.toFixed(1)} MB) in ${seconds.toFixed(2)} s = ${Math.round(total / seconds)} msg/s; CPU ${cpuSeconds.toFixed(2)} s (${Math.round(total / cpuSeconds)} msg per CPU-second)`);
  await sandbox.stop();
}

void main();
