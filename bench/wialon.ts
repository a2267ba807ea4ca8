// Bench 2: Wialon Retranslator.
// (a) encode rate of encodeMessage vs JSON.stringify of the same messages (baseline), and the receiving
//     side's split + strict decode vs JSON.parse, in a fresh process per sample, measured alternately
//     after a warm-up;
// (b) end to end: WialonHandler → the Wialon test receiver in its own process (strict decode, one 0x11
//     ack per packet), vs a bare socket that writes the same packets pre-encoded with the same window
//     (baseline: what the receiver and the loopback can take without the handler).
import { createConnection } from 'node:net';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { silentLogger } from '../src/core/logger';
import type { FlespiMessage } from '../src/core/message';
import { WialonTestReceiver } from '../test/support/wialonReceiver';
import { loadBundled } from './bundled';
import { forkWorker, measureInterleaved, median, sampleFromWorker, summarize, type Row, type Sample } from './harness';
import { channelMessages, jsonBytes } from './messages';

// The codec and the handler as they ship: bundled (see bundled.ts).
const { ACK_BYTE, PacketSplitter, decodePacket, encodeMessage, WialonHandler } = loadBundled<
  typeof import('../src/core/wialon/codec') & typeof import('../src/core/handlers/wialon')
>('src/core/wialon/codec.ts', 'src/core/handlers/wialon.ts');

const BATCH = 1000;

// ---- encode --------------------------------------------------------------------------------------

interface CodecSample {
  encode: Sample;
  json: Sample;
  decode: Sample;
  parse: Sample;
}

/**
 * In a worker: warms up, then times, alternately over the same messages: encodeMessage vs JSON.stringify,
 * and what the receiving side does, splitting the packet stream and strictly decoding each packet vs
 * JSON.parse of the messages' JSON.
 */
function codecRates(count: number): CodecSample {
  const messages = channelMessages(count);
  const stream = Buffer.concat(messages.map((m) => encodeMessage(m)));
  const texts = messages.map((m) => JSON.stringify(m));
  let sink = 0;
  const rate = (run: () => void) => {
    const t0 = performance.now();
    run();
    return count / ((performance.now() - t0) / 1000);
  };
  const cases = {
    encode: () => {
      for (const m of messages) sink += encodeMessage(m).length;
    },
    json: () => {
      for (const m of messages) sink += JSON.stringify(m).length;
    },
    decode: () => {
      // The stream in 64 KB reads, as a socket delivers it.
      const splitter = new PacketSplitter();
      for (let at = 0; at < stream.length; at += 65_536)
        for (const packet of splitter.push(stream.subarray(at, at + 65_536))) sink += decodePacket(packet).blocks.length;
    },
    parse: () => {
      for (const text of texts) sink += Object.keys(JSON.parse(text) as object).length;
    },
  };
  const runs: Record<keyof typeof cases, number[]> = { encode: [], json: [], decode: [], parse: [] };
  for (const run of Object.values(cases)) rate(run); // warm-up
  for (let i = 0; i < 5; i++) for (const [name, run] of Object.entries(cases)) runs[name as keyof typeof cases].push(rate(run));
  if (sink === 0) throw new Error('nothing encoded');
  return {
    encode: { value: median(runs.encode), extra: { 'bytes/msg': stream.length / count } },
    json: { value: median(runs.json), extra: { 'bytes/msg': jsonBytes(messages) / count } },
    decode: { value: median(runs.decode) },
    parse: { value: median(runs.parse) },
  };
}

// ---- end to end ----------------------------------------------------------------------------------

type Sender = 'handler' | 'bare socket';

/** In a worker: sends `count` messages in batches of 1000 to the receiver at `port`; resolves when all are acked. */
async function sendAll(sender: Sender, port: number, window: number, count: number): Promise<Sample> {
  const messages = channelMessages(count);
  const batches: FlespiMessage[][] = [];
  for (let i = 0; i < count; i += BATCH) batches.push(messages.slice(i, i + BATCH));
  const cpu0 = process.cpuUsage();
  let elu0: EventLoopUtilization;
  let t0: number;
  if (sender === 'handler') {
    const handler = new WialonHandler({ host: '127.0.0.1', port, window, ackTimeoutMs: 30_000, connectTimeoutMs: 5_000 });
    await handler.start();
    const ctx = {
      signal: new AbortController().signal,
      attempt: 1,
      log: silentLogger,
      reject: (index: number) => {
        throw new Error(`message ${index} rejected`);
      },
    };
    t0 = performance.now();
    elu0 = performance.eventLoopUtilization();
    for (const batch of batches) await handler.handle(batch, ctx);
    if (handler.stats.packetsAcked !== count) throw new Error(`handler: ${handler.stats.packetsAcked} of ${count} acked`);
    await handler.stop();
  } else {
    const packets = messages.map((m) => encodeMessage(m)); // not timed: the baseline sends ready bytes
    t0 = performance.now();
    elu0 = performance.eventLoopUtilization();
    await bareSend(port, packets, window);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // How much of the time the sender's event loop was busy: near 100% means the sender limits the rate.
  const busy = performance.eventLoopUtilization(elu0).utilization * 100;
  return { value: count / seconds, extra: { 'sender CPU s/100k': ((cpu.user + cpu.system) / 1e6 / count) * 1e5, 'sender busy %': busy } };
}

/** Writes packets keeping at most `window` unacked, like the handler, with no encoding or bookkeeping. */
function bareSend(port: number, packets: Buffer[], window: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    let sent = 0;
    let acked = 0;
    const fill = () => {
      if (sent - acked >= window || sent >= packets.length) return;
      socket.cork();
      while (sent < packets.length && sent - acked < window) socket.write(packets[sent++]!);
      socket.uncork();
    };
    socket.on('connect', fill);
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      for (const byte of chunk) if (byte === ACK_BYTE) acked++;
      if (acked === packets.length) {
        socket.destroy();
        resolve();
      } else fill();
    });
  });
}

/** The receiver process: listens, reports its port, and on each 'count' message answers with (and forgets) what it got. */
async function receiverProcess(): Promise<void> {
  const receiver = new WialonTestReceiver();
  const port = await receiver.listen(0);
  process.on('message', () => {
    process.send!({ received: receiver.received.length, rejected: receiver.rejected.length });
    receiver.received.length = 0; // 100k decoded packets per run would pile up otherwise
    receiver.rejected.length = 0;
  });
  process.on('disconnect', () => void receiver.close().then(() => process.exit(0)));
  process.send!({ port });
}

interface ReceiverHandle {
  port: number;
  /** Packets received and rejected since the last call. */
  counts(): Promise<{ received: number; rejected: number }>;
  close(): void;
}

async function startReceiverProcess(): Promise<ReceiverHandle> {
  const child = forkWorker(__filename, ['--worker', 'receiver'], 'wialon-receiver');
  const { port } = await new Promise<{ port: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { port: number }));
    child.once('exit', (code) => reject(new Error(`Wialon receiver process exited with ${code}`)));
  });
  return {
    port,
    counts: () => new Promise((resolve) => (child.once('message', (m) => resolve(m as { received: number; rejected: number })), child.send('count'))),
    close: () => child.connected && child.disconnect(),
  };
}

// ---- the bench -----------------------------------------------------------------------------------

export async function benchWialon(opts: { quick: boolean }): Promise<Row[]> {
  const rows: Row[] = [];
  const runs = opts.quick ? 1 : 5;

  const codecCount = opts.quick ? 20_000 : 100_000;
  const samples: CodecSample[] = [];
  for (let i = 0; i < runs; i++) samples.push(await sampleFromWorker<CodecSample>(__filename, ['--worker', 'codec', String(codecCount)], 'wialon-codec'));
  const of = (key: keyof CodecSample) => summarize(samples.map((sample) => sample[key]));
  const encodeBench = `Wialon encode (${codecCount.toLocaleString('en-US')} msgs, 27 params)`;
  rows.push({ bench: encodeBench, case: 'JSON.stringify', unit: 'msg/s', summary: of('json') });
  rows.push({ bench: encodeBench, case: 'encodeMessage', unit: 'msg/s', baseline: 'JSON.stringify', target: '≥300k msg/s', summary: of('encode') });
  const decodeBench = `Wialon strict decode, the test receiver's side (${codecCount.toLocaleString('en-US')} packets)`;
  rows.push({ bench: decodeBench, case: 'JSON.parse of the same messages', unit: 'msg/s', summary: of('parse') });
  rows.push({ bench: decodeBench, case: 'PacketSplitter + decodePacket', unit: 'msg/s', baseline: 'JSON.parse of the same messages', summary: of('decode') });

  const count = opts.quick ? 20_000 : 100_000;
  const receiver = await startReceiverProcess();
  try {
    const e2e = `Wialon end to end (${count.toLocaleString('en-US')} msgs, batches of ${BATCH}, receiver in own process)`;
    for (const window of opts.quick ? [16] : [16, 128]) {
      const send = (sender: Sender) => async () => {
        const sample = await sampleFromWorker(
          __filename,
          ['--worker', 'send', sender, String(receiver.port), String(window), String(count)],
          `wialon-${sender.replace(' ', '-')}-w${window}`,
        );
        const { received, rejected } = await receiver.counts();
        if (received !== count || rejected !== 0) throw new Error(`Wialon test receiver got ${received} of ${count} packets, ${rejected} rejected`);
        return sample;
      };
      const base = `bare socket, window ${window}`;
      const subject = `WialonHandler, window ${window}`;
      const results = await measureInterleaved(runs, { [base]: send('bare socket'), [subject]: send('handler') });
      rows.push({ bench: e2e, case: base, unit: 'msg/s', summary: results[base]! });
      rows.push({
        bench: e2e,
        case: subject,
        unit: 'msg/s',
        baseline: base,
        target: window === 16 ? '≥50k msg/s (default window 16)' : undefined,
        summary: results[subject]!,
      });
    }
  } finally {
    receiver.close();
  }
  return rows;
}

if (require.main === module && process.argv[2] === '--worker') {
  const [, , , role, ...args] = process.argv;
  const work: Promise<unknown> =
    role === 'codec'
      ? Promise.resolve(codecRates(Number(args[0])))
      : role === 'send'
        ? sendAll(args[0] as Sender, Number(args[1]), Number(args[2]), Number(args[3]))
        : receiverProcess().then(() => undefined);
  void work.then(
    (result) => {
      if (role === 'receiver') return;
      process.send!(result);
      process.exit(0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
