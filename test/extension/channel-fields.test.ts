// Issue 12 item 10: the Channels tree asks for 2018 fields (connections_count, blocked, uri, ...). A
// flespi that no longer knows one answers 400 (code 2) for the whole list; the tree must still list
// the channels, with fewer details. Against a fake flespi over a real socket, and the sandbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiClient } from '../../src/core/flespi/client';
import { CHANNEL_FIELDS, MINIMAL_CHANNEL_FIELDS, channelSummary, listChannelRows } from '../../src/extension/channels/channelModel';
import { startSandbox } from '../../src/sandbox/index';
import { startFakeFlespi } from '../support/fakeFlespi';

const CHANNELS = [
  { id: 1, name: 'alpha', protocol_name: 'teltonika', enabled: true, messages_ttl: 86400, uri: 'ch1.flespi.gw:1', configuration: {} },
  { id: 2, name: 'beta', protocol_name: 'queclink', enabled: true, messages_ttl: 3600, uri: 'ch2.flespi.gw:2', configuration: {} },
];

/** A flespi whose channels know only `known` fields: any other one in `fields` is a 400 for the whole list. */
async function flespiKnowing(known: readonly string[], t: { after(fn: () => Promise<void>): void }) {
  const server = await startFakeFlespi();
  t.after(() => server.close());
  server.on('GET', '/gw/channels/all', (r) => {
    const fields = r.query.get('fields')?.split(',') ?? [];
    const unknown = fields.filter((f) => !known.includes(f));
    if (unknown.length > 0) return { status: 400, body: { errors: [{ code: 2, reason: `unknown field "${unknown[0]}"` }] } };
    return { body: { result: CHANNELS.map((c) => (fields.length === 0 ? c : Object.fromEntries(fields.map((f) => [f, (c as Record<string, unknown>)[f]])))) } };
  });
  return { server, client: new FlespiClient({ token: 'f'.repeat(64), baseUrl: server.url }) };
}

test('a refused 2018 field (connections_count, blocked) degrades the channel rows to the minimal field set instead of failing the tree', async (t) => {
  const { server, client } = await flespiKnowing(['id', 'name', 'protocol_name', 'protocol_id', 'enabled', 'uri', 'messages_ttl'], t);
  const { channels, degraded } = await listChannelRows(client);
  assert.deepEqual(
    channels.map((c) => [c.id, c.name, c.protocol]),
    [
      [1, 'alpha', 'teltonika'],
      [2, 'beta', 'queclink'],
    ],
  );
  assert.match(degraded ?? '', /flespi refused some channel fields \(unknown field "blocked"\); showing id, name, protocol_name/);
  assert.equal(channelSummary(channels[0]!).description, '#1 · teltonika', 'a row without the refused fields reads as enabled, not blocked');
  const asked = server.requestsTo('GET', '/gw/channels/all').map((r) => r.query.get('fields'));
  assert.ok(asked.includes(CHANNEL_FIELDS.join(',')) && asked.at(-1) === MINIMAL_CHANNEL_FIELDS.join(','), `asked ${asked.join(' | ')}`);
});

test('when even the minimal fields are refused, the rows come from the answer without a field list', async (t) => {
  const { client } = await flespiKnowing(['id', 'name'], t);
  const { channels, degraded } = await listChannelRows(client);
  assert.deepEqual(
    channels.map((c) => [c.id, c.name, c.protocol]),
    [
      [1, 'alpha', 'teltonika'],
      [2, 'beta', 'queclink'],
    ],
  );
  assert.match(degraded ?? '', /showing what it answers without a field list/);
});

test('against the sandbox (which knows every field) the tree asks once and is not degraded; other errors still fail it', async (t) => {
  const sandbox = await startSandbox({ simulate: false, devicesPerChannel: 1 });
  t.after(() => sandbox.stop());
  const { channels, degraded } = await listChannelRows(new FlespiClient({ token: sandbox.token, baseUrl: sandbox.restUrl }));
  assert.deepEqual(channels.map((c) => c.id).sort(), [1001, 1002]);
  assert.equal(channels[0]?.connections, 1);
  assert.equal(degraded, undefined);
  await assert.rejects(
    listChannelRows(new FlespiClient({ token: 'w'.repeat(64), baseUrl: sandbox.restUrl })),
    (e: Error & { kind?: string }) => e.kind === 'auth',
  );
});

test('a forwarding blocked by flespi (403 waited out) shows on its channel row', () => {
  const [channel] = [{ id: 5, name: 'c', enabled: true, blocked: 0, protocol: 'teltonika' }];
  const summary = channelSummary(channel!, { state: 'retrying', messages: 3, sinks: ['http'], blocked: 'blocked by flespi: token or customer is blocked' });
  assert.equal(summary.description, '#5 · teltonika · blocked by flespi');
  assert.match(summary.tooltip, /blocked by flespi: token or customer is blocked: retrying until flespi lets it through/);
});
