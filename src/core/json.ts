/**
 * JSON text for any value a source may hand us, for records that must be written even when a sink
 * could not serialize the message (the dead-letter store): nesting deeper than the call stack is
 * written without recursion, and a BigInt becomes its decimal string. Only a cycle still throws.
 */
import { stringifyWithoutRecursion } from './handlers/serialize';

export function stringifySafely(value: unknown): string {
  try {
    return JSON.stringify(value, bigintAsString) ?? 'null';
  } catch {
    return stringifyWithoutRecursion(value) ?? 'null';
  }
}

function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
