// Serves the e2e setup to a person: builds, packages and installs the extension into a fresh
// profile, starts the test peers and code-server, and prints the URL to open. Ctrl+C stops it all.
// Usage: node --import tsx scripts/e2e/serve.ts     (npm run e2e:serve)
import { awsSinkSetting, sessionOptions } from '../../test/e2e/setup';
import { SANDBOX_TOKEN, serveSession } from '../../test/e2e/support/session';

async function main(): Promise<void> {
  // Flow 3 adds the AWS IoT sink through the UI; here it is ready to use.
  const session = await serveSession({
    ...sessionOptions,
    settings: (peers) => {
      const settings = sessionOptions.settings(peers);
      return { ...settings, user: { ...settings.user, 'flespi.sinks': [awsSinkSetting(peers)] } };
    },
  });
  const { peers } = session;
  console.log(`open ${session.server.folderUrl(session.workspace)}`);
  console.log(`  sandbox (flespi.baseUrl): ${peers.sandbox.restUrl}, MQTT ${peers.sandbox.mqttUrl}, token ${SANDBOX_TOKEN} (a test token)`);
  console.log(`  Mosquitto with client certificates: ${peers.tls.broker.url} (sink "e2e-aws-iot"); Wialon receiver: 127.0.0.1:${peers.wialon.port}`);
  console.log(`  profile and workspace: ${session.root}`);
  console.log('Ctrl+C stops everything.');
  const stop = () => void session.stop({ keepFiles: false }).then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
