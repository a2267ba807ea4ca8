// Numbered messages through forwarding: an injector puts messages with a sequence number into a
// sandbox channel, and an HTTP server (the sink) records which numbers arrived and how often.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SandboxProcess } from './peers';
import { waitFor } from './workbench';

/** The parameter that carries the number (a name no simulated tracker sends). */
export const SEQ_PARAM = 'e2e.seq';

/** Adds one numbered message every `intervalMs` to a channel until stopped. */
export class Injector {
  /** How many messages were injected: they carry the numbers 1..count. */
  count = 0;
  private running = true;
  private failure?: Error;
  private readonly loop: Promise<void>;

  constructor(sandbox: SandboxProcess, channelId: number, ident: string, intervalMs = 100) {
    this.loop = (async () => {
      while (this.running) {
        const seq = this.count + 1;
        await sandbox.inject(channelId, [{ ident, [SEQ_PARAM]: seq, timestamp: Date.now() / 1000 }]);
        this.count = seq;
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    })().catch((error: unknown) => {
      this.failure = error instanceof Error ? error : new Error(String(error));
    });
  }

  /** Waits until at least `count` messages were injected. */
  reach(count: number, timeoutMs = 60_000): Promise<number> {
    return waitFor(
      `${count} injected messages`,
      () => {
        if (this.failure) throw this.failure;
        return this.count >= count ? this.count : undefined;
      },
      timeoutMs,
    );
  }

  /** Stops injecting; rejects if an injection failed. Returns how many were injected. */
  async stop(): Promise<number> {
    this.running = false;
    await this.loop;
    if (this.failure) throw this.failure;
    return this.count;
  }
}

/** An HTTP sink that accepts batches (JSON arrays) carrying the right Authorization header. */
export class RecordingHttpSink {
  /** The numbers of the numbered messages, once per arrival (a number twice is a duplicate). */
  readonly arrivals: number[] = [];
  /** Requests refused because their Authorization header was not the expected one. */
  refused = 0;
  /** Every request that reached the server. */
  requests = 0;
  private readonly server: Server;
  private address = '';

  /** Batches answered 400 because they held a message `refuse` picked. */
  rejected = 0;
  /** Set it to pick messages the endpoint refuses for good (400 for the whole batch, as many APIs do). */
  refuse?: (message: Record<string, unknown>) => boolean;

  private constructor(
    private readonly authorization: string,
    private readonly ident: string,
  ) {
    this.server = createServer((req, res) => {
      this.requests++;
      void readBody(req).then((body) => {
        if (req.headers.authorization !== this.authorization) {
          this.refused++;
          res.writeHead(401).end('wrong or missing Authorization header');
          return;
        }
        let batch: unknown;
        try {
          batch = JSON.parse(body);
        } catch {
          batch = undefined;
        }
        if (!Array.isArray(batch)) {
          res.writeHead(400).end('expected a JSON array of messages');
          return;
        }
        const refuse = this.refuse;
        if (refuse && (batch as Record<string, unknown>[]).some((message) => refuse(message))) {
          this.rejected++;
          res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"a message of this batch is invalid"}');
          return;
        }
        for (const message of batch as Record<string, unknown>[]) {
          if (message.ident === this.ident && typeof message[SEQ_PARAM] === 'number') this.arrivals.push(message[SEQ_PARAM]);
        }
        res.writeHead(200).end();
      });
    });
  }

  /** Listens on a random port of 127.0.0.1; only requests with this Authorization header are accepted. */
  static async start(authorization: string, ident: string): Promise<RecordingHttpSink> {
    const sink = new RecordingHttpSink(authorization, ident);
    await new Promise<void>((resolve) => sink.server.listen(0, '127.0.0.1', resolve));
    sink.address = `http://127.0.0.1:${(sink.server.address() as AddressInfo).port}/flespi`;
    return sink;
  }

  get url(): string {
    return this.address;
  }

  distinct(): Set<number> {
    return new Set(this.arrivals);
  }

  /** The numbers from 1 to `count` that have not arrived. */
  missing(count: number): number[] {
    const seen = this.distinct();
    return Array.from({ length: count }, (_, i) => i + 1).filter((n) => !seen.has(n));
  }

  /** Numbers that arrived more than once, with how often. */
  duplicates(): Map<number, number> {
    const times = new Map<number, number>();
    for (const n of this.arrivals) times.set(n, (times.get(n) ?? 0) + 1);
    return new Map([...times].filter(([, k]) => k > 1));
  }

  waitForDistinct(count: number, timeoutMs = 60_000): Promise<number> {
    return waitFor(
      `${count} different numbered messages at the HTTP sink`,
      () => (this.distinct().size >= count ? this.distinct().size : undefined),
      timeoutMs,
    );
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
