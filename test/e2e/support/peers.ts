// The real servers the e2e flows talk to: the flespi sandbox (a separate process, through the CLI),
// Mosquitto with TLS client certificates (an AWS IoT stand-in), and the Wialon test receiver.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createTestPki, type TestPki } from '../../support/certs';
import { freePort, startMosquitto, type RunningMosquitto } from '../../support/mosquitto';
import { subscribe, type Subscriber } from '../../support/subscriber';
import { WialonTestReceiver } from '../../support/wialonReceiver';
import { projectRoot } from './host';
import { waitFor } from './workbench';

/** The flespi sandbox served by `node dist/cli.js sandbox`, accepting only `token`. */
export class SandboxProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly restUrl: string,
    readonly mqttUrl: string,
    readonly token: string,
    readonly log: () => string,
  ) {}

  static async start(token: string): Promise<SandboxProcess> {
    const restPort = await freePort();
    const mqttPort = await freePort();
    const cli = join(projectRoot, 'dist/cli.js');
    const child = spawn(process.execPath, [cli, 'sandbox', '--rest-port', String(restPort), '--mqtt-port', String(mqttPort), '--token', token], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const restUrl = `http://127.0.0.1:${restPort}`;
    const sandbox = new SandboxProcess(child, restUrl, `mqtt://127.0.0.1:${mqttPort}`, token, () => output);
    try {
      await waitFor(
        `the sandbox to answer on ${restUrl} (its output: ${output.slice(-500) || 'none'})`,
        async () => {
          if (child.exitCode !== null) throw new Error(`the sandbox exited with ${child.exitCode}: ${output.slice(-1000)}`);
          const res = await fetch(`${restUrl}/auth/info`, { headers: { Authorization: `FlespiToken ${token}` } });
          return res.ok;
        },
        20_000,
      );
    } catch (error) {
      await sandbox.stop();
      throw error;
    }
    return sandbox;
  }

  /** Names of the sandbox's channels, asked over its REST API. */
  async channelNames(): Promise<string[]> {
    return (await this.channels()).map((c) => c.name);
  }

  async channels(): Promise<{ id: number; name: string }[]> {
    const res = await fetch(`${this.restUrl}/gw/channels/all?fields=id,name`, { headers: { Authorization: `FlespiToken ${this.token}` } });
    if (!res.ok) throw new Error(`the sandbox answered ${res.status} to GET /gw/channels/all`);
    return ((await res.json()) as { result: { id: number; name: string }[] }).result;
  }

  /** Adds messages to a channel's buffer, as if a device had sent them (the sandbox's control API). */
  async inject(channelId: number, messages: Record<string, unknown>[]): Promise<void> {
    const res = await fetch(`${this.restUrl}/sandbox/channels/${channelId}/messages`, {
      method: 'POST',
      headers: { Authorization: `FlespiToken ${this.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(messages),
    });
    if (!res.ok) throw new Error(`the sandbox answered ${res.status} to POST /sandbox/channels/${channelId}/messages: ${(await res.text()).slice(0, 300)}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** Mosquitto requiring client certificates, and a subscriber on it that was there before any message. */
export interface TlsBroker {
  pki: TestPki;
  broker: RunningMosquitto;
  subscriber: Subscriber;
  stop(): Promise<void>;
}

export async function startTlsBroker(topicFilter: string): Promise<TlsBroker> {
  const pki = await createTestPki();
  const broker = await startMosquitto({ tls: { caFile: pki.ca.cert, certFile: pki.server.cert, keyFile: pki.server.key, requireCertificate: true } });
  const subscriber = await subscribe(broker.url, topicFilter, { caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.client.key });
  return {
    pki,
    broker,
    subscriber,
    async stop() {
      await subscriber.close().catch(() => undefined);
      await broker.stop();
      await pki.cleanup();
    },
  };
}

export async function startWialonReceiver(): Promise<{ receiver: WialonTestReceiver; port: number }> {
  const receiver = new WialonTestReceiver();
  return { receiver, port: await receiver.listen(0, '127.0.0.1') };
}
