import type { Logger } from '../core/logger';
import type { HandlerStats, Receiver, ReceiverStats } from '../core/receiver/receiver';

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One line about a handler, e.g. `wialon: 1200 msgs in 12 batches, avg 35 ms, 2 failures (last: ...)`. */
export function handlerLine(h: HandlerStats): string {
  const parts = [`${h.messages} msgs in ${h.batches} batches`];
  if (h.avgLatencyMs !== undefined) parts.push(`avg ${seconds(h.avgLatencyMs)}`);
  if (!h.started) parts.push('not started');
  if (h.health.connected !== undefined) parts.push(h.health.connected ? 'connected' : 'disconnected');
  if (h.health.detail) parts.push(h.health.detail);
  if (h.deadLetters > 0) parts.push(`${h.deadLetters} dead letters`);
  if (h.failures > 0)
    parts.push(`${h.failures} failures${h.consecutiveFailures > 0 ? ` (${h.consecutiveFailures} in a row, last: ${h.lastError ?? '?'})` : ''}`);
  return `${h.name}: ${parts.join(', ')}`;
}

export function receiverLine(s: ReceiverStats): string {
  const checkpoint = s.lastCheckpoint ? `, checkpoint key ${s.lastCheckpoint.currKey}` : '';
  const blocked = s.blocked ? ` — ${s.blocked}` : '';
  return `receiver ${s.state}${blocked}: ${s.messagesDone} msgs done (${s.batchesDone} batches), ${s.pending} batches pending${checkpoint}`;
}

/**
 * Reports a receiver on stderr: every failure as it happens, and a periodic summary (one line for
 * the receiver, one per handler) every `everyMs`. Returns a function that stops the reporting.
 */
export function reportReceiver(receiver: Receiver, log: Logger, everyMs: number | undefined): () => void {
  receiver.on('handler-error', (e) => {
    // A closed stdout (`| head`) stops the CLI; a warning about it would only be noise.
    if ((e.error as NodeJS.ErrnoException).code === 'EPIPE') return;
    if (e.fatal) return; // the error that stopped the receiver is printed once, as the CLI exits
    const what = e.phase === 'start' ? 'could not start' : `failed on batch ${e.seq}${e.messages !== undefined ? ` (${e.messages} msgs)` : ''}`;
    const next =
      e.verdict === 'isolating'
        ? '; splitting it to find the messages at fault'
        : e.verdict === 'dead-letter'
          ? '; the message goes to the dead-letter store'
          : e.retryInMs === undefined
            ? ''
            : `; retrying in ${seconds(e.retryInMs)}`;
    log.warn(`handler "${e.handler}" ${what} (attempt ${e.attempt}): ${e.error.message}${next}`);
  });
  receiver.on('dead-letter', (e) => {
    const stats = receiver.stats();
    log.warn(
      `handler "${e.handler}": ${e.letters.length} message(s) of batch ${e.seq} dead-lettered (${e.letters[0]?.error ?? '?'}); ${e.total} in ${stats.deadLetterStore}`,
    );
  });
  receiver.on('source-error', (e) => {
    if (e.fatal) return;
    const retry = e.retryInMs === undefined ? '' : `; retrying in ${seconds(e.retryInMs)}`;
    log.warn(e.blocked ? `${e.blocked}${retry} (${e.error.message})` : `${e.error.message}${retry}`);
  });
  let previous = receiver.state;
  receiver.on('state', (state) => {
    if (state === 'running' && previous === 'retrying') log.info('recovered: every handler and the source work again');
    previous = state;
  });
  if (!everyMs) return () => {};
  const timer = setInterval(() => {
    const stats = receiver.stats();
    log.info(receiverLine(stats));
    for (const h of stats.handlers) log.info(`  ${handlerLine(h)}`);
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
