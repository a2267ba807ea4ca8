import assert from 'node:assert/strict';
import { FlespiError, type FlespiErrorKind } from '../../src/core/errors';

/** The FlespiError a promise rejects with (the test fails when it resolves or rejects with anything else). */
export async function flespiFailure(promise: Promise<unknown>): Promise<FlespiError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof FlespiError, `expected a FlespiError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the request to fail, it succeeded');
}

/** For `assert.rejects`: the error is a FlespiError of `kind` whose message matches `message`. */
export function isFlespiError(kind: FlespiErrorKind, message: RegExp): (error: unknown) => true {
  return (error) => {
    assert.ok(error instanceof FlespiError, `got ${String(error)}`);
    assert.equal(error.kind, kind, error.message);
    assert.match(error.message, message);
    return true;
  };
}
