// `tail` writes device text to a terminal: what a terminal would act on must arrive escaped, as the same JSON.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quietSandbox } from '../receiver/helpers';
import { CHANNEL, startCli, waitUntil } from './support';

test(
  'CLI tail: DEL, C1 controls (CSI U+009B) and bidi overrides in keys and values come out as \\u escapes, and the line still parses to the same message',
  { timeout: 60_000 },
  async () => {
    const sandbox = await quietSandbox();
    const hostile = { ident: 'dev-1', 'device.name': 'dev\u009b2J\u009b0;pwned\u0007', 'name\u202eevil': 'x\u007fy\u2066z', 'test.seq': 1 };
    try {
      sandbox.inject(CHANNEL, [hostile]);
      for (const pretty of [false, true]) {
        const tail = await startCli(['tail', String(CHANNEL), '--base-url', sandbox.restUrl, ...(pretty ? ['--pretty'] : [])], {
          env: { FLESPI_TOKEN: sandbox.token },
        });
        try {
          await waitUntil(
            () => tail.stdout().includes(pretty ? '\n}\n' : '\n'),
            () => `no message on stdout; stderr: ${tail.stderr()}`,
          );
        } finally {
          tail.child.kill('SIGINT');
          await tail.exit;
        }
        const out = tail.stdout();
        assert.doesNotMatch(out, /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/, 'no raw terminal control reaches stdout');
        assert.match(out, /dev\\u009b2J\\u009b0;pwned\\u0007/);
        const parsed = JSON.parse(pretty ? out.slice(0, out.indexOf('\n}\n') + 2) : out.split('\n')[0]!) as Record<string, unknown>;
        for (const [key, value] of Object.entries(hostile)) assert.equal(parsed[key], value, key);
      }
    } finally {
      await sandbox.stop();
    }
  },
);
