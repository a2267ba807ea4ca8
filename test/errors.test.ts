import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlespiError } from '../src/core/errors';

test('FlespiError: transient kinds are retryable, user mistakes are not', () => {
  assert.equal(new FlespiError('rate-limited', 'slow down').retryable, true);
  assert.equal(new FlespiError('server', 'oops').retryable, true);
  assert.equal(new FlespiError('auth', 'bad token').retryable, false);
  assert.equal(new FlespiError('not-found', 'no channel').retryable, false);
});
