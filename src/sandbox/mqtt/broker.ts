// CONTRACT STUB — the sandbox MQTT broker is being implemented in this file.
// src/sandbox/index.ts codes against exactly these signatures.

export interface BrokerOptions {
  /** Accepts or refuses a CONNECT. `username` may be the bare token or "FlespiToken <token>"; the token may also be in the password. */
  authenticate(username: string | undefined, password: Buffer | undefined): 'ok' | 'bad-credentials' | 'blocked';
}

export interface PublishOptions {
  retain?: boolean;
  /** MQTT 5 user properties (flespi sets `timestamp`, `cid`). Ignored for MQTT 3.1.1 clients. */
  userProperties?: Record<string, string>;
}

export class SandboxBroker {
  constructor(readonly options: BrokerOptions) {}

  /** Starts listening; resolves with the bound port (pass 0 for a random one). */
  async listen(port: number, host: string): Promise<number> {
    void host;
    return port;
  }

  /** Publishes as the platform (QoS 1 to QoS 1 subscribers). Retained with an empty payload clears the retained message. */
  publish(topic: string, payload: Buffer | string, options: PublishOptions = {}): void {
    void topic;
    void payload;
    void options;
  }

  /** Fault injection: closes every client connection abruptly (persistent sessions survive). */
  dropClients(): void {}

  /** Number of connected clients, for the control API. */
  get clientCount(): number {
    return 0;
  }

  async close(): Promise<void> {}
}
