/**
 * The one place that knows how the extension talks to flespi: a token (kept only in SecretStorage)
 * against a region, or the local sandbox started inside the extension host. Everything else (trees,
 * tail panels, forwarding) reads `current` and listens to `onDidChange`.
 */
import * as vscode from 'vscode';
import { FlespiError, errorMessage, type FlespiErrorKind } from '../core/errors';
import type { FlespiClient } from '../core/flespi/client';
import { redactUrl, warnCleartextCredentials } from '../core/security';
import { resolveEndpoints, type Endpoints } from './endpoints';

export type ConnectionMode = 'token' | 'sandbox';

/** A live connection: what a panel or a receiver needs to talk to flespi. */
export interface ConnectionInfo {
  readonly client: FlespiClient;
  readonly restUrl: string;
  readonly mqttUrl: string;
  /** The bare token, for MQTT sources; never log or persist it. */
  readonly token: string;
  /** 'sandbox', the region ('eu' | 'ru'), or the host of an overridden base URL. */
  readonly label: string;
  readonly mode: ConnectionMode;
}

export type ConnectionState =
  | { readonly kind: 'none' }
  | { readonly kind: 'connecting'; readonly mode: ConnectionMode; readonly label: string }
  | { readonly kind: 'connected'; readonly info: ConnectionInfo }
  | { readonly kind: 'failed'; readonly mode: ConnectionMode; readonly label: string; readonly message: string; readonly errorKind?: FlespiErrorKind };

const TOKEN_SECRET = 'flespi.token';
/** globalState: which connection to restore after a reload. A mode flag only, never a secret. */
const MODE_KEY = 'flespi.connectionMode';
type StoredMode = ConnectionMode | 'off';

const APP_NAME = 'flespi-receiver-vscode';

interface RunningSandbox {
  restUrl: string;
  mqttUrl: string;
  token: string;
  stop(): Promise<void>;
}

export class Connection implements vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<ConnectionInfo | undefined>();
  /** Fires on every change of `state`, with the live connection (undefined while there is none). */
  readonly onDidChange = this.changed.event;
  private currentState: ConnectionState = { kind: 'none' };
  private sandbox?: RunningSandbox;
  /** Bumped by every connect/disconnect, so a slow older attempt cannot overwrite a newer state. */
  private generation = 0;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get state(): ConnectionState {
    return this.currentState;
  }

  get current(): ConnectionInfo | undefined {
    return this.currentState.kind === 'connected' ? this.currentState.info : undefined;
  }

  /** Reconnects the way the user chose last time (called on activation). */
  async restore(): Promise<void> {
    const mode = this.context.globalState.get<StoredMode>(MODE_KEY);
    if (mode === 'off') return;
    if (mode === 'sandbox') {
      await this.useSandbox().catch(() => {});
      return;
    }
    const token = await this.context.secrets.get(TOKEN_SECRET);
    if (token) await this.connectWithToken(token);
  }

  /** Reconnects with the stored token (after a settings change or a click on an error item). */
  async reconnect(): Promise<void> {
    if (this.mode() === 'sandbox') {
      await this.useSandbox().catch(() => {});
      return;
    }
    const token = await this.context.secrets.get(TOKEN_SECRET);
    if (token) await this.connectWithToken(token);
    else this.setState({ kind: 'none' });
  }

  /** The mode of the current or failed connection. */
  mode(): ConnectionMode | undefined {
    const state = this.currentState;
    if (state.kind === 'connected') return state.info.mode;
    return state.kind === 'none' ? undefined : state.mode;
  }

  /**
   * Checks `token` against /auth/info and, if flespi accepts it, stores it in SecretStorage and
   * connects with it. Throws the FlespiError otherwise (nothing is stored then), unless `saveAnyway`.
   */
  async setToken(token: string, options: { saveAnyway?: boolean } = {}): Promise<void> {
    const bare = token.trim().replace(/^FlespiToken\s+/i, '');
    const endpoints = this.endpoints();
    if (!options.saveAnyway) {
      const client = await newClient(bare, endpoints.restUrl);
      await client.authInfo();
    }
    await this.context.secrets.store(TOKEN_SECRET, bare);
    await this.context.globalState.update(MODE_KEY, 'token');
    await this.stopSandbox();
    await this.connectWithToken(bare);
  }

  async hasToken(): Promise<boolean> {
    return (await this.context.secrets.get(TOKEN_SECRET)) !== undefined;
  }

  /** Deletes the stored token; disconnects when it was in use. */
  async forgetToken(): Promise<void> {
    await this.context.secrets.delete(TOKEN_SECRET);
    if (this.mode() === 'token') {
      this.generation++;
      await this.context.globalState.update(MODE_KEY, undefined);
      this.setState({ kind: 'none' });
    }
  }

  /** Starts the local flespi emulator in the extension host (once) and connects to it. */
  async useSandbox(): Promise<void> {
    const generation = ++this.generation;
    await this.context.globalState.update(MODE_KEY, 'sandbox');
    this.setState({ kind: 'connecting', mode: 'sandbox', label: 'sandbox' });
    try {
      let sandbox = this.sandbox;
      if (!sandbox) {
        const { startSandbox } = await import('../sandbox/index.js');
        sandbox = this.sandbox = await startSandbox({ restPort: 0, mqttPort: 0 });
        this.log.info(`sandbox started: REST ${sandbox.restUrl}, MQTT ${sandbox.mqttUrl}`);
      }
      const { restUrl, mqttUrl, token } = sandbox;
      const client = await newClient(token, restUrl);
      if (generation !== this.generation) return; // a newer connect or disconnect came meanwhile
      this.setState({ kind: 'connected', info: { client, restUrl, mqttUrl, token, label: 'sandbox', mode: 'sandbox' } });
    } catch (error) {
      const message = `cannot start the local sandbox: ${errorMessage(error)}`;
      this.log.error(message);
      if (generation === this.generation) this.setState({ kind: 'failed', mode: 'sandbox', label: 'sandbox', message });
      throw new Error(message, { cause: error });
    }
  }

  /** Disconnects and stops the sandbox; nothing reconnects after a reload until the user chooses again. */
  async disconnect(): Promise<void> {
    this.generation++;
    await this.context.globalState.update(MODE_KEY, 'off');
    await this.stopSandbox();
    this.setState({ kind: 'none' });
  }

  async dispose(): Promise<void> {
    this.generation++;
    await this.stopSandbox();
    this.changed.dispose();
  }

  /** The REST/MQTT endpoints the settings point at (the sandbox ignores them). */
  endpoints(): Endpoints {
    const config = vscode.workspace.getConfiguration('flespi');
    return resolveEndpoints({ region: config.get('region'), baseUrl: config.get('baseUrl'), mqttUrl: config.get('mqttUrl') });
  }

  private async connectWithToken(token: string): Promise<void> {
    const generation = ++this.generation;
    let endpoints: Endpoints;
    try {
      endpoints = this.endpoints();
    } catch (error) {
      this.setState({ kind: 'failed', mode: 'token', label: 'flespi', message: errorMessage(error) });
      return;
    }
    this.setState({ kind: 'connecting', mode: 'token', label: endpoints.label });
    warnCleartextCredentials(endpoints.restUrl, 'the flespi token', this.log);
    warnCleartextCredentials(endpoints.mqttUrl, 'the flespi token (live tails and forwarding log in with it over MQTT)', this.log);
    let client: FlespiClient;
    try {
      client = await newClient(token, endpoints.restUrl);
      await client.authInfo();
    } catch (error) {
      if (generation !== this.generation) return;
      this.log.warn(`cannot connect to flespi (${endpoints.label}): ${errorMessage(error)}`);
      this.setState({
        kind: 'failed',
        mode: 'token',
        label: endpoints.label,
        message: errorMessage(error),
        errorKind: error instanceof FlespiError ? error.kind : undefined,
      });
      return;
    }
    if (generation !== this.generation) return;
    this.log.info(`connected to flespi (${endpoints.label}, ${redactUrl(endpoints.restUrl)})`);
    this.setState({
      kind: 'connected',
      info: { client, restUrl: endpoints.restUrl, mqttUrl: endpoints.mqttUrl, token, label: endpoints.label, mode: 'token' },
    });
  }

  private async stopSandbox(): Promise<void> {
    const sandbox = this.sandbox;
    this.sandbox = undefined;
    if (!sandbox) return;
    try {
      await sandbox.stop();
      this.log.info('sandbox stopped');
    } catch (error) {
      this.log.warn(`sandbox did not stop cleanly: ${errorMessage(error)}`);
    }
  }

  private setState(state: ConnectionState): void {
    this.currentState = state;
    void vscode.commands.executeCommand('setContext', 'flespi.connection', state.kind);
    this.changed.fire(this.current);
  }
}

/** axios (and through it Node's HTTP stack) loads with the first connection, not on activation. */
async function newClient(token: string, baseUrl: string): Promise<FlespiClient> {
  const { FlespiClient } = await import('../core/flespi/client.js');
  return new FlespiClient({ token, baseUrl, appName: APP_NAME });
}
