/**
 * A real Mosquitto broker for tests: `startMosquitto()` writes a config into a temp folder,
 * spawns /usr/sbin/mosquitto on a free 127.0.0.1 port and resolves once it accepts connections.
 *
 * ```ts
 * const pki = await createTestPki();
 * const broker = await startMosquitto({ tls: { caFile: pki.ca.cert, certFile: pki.server.cert, keyFile: pki.server.key, requireCertificate: true } });
 * // ... broker.url is mqtts://127.0.0.1:<port>
 * await broker.stop();
 * ```
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const MOSQUITTO = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
const MOSQUITTO_PASSWD = process.env.MOSQUITTO_PASSWD_BIN ?? '/usr/bin/mosquitto_passwd';

export interface MosquittoTls {
  /** CA that signs the client certificates the broker accepts. */
  caFile: string;
  /** The broker's own certificate and key. */
  certFile: string;
  keyFile: string;
  /** Refuse clients without a certificate signed by caFile (default true). */
  requireCertificate?: boolean;
  /** Use the client certificate's CN as the MQTT username. */
  useIdentityAsUsername?: boolean;
}

export interface MosquittoOptions {
  /** Omit for a plain TCP listener. */
  tls?: MosquittoTls;
  /** Listen on this port instead of a free one (e.g. to bring a broker back on the same address). */
  port?: number;
  /** Username → password; when given, only these users may connect (no anonymous clients). */
  users?: Readonly<Record<string, string>>;
  /** Extra config lines, e.g. `max_inflight_messages 10`. */
  extraConfig?: readonly string[];
}

export interface RunningMosquitto {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `mqtts://127.0.0.1:<port>` with TLS, `mqtt://...` without. */
  readonly url: string;
  /** The CA that clients should trust (the one that signed the broker's certificate is up to the caller). */
  readonly caFile?: string;
  /** Everything the broker wrote to stderr (its log), for assertions and failure messages. */
  log(): string;
  /** Stops the broker; resolves when the process has exited. Safe to call twice. */
  stop(): Promise<void>;
  /** Starts the stopped broker again on the same port with the same config (a fresh, empty broker). */
  start(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

// Brokers still running when the test process exits (a failed test skipped its cleanup) die with it.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const broker of running) broker.kill('SIGKILL');
});

export async function startMosquitto(options: MosquittoOptions = {}): Promise<RunningMosquitto> {
  const port = options.port ?? (await freePort());
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  const start = async () => {
    if (child) return;
    // The config lives only until the broker has read it, so there is nothing to clean up later.
    const dir = await mkdtemp(join(tmpdir(), 'flespi-mosquitto-'));
    const configFile = join(dir, 'mosquitto.conf');
    const lines = mosquittoConfig(port, options);
    if (options.users) {
      const passwordFile = join(dir, 'passwords');
      await writeFile(passwordFile, '');
      for (const [user, password] of Object.entries(options.users)) await promisify(execFile)(MOSQUITTO_PASSWD, ['-b', passwordFile, user, password]);
      lines.push(`password_file ${passwordFile}`);
    }
    const config = lines.join('\n') + '\n';
    await writeFile(configFile, config);
    const broker = spawn(MOSQUITTO, ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = broker;
    running.add(broker);
    broker.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    exited = new Promise((resolve) =>
      broker.once('exit', () => {
        running.delete(broker);
        resolve();
      }),
    );
    const early = exited.then(() => {
      throw new Error(`mosquitto exited during startup:\n${output}\nconfig:\n${config}`);
    });
    early.catch(() => {});
    try {
      await Promise.race([waitForListener(port), early]);
    } catch (error) {
      child = undefined;
      broker.kill('SIGKILL');
      throw error;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    void exited.then(() => {
      if (child === broker) child = undefined;
    });
  };

  const stop = async () => {
    const broker = child;
    child = undefined;
    if (broker && broker.exitCode === null && broker.signalCode === null) {
      broker.kill('SIGTERM');
      await exited;
    }
  };

  await start();
  return {
    host: '127.0.0.1',
    port,
    url: `${options.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    caFile: options.tls?.caFile,
    log: () => output,
    start,
    stop,
  };
}

function mosquittoConfig(port: number, options: MosquittoOptions): string[] {
  const lines = [
    'per_listener_settings false',
    `allow_anonymous ${options.users ? 'false' : 'true'}`,
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
  ];
  // As root, Mosquitto drops to the "mosquitto" user, which cannot read files in our private temp folders.
  if (process.getuid?.() === 0) lines.unshift(`user ${userInfo().username}`);
  lines.push(`listener ${port} 127.0.0.1`);
  const tls = options.tls;
  if (tls) {
    lines.push(`cafile ${tls.caFile}`, `certfile ${tls.certFile}`, `keyfile ${tls.keyFile}`, `require_certificate ${tls.requireCertificate ?? true}`);
    if (tls.useIdentityAsUsername) lines.push('use_identity_as_username true');
  }
  return [...lines, ...(options.extraConfig ?? [])];
}

/** A port that was free a moment ago: bind port 0, read the port, release it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolves once a TCP connection to the port succeeds. */
async function waitForListener(port: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (true) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`mosquitto did not listen on 127.0.0.1:${port} within ${READY_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
