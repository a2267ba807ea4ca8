// A CPU profile of another Node process (used with `npm run bench -- --profile` for the VS Code
// extension host): SIGUSR1 opens its inspector on 127.0.0.1:9229, then the DevTools protocol's
// Profiler runs until this process gets 'stop' over IPC; the profile is written to argv[3].
// Run with --experimental-websocket (Node 20 has WebSocket only behind that flag).
// Usage (from bench code): fork('bench/inspect-profile.mjs', [pid, outFile], { execArgv: ['--experimental-websocket'] })
/* global fetch, WebSocket */
import { writeFileSync } from 'node:fs';

const [pid, outFile] = process.argv.slice(2);

async function inspectorUrl() {
  process.kill(Number(pid), 'SIGUSR1');
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const targets = await (await fetch('http://127.0.0.1:9229/json/list')).json();
      if (targets[0]?.webSocketDebuggerUrl) return targets[0].webSocketDebuggerUrl;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`process ${pid} did not open its inspector on 127.0.0.1:9229 (port taken by another process?)`);
}

async function main() {
  const socket = new WebSocket(await inspectorUrl());
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error('cannot connect to the inspector'));
  });
  let nextId = 1;
  const pending = new Map();
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data));
    if (message.id && pending.has(message.id)) {
      pending.get(message.id)(message);
      pending.delete(message.id);
    }
  };
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, (m) => (m.error ? reject(new Error(`${method}: ${m.error.message}`)) : resolve(m.result)));
      socket.send(JSON.stringify({ id, method, params }));
    });
  await send('Profiler.enable');
  await send('Profiler.start');
  process.send({ started: true });
  await new Promise((resolve) => process.once('message', resolve));
  const { profile } = await send('Profiler.stop');
  writeFileSync(outFile, JSON.stringify(profile));
  socket.close();
  process.send({ written: outFile });
  process.exit(0);
}

main().catch((error) => {
  console.error(`inspect-profile: ${error.message}`);
  process.exit(1);
});
