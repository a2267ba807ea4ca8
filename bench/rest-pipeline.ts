// Bench 1: REST pipeline. A sandbox (own process) preloaded with realistic messages is drained
// by (a) a bare axios loop paging with curr_key/next_key (baseline) and (b) RestSource → Receiver →
// a counting handler. Each sample runs in a fresh process so CPU and peak RSS are its own.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import axios from 'axios';
import { FlespiClient } from '../src/core/flespi/client';
import { Handler } from '../src/core/handler';
import type { FlespiMessage } from '../src/core/message';
import { Receiver } from '../src/core/receiver/receiver';
import { RestSource } from '../src/core/sources/rest';
import { forkWorker, measureInterleaved, sampleFromWorker, type Row, type Sample } from './harness';

export interface SandboxInfo {
  restUrl: string;
  mqttUrl: string;
  token: string;
  channelId: number;
  count: number;
  bytes: number;
}

/** A bench sandbox in its own process (bench/sandbox-child.ts) with `count` messages in channel 1001. */
export async function startPreloadedSandbox(count: number, token = ''): Promise<{ info: SandboxInfo; child: ChildProcess }> {
  const child = forkWorker(join(__dirname, 'sandbox-child.ts'), [String(count), token], 'sandbox', ['ignore', 'ignore', 'inherit', 'ipc']);
  const info = await new Promise<SandboxInfo>((resolve, reject) => {
    child.once('message', (m) => resolve(m as SandboxInfo));
    child.once('exit', (code) => reject(new Error(`sandbox child exited with ${code}`)));
  });
  return { info, child };
}

type Mode = 'axios-loop' | 'receiver';

class CountingHandler extends Handler {
  count = 0;
  constructor(
    private readonly target: number,
    private readonly onDone: () => void,
  ) {
    super('count');
  }
  async handle(messages: readonly FlespiMessage[]): Promise<void> {
    this.count += messages.length;
    if (this.count >= this.target) this.onDone();
  }
}

/** One drain of the whole channel, run inside a worker process. */
async function drain(mode: Mode, limitCount: number, info: SandboxInfo): Promise<Sample> {
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let received = 0;
  if (mode === 'axios-loop') {
    const http = axios.create({ baseURL: info.restUrl, headers: { Authorization: `FlespiToken ${info.token}` } });
    let currKey = 0;
    while (received < info.count) {
      const data = encodeURIComponent(JSON.stringify({ curr_key: currKey, limit_count: limitCount, timeout: 1 }));
      const res = await http.get(`/gw/channels/${info.channelId}/messages?data=${data}`);
      received += res.data.result.length;
      currKey = res.data.next_key ?? currKey;
    }
  } else {
    const client = new FlespiClient({ token: info.token, baseUrl: info.restUrl });
    const source = new RestSource({ client, channelId: info.channelId, limitCount, timeout: 1 });
    let receiver: Receiver | undefined = undefined;
    const finished = new Promise<void>((resolve) => {
      const handler = new CountingHandler(info.count, resolve);
      receiver = new Receiver({ source, handlers: [handler] });
      void receiver.start();
    });
    await finished;
    received = info.count;
    await (receiver as unknown as Receiver).stop();
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  return {
    value: received / seconds,
    extra: {
      'MB/s': info.bytes / 1e6 / seconds,
      'CPU s/100k': ((cpu.user + cpu.system) / 1e6 / received) * 1e5,
      'peak RSS MB': peakRss / 2 ** 20,
    },
  };
}

function runInWorker(mode: Mode, limitCount: number, info: SandboxInfo): Promise<Sample> {
  return sampleFromWorker(__filename, ['--worker', mode, String(limitCount), JSON.stringify(info)], `rest-${mode}-${limitCount}`);
}

export async function benchRestPipeline(opts: { quick: boolean }): Promise<Row[]> {
  const count = opts.quick ? 50_000 : 200_000;
  const runs = opts.quick ? 1 : 5;
  const { info, child } = await startPreloadedSandbox(count);
  const rows: Row[] = [];
  try {
    const bench = `REST pipeline (${count.toLocaleString('en-US')} msgs)`;
    for (const limit of [1000, 10000]) {
      const base = `axios loop, limit_count ${limit}`;
      const subject = `receiver, limit_count ${limit}`;
      const results = await measureInterleaved(runs, {
        [base]: () => runInWorker('axios-loop', limit, info),
        [subject]: () => runInWorker('receiver', limit, info),
      });
      rows.push({ bench, case: base, unit: 'msg/s', summary: results[base]! });
      rows.push({ bench, case: subject, unit: 'msg/s', baseline: base, target: '≥100k msg/s', summary: results[subject]! });
    }
  } finally {
    if (child.connected) child.disconnect();
  }
  return rows;
}

if (require.main === module && process.argv[2] === '--worker') {
  const [, , , mode, limit, json] = process.argv;
  void drain(mode as Mode, Number(limit), JSON.parse(json!) as SandboxInfo).then((sample) => {
    process.send!(sample);
    process.exit(0);
  });
}
