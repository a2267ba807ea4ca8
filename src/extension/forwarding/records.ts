/**
 * The persisted forwardings, one small JSON file per forwarding in a folder every window of the
 * profile shares (the extension's global storage). A window writes or deletes only the record of
 * the forwarding it changed, so windows never overwrite each other's forwardings (a single list
 * saved by the last window to close did). No vscode here: tested with real files.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { namesIn } from './folder';
import type { ForwardingSpec } from './manager';

export type ForwardingKey = Pick<ForwardingSpec, 'connection' | 'channelId'>;

export class ForwardingRecords {
  constructor(readonly dir: string) {}

  /** The record file of a forwarding: `<connection>-<hash>-channel-<id>.json`. */
  fileOf(key: ForwardingKey): string {
    return join(this.dir, `${recordName(key)}.json`);
  }

  async list(): Promise<ForwardingSpec[]> {
    const names = await namesIn(this.dir);
    const specs: ForwardingSpec[] = [];
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      const spec = parseRecord(await readFile(join(this.dir, name), 'utf8').catch(() => ''));
      if (spec) specs.push(spec);
    }
    return specs;
  }

  /** True when any forwarding is recorded (cheap and synchronous, for activation). */
  any(): boolean {
    try {
      return readdirSync(this.dir).some((name) => name.endsWith('.json') && parseRecord(readFileSync(join(this.dir, name), 'utf8')) !== undefined);
    } catch {
      return false;
    }
  }

  /** Writes the record of `spec` (replacing the one of the same connection and channel). */
  async put(spec: ForwardingSpec): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = this.fileOf(spec);
    const temp = `${file}.${process.pid}.tmp`;
    await writeFile(temp, JSON.stringify(spec, null, 2) + '\n', 'utf8');
    await rename(temp, file);
  }

  async remove(key: ForwardingKey): Promise<void> {
    await unlink(this.fileOf(key)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
}

/** The name shared by a forwarding's record and its lock and checkpoint files. */
export function recordName(key: ForwardingKey): string {
  const readable = key.connection.replace(/[^\w.-]+/g, '_').slice(0, 40);
  const hash = createHash('sha256').update(key.connection).digest('hex').slice(0, 8);
  return `${readable}-${hash}-channel-${key.channelId}`;
}

export function parseRecord(text: string): ForwardingSpec | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return isForwardingSpec(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

export function isForwardingSpec(value: unknown): value is ForwardingSpec {
  const spec = value as Partial<ForwardingSpec> | null;
  return (
    typeof spec === 'object' &&
    spec !== null &&
    Number.isInteger(spec.channelId) &&
    typeof spec.channelName === 'string' &&
    typeof spec.connection === 'string' &&
    (spec.scope === undefined || typeof spec.scope === 'string') &&
    (spec.startKey === undefined || (Number.isInteger(spec.startKey) && spec.startKey >= 0)) &&
    Array.isArray(spec.sinks) &&
    spec.sinks.every((s) => typeof s === 'string')
  );
}
