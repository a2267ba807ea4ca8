// What the e2e session starts with: the settings written before code-server starts. Shared by the
// flows (flows.e2e.ts) and by scripts/e2e/serve.ts, which serves the same setup to a person.
import type { Peers, SessionOptions } from './support/session';

/** The AWS IoT sink publishes under this prefix; the broker's subscriber listens to all of it. */
export const AWS_TOPIC_PREFIX = 'e2e/flespi';
export const AWS_SINK = 'e2e-aws-iot';

export const sessionOptions: SessionOptions = {
  name: 'flow',
  brokerTopics: `${AWS_TOPIC_PREFIX}/#`,
  settings: (peers) => ({
    // Flow 6 talks to the separately started sandbox, which accepts only its own token.
    // These settings have scope "machine": the remote machine's settings of code-server.
    machine: { 'flespi.baseUrl': peers.sandbox.restUrl, 'flespi.mqttUrl': peers.sandbox.mqttUrl },
    user: {},
  }),
};

/**
 * Flow 3's sink as "Add Sink…" writes it (flow 3 adds it through the UI); scripts/e2e/serve.ts
 * writes it into the settings for a person. The stand-in broker needs what a real AWS IoT endpoint
 * does not: its port, and a CA of its own.
 */
export function awsSinkSetting(peers: Peers): Record<string, unknown> {
  return {
    name: AWS_SINK,
    type: 'aws-iot',
    // AWS IoT's endpoint is a host name; the Mosquitto stand-in listens on 127.0.0.1.
    endpoint: peers.tls.broker.host,
    port: peers.tls.broker.port,
    caFile: peers.tls.pki.ca.cert,
    certFile: peers.tls.pki.client.cert,
    keyFile: peers.tls.pki.client.key,
    topic: `${AWS_TOPIC_PREFIX}/{ident}`,
  };
}
