/**
 * Forwards each flespi message as JSON to an MQTT broker (`type: "mqtt"`), or to AWS IoT Core
 * (`type: "aws-iot"`, the same handler with AWS defaults).
 *
 * Delivery: with QoS 1 a batch succeeds only when the broker has acknowledged (PUBACK) every
 * message; at most `window` publishes wait for their PUBACK at a time. When the connection drops,
 * the batch fails at once (its unacknowledged publishes are withdrawn, not left to be re-sent later),
 * the receiver retries it, and the handler reconnects with exponential backoff. A batch that arrives
 * while disconnected waits up to `connectTimeoutMs` for the connection, then fails.
 *
 * Messages that can never be published as they are go to `ctx.reject` and the rest of the batch goes
 * on: one that cannot be written as JSON (a BigInt or a cycle from a custom source; deep nesting is
 * fine, see serialize.ts), one whose PUBLISH packet would exceed the broker's maximum packet size
 * (MQTT 5 CONNACK, else MQTT's own 256 MB), one the broker refuses by MQTT 5 reason code (not
 * authorized, topic name invalid, packet too large, payload format invalid). Topics are made valid
 * from any field value (topic.ts). Connection trouble is a TransientError: retried, never dead-lettered.
 *
 * TLS: caFile/certFile/keyFile are paths read at start(); start() checks them (readable, key matches
 * certificate, certificate not expired) and turns TLS and connection errors into one sentence that
 * names the file or setting to fix. Certificate verification is always on.
 */
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { Handler, type HandlerContext, type HandlerHealth } from '../handler';
import { errorMessage, TransientError, UndeliverableError } from '../errors';
import type { Logger } from '../logger';
import type { FlespiMessage } from '../message';
import type { OptionsSchema } from '../optionSchema';
import { ConfigError, OptionReader, type Options } from '../options';
import { redactUrl, warnCleartextCredentials, warnIfOthersCanRead } from '../security';
import type { HandlerEnv, HandlerSpec } from './spec';
import { messageJson } from './serialize';
import { MAX_AWS_TOPIC_BYTES, MAX_MQTT_TOPIC_BYTES, parseTopicTemplate, type TopicTemplate } from './topic';

export interface MqttSettings {
  /** mqtt://, mqtts://, ws:// or wss:// URL of the broker. */
  readonly url: string;
  /** The setting the user wrote the address in (`url` or `endpoint`), for error messages. */
  readonly addressSetting: string;
  /** Absolute paths. */
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly username?: string;
  readonly password?: string;
  readonly clientId: string;
  /** 4 (MQTT 3.1.1, the default) or 5 (the broker then says its maximum packet size and why it refuses a publish). */
  readonly protocolVersion: 4 | 5;
  readonly topic: TopicTemplate;
  readonly qos: 0 | 1;
  readonly retain: boolean;
  /** Most publishes awaiting their PUBACK at once. */
  readonly window: number;
  /** How long to wait for a connection (at start, and for a batch while disconnected). */
  readonly connectTimeoutMs: number;
  /** A batch fails when no PUBACK arrived for this long while some are outstanding. */
  readonly ackTimeoutMs: number;
  /** TLS ALPN protocols (AWS IoT on port 443 needs `x-amzn-mqtt-ca`). */
  readonly alpnProtocols?: readonly string[];
  /** Extra advice when the broker refuses the client certificate. */
  readonly refusedCertificateHint: string;
  /** The `topic` setting was left out, so `topic` is the default (said once at start). */
  readonly topicDefaulted?: boolean;
}

/** The default topic of `type: "mqtt"`. It used to be `flespi/{channel.id}/{ident}`, which flespi's own broker discards. */
export const DEFAULT_MQTT_TOPIC = 'fleet/{channel.id}/{ident}';

/**
 * flespi's MQTT brokers (`mqtt.flespi.io`, region hosts such as `ru-mqtt.flespi.io`): they discard
 * what clients publish under `flespi/` (the platform's namespace, https://flespi.com/kb/mqtt-topics),
 * and over MQTT 3.1.1 still acknowledge it, so a sink would report success and deliver nothing.
 */
export function isFlespiBroker(url: string): boolean {
  try {
    return /(^|\.)flespi\.io$/i.test(new URL(url).hostname.replace(/\.$/, ''));
  } catch {
    return false;
  }
}

/** flespi's namespace: publishes there never reach a subscriber on flespi's broker. */
const FLESPI_NAMESPACE = 'flespi/';

const RECONNECT_MIN_MS = 1000; // AWS IoT allows one connect per second per client id
const RECONNECT_MAX_MS = 30_000;
/** The largest MQTT control packet: 1 header byte, 4 bytes of remaining length, 268,435,455 bytes (MQTT 3.1.1 §2.2.3, MQTT 5 §2.1.4). */
const MQTT_MAX_PACKET_BYTES = 1 + 4 + 268_435_455;
/**
 * MQTT 5 PUBACK reason codes that refuse this one message for good (MQTT 5 §3.4.2.1): retrying it
 * cannot help, while the next message may well be accepted.
 */
const REFUSED_FOR_GOOD: ReadonlyMap<number, string> = new Map([
  [0x87, 'not authorized to publish to this topic'],
  [0x90, 'topic name invalid'],
  [0x95, 'packet too large'],
  [0x99, 'payload format invalid'],
]);

/** A message ready to publish: where it is in the batch, its topic and its JSON. */
interface Outgoing {
  readonly index: number;
  readonly topic: string;
  readonly payload: string;
}

export class MqttHandler extends Handler {
  private client?: MqttClient;
  private stopping = false;
  private reconnectTimer?: NodeJS.Timeout;
  private reconnectAttempts = 0;
  /** What went wrong with the latest connection attempt, or why the connection closed. */
  private connectionProblem?: string;
  private inFlight = 0;
  /** Batches waiting for a free slot in the window. */
  private readonly slotWaiters = new Set<() => void>();
  /** The broker's maximum packet size (MQTT 5 CONNACK), or MQTT's own limit. */
  private maxPacketBytes = MQTT_MAX_PACKET_BYTES;
  /** Totals since start: publishes sent, publishes the broker confirmed (PUBACK, or written for QoS 0), messages rejected as undeliverable. */
  readonly counts = { published: 0, acknowledged: 0, rejected: 0 };

  /** Publishing to flespi's own broker, which discards topics under `flespi/`. */
  private readonly onFlespiBroker: boolean;

  constructor(
    readonly settings: MqttSettings,
    name?: string,
  ) {
    super(name);
    this.onFlespiBroker = isFlespiBroker(settings.url);
  }

  override async start(): Promise<void> {
    const tls = await loadTlsFiles(this.settings, this.log);
    const s = this.settings;
    const shown = redactUrl(s.url);
    if (s.username !== undefined || s.password !== undefined)
      warnCleartextCredentials(s.url, `${this.name}: the MQTT sink's ${s.password !== undefined ? 'password' : 'username'}`, this.log);
    if (s.topicDefaulted)
      this.log.info(
        `${this.name}: publishing to the default topic ${s.topic.source} (it used to be flespi/{channel.id}/{ident}, which flespi's own broker discards; set "topic" to choose)`,
      );
    const options: IClientOptions = {
      clientId: s.clientId,
      username: s.username,
      password: s.password,
      protocolVersion: s.protocolVersion,
      clean: true,
      connectTimeout: s.connectTimeoutMs,
      reconnectPeriod: 0, // reconnects are scheduled here, with backoff
      queueQoSZero: false,
      rejectUnauthorized: true,
      ...tls,
      ...(s.alpnProtocols ? { ALPNProtocols: [...s.alpnProtocols] } : {}),
    };
    this.stopping = false;
    const client = mqtt.connect(s.url, options);
    this.client = client;
    let established = false; // this connection got its CONNACK
    let explained = false; // an 'error' already said why this connection ended
    client.on('connect', (connack: IConnackPacket) => {
      this.maxPacketBytes = connack.properties?.maximumPacketSize ?? MQTT_MAX_PACKET_BYTES;
      this.log.info(`${this.name}: connected to ${shown}${this.reconnectAttempts ? ` after ${this.reconnectAttempts} retries` : ''}`);
      established = true;
      // PUBACK round trips are the pace of QoS 1: do not let Nagle's algorithm hold small packets back.
      (client.stream as { setNoDelay?: (noDelay: boolean) => void }).setNoDelay?.(true);
      this.reconnectAttempts = 0;
      this.connectionProblem = undefined;
    });
    client.on('error', (error) => {
      explained = true;
      this.connectionProblem = established ? `connection to ${shown} lost (${errorMessage(error).trim()})` : explainConnectionError(error, s);
    });
    client.on('close', () => {
      if (this.stopping) return;
      if (!explained)
        this.connectionProblem = established
          ? `the broker at ${shown} closed the connection`
          : `the broker at ${shown} closed the connection before accepting it${s.certFile ? `: ${refusedCertificate(s)}` : ''}`;
      established = false;
      explained = false;
      this.scheduleReconnect();
    });
    try {
      await this.waitUntilConnected(undefined, true);
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  override async handle(messages: readonly FlespiMessage[], ctx: HandlerContext): Promise<void> {
    const client = this.client;
    if (!client || this.stopping) throw new TransientError(`${this.name}: not started`);
    if (messages.length === 0) return;
    await this.waitUntilConnected(ctx.signal, false);
    const outgoing = this.prepare(messages, ctx);
    if (outgoing.length > 0) await this.publishAll(client, outgoing, ctx);
  }

  /** Topic and JSON of each message; those that cannot be published go to ctx.reject. */
  private prepare(messages: readonly FlespiMessage[], ctx: HandlerContext): Outgoing[] {
    const outgoing: Outgoing[] = [];
    const limit = this.maxPacketBytes;
    for (let index = 0; index < messages.length; index++) {
      const message = messages[index]!;
      let topic: string;
      let payload: string;
      try {
        topic = this.settings.topic.render(message);
        if (this.onFlespiBroker && topic.startsWith(FLESPI_NAMESPACE)) {
          throw new UndeliverableError(
            `the topic ${JSON.stringify(topic.slice(0, 200))} is under flespi/, where flespi's broker discards client publishes: it would be acknowledged and never delivered`,
          );
        }
        payload = messageJson(message);
        // Every UTF-16 unit is at most 3 UTF-8 bytes, so a message far below the limit is not measured.
        if ((topic.length + payload.length) * 3 + 32 > limit) {
          const bytes = publishPacketBytes(topic, payload, this.settings);
          if (bytes > limit)
            throw new UndeliverableError(
              `the message is ${bytes} bytes as an MQTT packet; ${limit === MQTT_MAX_PACKET_BYTES ? 'MQTT' : `the broker at ${redactUrl(this.settings.url)}`} accepts at most ${limit}`,
            );
        }
      } catch (error) {
        this.reject(ctx, index, error);
        continue;
      }
      outgoing.push({ index, topic, payload });
    }
    return outgoing;
  }

  private reject(ctx: HandlerContext, index: number, reason: unknown): void {
    this.counts.rejected++;
    ctx.reject(index, reason);
  }

  override async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const client = this.client;
    this.client = undefined;
    if (client) await client.endAsync(true).catch(() => {});
    for (const wake of this.slotWaiters) wake(); // lets waiting batches notice `stopping` and fail
  }

  override health(): HandlerHealth {
    const connected = this.client?.connected ?? false;
    const rejected = this.counts.rejected ? `, ${this.counts.rejected} messages rejected as undeliverable` : '';
    const detail =
      (connected ? `${this.inFlight} awaiting ${this.settings.qos === 1 ? 'PUBACK' : 'write'}` : (this.connectionProblem ?? 'not connected')) + rejected;
    return { connected, detail };
  }

  /** Resolves when connected; rejects with the reason after connectTimeoutMs, on abort, or (at start) on the first failure. */
  private waitUntilConnected(signal: AbortSignal | undefined, failOnFirstClose: boolean): Promise<void> {
    const client = this.client!;
    if (client.connected) return Promise.resolve();
    const { connectTimeoutMs } = this.settings;
    const url = redactUrl(this.settings.url);
    return new Promise((resolve, reject) => {
      const finish = (error?: Error) => {
        clearTimeout(timer);
        client.off('connect', onConnect);
        client.off('close', onClose);
        signal?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve();
      };
      const onConnect = () => finish();
      const onClose = () => {
        if (failOnFirstClose) finish(new TransientError(this.connectionProblem ?? `cannot connect to ${url}`));
      };
      const onAbort = () =>
        finish(new TransientError(`not connected to ${url} when the batch was cancelled${this.connectionProblem ? `: ${this.connectionProblem}` : ''}`));
      const timer = setTimeout(
        () =>
          finish(
            new TransientError(
              this.connectionProblem ? `not connected: ${this.connectionProblem}` : `no answer from ${url} within ${connectTimeoutMs} ms (connectTimeoutMs)`,
            ),
          ),
        connectTimeoutMs,
      );
      client.on('connect', onConnect);
      client.on('close', onClose);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Publishes every message with at most `window` unacknowledged; resolves when each is acknowledged
   * or refused for good by the broker (then rejected).
   */
  private publishAll(client: MqttClient, outgoing: readonly Outgoing[], ctx: HandlerContext): Promise<void> {
    const { qos, retain, window, ackTimeoutMs } = this.settings;
    const url = redactUrl(this.settings.url);
    const signal = ctx.signal;
    const total = outgoing.length;
    const pending = new Set<PublishCallback>();
    let next = 0;
    let acknowledged = 0;
    let done = false;

    return new Promise<void>((resolve, reject) => {
      // One timer for the batch, re-armed lazily: resetting a timer on every PUBACK costs throughput.
      let lastProgress = performance.now();
      let ackTimer: NodeJS.Timeout | undefined;
      const armAckTimer = (delay = ackTimeoutMs) => {
        ackTimer = setTimeout(() => {
          const quiet = performance.now() - lastProgress;
          if (quiet >= ackTimeoutMs) fail(`no ${qos === 1 ? 'PUBACK' : 'write'} from ${url} for ${ackTimeoutMs} ms (ackTimeoutMs)`);
          else armAckTimer(ackTimeoutMs - quiet);
        }, delay);
      };
      const finish = () => {
        done = true;
        clearTimeout(ackTimer);
        this.slotWaiters.delete(fill);
        client.off('close', onClose);
        signal.removeEventListener('abort', onAbort);
      };
      const fail = (reason: string, transient = true) => {
        if (done) return;
        finish();
        this.withdraw(client, pending);
        const message = `${reason}: ${total - acknowledged} of ${total} messages not acknowledged`;
        reject(transient ? new TransientError(message) : new Error(message));
      };
      const onClose = () => fail(`connection to ${url} lost${this.connectionProblem ? ` (${this.connectionProblem})` : ''}`);
      const onAbort = () => fail(`delivery to ${url} cancelled`);

      const fill = () => {
        while (!done && next < total && this.inFlight < window) {
          const item = outgoing[next++]!;
          const callback: PublishCallback = (error) => {
            pending.delete(callback);
            this.inFlight--;
            const code = (error as { code?: unknown } | undefined)?.code;
            const refused = typeof code === 'number' ? REFUSED_FOR_GOOD.get(code) : undefined;
            if (!done && error && !refused) fail(`publish to ${url} failed: ${error.message}`, typeof code !== 'number');
            else if (!done) {
              if (refused)
                this.reject(
                  ctx,
                  item.index,
                  new UndeliverableError(
                    `the broker at ${url} refused the message for good (${refused}, reason code 0x${(code as number).toString(16)}) on topic ${JSON.stringify(item.topic.slice(0, 200))}`,
                  ),
                );
              else this.counts.acknowledged++;
              acknowledged++; // answered: acknowledged, or refused for good
              lastProgress = performance.now();
              if (acknowledged === total) {
                finish();
                resolve();
              }
            }
            for (const wake of this.slotWaiters) wake(); // a slot is free: this batch or another may publish
          };
          pending.add(callback);
          this.inFlight++;
          this.counts.published++;
          client.publish(item.topic, item.payload, { qos, retain }, callback);
        }
        if (this.stopping) fail(`${this.name} stopped`);
      };
      this.slotWaiters.add(fill);
      client.on('close', onClose);
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) return onAbort();
      armAckTimer();
      fill();
    });
  }

  /** Takes the given unacknowledged publishes out of MQTT.js's store, so they are not re-sent after a reconnect. */
  private withdraw(client: MqttClient, pending: ReadonlySet<PublishCallback>): void {
    for (const [messageId, entry] of Object.entries(client.outgoing)) {
      if (pending.has(entry.cb as PublishCallback)) client.removeOutgoingMessage(Number(messageId));
    }
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer) return;
    const ceiling = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.reconnectAttempts);
    const delay = Math.max(RECONNECT_MIN_MS, ceiling * (0.5 + Math.random() / 2));
    this.reconnectAttempts++;
    this.log.warn(`${this.name}: ${this.connectionProblem ?? 'disconnected'}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      const client = this.client;
      if (client && !this.stopping) client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
    }, delay);
  }
}

type PublishCallback = (error?: Error) => void;

// ---- TLS files ------------------------------------------------------------------------------

interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
}

/** Reads and checks caFile/certFile/keyFile, throwing one clear error naming the file. */
export async function loadTlsFiles(settings: Pick<MqttSettings, 'caFile' | 'certFile' | 'keyFile'>, log: Logger): Promise<TlsMaterial> {
  const material: TlsMaterial = {};
  if (settings.caFile) {
    material.ca = certificatesPem('caFile', settings.caFile, await readSettingFile('caFile', settings.caFile));
  }
  if (settings.certFile && settings.keyFile) {
    const certPem = certificatesPem('certFile', settings.certFile, await readSettingFile('certFile', settings.certFile));
    const keyBytes = await readSettingFile('keyFile', settings.keyFile);
    const certificate = new X509Certificate(certPem);
    let key;
    try {
      key = createPrivateKey(keyBytes);
    } catch (error) {
      // OpenSSL 3 says "interrupted or cancelled" (no passphrase was given) where older versions named the passphrase.
      if (/passphrase/i.test(errorMessage(error)) || (error as { code?: unknown }).code === 'ERR_OSSL_CRYPTO_INTERRUPTED_OR_CANCELLED') {
        throw new ConfigError(
          `keyFile ${settings.keyFile} is encrypted with a passphrase: decrypt it (openssl pkey -in ${settings.keyFile} -out <new file>) and point keyFile at the result`,
          { cause: error },
        );
      }
      throw new ConfigError(`keyFile ${settings.keyFile} is not a private key in PEM or DER form (${errorMessage(error)})`, { cause: error });
    }
    if (!certificate.checkPrivateKey(key)) {
      throw new ConfigError(
        `keyFile ${settings.keyFile} does not belong to certFile ${settings.certFile} (their public keys differ): use the private key that was created together with this certificate`,
      );
    }
    const now = Date.now();
    const validFrom = new Date(certificate.validFrom);
    const validTo = new Date(certificate.validTo);
    if (validTo.getTime() < now) throw new ConfigError(`certFile ${settings.certFile} expired on ${validTo.toISOString()}: issue a new client certificate`);
    if (validFrom.getTime() > now)
      throw new ConfigError(
        `certFile ${settings.certFile} is not valid before ${validFrom.toISOString()}: check this computer's clock, or use a certificate that is valid now`,
      );
    await warnIfOthersCanRead(settings.keyFile, 'keyFile', log);
    material.cert = certPem;
    material.key = key.export({ type: 'pkcs8', format: 'pem' }).toString();
  }
  return material;
}

async function readSettingFile(setting: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(`${setting} ${path} does not exist`, { cause: error });
    if (code === 'EACCES' || code === 'EPERM')
      throw new ConfigError(`${setting} ${path} is not readable by this process (permission denied)`, { cause: error });
    if (code === 'EISDIR') throw new ConfigError(`${setting} ${path} is a folder: point ${setting} at the file inside it`, { cause: error });
    throw new ConfigError(`cannot read ${setting} ${path}: ${errorMessage(error)}`, { cause: error });
  }
}

/** The certificates of a PEM file (kept as is, it may hold a chain) or of a DER file (converted to PEM). */
function certificatesPem(setting: string, path: string, bytes: Buffer): string {
  const text = bytes.toString('latin1');
  const pem = text.includes('-----BEGIN CERTIFICATE-----');
  try {
    const first = new X509Certificate(pem ? text.slice(text.indexOf('-----BEGIN CERTIFICATE-----')) : bytes);
    return pem ? text : first.toString();
  } catch (error) {
    throw new ConfigError(
      `${setting} ${path} is not a certificate: expected a PEM file starting with "-----BEGIN CERTIFICATE-----"${/PRIVATE KEY-----/.test(text) ? ' (this looks like a private key; it belongs in keyFile)' : ''}`,
      { cause: error },
    );
  }
}

// ---- connection errors ----------------------------------------------------------------------

const SERVER_NOT_TRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_CHAIN_TOO_LONG',
]);
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EADDRNOTAVAIL']);

/** One sentence saying what a connection error means for this configuration and what to change. */
export function explainConnectionError(error: Error & { code?: string | number }, settings: MqttSettings): string {
  const { caFile, certFile, addressSetting } = settings;
  const url = redactUrl(settings.url);
  const address = hostAndPort(url);
  const code = error.code;
  if (typeof code === 'number') {
    // CONNACK return code: the broker answered and said no.
    const onFlespi = isFlespiBroker(settings.url);
    const advice =
      code === 4 || code === 5
        ? settings.username
          ? ': check username and password'
          : ': this broker needs credentials (username/password) or a client certificate'
        : code === 2
          ? onFlespi
            ? ': flespi answers this to a wrong or expired token: check "username" (the flespi token); if it is right, set another clientId'
            : ': the broker does not accept this clientId'
          : '';
    return `the broker at ${url} refused the connection: ${error.message.replace(/^Connection refused: /, '')}${advice}`;
  }
  if (typeof code !== 'string') {
    if (/connack timeout/i.test(error.message))
      return `the broker at ${url} did not answer the MQTT connect within ${settings.connectTimeoutMs} ms (connectTimeoutMs)`;
    return `connection to ${url} failed: ${error.message}`;
  }
  if (UNREACHABLE.has(code)) return `cannot reach ${address} (${code}): check ${addressSetting}, and that the broker is running and reachable from here`;
  if (SERVER_NOT_TRUSTED.has(code)) {
    return caFile
      ? `the broker's certificate is not signed by the CA in caFile ${caFile} (${code}): point caFile at the CA that signed the broker's certificate`
      : `the broker's certificate is not signed by a CA this computer trusts (${code}): set caFile to the CA certificate that signed it`;
  }
  if (code === 'CERT_HAS_EXPIRED') return `the broker's certificate has expired (check the broker, or this computer's clock)`;
  if (code === 'CERT_NOT_YET_VALID') return `the broker's certificate is not valid yet (check this computer's clock)`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return `the broker's certificate is not issued for ${address.replace(/:\d+$/, '')} (${(error as { reason?: string }).reason ?? error.message}): connect using a host name the certificate lists`;
  if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED')
    return certFile ? refusedCertificate(settings) : `the broker at ${address} requires a client certificate: set certFile and keyFile`;
  if (code.endsWith('_ALERT_CERTIFICATE_EXPIRED')) return `the broker says the client certificate ${certFile ?? ''} has expired: issue a new one`;
  if (/_ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|CERTIFICATE_REVOKED|ACCESS_DENIED|UNSUPPORTED_CERTIFICATE|HANDSHAKE_FAILURE)$/.test(code)) {
    return certFile
      ? refusedCertificate(settings)
      : `the broker at ${address} refused the TLS handshake (${code}): it may require a client certificate (certFile and keyFile)`;
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    if (url.startsWith('mqtt:') || url.startsWith('ws:'))
      return `${address} closed the connection (${code}): if this port expects TLS, use mqtts:// (or wss://)`;
    return certFile
      ? `${address} closed the connection during setup (${code}): ${refusedCertificate(settings)}`
      : `${address} closed the connection (${code}): it may require a client certificate (certFile and keyFile)`;
  }
  // MQTT.js writes its CONNECT at once, so a clear-text answer surfaces on that write: EPROTO, OpenSSL's reason in the message.
  if (
    code.startsWith('ERR_SSL_WRONG_VERSION_NUMBER') ||
    code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' ||
    (code === 'EPROTO' && /:(wrong version number|packet length too long):/.test(error.message))
  )
    return `${address} does not speak TLS: use mqtt:// (or ws://), or the broker's TLS port`;
  return `connection to ${url} failed (${code}): ${error.message.trim()}`;
}

function refusedCertificate(settings: MqttSettings): string {
  return `the broker refused the client certificate ${settings.certFile}: ${settings.refusedCertificateHint}`;
}

function hostAndPort(url: string): string {
  const parsed = new URL(url);
  const defaultPort = { 'mqtt:': 1883, 'mqtts:': 8883, 'ws:': 80, 'wss:': 443 }[parsed.protocol];
  return `${parsed.hostname}:${parsed.port || defaultPort}`;
}

// ---- settings -------------------------------------------------------------------------------

const URL_SCHEMES = ['mqtt:', 'mqtts:', 'ws:', 'wss:'];
const MAX_AWS_TOPIC_SLASHES = 7; // AWS IoT Core quota for topic names: 8 levels

/** Bytes of the PUBLISH packet for this topic and payload (MQTT 5 adds at least one byte of properties). */
function publishPacketBytes(topic: string, payload: string, settings: Pick<MqttSettings, 'qos' | 'protocolVersion'>): number {
  const remaining =
    2 + Buffer.byteLength(topic, 'utf8') + (settings.qos > 0 ? 2 : 0) + (settings.protocolVersion === 5 ? 1 : 0) + Buffer.byteLength(payload, 'utf8');
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  return 1 + lengthBytes + remaining;
}

const pemPath = (what: string) =>
  ({
    type: 'string',
    description: `${what} A path (absolute, or relative to the config file or workspace folder), never the file's contents.`,
    pattern: '^(?!-----BEGIN)',
    patternErrorMessage: 'Give the path of the file, not its contents.',
  }) as const;

/** What the mqtt and aws-iot sinks share: how and where each message is published. */
const publishOptions = {
  clientId: { type: 'string', description: 'MQTT client id (default: a random flespi-receiver-… id).' },
  protocolVersion: {
    type: 'integer',
    enum: [4, 5],
    default: 4,
    description:
      'MQTT protocol version: 4 (3.1.1) or 5. With 5 the broker says its maximum packet size and why it refuses a message, so such messages are dead-lettered instead of retried.',
  },
  qos: { type: 'integer', enum: [0, 1], default: 1, description: '0 = fire and forget, 1 = a batch succeeds only when the broker acknowledged every message.' },
  retain: { type: 'boolean', default: false, description: 'Publish retained messages.' },
  window: { type: 'integer', minimum: 1, maximum: 65_535, default: 100, description: 'Most publishes awaiting acknowledgement at once.' },
  connectTimeoutMs: { type: 'integer', minimum: 100, default: 10_000, description: 'How long to wait for the broker to accept the connection (ms).' },
  ackTimeoutMs: { type: 'integer', minimum: 100, default: 30_000, description: 'A batch fails when no acknowledgement arrived for this long (ms).' },
} as const satisfies OptionsSchema;

export const mqttOptions = {
  url: {
    type: 'string',
    required: true,
    description: 'The broker: an mqtt://, mqtts://, ws:// or wss:// URL, without credentials (use username and password).',
    pattern: '^(mqtts?|wss?)://',
    patternErrorMessage: 'An mqtt://, mqtts://, ws:// or wss:// URL.',
    examples: ['mqtts://broker.example.com:8883'],
  },
  topic: {
    type: 'string',
    default: DEFAULT_MQTT_TOPIC,
    description: "Topic template; {field} is replaced by that message parameter (a missing one by 'unknown'). Not under flespi/ on flespi's own broker.",
  },
  username: { type: 'string', description: 'MQTT username.' },
  password: { type: 'string', description: 'MQTT password (needs username). Keep it out of files: prefer passwordEnv (or, in VS Code, the secret storage).' },
  passwordEnv: { type: 'string', description: 'The environment variable holding the MQTT password (instead of password).' },
  ...publishOptions,
  caFile: pemPath("CA certificate (PEM) that signed the broker's certificate, when it is not a CA this computer trusts."),
  certFile: pemPath('Client certificate (PEM), with keyFile; needs a TLS url (mqtts:// or wss://).'),
  keyFile: pemPath('Private key (PEM) of the client certificate.'),
} as const satisfies OptionsSchema;

export const awsIotOptions = {
  endpoint: {
    type: 'string',
    required: true,
    description:
      'Your AWS IoT device data endpoint (AWS IoT → Settings), e.g. abc123-ats.iot.eu-west-1.amazonaws.com: a host name, without scheme, port or path.',
    pattern: '^[A-Za-z0-9.-]+$',
    patternErrorMessage: 'The host name only, without scheme, port or path.',
  },
  port: {
    type: 'integer',
    minimum: 1,
    maximum: 65_535,
    default: 8883,
    examples: [8883, 443],
    description: '8883, or 443 (MQTT over TLS with ALPN, for networks that allow only HTTPS).',
  },
  topic: {
    type: 'string',
    default: '{ident}',
    description: `Topic template; {field} is replaced by that message parameter. At most ${MAX_AWS_TOPIC_SLASHES} slashes.`,
  },
  ...publishOptions,
  caFile: pemPath("CA certificate (PEM) that signed the endpoint's certificate (AWS IoT's Amazon Root CA 1 is one this computer trusts)."),
  certFile: { ...pemPath('The device certificate (PEM) downloaded from AWS IoT.'), required: true },
  keyFile: { ...pemPath('Private key (PEM) of the device certificate.'), required: true },
} as const satisfies OptionsSchema;

/** `type: "mqtt"`: any MQTT 3.1.1 or 5 broker. */
export const mqttSpec: HandlerSpec = {
  type: 'mqtt',
  title: 'MQTT broker: publish each message as JSON to a topic built from its fields',
  options: mqttOptions,
  create(options: Options, env: HandlerEnv, name: string) {
    const where = `handler "${name}" (mqtt)`;
    const r = new OptionReader(options, where);
    const { text: url, parsed } = r.url('url', URL_SCHEMES, 'mqtts://broker.example.com:8883', 'use "username" and "password" (or "passwordEnv")');
    const tlsFiles = readTlsFileSettings(r, where, env);
    if (!parsed.protocol.endsWith('s:') && (tlsFiles.caFile || tlsFiles.certFile)) {
      throw new ConfigError(`${where}: caFile/certFile/keyFile need a TLS url (mqtts:// or wss://), got ${JSON.stringify(url)}`);
    }
    const username = r.option('username', mqttOptions.username);
    const password = readPassword(r, where);
    if (password !== undefined && username === undefined) throw new ConfigError(`${where}: a password needs a "username" too`);
    const topicDefaulted = options.topic === undefined;
    const common = commonSettings(r, where, mqttOptions.topic.default, MAX_MQTT_TOPIC_BYTES);
    if (isFlespiBroker(url) && common.topic.source.startsWith(FLESPI_NAMESPACE)) {
      throw new ConfigError(
        `${where}: "topic" ${JSON.stringify(common.topic.source)} is under flespi/, which flespi's broker (${parsed.hostname}) keeps for the platform: it discards what clients publish there (and still acknowledges it over MQTT 3.1.1), so nothing would arrive. Use a topic outside flespi/, e.g. ${JSON.stringify(DEFAULT_MQTT_TOPIC)}`,
      );
    }
    const settings: MqttSettings = {
      url,
      addressSetting: 'url',
      ...tlsFiles,
      username,
      password,
      ...common,
      topicDefaulted,
      refusedCertificateHint: 'is it signed by a CA the broker trusts?',
    };
    r.rejectUnknown(['type', 'name']);
    return new MqttHandler(settings, name);
  },
};

/** `type: "aws-iot"`: AWS IoT Core with an X.509 client certificate. */
export const awsIotSpec: HandlerSpec = {
  type: 'aws-iot',
  title: 'AWS IoT Core: publish each message as JSON over MQTT with a device certificate',
  options: awsIotOptions,
  create(options: Options, env: HandlerEnv, name: string) {
    const where = `handler "${name}" (aws-iot)`;
    const r = new OptionReader(options, where);
    const endpoint = r.option('endpoint', awsIotOptions.endpoint);
    if (!new RegExp(awsIotOptions.endpoint.pattern).test(endpoint)) {
      throw new ConfigError(
        `${where}: "endpoint" must be the host name from AWS IoT → Settings (like abc123-ats.iot.eu-west-1.amazonaws.com), without scheme, port or path; got ${JSON.stringify(endpoint)}`,
      );
    }
    const port = r.option('port', awsIotOptions.port);
    const tlsFiles = readTlsFileSettings(r, where, env);
    if (!tlsFiles.certFile)
      throw new ConfigError(`${where}: "certFile" and "keyFile" are required: the device certificate and private key downloaded from AWS IoT`);
    const common = commonSettings(r, where, awsIotOptions.topic.default, MAX_AWS_TOPIC_BYTES);
    const slashes = common.topic.source.split('/').length - 1;
    if (slashes > MAX_AWS_TOPIC_SLASHES) throw new ConfigError(`${where}: "topic" has ${slashes} slashes; AWS IoT allows at most ${MAX_AWS_TOPIC_SLASHES}`);
    const settings: MqttSettings = {
      url: `mqtts://${endpoint}:${port}`,
      addressSetting: 'endpoint',
      ...tlsFiles,
      ...common,
      // Port 443 carries MQTT only when the client asks for it by ALPN.
      alpnProtocols: port === 443 ? ['x-amzn-mqtt-ca'] : undefined,
      refusedCertificateHint: 'is it registered and active in AWS IoT (in this region), with a policy that allows iot:Connect for this clientId?',
    };
    r.rejectUnknown(['type', 'name']);
    return new MqttHandler(settings, name);
  },
};

function commonSettings(r: OptionReader, where: string, defaultTopic: string, maxTopicBytes: number) {
  return {
    clientId: r.option('clientId', publishOptions.clientId) ?? `flespi-receiver-${randomBytes(3).toString('hex')}`,
    protocolVersion: r.option('protocolVersion', publishOptions.protocolVersion) as 4 | 5,
    topic: parseTopicTemplate(r.string('topic', defaultTopic), `${where}: "topic"`, maxTopicBytes),
    qos: r.option('qos', publishOptions.qos) as 0 | 1,
    retain: r.option('retain', publishOptions.retain),
    window: r.option('window', publishOptions.window),
    connectTimeoutMs: r.option('connectTimeoutMs', publishOptions.connectTimeoutMs),
    ackTimeoutMs: r.option('ackTimeoutMs', publishOptions.ackTimeoutMs),
  };
}

function readTlsFileSettings(r: OptionReader, where: string, env: HandlerEnv): Pick<MqttSettings, 'caFile' | 'certFile' | 'keyFile'> {
  const path = (key: 'caFile' | 'certFile' | 'keyFile') => {
    const value = r.option(key, mqttOptions[key]);
    if (value === undefined) return undefined;
    if (value.includes('-----BEGIN') || value.includes('\n'))
      throw new ConfigError(`${where}: "${key}" must be the path of a PEM file, not the file's contents`);
    return env.resolvePath(value);
  };
  const caFile = path('caFile');
  const certFile = path('certFile');
  const keyFile = path('keyFile');
  if (Boolean(certFile) !== Boolean(keyFile))
    throw new ConfigError(`${where}: "certFile" and "keyFile" go together: set both (the client certificate and its private key) or neither`);
  return { caFile, certFile, keyFile };
}

/** `password` (e.g. from the extension's secret storage) or `passwordEnv`, the name of an environment variable holding it. */
function readPassword(r: OptionReader, where: string): string | undefined {
  const inline = r.option('password', mqttOptions.password);
  const envName = r.option('passwordEnv', mqttOptions.passwordEnv);
  if (inline !== undefined && envName !== undefined) throw new ConfigError(`${where}: set "password" or "passwordEnv", not both`);
  if (envName === undefined) return inline;
  const value = process.env[envName];
  if (!value) throw new ConfigError(`${where}: "passwordEnv" names the environment variable ${envName}, which is not set`);
  return value;
}
