// Forwarding's dead letters: a sink's undeliverable messages land in the per-channel file of the
// extension's storage, are counted per sink, shown as one document, and sent again after a fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UndeliverableError } from '../../src/core/errors';
import { FlespiClient } from '../../src/core/flespi/client';
import { Handler, type HandlerContext } from '../../src/core/handler';
import { silentLogger } from '../../src/core/logger';
import type { FlespiMessage } from '../../src/core/message';
import { MemoryCheckpointStore } from '../../src/core/receiver/checkpoint';
import { RestSource } from '../../src/core/sources/rest';
import { startSandbox } from '../../src/sandbox/index';
import { DeadLetterFiles, deadLettersDocument } from '../../src/extension/forwarding/deadLetterFiles';
import { createSinkHandler } from '../../src/extension/sinks/createSinkHandler';
import { ForwardingManager, type ForwardingSpec } from '../../src/extension/forwarding/manager';
import { ForwardingRecords } from '../../src/extension/forwarding/records';

/** A sink that refuses messages whose ident is in `refused` (as an HTTP endpoint answering 400 would). */
class PickySink extends Handler {
  readonly accepted: string[] = [];
  constructor(
    name: string,
    private readonly refused: Set<string>,
  ) {
    super(name);
  }
  async handle(messages: readonly FlespiMessage[], _ctx: HandlerContext): Promise<void> {
    const bad = messages.find((m) => this.refused.has(String(m.ident)));
    if (bad) throw new UndeliverableError(`the endpoint refused ${String(bad.ident)} (400)`);
    this.accepted.push(...messages.map((m) => String(m.ident)));
  }
}

test(
  'forwarding dead letters: recorded per connection and channel, counted per sink, shown newest last, sent again after the fix',
  { timeout: 60_000 },
  async () => {
    const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
    const dir = await mkdtemp(join(tmpdir(), 'flespi-dead-letters-'));
    const files = new DeadLetterFiles(join(dir, 'dead-letters'));
    const refused = new Set(['bad-1', 'bad-2']);
    const sinks = new Map<string, PickySink>();
    try {
      const [first, second] = sandbox.channels.map((c) => c.id);
      sandbox.inject(
        first!,
        ['a1', 'bad-1', 'a2'].map((ident) => ({ ident, timestamp: 1_700_000_000 })),
      );
      sandbox.inject(
        second!,
        ['b1', 'b2', 'bad-2'].map((ident) => ({ ident, timestamp: 1_700_000_000 })),
      );
      const manager = new ForwardingManager({
        build: async (spec) => {
          const sink = new PickySink('hook', refused);
          sinks.set(`${spec.channelId}`, sink);
          return {
            source: new RestSource({ client: new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl }), channelId: spec.channelId, timeout: 1 }),
            handlers: [sink],
            checkpoints: new MemoryCheckpointStore(),
            deadLetters: files.store('sandbox', spec.channelId),
          };
        },
        records: new ForwardingRecords(join(dir, 'forwardings')),
        log: silentLogger,
        receiverOptions: { retry: { initialMs: 10, maxMs: 50 } },
      });
      const events: string[] = [];
      manager.on('dead-letter', (forwarding, event) => events.push(`${forwarding.spec.channelId}:${event.handler}:${event.letters.length}`));
      const spec = (channelId: number): ForwardingSpec => ({ channelId, channelName: `c${channelId}`, sinks: ['hook'], connection: 'sandbox' });
      const one = await manager.start(spec(first!));
      const two = await manager.start(spec(second!));
      await new Promise<void>((resolve) => {
        const check = () => one.messagesForwarded === 3 && two.messagesForwarded === 3 && resolve();
        manager.on('change', check);
        check();
      });
      assert.deepEqual(events.sort(), [`${first}:hook:1`, `${second}:hook:1`]);
      assert.deepEqual(one.sinkStats('hook')?.deadLetters, 1, 'the live count of the running forwarding');
      assert.deepEqual([...sinks.get(`${first}`)!.accepted].sort(), ['a1', 'a2']);
      await manager.suspendAll();

      assert.deepEqual(await files.counts('sandbox'), new Map([['hook', 2]]));
      assert.deepEqual(await files.counts('eu'), new Map(), 'another connection has its own files');
      assert.deepEqual(
        (await readdir(join(dir, 'dead-letters'))).sort(),
        [`sandbox-channel-${first}.dead-letters.ndjson`, `sandbox-channel-${second}.dead-letters.ndjson`].sort(),
      );
      const found = await files.read('sandbox', 'hook');
      const shown = JSON.parse(deadLettersDocument(found)) as { channel: number; error: string; message: FlespiMessage }[];
      assert.deepEqual(
        shown.map((r) => [r.channel, r.message.ident]).sort(),
        [
          [first, 'bad-1'],
          [second, 'bad-2'],
        ].sort(),
      );
      assert.match(shown[0]!.error, /refused bad-\d \(400\)/);

      // Still refused: nothing leaves; the channel a window elsewhere runs is skipped.
      const early = await files.resend('sandbox', 'hook', async () => new PickySink('hook', refused), { timeoutMs: 5_000, skip: (id) => id === second });
      assert.deepEqual({ sent: early.sent, remaining: early.remaining, skipped: early.skipped }, { sent: 0, remaining: 1, skipped: 1 });
      assert.match(early.errors[0]!, new RegExp(`^channel ${first}: .*refused bad-1`));

      refused.clear(); // the endpoint was fixed
      const fixed = new PickySink('hook', refused);
      const outcome = await files.resend('sandbox', 'hook', async () => fixed, { timeoutMs: 5_000 });
      assert.deepEqual({ sent: outcome.sent, remaining: outcome.remaining }, { sent: 2, remaining: 0 });
      assert.deepEqual(fixed.accepted.sort(), ['bad-1', 'bad-2']);
      assert.deepEqual(await files.counts('sandbox'), new Map());
    } finally {
      await sandbox.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test("a sink setting's onUndeliverable reaches its handler, for the file sink as for the core ones; a wrong value names the choices", async () => {
  const env = { baseDir: tmpdir(), allowCustomCode: false };
  assert.equal((await createSinkHandler({ name: 'file', type: 'stdout', onUndeliverable: 'stop' }, undefined, env)).onUndeliverable, 'stop');
  assert.equal(
    (await createSinkHandler({ name: 'hook', type: 'http', url: 'https://example.com/in', onUndeliverable: 'retry' }, undefined, env)).onUndeliverable,
    'retry',
  );
  assert.equal((await createSinkHandler({ name: 'hook', type: 'http', url: 'https://example.com/in' }, undefined, env)).onUndeliverable, 'dead-letter');
  await assert.rejects(
    createSinkHandler({ name: 'file', type: 'stdout', onUndeliverable: 'drop' }, undefined, env),
    /onUndeliverable.*"dead-letter", "stop", "retry"/,
  );
});
