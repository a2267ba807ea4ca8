/**
 * The flespi extension's entry point: wires the connection, the Channels and Sinks views, the
 * live tail, forwarding and custom handlers together. Activation stays cheap: nothing connects
 * until a view is shown or a command runs, except when forwardings must resume after a reload.
 */
import * as vscode from 'vscode';
import { errorMessage } from '../core/errors';
import { copyChannelId, openMessagesHistory, registerHistoryDocuments, resolveChannel } from './channels/channelCommands';
import { checkConnection } from './checkConnection';
import { ChannelsTree, type ChannelNode } from './channels/channelsTree';
import { Connection } from './connection';
import { forgetToken, setToken, useSandbox } from './connectionCommands';
import { CustomHandlers } from './custom/customHandlers';
import { forwardToSink } from './sinks/sendToSink';
import { ForwardingController } from './forwarding/controller';
import { addSink, openSinkSettings, removeSink, testSink, type SinkCommandDeps } from './sinks/sinkCommands';
import { SinksTree, type SinkNode } from './sinks/sinksTree';
import { baseDir, SinkStore } from './sinks/sinkStore';
import { disposeAllTails, openTailPanel, registerTailSerializer, type TailDeps } from './tail/index';

let shutdown: (() => Promise<void>) | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('flespi', { log: true });
  const connection = new Connection(context, log);
  const sinks = new SinkStore(context, log);
  void vscode.commands.executeCommand('setContext', 'flespi.connection', 'none');

  let restored: Promise<void> | undefined;
  /** Reconnects the way the user chose last time, once, when something first needs the connection. */
  const ensureRestored = (): Promise<void> =>
    (restored ??= connection.restore().catch((error: unknown) => log.error(`cannot restore the connection: ${errorMessage(error)}`)));

  // The trees are created below; these callbacks only run after activation.
  const custom = new CustomHandlers({
    context,
    sinks,
    log,
    baseDir: () => baseDir(context),
    reloaded: (names) => void forwarding.restartUsing(names),
    changed: () => sinksTree.redraw(),
  });
  const forwarding = new ForwardingController({
    context,
    connection,
    sinks,
    log,
    changed: () => {
      sinksTree.redraw();
      channelsTree.redraw();
    },
    handlerError: (sink, error) => void custom.reportRuntimeError(sink, error),
  });
  const channelsTree = new ChannelsTree(connection, () => forwarding.current(), ensureRestored);
  const sinksTree = new SinksTree(
    sinks,
    () => forwarding.current(),
    (sink) => custom.problemOf(sink),
    (sink) => custom.fileOf(sink),
    (sink) => forwarding.deadLetterCount(sink.name),
  );
  const channelsView = vscode.window.createTreeView('flespi.channels', { treeDataProvider: channelsTree });
  const sinksView = vscode.window.createTreeView('flespi.sinks', { treeDataProvider: sinksTree });
  const describeConnection = () => {
    const state = connection.state;
    channelsView.description = state.kind === 'connected' ? state.info.label : state.kind === 'none' ? undefined : state.label;
  };

  const tailDeps: TailDeps = {
    connection: { current: () => connection.current, onDidChange: connection.onDidChange },
    forward: (messages) => forwardToSink(messages, { sinks, log }),
    log,
    extensionUri: context.extensionUri,
    context,
  };
  const sinkDeps: SinkCommandDeps = { sinks, log, baseDir: () => baseDir(context) };

  const parts: CommandParts = { log, connection, sinks, custom, forwarding, channelsTree, tailDeps, sinkDeps, ensureRestored };

  context.subscriptions.push(
    log,
    connection,
    sinks,
    custom,
    forwarding,
    channelsTree,
    sinksTree,
    channelsView,
    sinksView,
    connection.onDidChange(describeConnection),
    sinks.onDidChange(restartForwardingsOnSinkChange(sinks, forwarding)),
    registerTailSerializer(tailDeps),
    registerHistoryDocuments(),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (['flespi.region', 'flespi.baseUrl', 'flespi.mqttUrl'].some((key) => event.affectsConfiguration(key)) && connection.mode() === 'token')
        void connection.reconnect();
    }),
    channelsView.onDidChangeVisibility((event) => {
      if (event.visible) void ensureRestored();
    }),
    ...connectionCommands(parts),
    ...channelCommands(parts),
    ...forwardingCommands(parts),
    ...sinkCommands(parts),
    ...customHandlerCommands(parts),
  );

  // Forwardings of the last window resume right away; otherwise nothing connects or compiles until it is needed.
  if (forwarding.hasPersisted()) void ensureRestored();
  let checked = false;
  const checkHandlers = () => {
    if (checked) return;
    checked = true;
    void custom.checkAll(undefined);
  };
  if (sinksView.visible) checkHandlers();
  context.subscriptions.push(sinksView.onDidChangeVisibility((event) => event.visible && checkHandlers()));

  shutdown = async () => {
    disposeAllTails();
    await forwarding.suspend();
    await connection.dispose();
  };
}

/** Stops forwarding (checkpointing what was delivered) and the sandbox before the host goes away. */
export async function deactivate(): Promise<void> {
  await shutdown?.();
  shutdown = undefined;
}

/** Forwardings restart when the settings of a sink they use change, and lose sinks that were removed. */
function restartForwardingsOnSinkChange(sinks: SinkStore, forwarding: ForwardingController): () => void {
  let sinkSnapshot = snapshot(sinks);
  return () => {
    const next = snapshot(sinks);
    const removed = [...sinkSnapshot.keys()].filter((name) => !next.has(name));
    const changed = [...next.keys()].filter((name) => sinkSnapshot.has(name) && sinkSnapshot.get(name) !== next.get(name));
    sinkSnapshot = next;
    void (async () => {
      await forwarding.dropSinks(removed);
      if (changed.length > 0) await forwarding.restartUsing(changed);
    })();
  };
}

function snapshot(sinks: SinkStore): Map<string, string> {
  return new Map(sinks.all().map((s) => [s.name, JSON.stringify(s)]));
}

/** What the command groups below work with; built once in activate. */
interface CommandParts {
  log: vscode.LogOutputChannel;
  connection: Connection;
  sinks: SinkStore;
  custom: CustomHandlers;
  forwarding: ForwardingController;
  channelsTree: ChannelsTree;
  tailDeps: TailDeps;
  sinkDeps: SinkCommandDeps;
  /** Reconnects the way the user chose last time, once, when something first needs the connection. */
  ensureRestored: () => Promise<void>;
}

/** The token, the sandbox, reconnecting and the log. */
function connectionCommands({ log, connection, channelsTree }: CommandParts): vscode.Disposable[] {
  const command = commandRegistrar(log);
  return [
    command('flespi.setToken', () => setToken(connection, log)),
    command('flespi.forgetToken', () => forgetToken(connection, log)),
    command('flespi.useSandbox', () => useSandbox(connection)),
    command('flespi.disconnect', () => connection.disconnect()),
    command('flespi.reconnect', async () => {
      await connection.reconnect();
      channelsTree.refresh();
    }),
    command('flespi.refreshChannels', () => channelsTree.refresh()),
    command('flespi.showLog', () => log.show()),
  ];
}

/** What a channel offers besides forwarding: the live tail, its id, its history, a connection check. */
function channelCommands(parts: CommandParts): vscode.Disposable[] {
  const { log, connection, tailDeps } = parts;
  const command = commandRegistrar(log);
  return [
    command(
      'flespi.openTail',
      onChannel(parts, 'Open Live Tail', (channel) => openTailPanel({ id: channel.id, name: channel.name }, tailDeps)),
    ),
    command('flespi.copyChannelId', onChannel(parts, 'Copy Channel Id', copyChannelId)),
    command(
      'flespi.openMessagesHistory',
      onChannel(parts, 'Open Messages History', (channel) => openMessagesHistory(channel, connection.current!.client, log)),
    ),
    command(
      'flespi.checkConnection',
      onChannel(parts, 'Check Connection', (channel) => checkConnection(connection.current!, channel, log)),
    ),
  ];
}

function forwardingCommands(parts: CommandParts): vscode.Disposable[] {
  const { log, forwarding, ensureRestored } = parts;
  const command = commandRegistrar(log);
  return [
    command(
      'flespi.startForwarding',
      onChannel(parts, 'Start Forwarding', (channel) => forwarding.start(channel)),
    ),
    // The clicked channel, or (from the palette) a pick among the forwarded ones only.
    command('flespi.stopForwarding', async (arg?: ChannelNode | { id?: unknown }) => {
      await ensureRestored();
      const id = arg && 'kind' in arg ? (arg.kind === 'channel' ? arg.channel.id : undefined) : typeof arg?.id === 'number' ? arg.id : undefined;
      await forwarding.stop(id);
    }),
    command('flespi.showForwardings', () => forwarding.show()),
  ];
}

/** Adding, removing, testing and configuring sinks, and their dead letters. */
function sinkCommands(parts: CommandParts): vscode.Disposable[] {
  const { log, forwarding, sinkDeps } = parts;
  const command = commandRegistrar(log);
  return [
    command('flespi.addSink', () => addSink(sinkDeps)),
    command('flespi.removeSink', (node?: SinkNode) => removeSink(sinkDeps, node, (name) => (forwarding.current()?.sinkStatus(name).length ?? 0) > 0)),
    command('flespi.testSink', (node?: SinkNode) => testSink(sinkDeps, node)),
    command('flespi.openSinkSettings', () => openSinkSettings(sinkDeps)),
    command(
      'flespi.openDeadLetters',
      onSink(parts, 'Open Dead Letters', (name) => forwarding.openDeadLetters(name)),
    ),
    command(
      'flespi.resendDeadLetters',
      onSink(parts, 'Send Dead Letters Again', (name) => forwarding.resendDeadLetters(name)),
    ),
  ];
}

function customHandlerCommands({ log, custom }: CommandParts): vscode.Disposable[] {
  const command = commandRegistrar(log);
  return [command('flespi.newHandler', () => custom.newHandler())];
}

/** Registers commands whose failure is logged and shown instead of thrown at VS Code. */
function commandRegistrar(log: vscode.LogOutputChannel): (id: string, run: (...args: never[]) => unknown) => vscode.Disposable {
  return (id, run) =>
    vscode.commands.registerCommand(id, async (...args: never[]) => {
      try {
        await run(...args);
      } catch (error) {
        log.error(`${id}: ${errorMessage(error)}`);
        void vscode.window.showErrorMessage(errorMessage(error));
      }
    });
}

/** A channel command: restores the connection first, then runs on the clicked or picked channel. */
function onChannel(parts: CommandParts, title: string, run: (channel: Awaited<ReturnType<typeof resolveChannel>> & object) => Promise<unknown> | unknown) {
  return async (arg: unknown) => {
    await parts.ensureRestored();
    if (!parts.connection.current && !(await offerConnect(parts))) return;
    const channel = await resolveChannel(parts.channelsTree, arg, title);
    if (channel) await run(channel);
  };
}

/** A sink command: runs on the clicked sink, or asks for one (from the palette), after restoring the connection. */
function onSink(parts: CommandParts, title: string, run: (name: string) => Promise<void>) {
  return async (node?: SinkNode) => {
    await parts.ensureRestored();
    if (!parts.connection.current && !(await offerConnect(parts))) return;
    const name =
      node?.sink.name ??
      (await vscode.window.showQuickPick(
        parts.sinks.all().map((s) => s.name),
        { title, placeHolder: 'Pick a sink' },
      ));
    if (name) await run(name);
  };
}

/** Offers the two ways to connect; true when connected afterwards. */
async function offerConnect({ connection, log }: CommandParts): Promise<boolean> {
  const token = 'Set Token…';
  const sandbox = 'Use Local Sandbox';
  const choice = await vscode.window.showInformationMessage('Connect to flespi first.', token, sandbox);
  if (choice === token) await setToken(connection, log);
  else if (choice === sandbox) await useSandbox(connection);
  return connection.current !== undefined;
}
