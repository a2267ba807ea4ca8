// Looks into another Node process (the VS Code extension host, for the live-tail bench) through its
// inspector: SIGUSR1 opens it on 127.0.0.1:9229, then the DevTools protocol does one of:
//   profile <pid> <outFile>  a CPU profile from now until 'stop' arrives over IPC, written to outFile
//                            (with `npm run bench -- --profile`);
//   heap <pid>               a full GC, then the JS heap in use ({ usedMB }) over IPC, to tell a leak
//                            from a heap that is merely sized for the load (RSS alone cannot).
// Run with --experimental-websocket (Node 20 has WebSocket only behind that flag).
// Usage (from bench code): fork('bench/inspect-host.mjs', [mode, pid, ...], { execArgv: ['--experimental-websocket'] })
/* global fetch, WebSocket */
import { writeFileSync } from 'node:fs';

const [mode, pid, outFile] = process.argv.slice(2);

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

/** Connects to the inspector; returns a function that sends one protocol command and resolves with its result. */
async function connect() {
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
  return { send, close: () => socket.close() };
}

async function main() {
  const { send, close } = await connect();
  if (mode === 'heap') {
    await send('HeapProfiler.collectGarbage');
    const { usedSize } = await send('Runtime.getHeapUsage');
    process.send({ usedMB: usedSize / 1024 / 1024 });
  } else if (mode === 'profile') {
    await send('Profiler.enable');
    await send('Profiler.start');
    process.send({ started: true });
    await new Promise((resolve) => process.once('message', resolve));
    const { profile } = await send('Profiler.stop');
    writeFileSync(outFile, JSON.stringify(profile));
    process.send({ written: outFile });
  } else {
    throw new Error(`unknown mode ${mode}: profile or heap`);
  }
  close();
  process.exit(0);
}

main().catch((error) => {
  console.error(`inspect-host: ${error.message}`);
  process.exit(1);
});
