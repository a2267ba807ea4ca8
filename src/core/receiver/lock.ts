/**
 * An exclusive owner lock on a file: `<path>` holds who owns it (pid, host, start time). One
 * receiver per channel position: two receivers on one checkpoint would fight over it and deliver
 * messages twice.
 *
 * - Taking it is atomic: the owner record is written to a temporary file and hard-linked to the
 *   lock path, which fails when the lock exists (and never leaves a half-written lock behind).
 * - A lock whose owner is gone is taken over: on this host a pid that no longer runs
 *   (`process.kill(pid, 0)`), a record from before the last reboot (Linux boot id), or a record of
 *   this very process that no live lock object holds. A lock held on another host is never taken
 *   over: nothing here can tell whether that process still runs.
 * - Released by `release()`, and at the latest when the process exits (a SIGKILL leaves it behind;
 *   the next owner takes it over).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { ConfigError } from '../options';

/** What a lock file says about its owner. */
export interface LockOwner {
  pid: number;
  hostname: string;
  /** When the owner took the lock (ISO). */
  since: string;
  /** What holds it, for people: e.g. `flespi-receiver run /srv/receiver.json` or `VS Code window`. */
  by?: string;
  /** Linux: the kernel's boot id when the lock was taken (a record from before a reboot is stale). */
  bootId?: string;
  /** Random per acquisition: tells this lock apart from a later one at the same path. */
  id: string;
}

/** The lock is held by a live owner. */
export class LockedError extends ConfigError {
  constructor(
    readonly path: string,
    readonly owner: LockOwner,
    message?: string,
  ) {
    super(message ?? `${path} is held by ${describeOwner(owner)}`);
  }

  /** True when the owner runs on this machine (else it is on another host sharing the file). */
  get local(): boolean {
    return this.owner.hostname === hostname();
  }
}

/** `pid 123 on this machine ("flespi-receiver run x.json"), since <time>` */
export function describeOwner(owner: LockOwner): string {
  const where = owner.hostname === hostname() ? 'on this machine' : `on host ${owner.hostname}`;
  return `pid ${owner.pid} ${where}${owner.by ? ` (${owner.by})` : ''}, since ${owner.since}`;
}

/** Locks held by this process, by path: a second FileLock on the same path in this process is another owner. */
const held = new Map<string, FileLock>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const lock of held.values()) lock.releaseSync();
  });
}

export class FileLock {
  private ownId?: string;
  /** Set by acquire() when it took over a stale lock: whose it was. */
  takenOverFrom?: LockOwner;

  /** `path` is the lock file itself (e.g. `<checkpoint>.lock`). */
  constructor(
    readonly path: string,
    private readonly by?: string,
  ) {}

  get isHeld(): boolean {
    return this.ownId !== undefined;
  }

  /** @internal True when this object holds the lock recorded with `id`. */
  holds(id: string): boolean {
    return this.ownId === id;
  }

  /**
   * Takes the lock, taking over a stale one. Rejects with LockedError naming the owner when a live
   * process holds it. Calling it again while held does nothing.
   */
  async acquire(): Promise<void> {
    if (this.ownId) return;
    this.takenOverFrom = undefined;
    await mkdir(dirname(this.path), { recursive: true });
    const owner: LockOwner = { pid: process.pid, hostname: hostname(), since: new Date().toISOString(), id: randomBytes(8).toString('hex') };
    if (this.by) owner.by = this.by;
    const boot = bootId();
    if (boot) owner.bootId = boot;
    const temp = `${this.path}.${process.pid}.${owner.id}.tmp`;
    await writeFile(temp, JSON.stringify(owner, null, 2) + '\n', { mode: 0o644 });
    try {
      for (let attempt = 0; attempt < 10; attempt++) {
        try {
          await link(temp, this.path);
          this.ownId = owner.id;
          held.set(this.path, this);
          installExitHook();
          return;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        }
        const text = await readText(this.path);
        if (text === undefined) continue; // released meanwhile: try again
        const current = parseOwner(text);
        if (current && isAlive(current, this.path)) throw new LockedError(this.path, current);
        if (await this.takeOver(text)) this.takenOverFrom = current;
      }
      throw new Error(`cannot take the lock ${this.path}: it keeps changing hands`);
    } finally {
      await unlink(temp).catch(() => {});
    }
  }

  /** Releases the lock if this object holds it (never removes another owner's lock). */
  async release(): Promise<void> {
    const id = this.ownId;
    if (!id) return;
    this.ownId = undefined;
    if (held.get(this.path) === this) held.delete(this.path);
    const text = await readText(this.path);
    if (text !== undefined && parseOwner(text)?.id === id) await unlink(this.path).catch(() => {});
  }

  /** @internal for the exit hook */
  releaseSync(): void {
    const id = this.ownId;
    if (!id) return;
    this.ownId = undefined;
    try {
      if (parseOwner(readFileSync(this.path, 'utf8'))?.id === id) unlinkSync(this.path);
    } catch {
      // gone already
    }
  }

  /** Who holds the lock at `path`, when its owner is alive; undefined when free or stale. */
  static async owner(path: string): Promise<LockOwner | undefined> {
    const text = await readText(path);
    const owner = text === undefined ? undefined : parseOwner(text);
    return owner && isAlive(owner, path) ? owner : undefined;
  }

  /**
   * Removes the stale lock whose content is `text`. Moving it aside first makes the check and the
   * removal one step: when another process replaced it meanwhile, the new lock is put back.
   */
  private async takeOver(text: string): Promise<boolean> {
    const aside = `${this.path}.${randomBytes(6).toString('hex')}.stale`;
    try {
      await rename(this.path, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw error;
    }
    const moved = await readText(aside);
    if (moved !== text) {
      await link(aside, this.path).catch(() => {}); // someone's fresh lock: back where it was
      await unlink(aside).catch(() => {});
      return false;
    }
    await unlink(aside).catch(() => {});
    return true;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner> | null;
    if (value && Number.isInteger(value.pid) && typeof value.hostname === 'string' && typeof value.id === 'string') {
      return { ...value, since: typeof value.since === 'string' ? value.since : 'an unknown time' } as LockOwner;
    }
  } catch {
    // not a lock record: stale (nothing this code writes looks like that)
  }
  return undefined;
}

/** False when the owner is known to be gone; a lock on another host counts as alive. */
function isAlive(owner: LockOwner, path: string): boolean {
  if (owner.hostname !== hostname()) return true;
  const boot = bootId();
  if (boot && owner.bootId && owner.bootId !== boot) return false;
  if (owner.pid === process.pid) return held.get(path)?.holds(owner.id) ?? false;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // runs, as another user
  }
}

let cachedBootId: string | null | undefined;
function bootId(): string | undefined {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId ?? undefined;
}
