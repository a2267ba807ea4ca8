import { dirname, resolve } from 'node:path';
import { buildReceiver, loadConfig, resolveToken, resolveUserPath } from '../core/config';
import { describeHandlerError } from '../core/custom/loader';
import { redeliverDeadLetters } from '../core/deliver';
import { createHandler } from '../core/handlers/registry';
import { FileDeadLetterStore } from '../core/receiver/deadLetters';
import { regionBaseUrl, type FlespiRegion } from '../core/flespi/client';
import { StdoutHandler } from '../core/handlers/stdout';
import { escapeControl, type Logger } from '../core/logger';
import { ConfigError } from '../core/options';
import { CheckpointLockedError, FileCheckpointStore, MemoryCheckpointStore } from '../core/receiver/checkpoint';
import { describeOwner } from '../core/receiver/lock';
import { Receiver } from '../core/receiver/receiver';
import { RestSource } from '../core/sources/rest';
import { startSandbox } from '../sandbox/index';
import { connect, findChannel, listChannels } from './connect';
import { reportReceiver } from './status';
import { UsageError } from './usage';

export interface Flags {
  token?: string;
  baseUrl?: string;
  region?: FlespiRegion;
  pretty: boolean;
  checkpoint?: string;
  restPort?: string;
  mqttPort?: string;
  devices?: string;
  rate?: string;
  resend?: boolean;
  handler?: string;
}

/** `tail [channel]`: a channel's messages on stdout, one JSON object per line. */
export async function tailCommand(wanted: string | undefined, flags: Flags, log: Logger): Promise<number> {
  const { client, sandbox } = await connect(flags, process.env, log);
  try {
    const channel = await findChannel(client, wanted, sandbox !== undefined);
    if (sandbox) {
      log.info(
        `no FLESPI_TOKEN set: tailing channel ${channel.id} "${channel.name}" of the built-in flespi sandbox (REST ${sandbox.restUrl}, MQTT ${sandbox.mqttUrl}); set FLESPI_TOKEN to read your flespi account`,
      );
    } else {
      log.info(`tailing channel ${channel.id} "${channel.name}" (${channel.protocol}) at ${client.baseUrl}, from the oldest message in its buffer`);
    }
    const file = flags.checkpoint ? new FileCheckpointStore(resolve(flags.checkpoint), { by: 'flespi-receiver tail' }) : undefined;
    if (file) await lockCheckpoint(file, log, 'use another --checkpoint file');
    const receiver = new Receiver({
      source: new RestSource({ client, channelId: channel.id }),
      handlers: [new StdoutHandler({ pretty: flags.pretty })],
      checkpoints: file ?? new MemoryCheckpointStore(),
      // An interactive tail stops on a 403 with the reason; `run` waits a block out.
      onForbidden: 'stop',
      log,
    });
    reportReceiver(receiver, log, undefined);
    try {
      return await runUntilStopped(receiver, log);
    } finally {
      await file?.release();
    }
  } finally {
    await sandbox?.stop();
  }
}

/** `run <config.json>`: the handlers of a config file, with a status summary on stderr. */
export async function runCommand(file: string, flags: Flags, log: Logger): Promise<number> {
  const config = await loadConfig(file);
  if (flags.baseUrl) config.flespi.baseUrl = flags.baseUrl;
  else if (flags.region) config.flespi.baseUrl = regionBaseUrl(flags.region);
  const token = flags.token?.trim() || (await resolveToken(process.env, config.flespi.tokenFile, log));
  if (!token) {
    throw new UsageError(`no flespi token: set FLESPI_TOKEN, or name a file holding it with "flespi": { "tokenFile": "..." } in ${config.file}`);
  }
  const { receiver, client, handlers, checkpoints } = await buildReceiver(config, token, { log, lockedBy: `flespi-receiver run ${config.file}` });
  // One receiver per position: a second run of this config (or another one naming the same checkpoint) stops here.
  await lockCheckpoint(checkpoints, log, 'give this config its own "checkpoint" file to run a second, independent receiver');
  try {
    const channel = await findChannel(client, String(config.channel), false);
    // A terminal gets a summary every few seconds; a log file (not a TTY) only once a minute.
    const stopReporting = reportReceiver(receiver, log, process.stderr.isTTY ? 5_000 : 60_000);
    const position = config.source.type === 'rest' ? `; checkpoint ${config.checkpoint}` : '';
    try {
      return await runUntilStopped(receiver, log, () =>
        log.info(`receiving channel ${channel.id} "${channel.name}" from ${client.baseUrl} into ${handlers.map((h) => h.name).join(', ')}${position}`),
      );
    } finally {
      stopReporting();
    }
  } finally {
    await checkpoints.release();
  }
}

/**
 * `dead-letters <config.json>`: the messages the config's handlers could never deliver, one JSON record per
 * line on stdout, with counts on stderr. `--resend` sends them again through fresh handlers built from the
 * config (after the cause was fixed) and removes those accepted; it takes the checkpoint's lock, so it
 * never runs beside the receiver that appends to the file. `--handler name` picks one handler.
 */
export async function deadLettersCommand(file: string, flags: Flags, log: Logger): Promise<number> {
  const config = await loadConfig(file);
  const store = new FileDeadLetterStore(config.deadLetters.file, config.deadLetters.maxBytes);
  const env = { resolvePath: (path: string) => resolveUserPath(path, dirname(config.file)) };
  const names = config.handlers.map((entry, index) => (typeof entry.name === 'string' ? entry.name : String(entry.type ?? `handlers[${index}]`)));
  if (flags.handler !== undefined && !names.includes(flags.handler)) {
    throw new UsageError(`no handler named "${flags.handler}" in ${config.file}: its handlers are ${names.join(', ')}`);
  }
  const counts = await store.counts();
  const wanted = flags.handler === undefined ? [...counts.keys()] : [flags.handler];
  if (!flags.resend) {
    for (const letter of await store.read(flags.handler)) process.stdout.write(JSON.stringify(letter) + '\n');
    const summary = wanted.map((name) => `${name}: ${counts.get(name) ?? 0}`).join(', ');
    log.info(
      `${config.deadLetters.file}: ${summary || 'no dead letters'}${wanted.length > 0 ? '; send them again with --resend once the cause is fixed' : ''}`,
    );
    return 0;
  }
  const checkpoints = new FileCheckpointStore(config.checkpoint, { by: `flespi-receiver dead-letters --resend ${config.file}` });
  await lockCheckpoint(checkpoints, log, 'wait until it stops');
  let remaining = 0;
  try {
    for (const name of wanted) {
      const index = names.indexOf(name);
      if (index === -1) {
        log.warn(`${counts.get(name) ?? 0} dead letters of "${name}", which is no longer a handler of ${config.file}: left in the file`);
        remaining += counts.get(name) ?? 0;
        continue;
      }
      const outcome = await redeliverDeadLetters(store, name, () => createHandler(config.handlers[index]!, env, `${config.file}: handlers[${index}]`), {
        timeoutMs: 60_000,
        log,
        describeError: describeHandlerError,
      });
      for (const error of outcome.errors.slice(0, 5)) log.warn(`${name}: ${error}`);
      log.info(`${name}: ${outcome.sent} sent again, ${outcome.remaining} still in ${config.deadLetters.file} (${outcome.ms} ms)`);
      remaining += outcome.remaining;
    }
  } finally {
    await checkpoints.release();
  }
  return remaining === 0 ? 0 : 1;
}

/** Takes the checkpoint's lock, or fails saying which receiver holds it and what to do. */
async function lockCheckpoint(store: FileCheckpointStore, log: Logger, alternative: string): Promise<void> {
  try {
    const { takenOverFrom } = await store.acquire();
    if (takenOverFrom) log.warn(`took over ${store.lock.path}: the receiver that held it (${describeOwner(takenOverFrom)}) is no longer running`);
  } catch (error) {
    if (!(error instanceof CheckpointLockedError)) throw error;
    const reused = error.local ? ` (if pid ${error.owner.pid} is not a flespi receiver, its number was reused: delete ${error.path})` : '';
    throw new ConfigError(`${error.message}. Stop that receiver first${error.local ? ` (kill ${error.owner.pid})` : ''}, or ${alternative}${reused}`);
  }
}

/** `channels`: id, name and protocol of every channel. */
export async function channelsCommand(flags: Flags, log: Logger): Promise<number> {
  const { client, sandbox } = await connect(flags, process.env, log);
  try {
    if (sandbox) log.info(`no FLESPI_TOKEN set: listing the channels of the built-in flespi sandbox (REST ${sandbox.restUrl})`);
    // Names come from the account (anyone who can edit a channel): no control character reaches the terminal.
    const rows = (await listChannels(client)).map((c) => [String(c.id), escapeControl(c.name), escapeControl(c.protocol)]);
    const table = [['ID', 'NAME', 'PROTOCOL'], ...rows];
    const widths = [0, 1].map((col) => Math.max(...table.map((row) => row[col]!.length)));
    process.stdout.write(table.map((row) => row.map((cell, col) => (col < 2 ? cell.padEnd(widths[col]!) : cell)).join('  ')).join('\n') + '\n');
    return 0;
  } finally {
    await sandbox?.stop();
  }
}

/** `sandbox`: the local flespi emulator on its own, until SIGINT/SIGTERM. */
export async function sandboxCommand(flags: Flags, log: Logger): Promise<number> {
  const sandbox = await startSandbox({
    restPort: intFlag('rest-port', flags.restPort, 0, 0, 65535),
    mqttPort: intFlag('mqtt-port', flags.mqttPort, 0, 0, 65535),
    token: flags.token?.trim() || undefined,
    devicesPerChannel: intFlag('devices', flags.devices, 3, 0, 10_000),
    rateHz: numberFlag('rate', flags.rate, 1, 0.001, 1000),
    simulate: true,
    // Microseconds since the epoch: a restarted sandbox numbers above every key it handed out before (below 1M msg/s).
    firstKey: Date.now() * 1000,
  });
  const channels = sandbox.channels.map((c) => `${c.id} "${c.name}"`).join(', ');
  process.stdout.write(
    [
      'flespi sandbox running (a local emulator, not flespi itself)',
      `  REST      ${sandbox.restUrl}`,
      `  MQTT      ${sandbox.mqttUrl}`,
      `  token     ${sandbox.token}`,
      `  channels  ${channels}`,
      `try: FLESPI_TOKEN=${sandbox.token} flespi-receiver tail --base-url ${sandbox.restUrl}`,
      'stop with Ctrl+C',
      '',
    ].join('\n'),
  );
  await new Promise<void>((done) => onStopSignal(log, done));
  await sandbox.stop();
  return 0;
}

/**
 * Runs a receiver until SIGINT/SIGTERM (graceful: the in-flight batch is finished or left
 * unacknowledged, the checkpoint saved) or until stdout is closed (`| head`). A second signal
 * exits at once. Rejects with the error that stopped the receiver.
 */
async function runUntilStopped(receiver: Receiver, log: Logger, started?: () => void): Promise<number> {
  const removeSignals = onStopSignal(log, () => void receiver.stop());
  const onStdoutError = (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') void receiver.stop(); // the reader went away: nothing more to print
  };
  process.stdout.on('error', onStdoutError);
  try {
    await receiver.start();
    started?.();
    await receiver.done;
    return 0;
  } finally {
    removeSignals();
    process.stdout.off('error', onStdoutError);
  }
}

/** Calls `stop` on the first SIGINT/SIGTERM; a second one exits immediately. Returns the unsubscribe function. */
function onStopSignal(log: Logger, stop: () => void): () => void {
  let count = 0;
  const handler = (signal: NodeJS.Signals) => {
    count += 1;
    if (count > 1) {
      log.warn(`${signal} again: exiting without waiting`);
      process.exit(130);
    }
    log.info(`${signal}: stopping (press Ctrl+C again to exit at once)`);
    stop();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

function numberFlag(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max)
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, got "${value}"`);
  return n;
}

function intFlag(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  const n = numberFlag(name, value, fallback, min, max);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}
