import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpSpec } from '../../src/core/handlers/http';
import { memoryLogger } from '../support/logger';

const env = { resolvePath: (p: string) => p };

test('HTTP sink: headers (credentials, typically) bound for http:// on another machine are warned about at start, naming the https:// URL to use; https and loopback are not', async () => {
  const cases: [url: string, headers: Record<string, string>, warns: boolean][] = [
    ['http://ingest.example.com/in', { Authorization: 'Bearer secret' }, true],
    ['https://ingest.example.com/in', { Authorization: 'Bearer x' }, false],
    ['http://127.0.0.1:8080/in', { Authorization: 'Bearer x' }, false],
    ['http://ingest.example.com/in', {}, false],
  ];
  for (const [url, headers, warns] of cases) {
    const handler = httpSpec.create({ url, headers }, env, 'hook');
    const log = memoryLogger();
    handler.attachLogger(log);
    await handler.start();
    await handler.stop();
    const warnings = log.at('warn');
    assert.equal(warnings.length, warns ? 1 : 0, `${url}: ${warnings.join(' | ')}`);
    if (warns) {
      assert.match(
        warnings[0]!,
        /each header of HTTP sink "hook" is sent unencrypted to http:\/\/ingest\.example\.com\/in.*use https:\/\/ingest\.example\.com/,
      );
      assert.doesNotMatch(warnings[0]!, /secret/);
    }
  }
});
