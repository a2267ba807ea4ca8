/**
 * Where a sink's secrets live in SecretStorage: keyed by the sink's *scope* and name, so a
 * workspace that defines a sink named `http` never receives the header another workspace (or the
 * user settings) stored for its own `http`. No vscode here: tested directly.
 *
 * - The scope of user-settings sinks is `user`; the scope of workspace sinks is `ws-<hash>` of the
 *   workspace's identity: the `.code-workspace` file's URI for a multi-root workspace, else the
 *   folder's URI (stable across windows and reloads of that workspace).
 * - Secrets stored before scopes (`flespi.sink/<name>`) do not say whose they are. They move to the
 *   user scope by themselves when a user-settings sink asks for them (that sink used them already:
 *   nothing new is exposed). A workspace sink gets them only when the user says so, once; then they
 *   move to that workspace. A "no" leaves them where they are, for the workspace they belong to.
 */
import { createHash } from 'node:crypto';

/** The SecretStorage methods used here (vscode.SecretStorage has them). */
export interface SecretBackend {
  get(key: string): PromiseLike<string | undefined>;
  store(key: string, value: string): PromiseLike<void>;
  delete(key: string): PromiseLike<void>;
}

export const USER_SCOPE = 'user';

/** The scope of a workspace's sinks, from the URI of its workspace file or (single folder) its folder. */
export function workspaceScope(workspaceUri: string): string {
  return `ws-${createHash('sha256').update(workspaceUri).digest('hex').slice(0, 16)}`;
}

/** The SecretStorage key of a sink's secrets in a scope. */
export function scopedSecretKey(scope: string, sinkName: string): string {
  return `flespi.sink/${scope}/${sinkName}`;
}

/** The key used before secrets were scoped. */
export function legacySecretKey(sinkName: string): string {
  return `flespi.sink/${sinkName}`;
}

export interface LegacyQuestion {
  scope: string;
  sinkName: string;
}

export class SinkSecretVault {
  constructor(
    private readonly backend: SecretBackend,
    /** Asked before a workspace sink gets secrets stored before scopes; true = they are this workspace's. */
    private readonly askLegacy: (question: LegacyQuestion) => Promise<boolean>,
    private readonly log: (message: string) => void = () => {},
  ) {}

  /** The sink's secrets (JSON text) in `scope`, migrating unscoped ones as described above. */
  async read(scope: string, sinkName: string): Promise<string | undefined> {
    const own = await this.backend.get(scopedSecretKey(scope, sinkName));
    if (own !== undefined) return own;
    const legacy = await this.backend.get(legacySecretKey(sinkName));
    if (legacy === undefined) return undefined;
    if (scope !== USER_SCOPE && !(await this.askLegacy({ scope, sinkName }))) return undefined;
    await this.backend.store(scopedSecretKey(scope, sinkName), legacy);
    await this.backend.delete(legacySecretKey(sinkName));
    this.log(
      `the secrets of sink "${sinkName}" stored before secrets were kept per workspace now belong to ${scope === USER_SCOPE ? 'the user settings' : 'this workspace'}`,
    );
    return legacy;
  }

  async write(scope: string, sinkName: string, text: string | undefined): Promise<void> {
    if (text === undefined) await this.backend.delete(scopedSecretKey(scope, sinkName));
    else await this.backend.store(scopedSecretKey(scope, sinkName), text);
  }

  /** Removes the sink's secrets of this scope (unscoped ones may belong to another workspace: they stay). */
  async remove(scope: string, sinkName: string): Promise<void> {
    await this.backend.delete(scopedSecretKey(scope, sinkName));
  }
}
