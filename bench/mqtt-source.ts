// Bench 4: the MQTT live source. The sandbox (own process) publishes as fast as it can to its MQTT
// broker; at the same time two subscribers take the channel's messages at QoS 1:
//   - MqttSource → Receiver → a counting handler, in a worker process;
//   - mosquitto_sub (C, Mosquitto's own client; baseline), whose output lines are counted.
// Live: messages/s from the start of publishing to each one's last message; both can only keep up
// with the sandbox's publish rate (a row of its own). Backlog: both subscribers are frozen (SIGSTOP)
// while the sandbox publishes, then resumed together; the rate at which each drains the broker's
// queue is what it can take.
import { spawn, type ChildProcess } from 'node:child_process';
import { Handler } from '../src/core/handler';
import type { FlespiMessage } from '../src/core/message';
import { Receiver } from '../src/core/receiver/receiver';
import { MqttSource } from '../src/core/sources/mqtt';
import { forkWorker, summarize, type Row, type Sample } from './harness';
import { startPreloadedSandbox, type SandboxInfo } from './rest-pipeline';

const MOSQUITTO_SUB = process.env.MOSQUITTO_SUB_BIN ?? 'mosquitto_sub';
const now = () => performance.timeOrigin + performance.now(); // comparable across processes

// ---- the MqttSource worker -----------------------------------------------------------------------

class CountingHandler extends Handler {
  count = 0;
  onCount: () => void = () => {};
  constructor() {
    super('count');
  }
  async handle(messages: readonly FlespiMessage[]): Promise<void> {
    this.count += messages.length;
    this.onCount();
  }
}

/**
 * In the worker: subscribes through MqttSource, reports { ready } once subscribed, counts forever; on
 * { until: n } answers { count } as soon as n messages have been handled, with when that was and CPU used.
 */
async function sourceWorker(info: SandboxInfo, clientId: string): Promise<void> {
  const source = new MqttSource({ url: info.mqttUrl, token: info.token, channelId: info.channelId, clientId, sessionExpirySeconds: 0 });
  const handler = new CountingHandler();
  const receiver = new Receiver({ source, handlers: [handler] });
  await receiver.start();
  let cpu0 = process.cpuUsage();
  process.on('message', (command: { until?: number; mark?: boolean }) => {
    if (command.mark) {
      cpu0 = process.cpuUsage();
      return process.send!({ count: handler.count });
    }
    const until = command.until!;
    const report = () => {
      if (handler.count < until) return;
      handler.onCount = () => {};
      const cpu = process.cpuUsage(cpu0);
      process.send!({ count: handler.count, at: now(), cpuSeconds: (cpu.user + cpu.system) / 1e6 });
    };
    handler.onCount = report;
    report();
  });
  process.on('disconnect', () => void receiver.stop().then(() => process.exit(0)));
  process.send!({ ready: true });
}

// ---- the parent side -----------------------------------------------------------------------------

/** Asks a child something over IPC and resolves with its next message. */
function ask<T>(child: ChildProcess, command: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`child exited with ${code}`));
    child.once('exit', onExit);
    child.once('message', (m) => {
      child.off('exit', onExit);
      resolve(m as T);
    });
    child.send(command as object);
  });
}

interface LineCounter {
  lines: number;
  signal(signal: NodeJS.Signals): void;
  /** Resolves with the time the `n`-th line arrived. */
  until(n: number): Promise<number>;
  stop(): void;
}

function startMosquittoSub(info: SandboxInfo): LineCounter {
  const port = new URL(info.mqttUrl).port;
  const sub = spawn(MOSQUITTO_SUB, ['-h', '127.0.0.1', '-p', port, '-u', info.token, '-t', `flespi/message/gw/channels/${info.channelId}/+`, '-q', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let waiter: { n: number; resolve: (at: number) => void; reject: (e: Error) => void } | undefined;
  const counter: LineCounter = {
    lines: 0,
    until: (n) =>
      new Promise((resolve, reject) => {
        if (counter.lines >= n) return resolve(now());
        waiter = { n, resolve, reject };
      }),
    signal: (signal) => sub.kill(signal),
    stop: () => sub.kill(),
  };
  sub.stdout!.on('data', (chunk: Buffer) => {
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) counter.lines++;
    if (waiter && counter.lines >= waiter.n) {
      waiter.resolve(now());
      waiter = undefined;
    }
  });
  sub.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  sub.on('error', (error) => waiter?.reject(new Error(`cannot run ${MOSQUITTO_SUB} (install mosquitto-clients, or npm run setup): ${error.message}`)));
  sub.on('exit', (code) => waiter?.reject(new Error(`mosquitto_sub exited with ${code}: ${stderr.trim()}`)));
  return counter;
}

export async function benchMqttSource(opts: { quick: boolean }): Promise<Row[]> {
  // The broker queues at most 100,000 messages per session (plus 10,000 in flight): stay below.
  const count = opts.quick ? 20_000 : 50_000;
  const runs = opts.quick ? 1 : 5;
  const { info, child: sandbox } = await startPreloadedSandbox(0);
  const samples: Record<'sandbox' | 'sub' | 'source' | 'subDrain' | 'sourceDrain', Sample[]> = {
    sandbox: [],
    sub: [],
    source: [],
    subDrain: [],
    sourceDrain: [],
  };
  try {
    for (let run = 0; run < runs; run++) {
      const sub = startMosquittoSub(info);
      const worker = forkWorker(__filename, ['--worker', JSON.stringify(info), `bench-source-${process.pid}-${run}`], 'mqtt-source');
      try {
        await new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('exit', (code) => reject(new Error(`MqttSource worker exited with ${code}`)));
        });
        // Probe until both are subscribed: one message at a time until each has seen one.
        let probes = 0;
        for (;;) {
          await ask(sandbox, { publish: 1 });
          probes++;
          await new Promise((r) => setTimeout(r, 50));
          const { count: seen } = await ask<{ count: number }>(worker, { mark: true });
          if (seen > 0 && sub.lines > 0) break;
          if (probes > 200) throw new Error(`subscribers not ready after ${probes} probes (MqttSource saw ${seen}, mosquitto_sub ${sub.lines})`);
        }
        await new Promise((r) => setTimeout(r, 300)); // let the last probes arrive everywhere
        const { count: seen } = await ask<{ count: number }>(worker, { mark: true });
        if (seen !== probes || sub.lines !== probes) throw new Error(`after ${probes} probes MqttSource saw ${seen}, mosquitto_sub ${sub.lines}`);

        // Live: both read while the sandbox publishes.
        let total = probes + count;
        let sourceDone = ask<{ at: number; cpuSeconds: number }>(worker, { until: total });
        let subDone = sub.until(total);
        let t0 = now();
        const published = await ask<{ published: number; ms: number }>(sandbox, { publish: count });
        let [source, subAt] = await Promise.all([sourceDone, subDone]);
        samples.sandbox.push({ value: count / (published.ms / 1000) });
        samples.sub.push({ value: count / ((subAt - t0) / 1000) });
        samples.source.push({ value: count / ((source.at - t0) / 1000), extra: { 'CPU s/100k': (source.cpuSeconds / count) * 1e5 } });

        // Backlog: both are frozen while the sandbox publishes, then drain what the broker queued for them.
        await ask(worker, { mark: true }); // resets the worker's CPU count
        total += count;
        sourceDone = ask<{ at: number; cpuSeconds: number }>(worker, { until: total });
        subDone = sub.until(total);
        worker.kill('SIGSTOP');
        sub.signal('SIGSTOP');
        await ask(sandbox, { publish: count });
        t0 = now();
        worker.kill('SIGCONT');
        sub.signal('SIGCONT');
        [source, subAt] = await Promise.all([sourceDone, subDone]);
        samples.subDrain.push({ value: count / ((subAt - t0) / 1000) });
        samples.sourceDrain.push({ value: count / ((source.at - t0) / 1000), extra: { 'CPU s/100k': (source.cpuSeconds / count) * 1e5 } });
      } finally {
        sub.stop();
        if (worker.connected) worker.disconnect();
      }
    }
  } finally {
    if (sandbox.connected) sandbox.disconnect();
  }
  const live = `MQTT live source, live: read while the sandbox publishes (${count.toLocaleString('en-US')} msgs, QoS 1)`;
  const backlog = `MQTT live source, backlog: drain ${count.toLocaleString('en-US')} msgs queued by the broker (QoS 1)`;
  return [
    { bench: live, case: 'sandbox publish rate', unit: 'msg/s', summary: summarize(samples.sandbox), note: 'both subscribers can only keep up with this' },
    { bench: live, case: 'mosquitto_sub -q 1', unit: 'msg/s', summary: summarize(samples.sub) },
    {
      bench: live,
      case: 'MqttSource → Receiver',
      unit: 'msg/s',
      baseline: 'mosquitto_sub -q 1',
      target: '≥0.5× mosquitto_sub',
      summary: summarize(samples.source),
    },
    { bench: backlog, case: 'mosquitto_sub -q 1', unit: 'msg/s', summary: summarize(samples.subDrain) },
    {
      bench: backlog,
      case: 'MqttSource → Receiver',
      unit: 'msg/s',
      baseline: 'mosquitto_sub -q 1',
      target: '≥0.5× mosquitto_sub',
      summary: summarize(samples.sourceDrain),
      note: 'the two drain at the same time',
    },
  ];
}

if (require.main === module && process.argv[2] === '--worker') {
  void sourceWorker(JSON.parse(process.argv[3]!) as SandboxInfo, process.argv[4]!).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
