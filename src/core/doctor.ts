/**
 * `doctor`: read-only checks of what this project assumes about the flespi account it talks to
 * (docs/flespi-assumptions.md names each assumption and the check that looks at it). Every check ends
 * in pass / warn / fail (or skip, when what it needs failed) with what it found and what to do.
 *
 * Nothing here writes to flespi: no `delete`, no publish, a clean MQTT session that leaves nothing
 * behind. Every request and the MQTT connection are bounded in time, and the whole run is cut off at
 * `DOCTOR_DEADLINE_MS`, so it ends in well under a minute even against a server that never answers.
 * The REST probes use plain HTTP (Node's fetch) rather than FlespiClient: the doctor reports what
 * the server says (status, `Date`, rate-limit headers), not what the client makes of it.
 */
import mqtt, { type IConnackPacket, type MqttClient } from 'mqtt';
import { deadline } from './deadline';
import { subackRefusal } from './flespi/subscription';
import { randomBytes } from 'node:crypto';
import { isLoopbackHost, redactUrl } from './security';

export type DoctorStatus = 'pass' | 'warn' | 'fail' | 'skip';

export type DoctorCheckId = 'token' | 'channel' | 'read-by-key' | 'read-by-time' | 'long-poll' | 'mqtt' | 'mqtt-share' | 'clock' | 'buffer' | 'rate-limit';

/** The checks in the order they are reported, with what each looks at. */
export const DOCTOR_CHECKS: readonly { id: DoctorCheckId; title: string }[] = [
  { id: 'token', title: 'the token is valid; its type and ACL' },
  { id: 'channel', title: 'the channel is visible, readable and not blocked' },
  { id: 'read-by-key', title: 'reading the channel buffer by key (curr_key / next_key)' },
  { id: 'read-by-time', title: 'reading channel messages by time (from / to / count on server.timestamp)' },
  { id: 'long-poll', title: 'a long-poll returns when a message arrives, or after its timeout' },
  { id: 'mqtt', title: 'MQTT (over TLS on flespi) connects and subscribes to the channel topic' },
  { id: 'mqtt-share', title: 'shared subscriptions ($share) are accepted' },
  { id: 'clock', title: "the local clock against the server's Date header" },
  { id: 'buffer', title: "the channel buffer's fill against its limit (delete off)" },
  { id: 'rate-limit', title: 'rate-limit answers and headers' },
];

export interface DoctorCheck {
  id: DoctorCheckId;
  status: DoctorStatus;
  /** What the check found. */
  finding: string;
  /** What to do about it; absent when nothing needs doing. */
  advice?: string;
  ms: number;
}

export interface DoctorReport {
  restUrl: string;
  mqttUrl?: string;
  channel?: { id: number; name: string };
  checks: DoctorCheck[];
  /** True when no check failed (warnings allowed). */
  ok: boolean;
  ms: number;
}

export interface DoctorOptions {
  /** The REST base URL, e.g. https://flespi.io or a sandbox's. */
  restUrl: string;
  /** The MQTT broker URL; without it the MQTT checks are skipped (flespi's own URLs are known from the REST URL). */
  mqttUrl?: string;
  /** The token, bare or with the `FlespiToken ` prefix. Never appears in the report. */
  token: string;
  /** A channel id or exact name; default: the account's only (or first) channel. */
  channel?: string;
  /** Talking to this project's sandbox: findings say where it differs from flespi. */
  sandbox?: boolean;
  /** Sent as `x-flespi-app`. */
  appName?: string;
  /** Each check as it ends (for progress output). */
  onCheck?(check: DoctorCheck): void;
  signal?: AbortSignal;
  /** Time limits, for tests; defaults below. */
  limits?: Partial<DoctorLimits>;
}

export interface DoctorLimits {
  /** One REST request, start to last byte (long-polls get their wait on top). */
  requestMs: number;
  /** The `timeout` of the long-poll check, in seconds. */
  longPollSeconds: number;
  /** Connecting to the MQTT broker (TCP, TLS, CONNACK). */
  mqttConnectMs: number;
  /** Waiting for a SUBACK. */
  mqttSubscribeMs: number;
  /** Waiting for a message after subscribing. */
  mqttMessageMs: number;
  /** The whole run. */
  totalMs: number;
}

export const DOCTOR_LIMITS: Readonly<DoctorLimits> = {
  requestMs: 6_000,
  longPollSeconds: 5,
  mqttConnectMs: 8_000,
  mqttSubscribeMs: 5_000,
  mqttMessageMs: 5_000,
  totalMs: 45_000,
};

/** The smallest channel buffer of a flespi plan (free accounts); commercial ones have 10 GB. */
export const FREE_BUFFER_KB = 100 * 1024;
/**
 * Clock skew beyond CLOCK_WARN_S is reported: times the user enters or sees are off by it. Beyond
 * CLOCK_FAIL_S it fails: the gap fills read 300 s past their idea of flespi's "now" (the live tail's
 * by the local clock), so a larger skew can lose messages after a reconnect (assumption T5).
 */
const CLOCK_WARN_S = 2;
const CLOCK_FAIL_S = 300;
/** Pages read to find the end of a channel buffer for the long-poll check. */
const END_PAGES = 3;
const PAGE_COUNT = 1000;
/** Body caps: a page of PAGE_COUNT messages, and everything else. */
const PAGE_BODY_BYTES = 32 * 1024 * 1024;
const BODY_BYTES = 4 * 1024 * 1024;
/** A 429 with no or a short Retry-After is retried once after this long at most. */
const RETRY_429_MAX_MS = 3_000;

/** flespi's MQTT brokers, by REST base URL (docs/flespi-assumptions.md M1). */
const FLESPI_BROKERS: Readonly<Record<string, string>> = {
  'https://flespi.io': 'mqtts://mqtt.flespi.io:8883',
  'https://ru.flespi.io': 'mqtts://ru-mqtt.flespi.io:8883',
};

/** The MQTT broker of a flespi REST URL; undefined for any other server (a sandbox, a proxy). */
export function flespiBrokerFor(restUrl: string): string | undefined {
  return FLESPI_BROKERS[restUrl.replace(/\/+$/, '')];
}

/** Block codes of `blocked` (flespi's 2018 customer limits). */
const BLOCK_REASONS: Readonly<Record<number, string>> = {
  1: 'too many items',
  2: 'too frequent in a timeframe',
  3: 'too much traffic in a timeframe',
  4: 'too much storage used',
  5: 'item quantity out of the limit',
};

// ---------------------------------------------------------------- REST probing

interface Answer {
  status: number;
  headers: Headers;
  /** The parsed JSON body when it is an object, else undefined. */
  body: Record<string, unknown> | undefined;
  text: string;
  ms: number;
}

class ProbeError extends Error {
  constructor(
    readonly kind: 'network' | 'timeout' | 'too-large' | 'aborted',
    message: string,
  ) {
    super(message);
  }
}

interface ClockSample {
  /** Server time from `Date` (start of its second) minus the local time halfway through the request, ms. */
  skewMs: number;
  rttMs: number;
}

/** Plain HTTP to the REST API that records every `Date` and rate-limit header it sees. */
class Rest {
  readonly clock: ClockSample[] = [];
  readonly rateHeaders = new Map<string, string>();
  answers = 0;
  tooMany: { retryAfter?: string }[] = [];
  private readonly headers: Record<string, string>;

  constructor(
    readonly baseUrl: string,
    token: string,
    appName: string,
    private readonly signal: AbortSignal,
    private readonly requestMs: number,
  ) {
    this.headers = { Authorization: `FlespiToken ${token}`, Accept: 'application/json', 'x-flespi-app': appName.slice(0, 63) };
  }

  /** GET with `data` as URL-encoded JSON (flespi's message parameters). */
  data(path: string, data: Record<string, unknown>, options: { waitMs?: number; maxBytes?: number } = {}): Promise<Answer> {
    return this.get(`${path}?data=${encodeURIComponent(JSON.stringify(data))}`, options);
  }

  /** One GET; a 429 is retried once when its Retry-After (or none) allows it within a few seconds. */
  async get(path: string, options: { waitMs?: number; maxBytes?: number } = {}): Promise<Answer> {
    let answer = await this.once(path, options);
    if (answer.status === 429) {
      const wait = retryAfterMs(answer.headers.get('retry-after'));
      if (wait !== undefined && wait <= RETRY_429_MAX_MS) {
        await sleep(wait, this.signal);
        answer = await this.once(path, options);
      }
    }
    return answer;
  }

  private async once(path: string, options: { waitMs?: number; maxBytes?: number }): Promise<Answer> {
    if (this.signal.aborted) throw new ProbeError('aborted', 'the doctor was stopped');
    const deadlineMs = this.requestMs + (options.waitMs ?? 0);
    const limit = deadline(deadlineMs, this.signal);
    const started = Date.now();
    try {
      const response = await fetch(`${this.baseUrl}${path}`, { headers: this.headers, signal: limit.signal, redirect: 'manual' });
      const text = await readCapped(response, options.maxBytes ?? BODY_BYTES);
      const ended = Date.now();
      this.observe(response, started, ended);
      let parsed: unknown;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      const body = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
      return { status: response.status, headers: response.headers, body, text, ms: ended - started };
    } catch (error) {
      if (error instanceof ProbeError) throw error;
      if (this.signal.aborted) throw new ProbeError('aborted', 'the doctor was stopped');
      if (limit.passed) throw new ProbeError('timeout', `no complete answer from ${this.baseUrl} within ${seconds(deadlineMs)} s`);
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new ProbeError(
        'network',
        `cannot reach ${this.baseUrl} (${cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error))})`,
      );
    } finally {
      limit.dispose();
    }
  }

  private observe(response: Response, started: number, ended: number): void {
    this.answers++;
    const date = response.headers.get('date');
    const serverMs = date ? Date.parse(date) : NaN;
    // `Date` has whole seconds: the server's time was somewhere in [date, date + 1 s).
    if (Number.isFinite(serverMs)) this.clock.push({ skewMs: serverMs + 500 - (started + ended) / 2, rttMs: ended - started });
    response.headers.forEach((value, name) => {
      if (/^(x-)?rate-?limit|^retry-after$|^x-flespi-(limit|quota)/i.test(name)) this.rateHeaders.set(name.toLowerCase(), value);
    });
    if (response.status === 429) this.tooMany.push({ retryAfter: response.headers.get('retry-after') ?? undefined });
  }
}

async function readCapped(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new ProbeError('too-large', `the answer was larger than ${Math.round(maxBytes / 1024 / 1024)} MiB and was dropped`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function retryAfterMs(header: string | null): number | undefined {
  if (header === null || header.trim() === '') return 1000;
  const value = Number(header);
  if (Number.isFinite(value) && value >= 0) return value * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

function seconds(ms: number): string {
  return (Math.round(ms / 100) / 10).toFixed(1);
}

/** `errors[].reason` texts of an envelope, quoted, with codes. */
function reasons(answer: Answer): string {
  const errors = Array.isArray(answer.body?.errors) ? (answer.body.errors as Record<string, unknown>[]) : [];
  const texts = errors.map((e) => `${typeof e.reason === 'string' ? e.reason : 'error'}${e.code !== undefined ? ` (code ${String(e.code)})` : ''}`);
  if (texts.length > 0) return `: ${texts.join('; ').slice(0, 300)}`;
  const flat = answer.text.replace(/\s+/g, ' ').trim();
  return flat === '' ? '' : `: "${flat.slice(0, 80)}${flat.length > 80 ? '…' : ''}"`;
}

function envelopeErrors(answer: Answer): Record<string, unknown>[] {
  return Array.isArray(answer.body?.errors) ? (answer.body.errors as Record<string, unknown>[]) : [];
}

/** A check's verdict on an answer that is not a plain success: what went wrong, generically. */
function unexpected(answer: Answer, what: string, baseUrl: string): Omit<DoctorCheck, 'id' | 'ms'> {
  const s = answer.status;
  if (s === 401)
    return {
      status: 'fail',
      finding: `flespi rejected the token on ${what} (401${reasons(answer)})`,
      advice: 'check the token at https://flespi.io/#/panel/tokens and set a valid one',
    };
  if (s === 403)
    return {
      status: 'fail',
      finding: `flespi refused ${what} (403${reasons(answer)})`,
      advice: "the token or account is blocked (account limits), or the token's ACL does not allow it: check both in the flespi panel",
    };
  if (s === 429)
    return {
      status: 'warn',
      finding: `flespi rate-limited ${what} (429${reasons(answer)})`,
      advice: 'too many requests for this account right now: run the doctor again in a minute',
    };
  if (s >= 300 && s < 400)
    return {
      status: 'fail',
      finding: `${baseUrl} redirected ${what} (${s} to ${answer.headers.get('location') ?? 'nowhere'})`,
      advice: 'the base URL is not the flespi REST API: use https://flespi.io or https://ru.flespi.io',
    };
  if (s >= 500)
    return {
      status: 'fail',
      finding: `server error on ${what} (${s}${reasons(answer)})`,
      advice: 'usually temporary: run the doctor again later, and see https://status.flespi.io',
    };
  if (!answer.body)
    return {
      status: 'fail',
      finding: `${baseUrl} answered ${what} with ${s} and no flespi JSON${reasons(answer)}`,
      advice: 'the base URL (or region) does not point at the flespi REST API: use https://flespi.io or https://ru.flespi.io',
    };
  return { status: 'fail', finding: `unexpected answer to ${what} (${s}${reasons(answer)})` };
}

function probeFailure(error: unknown, what: string): Omit<DoctorCheck, 'id' | 'ms'> {
  if (error instanceof ProbeError) {
    if (error.kind === 'timeout')
      return { status: 'fail', finding: `${what}: ${error.message}`, advice: 'the server is slow or unreachable: check the base URL and your network' };
    if (error.kind === 'too-large')
      return { status: 'fail', finding: `${what}: ${error.message}`, advice: 'check that the base URL points at the flespi REST API' };
    if (error.kind === 'aborted') return { status: 'skip', finding: `${what}: stopped` };
    return { status: 'fail', finding: `${what}: ${error.message}`, advice: 'check the base URL / region and your network' };
  }
  return { status: 'fail', finding: `${what}: ${error instanceof Error ? error.message : String(error)}` };
}

// ---------------------------------------------------------------- the run

interface Shared {
  rest: Rest;
  options: DoctorOptions;
  limits: DoctorLimits;
  token: string;
  channel?: { id: number; name: string; item: Record<string, unknown> };
  /** A hard failure of the token check: the REST checks after it would only repeat it. */
  restDown?: string;
  keyReading?: { ok: boolean; nextKey?: number; firstServerTs?: number };
  newestServerTs?: number;
}

type CheckBody = (shared: Shared, signal: AbortSignal) => Promise<Omit<DoctorCheck, 'id' | 'ms'>>;

/** Runs the doctor's checks; never throws for what the server does (that is in the report). */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const limits: DoctorLimits = { ...DOCTOR_LIMITS, ...options.limits };
  const started = Date.now();
  const token = options.token.trim().replace(/^FlespiToken\s+/i, '');
  const restUrl = options.restUrl.replace(/\/+$/, '');
  const total = new AbortController();
  let deadlinePassed = false;
  const totalTimer = setTimeout(() => {
    deadlinePassed = true;
    total.abort();
  }, limits.totalMs);
  const onOuterAbort = () => total.abort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const mqttUrl = options.mqttUrl ?? flespiBrokerFor(restUrl);
  const shared: Shared = {
    rest: new Rest(restUrl, token, options.appName ?? 'flespi-receiver-doctor', total.signal, limits.requestMs),
    options: { ...options, mqttUrl },
    limits,
    token,
  };
  const results = new Map<DoctorCheckId, DoctorCheck>();
  const clean = (text: string) => redactSecret(redactUrl(text), token);

  const record = (id: DoctorCheckId, outcome: Omit<DoctorCheck, 'id' | 'ms'>, ms: number) => {
    const check: DoctorCheck = { id, status: outcome.status, finding: clean(outcome.finding), ms };
    if (outcome.advice) check.advice = clean(outcome.advice);
    results.set(id, check);
    options.onCheck?.(check);
  };

  /** Runs one check within `limitMs` (and the whole run's deadline); a check that overruns fails. */
  const run = async (id: DoctorCheckId, limitMs: number, body: CheckBody): Promise<void> => {
    const t0 = Date.now();
    const own = new AbortController();
    const onTotal = () => own.abort();
    total.signal.addEventListener('abort', onTotal, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const overrun = new Promise<Omit<DoctorCheck, 'id' | 'ms'>>((resolve) => {
      const left = Math.max(0, limits.totalMs - (Date.now() - started));
      const ms = Math.min(limitMs, left);
      timer = setTimeout(
        () =>
          resolve({
            status: 'fail',
            finding: `no result within ${seconds(ms)} s`,
            advice: 'the server is slow or does not answer: check the URL and your network, then run the doctor again',
          }),
        ms,
      );
    });
    try {
      const outcome = total.signal.aborted
        ? {
            status: deadlinePassed ? ('fail' as const) : ('skip' as const),
            finding: `not run: ${deadlinePassed ? `the doctor's ${seconds(limits.totalMs)} s were up` : 'stopped'}`,
          }
        : await Promise.race([body(shared, own.signal).catch((error: unknown) => probeFailure(error, 'the check failed')), overrun]);
      // A check stopped by the run's deadline did not finish: that is a failure, not a skip.
      const cut =
        deadlinePassed && outcome.status === 'skip'
          ? {
              status: 'fail' as const,
              finding: `did not finish within the doctor's ${seconds(limits.totalMs)} s`,
              advice: 'the server is slow: check your network, then run the doctor again',
            }
          : outcome;
      record(id, cut, Date.now() - t0);
    } finally {
      clearTimeout(timer);
      own.abort();
      total.signal.removeEventListener('abort', onTotal);
    }
  };
  const skip = (id: DoctorCheckId, why: string) => record(id, { status: 'skip', finding: why }, 0);

  try {
    await run('token', limits.requestMs * 2 + RETRY_429_MAX_MS, checkToken);
    if (shared.restDown) {
      for (const id of ['channel', 'read-by-key', 'read-by-time', 'long-poll', 'buffer'] as const) skip(id, `not run: ${shared.restDown}`);
    } else {
      await run('channel', limits.requestMs * 3 + RETRY_429_MAX_MS, checkChannel);
    }
    const noChannel = shared.channel ? undefined : 'not run: no readable channel (see channel)';
    const keyThenPoll = async () => {
      if (shared.restDown) return;
      if (noChannel) return ['read-by-key', 'long-poll'].forEach((id) => skip(id as DoctorCheckId, noChannel));
      await run('read-by-key', limits.requestMs * 2 + RETRY_429_MAX_MS, checkReadByKey);
      if (!shared.keyReading?.ok) return skip('long-poll', 'not run: flespi long-polls only key-based reads, and those did not work (see read-by-key)');
      await run('long-poll', limits.requestMs * (END_PAGES + 1) + limits.longPollSeconds * 2000 + 4_000, checkLongPoll);
    };
    const byTime = async () => {
      if (shared.restDown) return;
      if (noChannel) return skip('read-by-time', noChannel);
      await run('read-by-time', limits.requestMs * 2 + RETRY_429_MAX_MS, checkReadByTime);
    };
    const overMqtt = async () => {
      if (!mqttUrl) {
        const why = 'not run: no MQTT URL for this server (give --mqtt-url, or flespi.mqttUrl in VS Code)';
        return ['mqtt', 'mqtt-share'].forEach((id) => skip(id as DoctorCheckId, why));
      }
      if (!shared.channel) {
        const why = shared.restDown ? `not run: ${shared.restDown}` : noChannel!;
        return ['mqtt', 'mqtt-share'].forEach((id) => skip(id as DoctorCheckId, why));
      }
      await checkMqtt(shared, mqttUrl, run, record);
    };
    await Promise.all([keyThenPoll(), byTime(), overMqtt()]);
    if (!shared.restDown) {
      if (shared.channel) record('buffer', checkBuffer(shared), 0);
      else skip('buffer', noChannel!);
    }
    record('clock', checkClock(shared), 0);
    record('rate-limit', checkRateLimit(shared), 0);
  } finally {
    clearTimeout(totalTimer);
    options.signal?.removeEventListener('abort', onOuterAbort);
    total.abort();
  }
  const checks = DOCTOR_CHECKS.map(({ id }) => results.get(id) ?? { id, status: 'skip' as const, finding: 'not run', ms: 0 });
  return {
    restUrl: redactUrl(restUrl),
    mqttUrl: mqttUrl ? redactUrl(mqttUrl) : undefined,
    channel: shared.channel ? { id: shared.channel.id, name: clean(shared.channel.name) } : undefined,
    checks,
    ok: checks.every((c) => c.status !== 'fail'),
    ms: Date.now() - started,
  };
}

/** The token, bare or prefixed, never shows: a hostile server could echo it in a reason. */
function redactSecret(text: string, token: string): string {
  return token.length >= 4 ? text.split(token).join('<token>') : text;
}

// ---------------------------------------------------------------- token

const checkToken: CheckBody = async (shared) => {
  let answer: Answer;
  try {
    answer = await shared.rest.get('/auth/info');
  } catch (error) {
    shared.restDown = `the REST API did not answer (see token)`;
    return probeFailure(error, 'GET /auth/info');
  }
  if (answer.status !== 200 || !Array.isArray(answer.body?.result)) {
    const verdict = unexpected(answer, 'GET /auth/info', shared.rest.baseUrl);
    if (answer.status === 401 || answer.status === 403 || verdict.status === 'fail') shared.restDown = 'the token check failed (see token)';
    if (answer.status === 200)
      return {
        status: 'fail',
        finding: `GET /auth/info answered 200 without a "result" array${reasons(answer)}`,
        advice: 'the base URL does not point at the flespi REST API: use https://flespi.io or https://ru.flespi.io',
      };
    return verdict;
  }
  const info = (answer.body.result as unknown[])[0];
  if (typeof info !== 'object' || info === null) return { status: 'warn', finding: 'flespi accepted the token but /auth/info listed nothing about it' };
  const item = info as Record<string, unknown>;
  const access = (typeof item.access === 'object' && item.access !== null ? item.access : {}) as Record<string, unknown>;
  const types: Record<number, string> = { 0: 'standard', 1: 'master', 2: 'ACL' };
  const type = typeof access.type === 'number' ? (types[access.type] ?? `type ${access.type}`) : 'of unknown type';
  const parts = [
    `flespi accepted the token (${type}${typeof item.id === 'number' ? `, id ${item.id}` : ''}${typeof item.cid === 'number' ? `, account ${item.cid}` : ''})`,
  ];
  if (item.enabled === false)
    return { status: 'fail', finding: `${parts[0]} but it is disabled`, advice: 'enable the token at https://flespi.io/#/panel/tokens' };
  // A token stays valid while its `expire` has not passed or its `ttl` since last use runs: only an
  // `expire` with no `ttl` behind it ends it at a known time (https://flespi.com/kb/how-to-create-complex-flespi-token).
  const ttl = typeof item.ttl === 'number' ? item.ttl : 0;
  if (typeof item.expire === 'number' && item.expire > 0 && ttl === 0) {
    const days = (item.expire - Date.now() / 1000) / 86400;
    const when = new Date(item.expire * 1000).toISOString();
    if (days < 7)
      return {
        status: 'warn',
        finding: `${parts[0]}; it expires ${days <= 0 ? `at ${when}, which has passed by the local clock` : `in ${days.toFixed(1)} days (${when})`}`,
        advice: 'extend it (expire or ttl) or create a new token at https://flespi.io/#/panel/tokens before then',
      };
    parts.push(`expires ${when.slice(0, 10)}`);
  }
  if (access.type === 2) {
    const acl = Array.isArray(access.acl) ? (access.acl as Record<string, unknown>[]) : [];
    const uris = acl.map((entry) => (typeof entry?.uri === 'string' ? entry.uri : undefined)).filter((u): u is string => u !== undefined);
    parts.push(uris.length > 0 ? `ACL grants ${uris.slice(0, 6).join(', ')}${uris.length > 6 ? ', …' : ''}` : 'ACL entries not listed');
    if (uris.length > 0 && !uris.some((u) => /^(gw\/channels|gw\/?$|gw\/\*)/.test(u) || u === '*')) {
      return {
        status: 'warn',
        finding: `${parts.join('; ')}: none of them is gw/channels`,
        advice: "give the token's ACL read access to gw/channels (and the MQTT topic flespi/message/gw/channels/...) at https://flespi.io/#/panel/tokens",
      };
    }
  }
  return { status: 'pass', finding: parts.join('; ') };
};

// ---------------------------------------------------------------- channel

const CHANNEL_FIELDS = ['id', 'name', 'protocol_name', 'enabled', 'blocked', 'messages_ttl', 'messages_size'];
const MINIMAL_FIELDS = ['id', 'name'];

const checkChannel: CheckBody = async (shared) => {
  const { rest, options } = shared;
  const wanted = options.channel?.trim();
  let id: number | undefined;
  let note = '';
  if (wanted !== undefined && /^\d+$/.test(wanted)) {
    id = Number(wanted);
  } else {
    const answer = await rest.get(`/gw/channels/all?fields=${MINIMAL_FIELDS.join(',')}`);
    if (answer.status !== 200 || !Array.isArray(answer.body?.result)) return unexpected(answer, 'GET /gw/channels/all', rest.baseUrl);
    const channels = (answer.body.result as Record<string, unknown>[]).filter((c) => typeof c?.id === 'number');
    if (wanted !== undefined) {
      const named = channels.filter((c) => c.name === wanted);
      if (named.length !== 1) {
        return {
          status: 'fail',
          finding: named.length === 0 ? `no channel named "${wanted}" is visible to this token` : `${named.length} channels are named "${wanted}"`,
          advice: 'pass the channel id (list them with `flespi-receiver channels`)',
        };
      }
      id = named[0]!.id as number;
    } else {
      if (channels.length === 0)
        return {
          status: 'fail',
          finding: 'the token sees no channel',
          advice: "create a channel at https://flespi.io/#/panel/channels, or give the token's ACL access to one",
        };
      id = channels[0]!.id as number;
      if (channels.length > 1 && !options.sandbox) note = ` (the first of ${channels.length} channels: name another one to check it)`;
    }
  }
  let answer = await rest.get(`/gw/channels/${id}?fields=${CHANNEL_FIELDS.join(',')}`);
  let refusedFields = '';
  if (answer.status === 400) {
    // A field flespi no longer has is a 400 for the whole request (assumption L3): ask for the minimum.
    refusedFields = reasons(answer);
    answer = await rest.get(`/gw/channels/${id}?fields=${MINIMAL_FIELDS.join(',')}`);
  }
  const items = Array.isArray(answer.body?.result) ? (answer.body.result as Record<string, unknown>[]) : [];
  const errors = envelopeErrors(answer);
  if (answer.status === 404 || (answer.status === 200 && items.length === 0)) {
    const form = answer.status === 404 ? '404' : errors.length > 0 ? '200 with errors' : '200 with an empty result';
    return {
      status: 'fail',
      finding: `channel ${id} is not visible to this token (${form}${reasons(answer)})`,
      advice: "check the id (`flespi-receiver channels` lists them) and the token's ACL",
    };
  }
  if (answer.status !== 200) return unexpected(answer, `GET /gw/channels/${id}`, rest.baseUrl);
  const item = items.find((c) => c.id === id) ?? items[0]!;
  const name = typeof item.name === 'string' ? item.name : `channel ${id}`;
  shared.channel = { id, name, item };
  const protocol = typeof item.protocol_name === 'string' ? ` (${item.protocol_name})` : '';
  const base = `channel ${id} "${name}"${protocol} is visible${note}`;
  if (typeof item.blocked === 'number' && item.blocked !== 0) {
    return {
      status: 'fail',
      finding: `${base} but flespi has blocked it (blocked ${item.blocked}: ${BLOCK_REASONS[item.blocked] ?? 'unknown reason'})`,
      advice: 'a full buffer or an account limit blocks a channel: read and delete its messages, or raise the limit; see https://flespi.io/#/panel',
    };
  }
  if (refusedFields) {
    return {
      status: 'warn',
      finding: `${base}, but flespi refused the fields ${CHANNEL_FIELDS.slice(2).join(', ')}${refusedFields}`,
      advice: 'the channels tree and the buffer check ask for some of these fields: report this answer (docs/flespi-assumptions.md L3)',
    };
  }
  if (item.enabled === false)
    return { status: 'warn', finding: `${base} but disabled: it receives nothing new`, advice: 'enable it in the flespi panel if trackers should send to it' };
  return {
    status: 'pass',
    finding: `${base}; not blocked; messages kept ${typeof item.messages_ttl === 'number' ? `${item.messages_ttl} s` : 'for an unknown time'}`,
  };
};

// ---------------------------------------------------------------- reading

function messagesPath(shared: Shared): string {
  return `/gw/channels/${shared.channel!.id}/messages`;
}

/** The first message that is not a JSON object with a numeric `server.timestamp`, described. */
function badMessage(messages: unknown[]): string | undefined {
  for (const [index, message] of messages.entries()) {
    if (typeof message !== 'object' || message === null || Array.isArray(message)) return `message ${index + 1} is not a JSON object`;
    if (typeof (message as Record<string, unknown>)['server.timestamp'] !== 'number') return `message ${index + 1} has no numeric server.timestamp`;
  }
  return undefined;
}

const checkReadByKey: CheckBody = async (shared) => {
  const answer = await shared.rest.data(messagesPath(shared), { curr_key: 0, limit_count: 1 });
  const errors = envelopeErrors(answer);
  const result = Array.isArray(answer.body?.result) ? (answer.body.result as unknown[]) : undefined;
  if (answer.status === 400 || (answer.status === 200 && errors.length > 0 && (!result || result.length === 0))) {
    shared.keyReading = { ok: false };
    return {
      status: 'warn',
      finding: `flespi refused key-based reading (curr_key / limit_count) with ${answer.status}${reasons(answer)}`,
      advice:
        'the REST source (source type "rest", the CLI tail) then reads by time instead (from on server.timestamp: it polls, without long-poll or delete), or read over MQTT (source type "mqtt"); see docs/flespi-assumptions.md K1',
    };
  }
  if (answer.status !== 200 || !result) {
    shared.keyReading = { ok: false };
    return unexpected(answer, 'a key-based read', shared.rest.baseUrl);
  }
  const nextKey = answer.body!.next_key;
  const bad = badMessage(result);
  if (bad) {
    shared.keyReading = { ok: false };
    return { status: 'fail', finding: `a key-based read answered, but ${bad}`, advice: 'check that the base URL points at the flespi REST API' };
  }
  if (result.length > 0) {
    if (typeof nextKey !== 'number' || nextKey < 1) {
      shared.keyReading = { ok: false };
      return {
        status: 'fail',
        finding: `a key-based read returned a message without a usable next_key (${JSON.stringify(nextKey) ?? 'none'})`,
        advice: 'the REST source cannot page this buffer: use source type "mqtt"; see docs/flespi-assumptions.md K1',
      };
    }
    const first = result[0] as Record<string, unknown>;
    shared.keyReading = { ok: true, nextKey, firstServerTs: first['server.timestamp'] as number };
    const more = result.length > 1 ? ` (${result.length} messages for limit_count 1: the limit is soft)` : '';
    return { status: 'pass', finding: `curr_key 0 returned the oldest message of the buffer and next_key ${nextKey}${more}` };
  }
  shared.keyReading = { ok: true, nextKey: typeof nextKey === 'number' ? nextKey : 0 };
  const form = typeof nextKey === 'number' ? `next_key ${nextKey}` : 'no next_key';
  return { status: 'pass', finding: `the buffer is empty: curr_key 0 answered no messages and ${form} (the client keeps its key then)` };
};

const checkReadByTime: CheckBody = async (shared) => {
  const path = messagesPath(shared);
  const newest = await shared.rest.data(path, { reverse: true, count: 1 });
  if (newest.status === 400 || (newest.status === 200 && envelopeErrors(newest).length > 0 && !Array.isArray(newest.body?.result))) {
    return {
      status: 'fail',
      finding: `flespi refused time-based reading (reverse / count) with ${newest.status}${reasons(newest)}`,
      advice: 'messages history, the live tail backfill and the MQTT gap fill read by time: report this answer (docs/flespi-assumptions.md T1)',
    };
  }
  const newestResult = Array.isArray(newest.body?.result) ? (newest.body.result as unknown[]) : undefined;
  if (newest.status !== 200 || !newestResult) return unexpected(newest, 'a time-based read', shared.rest.baseUrl);
  const bad = badMessage(newestResult);
  if (bad)
    return {
      status: 'fail',
      finding: `a time-based read (reverse, count 1) answered, but ${bad}`,
      advice: 'check that the base URL points at the flespi REST API',
    };
  if (newestResult.length > 1)
    return {
      status: 'warn',
      finding: `a time-based read with count 1 returned ${newestResult.length} messages: flespi ignored count`,
      advice: 'report this answer (docs/flespi-assumptions.md T1)',
    };
  if (newestResult.length === 0) return { status: 'pass', finding: 'the channel has no messages to read by time (reverse / count answered an empty result)' };
  const latest = (newestResult[0] as Record<string, unknown>)['server.timestamp'] as number;
  shared.newestServerTs = latest;
  // The minute up to the newest message, where the buffer surely has messages.
  const from = Math.floor(latest) - 60;
  const to = latest;
  const range = await shared.rest.data(path, { from, to, count: 5 });
  const rangeResult = Array.isArray(range.body?.result) ? (range.body.result as unknown[]) : undefined;
  if (range.status === 400)
    return {
      status: 'fail',
      finding: `flespi refused from / to / count with 400${reasons(range)}`,
      advice: 'messages history, the live tail backfill and the MQTT gap fill read by time: report this answer (docs/flespi-assumptions.md T1)',
    };
  if (range.status !== 200 || !rangeResult) return unexpected(range, 'a time-range read', shared.rest.baseUrl);
  const badInRange = badMessage(rangeResult);
  if (badInRange)
    return { status: 'fail', finding: `a time-range read answered, but ${badInRange}`, advice: 'check that the base URL points at the flespi REST API' };
  const stamps = rangeResult.map((m) => (m as Record<string, unknown>)['server.timestamp'] as number);
  if (stamps.length === 0)
    return {
      status: 'fail',
      finding: `from ${from} to ${to} returned nothing although the newest message has server.timestamp ${latest}`,
      advice: 'flespi does not bound time ranges on server.timestamp as assumed: report this answer (docs/flespi-assumptions.md T1, T2)',
    };
  if (stamps.length > 5)
    return {
      status: 'warn',
      finding: `from / to with count 5 returned ${stamps.length} messages: flespi ignored count`,
      advice: 'gap fill pages by count: report this answer (docs/flespi-assumptions.md T1)',
    };
  const outside = stamps.filter((s) => s < from || s > to);
  if (outside.length > 0)
    return {
      status: 'fail',
      finding: `from ${from} to ${to} returned messages outside the range (server.timestamp ${outside[0]})`,
      advice: 'flespi does not bound time ranges on server.timestamp as assumed: report this answer (docs/flespi-assumptions.md T1)',
    };
  if (stamps.some((s, i) => i > 0 && s < stamps[i - 1]!))
    return {
      status: 'warn',
      finding: 'a time-range read returned messages out of server.timestamp order',
      advice: 'gap fill assumes oldest first: report this answer (docs/flespi-assumptions.md T1)',
    };
  const age = Date.now() / 1000 - latest;
  return {
    status: 'pass',
    finding: `reverse / count 1 gave the newest message (server.timestamp ${latest}, ${describeAge(age)}); from / to / count gave ${stamps.length} message(s) inside the range, oldest first`,
  };
};

function describeAge(ageS: number): string {
  if (ageS < -1) return `${seconds(-ageS * 1000)} s in the future by the local clock`;
  if (ageS < 120) return `${Math.max(0, Math.round(ageS))} s ago`;
  if (ageS < 7200) return `${Math.round(ageS / 60)} min ago`;
  if (ageS < 172_800) return `${Math.round(ageS / 3600)} h ago`;
  return `${Math.round(ageS / 86400)} days ago`;
}

// ---------------------------------------------------------------- long-poll

const checkLongPoll: CheckBody = async (shared) => {
  const path = messagesPath(shared);
  const timeout = shared.limits.longPollSeconds;
  // Find the end of the buffer: a page shorter than asked for. A long buffer is not read through:
  // the poll then starts far beyond its end, which tests the timeout but not the early answer.
  let key = shared.keyReading?.nextKey ?? 0;
  let atEnd = false;
  for (let page = 0; page < END_PAGES && !atEnd; page++) {
    const answer = await shared.rest.data(path, { curr_key: key, limit_count: PAGE_COUNT }, { maxBytes: PAGE_BODY_BYTES });
    const result = Array.isArray(answer.body?.result) ? (answer.body.result as unknown[]) : undefined;
    if (answer.status !== 200 || !result) return unexpected(answer, 'a key-based read', shared.rest.baseUrl);
    const next = answer.body!.next_key;
    if (typeof next === 'number' && next > key) key = next;
    atEnd = result.length < PAGE_COUNT;
  }
  const farAhead = !atEnd;
  if (farAhead) key += 2 ** 40;
  const limitMs = timeout * 1000;
  for (let attempt = 0; attempt < 4; attempt++) {
    const answer = await shared.rest.data(path, { curr_key: key, limit_count: 10, timeout }, { waitMs: limitMs });
    const result = Array.isArray(answer.body?.result) ? (answer.body.result as unknown[]) : undefined;
    if (answer.status !== 200 || !result) return unexpected(answer, `a long-poll (timeout ${timeout})`, shared.rest.baseUrl);
    const ms = answer.ms;
    if (result.length > 0) {
      const next = answer.body!.next_key;
      if (farAhead)
        return {
          status: 'warn',
          finding: `a long-poll from a key far beyond the end of the buffer returned ${result.length} message(s)`,
          advice: 'keys do not work as assumed (docs/flespi-assumptions.md K1): report this answer',
        };
      if (ms >= 100 && ms < limitMs - 200)
        return {
          status: 'pass',
          finding: `a long-poll at the end of the buffer (timeout ${timeout} s) answered after ${seconds(ms)} s, as soon as a message arrived`,
        };
      // The message was there before the poll started: poll again from after it.
      if (typeof next === 'number' && next > key) key = next;
      else
        return {
          status: 'warn',
          finding: `a long-poll returned ${result.length} message(s) without a next_key beyond ${key}`,
          advice: 'report this answer (docs/flespi-assumptions.md K1, K2)',
        };
      continue;
    }
    if (ms < limitMs - 1000) {
      return {
        status: 'warn',
        finding: `a long-poll with timeout ${timeout} s answered empty after ${seconds(ms)} s: flespi does not wait`,
        advice:
          'a receiver at the end of the buffer then polls continually and spends API calls; read over MQTT (source type "mqtt") to avoid it (docs/flespi-assumptions.md P1)',
      };
    }
    if (ms > limitMs + 3000)
      return {
        status: 'warn',
        finding: `a long-poll with timeout ${timeout} s answered after ${seconds(ms)} s`,
        advice: 'slow answers: check the network between you and flespi',
      };
    const why = farAhead
      ? 'the buffer is too long to read to its end here, so only the timeout was tested'
      : 'no message arrived meanwhile, so the early answer was not seen';
    return { status: 'pass', finding: `a long-poll with timeout ${timeout} s answered empty after ${seconds(ms)} s, as asked (${why})` };
  }
  return { status: 'pass', finding: 'long-polls answered at once with messages that kept arriving (a busy channel); the timeout itself was not reached' };
};

// ---------------------------------------------------------------- MQTT

type Run = (id: DoctorCheckId, limitMs: number, body: CheckBody) => Promise<void>;
type Record_ = (id: DoctorCheckId, outcome: Omit<DoctorCheck, 'id' | 'ms'>, ms: number) => void;

async function checkMqtt(shared: Shared, url: string, run: Run, record: Record_): Promise<void> {
  const { limits } = shared;
  const id = shared.channel!.id;
  let client: MqttClient | undefined;
  try {
    await run('mqtt', limits.mqttConnectMs + limits.mqttSubscribeMs + limits.mqttMessageMs + 2_000, async (_shared, signal) => {
      const transport = describeTransport(url, shared.options.sandbox === true);
      let connack: IConnackPacket;
      try {
        ({ client, connack } = await connectMqtt(url, shared.token, limits.mqttConnectMs, signal));
      } catch (error) {
        return mqttConnectFailure(error, url);
      }
      const topic = `flespi/message/gw/channels/${id}/+`;
      const first = new Promise<{ topic: string; payload: Buffer; ms: number }>((resolve) => {
        const t0 = Date.now();
        client!.on('message', (received, payload) => {
          if (received.startsWith(`flespi/message/gw/channels/${id}/`)) resolve({ topic: received, payload, ms: Date.now() - t0 });
        });
      });
      let granted: number;
      try {
        granted = await subscribe(client!, topic, limits.mqttSubscribeMs, signal);
      } catch (error) {
        return subscribeFailure(error, topic, `the token has no access to channel ${id} over MQTT: check the token's ACL`);
      }
      const head = `${transport.text}; MQTT ${connack.sessionPresent ? 'resumed a session' : '5 connected'}, subscribed ${topic} (granted QoS ${granted})`;
      const arrived = await Promise.race([first, sleep(limits.mqttMessageMs, signal).then(() => undefined)]);
      let tail: string;
      let status: DoctorStatus = transport.status;
      let advice = transport.advice;
      if (!arrived) {
        tail = `no message in ${seconds(limits.mqttMessageMs)} s (a quiet channel, or no tracker sending now)`;
      } else {
        let parsed: unknown;
        try {
          parsed = JSON.parse(arrived.payload.toString('utf8'));
        } catch {
          parsed = undefined;
        }
        const ident = arrived.topic.split('/')[5];
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          status = 'fail';
          advice = 'the MQTT source expects one JSON message object per publish (docs/flespi-assumptions.md M3, F1)';
          tail = `a message arrived on ${arrived.topic} but its payload is not a JSON object`;
        } else {
          const stamp = (parsed as Record<string, unknown>)['server.timestamp'];
          tail = `a message from ident ${ident} arrived after ${seconds(arrived.ms)} s${typeof stamp === 'number' ? '' : ' (without server.timestamp: gap fill cannot place it)'}`;
          if (typeof stamp !== 'number') status = 'warn';
        }
      }
      if (granted === 0 && status === 'pass') {
        status = 'warn';
        advice = 'the broker granted QoS 0: unacknowledged messages are not kept for the MQTT source (docs/flespi-assumptions.md M4)';
      }
      return { status, finding: `${head}; ${tail}`, advice };
    });
    const connected = client as MqttClient | undefined;
    if (!connected?.connected) {
      record('mqtt-share', { status: 'skip', finding: 'not run: no MQTT connection (see mqtt)' }, 0);
      return;
    }
    await run('mqtt-share', limits.mqttSubscribeMs + 1_000, async (_shared, signal) => {
      const group = `doctor-${randomBytes(4).toString('hex')}`;
      const topic = `$share/${group}/flespi/message/gw/channels/${id}/+`;
      try {
        const granted = await subscribe(connected, topic, limits.mqttSubscribeMs, signal);
        return { status: 'pass', finding: `subscribed ${topic} (granted QoS ${granted}): receivers with source "group" can split the channel` };
      } catch (error) {
        const verdict = subscribeFailure(
          error,
          topic,
          'do not set "group" in the MQTT source: run one receiver per channel instead (docs/flespi-assumptions.md M7)',
        );
        return verdict.status === 'fail' ? { ...verdict, status: 'warn' } : verdict;
      }
    });
  } finally {
    (client as MqttClient | undefined)?.end(true);
  }
}

function describeTransport(url: string, sandbox: boolean): { text: string; status: DoctorStatus; advice?: string } {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  const host = parsed?.host ?? url;
  if (parsed && (parsed.protocol === 'mqtts:' || parsed.protocol === 'wss:')) return { text: `connected to ${host} over TLS`, status: 'pass' };
  if (parsed && isLoopbackHost(parsed.hostname)) {
    return {
      text: `connected to ${host} without TLS (a local ${sandbox ? 'sandbox, which has no TLS; flespi itself is mqtts://mqtt.flespi.io:8883' : 'server: the token stays on this machine'})`,
      status: 'pass',
    };
  }
  return {
    text: `connected to ${host} without TLS`,
    status: 'warn',
    advice: "the token travels in clear text: use mqtts://…:8883 (flespi's brokers are mqtts://mqtt.flespi.io:8883 and mqtts://ru-mqtt.flespi.io:8883)",
  };
}

function connectMqtt(url: string, token: string, timeoutMs: number, signal: AbortSignal): Promise<{ client: MqttClient; connack: IConnackPacket }> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, {
      clientId: `flespi-receiver-doctor-${randomBytes(4).toString('hex')}`,
      username: token,
      protocolVersion: 5,
      clean: true,
      reconnectPeriod: 0,
      // The timer below reports the missing CONNACK; MQTT.js' own must not fire first.
      connectTimeout: timeoutMs + 2_000,
      keepalive: 30,
      properties: { sessionExpiryInterval: 0 },
    });
    let settled = false;
    const timer = setTimeout(() => finish(Object.assign(new Error(`no CONNACK within ${seconds(timeoutMs)} s`), { code: 'NO_CONNACK' })), timeoutMs);
    const onAbort = () => finish(new Error('stopped'));
    signal.addEventListener('abort', onAbort, { once: true });
    function finish(error?: Error, connack?: IConnackPacket): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (error) {
        client.end(true);
        reject(error);
      } else resolve({ client, connack: connack! });
    }
    client.once('connect', (connack) => finish(undefined, connack));
    client.once('error', (error) => finish(error));
    client.once('close', () => finish(new Error('the broker closed the connection before accepting it')));
    // Errors after the outcome (a late close) must not reach the process as unhandled.
    client.on('error', () => {});
  });
}

function subscribe(client: MqttClient, topic: string, timeoutMs: number, signal: AbortSignal): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(Object.assign(new Error(`no SUBACK within ${seconds(timeoutMs)} s`), { code: 'TIMEOUT' })), timeoutMs);
    const onAbort = () => reject(new Error('stopped'));
    signal.addEventListener('abort', onAbort, { once: true });
    client.subscribe(topic, { qos: 1 }, (error, granted) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (error) {
        const refused = subackRefusal(error);
        return reject(refused === undefined ? error : Object.assign(new Error(`SUBACK ${String(refused)}`), { code: refused }));
      }
      const qos = granted?.[0]?.qos ?? 0;
      if (qos >= 0x80) return reject(Object.assign(new Error(`SUBACK ${qos}`), { code: qos }));
      resolve(qos);
    });
  });
}

/** CONNACK codes (MQTT 5, and 3.1.1 where they differ) as flespi's own clients read them (assumption M5). */
function mqttConnectFailure(error: unknown, url: string): Omit<DoctorCheck, 'id' | 'ms'> {
  const e = error as Error & { code?: unknown };
  const code = e.code;
  const where = redactUrl(url);
  if (typeof code === 'number') {
    if ([134, 135, 4, 5, 2].includes(code)) {
      return {
        status: 'fail',
        finding: `the broker at ${where} refused the token (CONNACK ${code}: ${e.message})`,
        advice: 'check the token at https://flespi.io/#/panel/tokens; flespi takes it as the MQTT username',
      };
    }
    if (code === 138)
      return {
        status: 'fail',
        finding: `the broker at ${where} refused the token as banned (CONNACK 138)`,
        advice: 'the token or account is blocked: check the account limits in the flespi panel',
      };
    return {
      status: 'fail',
      finding: `the broker at ${where} refused the connection (CONNACK ${code}: ${e.message})`,
      advice: 'try again later; check https://status.flespi.io',
    };
  }
  if (typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|TLS|SSL/i.test(code)) {
    return {
      status: 'fail',
      finding: `TLS to ${where} failed: the broker's certificate is not trusted (${code})`,
      advice: "check the MQTT URL (flespi's is mqtts://mqtt.flespi.io:8883) and any TLS-intercepting proxy; NODE_EXTRA_CA_CERTS adds a CA",
    };
  }
  if (code === 'NO_CONNACK')
    return {
      status: 'fail',
      finding: `the broker at ${where} accepted the connection but sent no CONNACK: ${e.message}`,
      advice: 'check that the MQTT URL points at an MQTT broker (flespi: mqtts://mqtt.flespi.io:8883); try again later',
    };
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH') {
    return {
      status: 'fail',
      finding: `cannot connect to ${where} (${code})`,
      advice: 'check the MQTT URL and that your network allows outgoing port 8883 (or use wss://mqtt.flespi.io on 443)',
    };
  }
  return { status: 'fail', finding: `cannot connect to ${where}: ${e.message}`, advice: 'check the MQTT URL and your network' };
}

function subscribeFailure(error: unknown, topic: string, advice: string): Omit<DoctorCheck, 'id' | 'ms'> {
  const code = (error as { code?: unknown }).code;
  if (code === 'TIMEOUT')
    return {
      status: 'fail',
      finding: `no answer to the subscription of ${topic}: ${(error as Error).message}`,
      advice: 'the broker is slow or stuck: try again later',
    };
  if (typeof code === 'number')
    return {
      status: 'fail',
      finding: `the broker refused the subscription of ${topic} (SUBACK ${code}${code === 143 ? ': topic filter invalid' : code === 135 || code === 128 ? ': not authorized' : ''})`,
      advice,
    };
  return { status: 'fail', finding: `subscribing ${topic} failed: ${error instanceof Error ? error.message : String(error)}`, advice };
}

// ---------------------------------------------------------------- derived checks

function checkBuffer(shared: Shared): Omit<DoctorCheck, 'id' | 'ms'> {
  const item = shared.channel!.item;
  const size = item.messages_size;
  if (typeof size !== 'number') {
    return {
      status: 'warn',
      finding: 'flespi did not report messages_size for the channel: its fill is unknown',
      advice: 'check the channel in the flespi panel; docs/flespi-assumptions.md B2',
    };
  }
  const limit = FREE_BUFFER_KB;
  const percent = (size / limit) * 100;
  const fill = `${formatKb(size)} in the buffer, ${percent < 1 ? '<1' : Math.round(percent)}% of the 100 MB a free account holds (10 GB commercial)`;
  const ttl = typeof item.messages_ttl === 'number' ? item.messages_ttl : undefined;
  const oldest = shared.keyReading?.firstServerTs;
  const newest = shared.newestServerTs;
  let projected: number | undefined;
  if (ttl !== undefined && oldest !== undefined && newest !== undefined && newest - oldest >= 600 && newest - oldest < ttl * 0.9) {
    projected = (size * ttl) / (newest - oldest);
  }
  const advice =
    'with delete off (the default) only messages_ttl empties it, and flespi blocks a full channel: turn on "delete" for a single reader, or shorten messages_ttl';
  if (size >= limit * 0.8) return { status: 'warn', finding: `${fill}: a free account's channel is blocked when full`, advice };
  if (projected !== undefined && projected >= limit) {
    return {
      status: 'warn',
      finding: `${fill}; at this rate, ${ttl} s of messages (messages_ttl) come to about ${formatKb(projected)}, over a free account's 100 MB`,
      advice,
    };
  }
  const outlook = projected !== undefined ? `; about ${formatKb(projected)} at this rate once messages_ttl (${ttl} s) is reached` : '';
  return { status: 'pass', finding: `${fill}${outlook} (flespi refreshes messages_size about hourly)` };
}

function formatKb(kb: number): string {
  if (kb < 1024) return `${Math.round(kb)} KB`;
  if (kb < 1024 * 1024) return `${(kb / 1024).toFixed(1)} MB`;
  return `${(kb / 1024 / 1024).toFixed(2)} GB`;
}

function checkClock(shared: Shared): Omit<DoctorCheck, 'id' | 'ms'> {
  const samples = shared.rest.clock;
  if (samples.length === 0) {
    if (shared.rest.answers === 0) return { status: 'skip', finding: 'not run: no answer from the REST API' };
    return {
      status: 'warn',
      finding: `none of ${shared.rest.answers} answers carried a Date header`,
      advice: 'the clock cannot be compared; keep the local clock synced (NTP): gap fill uses it (docs/flespi-assumptions.md R10, T5)',
    };
  }
  const best = samples.reduce((a, b) => (b.rttMs < a.rttMs ? b : a));
  const skew = best.skewMs / 1000;
  const precision = 0.5 + best.rttMs / 2000;
  const text =
    Math.abs(skew) <= precision
      ? `the local clock agrees with the server's Date header (within ±${precision.toFixed(1)} s)`
      : `the local clock is ${Math.abs(skew).toFixed(1)} s ${skew > 0 ? 'behind' : 'ahead of'} the server's (±${precision.toFixed(1)} s)`;
  const beyond = Math.abs(skew) - precision;
  if (beyond > CLOCK_FAIL_S) {
    return {
      status: 'fail',
      finding: `${text}: more than the 300 s margin of the gap fills, so a live tail can miss messages after a reconnect`,
      advice: 'sync the local clock (NTP); TLS certificate checks and token expiry go wrong by that much too (docs/flespi-assumptions.md T5)',
    };
  }
  if (beyond > CLOCK_WARN_S) {
    return {
      status: 'warn',
      finding: `${text}: times you enter (Start Forwarding from a time, history ranges) and message ages shown are off by that much`,
      advice: 'sync the local clock (NTP) (docs/flespi-assumptions.md T5)',
    };
  }
  return { status: 'pass', finding: text };
}

function checkRateLimit(shared: Shared): Omit<DoctorCheck, 'id' | 'ms'> {
  const rest = shared.rest;
  if (rest.answers === 0) return { status: 'skip', finding: 'not run: no answer from the REST API' };
  const headers = [...rest.rateHeaders.entries()].map(([name, value]) => `${name}: ${value.slice(0, 40)}`);
  const seen =
    headers.length > 0
      ? `headers seen: ${headers.join(', ')}`
      : `no rate-limit header in ${rest.answers} answer${rest.answers === 1 ? '' : 's'} (flespi documents none)`;
  if (rest.tooMany.length > 0) {
    const after = rest.tooMany.map((t) => (t.retryAfter === undefined ? 'no Retry-After' : `Retry-After ${t.retryAfter}`)).join(', ');
    return {
      status: 'warn',
      finding: `flespi answered 429 (too many requests) ${rest.tooMany.length} time(s) (${after}); ${seen}`,
      advice: 'the account is near its API call limits: fewer concurrent receivers or tails, or longer long-polls; receivers back off and retry by themselves',
    };
  }
  const remaining = [...rest.rateHeaders.entries()].find(([name]) => /remaining/i.test(name));
  if (remaining && Number(remaining[1]) === 0)
    return { status: 'warn', finding: `the rate limit is used up (${seen})`, advice: 'wait for it to reset before starting receivers' };
  return { status: 'pass', finding: `no 429; ${seen}` };
}

// ---------------------------------------------------------------- output

const LABEL: Readonly<Record<DoctorStatus, string>> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };

/** One line per check: status, name, finding and what to do (not yet made terminal-safe). */
export function doctorLine(check: DoctorCheck): string {
  return `${LABEL[check.status]}  ${check.id.padEnd(12)}  ${check.finding}${check.advice ? ` — to do: ${check.advice}` : ''}`;
}

/** The counts line: `8 passed, 1 warning, 0 failed, 1 skipped in 12.3 s`. */
export function doctorSummary(report: DoctorReport): string {
  const count = (status: DoctorStatus) => report.checks.filter((c) => c.status === status).length;
  const warnings = count('warn');
  const skipped = count('skip');
  return `${count('pass')} passed, ${warnings} warning${warnings === 1 ? '' : 's'}, ${count('fail')} failed${skipped > 0 ? `, ${skipped} skipped` : ''} in ${seconds(report.ms)} s`;
}
