import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channelSummary, parseChannels } from '../../src/extension/channels/channelModel';
import { historyDocument, historyRequest } from '../../src/extension/channels/history';
import { resolveEndpoints } from '../../src/extension/endpoints';
import { sinkRow, statusBarText, type SinkUse } from '../../src/extension/sinks/sinkStatus';

test('endpoints: region defaults, overrides, and a bad setting named', () => {
  assert.deepEqual(resolveEndpoints({}), { restUrl: 'https://flespi.io', mqttUrl: 'mqtts://mqtt.flespi.io:8883', label: 'eu' });
  assert.deepEqual(resolveEndpoints({ region: 'ru' }), { restUrl: 'https://ru.flespi.io', mqttUrl: 'mqtts://ru-mqtt.flespi.io:8883', label: 'ru' });
  assert.deepEqual(resolveEndpoints({ region: 'eu', baseUrl: 'http://127.0.0.1:9005/', mqttUrl: 'mqtt://127.0.0.1:1883' }), {
    restUrl: 'http://127.0.0.1:9005',
    mqttUrl: 'mqtt://127.0.0.1:1883',
    label: '127.0.0.1:9005',
  });
  assert.deepEqual(resolveEndpoints({ baseUrl: '', mqttUrl: '' }).label, 'eu');
  assert.throws(() => resolveEndpoints({ region: 'us' }), /flespi.region must be "eu" or "ru", got "us"/);
  assert.throws(() => resolveEndpoints({ baseUrl: 'flespi.io' }), /flespi.baseUrl must be a URL starting with http:\/\/ or https:\/\/, got "flespi.io"/);
  assert.throws(() => resolveEndpoints({ mqttUrl: 'https://x' }), /flespi.mqttUrl must be a URL starting with mqtt:\/\//);
});

test('channels: rows sorted by name with protocol, state and forwarding', () => {
  const channels = parseChannels([
    { id: 3, name: 'zeta', protocol_name: 'teltonika', enabled: true, blocked: 0 },
    { id: 1, name: 'alpha', protocol_id: 7, enabled: false },
    { id: 2, name: 'beta', protocol_name: 'wialon_ips', blocked: 3, messages_ttl: 86400, uri: 'ch2.flespi.gw:1234' },
    { name: 'no id' },
  ]);
  assert.deepEqual(
    channels.map((c) => c.name),
    ['alpha', 'beta', 'zeta'],
  );
  assert.equal(channelSummary(channels[0]!).description, '#1 · protocol 7 · disabled');
  assert.equal(channelSummary(channels[0]!).icon, 'circle-slash');
  const blocked = channelSummary(channels[1]!);
  assert.equal(blocked.icon, 'error');
  assert.match(blocked.tooltip, /blocked \(too much traffic in a short time\)/);
  assert.match(blocked.tooltip, /keeps messages for: 1 day/);
  const forwarding = channelSummary(channels[2]!, { state: 'running', messages: 12, sinks: ['a', 'b'] });
  assert.equal(forwarding.description, '#3 · teltonika · → 2 sinks');
  assert.equal(forwarding.icon, 'radio-tower');
  assert.equal(channelSummary(channels[2]!, { state: 'failed', messages: 0, sinks: ['a'] }).icon, 'warning');
});

test('sinks view: idle, healthy and failing rows; the status bar totals', () => {
  const sink = { name: 'hook', type: 'http', url: 'https://example.com/in' };
  assert.deepEqual(sinkRow(sink, []).description, 'http · https://example.com/in');
  // Where a sink goes includes the port, the default one too.
  assert.equal(
    sinkRow({ name: 'aws', type: 'aws-iot', endpoint: 'abc-ats.iot.eu-west-1.amazonaws.com' }, []).description,
    'aws-iot · abc-ats.iot.eu-west-1.amazonaws.com:8883',
  );
  assert.equal(
    sinkRow({ name: 'aws', type: 'aws-iot', endpoint: 'abc-ats.iot.eu-west-1.amazonaws.com', port: 443 }, []).description,
    'aws-iot · abc-ats.iot.eu-west-1.amazonaws.com:443',
  );
  assert.equal(sinkRow({ name: 'w', type: 'wialon', host: 'gw.example.com', port: 20163 }, []).description, 'wialon · gw.example.com:20163');
  const healthy: SinkUse = {
    channelId: 1,
    channelName: 'c1',
    forwardingState: 'running',
    stats: { started: true, totalMessages: 1200, totalFailures: 0, consecutiveFailures: 0, health: { connected: true } },
  };
  const failing: SinkUse = {
    channelId: 2,
    channelName: 'c2',
    forwardingState: 'retrying',
    stats: { started: true, totalMessages: 34, totalFailures: 2, consecutiveFailures: 1, lastError: 'HTTP 503 from https://example.com/in', health: {} },
  };
  assert.deepEqual(
    { ...sinkRow(sink, [healthy]), tooltip: undefined },
    { description: '● connected · 1200 forwarded', tooltip: undefined, icon: 'globe', color: 'charts.green', status: 'ok', deadLetters: 0 },
  );
  const withDead = sinkRow(sink, [healthy], undefined, 3);
  assert.deepEqual(
    [withDead.description, withDead.icon, withDead.status, withDead.deadLetters],
    ['● connected · 1200 forwarded · 3 dead letters', 'mail', 'ok', 3],
  );
  assert.match(withDead.tooltip, /3 dead letters: messages it could never deliver/);
  assert.equal(sinkRow(sink, [], undefined, 1).description, 'http · https://example.com/in · 1 dead letter');
  const row = sinkRow(sink, [healthy, failing]);
  assert.equal(row.description, '● connected · 1234 forwarded · 2 failures · HTTP 503 from https://example.com/in');
  assert.equal(row.status, 'trouble');
  assert.match(row.tooltip, /channel c2 \(#2, retrying\): 34 forwarded, 2 failures/);
  assert.equal(sinkRow(sink, [], 'not run: the workspace is not trusted').status, 'trouble');
  const broken = sinkRow({ name: 'Rec', type: 'custom', file: 'h/Rec.ts' }, [], '/ws/h/Rec.ts:37:38: syntax error: Unexpected token');
  assert.equal(broken.description, 'custom · Rec.ts:37:38: syntax error: Unexpected token');
  assert.match(broken.tooltip, /\/ws\/h\/Rec\.ts:37:38: syntax error/);

  assert.equal(statusBarText([]), undefined);
  assert.deepEqual(
    statusBarText([
      { messages: 1000, sinks: ['a', 'b'], failed: false },
      { messages: 234, sinks: ['b'], failed: false },
    ]),
    { text: '$(radio-tower) flespi: forwarding 1234 → 2 sinks', trouble: false },
  );
  assert.deepEqual(statusBarText([{ messages: 5, sinks: ['a'], failed: true }]), { text: '$(warning) flespi: forwarding 5 → 1 sink', trouble: true });
  assert.equal(
    statusBarText(
      [
        { messages: 5, sinks: ['a'], failed: false },
        { messages: 1, sinks: ['b'], failed: false },
      ],
      3,
    )!.text,
    '$(radio-tower) flespi: forwarding 6 → 2 sinks · 3 dead letters',
  );
});

test('history: newest-first answers become a JSON array in time order; ranges become server.timestamp seconds, capped at 10,000 messages', () => {
  const text = historyDocument([{ t: 3 }, { t: 2 }, { t: 1 }]);
  assert.deepEqual(JSON.parse(text), [{ t: 1 }, { t: 2 }, { t: 3 }]);
  assert.deepEqual(JSON.parse(historyDocument([{ t: 1 }, { t: 2 }], false)), [{ t: 1 }, { t: 2 }]);
  assert.deepEqual(historyRequest({ kind: 'latest', count: 50 }), { params: { count: 50, reverse: true }, title: 'latest 50' });
  assert.equal(historyRequest({ kind: 'latest', count: 1e9 }).params.count, 10_000);
  const from = new Date(2026, 10, 26, 14, 5, 0).getTime();
  const { params, title } = historyRequest({ kind: 'range', fromMs: from + 400, toMs: from + 3_600_000 + 400 });
  assert.deepEqual(params, { from: Math.floor(from / 1000), to: Math.ceil((from + 3_600_400) / 1000), count: 10_000 });
  assert.equal(title, '2026-11-26 14.05.00 to 2026-11-26 15.05.00', 'no colons: the title names a document');
});
