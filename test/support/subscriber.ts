/**
 * An MQTT.js subscriber for asserting what reached a broker. It reconnects quickly and
 * subscribes again after every reconnect; `ready()` tells when the subscription is live.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';

export interface ReceivedMessage {
  topic: string;
  payload: Buffer;
  /** The payload parsed as JSON (undefined when it is not JSON). */
  json: unknown;
}

export interface SubscriberOptions {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  qos?: 0 | 1 | 2;
}

export interface Subscriber {
  readonly messages: ReceivedMessage[];
  /** Resolves when the broker has granted the subscription on the current connection. */
  ready(): Promise<void>;
  /** Resolves once at least `count` messages arrived; rejects after `timeoutMs` saying how many did. */
  waitForCount(count: number, timeoutMs?: number): Promise<void>;
  /** Resolves once `done(messages)` is true; rejects after `timeoutMs` with `explain()`. */
  waitUntil(done: (messages: readonly ReceivedMessage[]) => boolean, explain: () => string, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function subscribe(url: string, topicFilter: string, options: SubscriberOptions = {}): Promise<Subscriber> {
  const messages: ReceivedMessage[] = [];
  const waiters = new Set<() => void>();
  let granted: Promise<void>;
  let grant: () => void = () => {};
  const resetGranted = (): void => {
    granted = new Promise<void>((resolve) => (grant = resolve));
  };
  resetGranted();

  const client: MqttClient = mqtt.connect(url, {
    ca: options.caFile ? readFileSync(options.caFile) : undefined,
    cert: options.certFile ? readFileSync(options.certFile) : undefined,
    key: options.keyFile ? readFileSync(options.keyFile) : undefined,
    clientId: `test-subscriber-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    reconnectPeriod: 100,
    connectTimeout: 5000,
    resubscribe: false,
  });
  client.on('error', () => {}); // reconnects on its own; tests assert on messages
  client.on('close', () => resetGranted());
  client.on('connect', () => {
    client.subscribe(topicFilter, { qos: options.qos ?? 1 }, (error) => {
      if (!error) grant();
    });
  });
  client.on('message', (topic, payload) => {
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      json = undefined;
    }
    messages.push({ topic, payload, json });
    for (const wake of waiters) wake();
  });

  const subscriber: Subscriber = {
    messages,
    ready: () => withTimeout(granted, 10_000, () => `no subscription to ${topicFilter} on ${url} within 10 s`),
    waitUntil(done, explain, timeoutMs = 10_000) {
      if (done(messages)) return Promise.resolve();
      let wake!: () => void;
      const arrived = new Promise<void>((resolve) => {
        wake = () => {
          if (done(messages)) resolve();
        };
        waiters.add(wake);
      });
      return withTimeout(arrived, timeoutMs, explain).finally(() => waiters.delete(wake));
    },
    waitForCount: (count, timeoutMs) =>
      subscriber.waitUntil(
        (m) => m.length >= count,
        () => `expected ${count} messages on ${topicFilter}, got ${messages.length}`,
        timeoutMs,
      ),
    close: () => client.endAsync(true),
  };
  await subscriber.ready();
  return subscriber;
}

function withTimeout<T>(promise: Promise<T>, ms: number, explain: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(explain())), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
