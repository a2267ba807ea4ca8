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
  const ensureRestored = (): Promise<void> => (restored ??= connection.restore().catch((error: unknown) => log.error(`cannot restore the connection: ${errorMessage(error)}`)));

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

  /** A channel command: restores the connection first, then runs on the clicked or picked channel. */
  const onChannel = (title: string, run: (channel: Awaited<ReturnType<typeof resolveChannel>> & object) => Promise<unknown> | unknown) => async (arg: unknown) => {
    await ensureRestored();
    if (!connection.current && !(await offerConnect())) return;
    const channel = await resolveChannel(channelsTree, arg, title);
    if (channel) await run(channel);
  };

  /** A sink command: runs on the clicked sink, or asks for one (from the palette), after restoring the connection. */
  const onSink = (title: string, run: (name: string) => Promise<void>) => async (node?: SinkNode) => {
    await ensureRestored();
    if (!connection.current && !(await offerConnect())) return;
    const name = node?.sink.name ?? (await vscode.window.showQuickPick(sinks.all().map((s) => s.name), { title, placeHolder: 'Pick a sink' }));
    if (name) await run(name);
  };

  // Forwardings restart when the settings of a sink they use change, and lose sinks that were removed.
  let sinkSnapshot = snapshot(sinks);
  const sinksChanged = () => {
    const next = snapshot(sinks);
    const removed = [...sinkSnapshot.keys()].filter((name) => !next.has(name));
    const changed = [...next.keys()].filter((name) => sinkSnapshot.has(name) && sinkSnapshot.get(name) !== next.get(name));
    sinkSnapshot = next;
    void (async () => {
      await forwarding.dropSinks(removed);
      if (changed.length > 0) await forwarding.restartUsing(changed);
    })();
  };

  const command = (id: string, run: (...args: never[]) => unknown) =>
    vscode.commands.registerCommand(id, async (...args: never[]) => {
      try {
        await run(...args);
      } catch (error) {
        log.error(`${id}: ${errorMessage(error)}`);
        void vscode.window.showErrorMessage(errorMessage(error));
      }
    });

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
    sinks.onDidChange(sinksChanged),
    registerTailSerializer(tailDeps),
    registerHistoryDocuments(),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (['flespi.region', 'flespi.baseUrl', 'flespi.mqttUrl'].some((key) => event.affectsConfiguration(key)) && connection.mode() === 'token') void connection.reconnect();
    }),
    channelsView.onDidChangeVisibility((event) => {
      if (event.visible) void ensureRestored();
    }),

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

    command('flespi.openTail', onChannel('Open Live Tail', (channel) => openTailPanel({ id: channel.id, name: channel.name }, tailDeps))),
    command('flespi.copyChannelId', onChannel('Copy Channel Id', copyChannelId)),
    command('flespi.openMessagesHistory', onChannel('Open Messages History', (channel) => openMessagesHistory(channel, connection.current!.client, log))),
    command('flespi.startForwarding', onChannel('Start Forwarding', (channel) => forwarding.start(channel))),
    command('flespi.checkConnection', onChannel('Check Connection', (channel) => checkConnection(connection.current!, channel, log))),
    // The clicked channel, or (from the palette) a pick among the forwarded ones only.
    command('flespi.stopForwarding', async (arg?: ChannelNode | { id?: unknown }) => {
      await ensureRestored();
      const id = arg && 'kind' in arg ? (arg.kind === 'channel' ? arg.channel.id : undefined) : typeof arg?.id === 'number' ? arg.id : undefined;
      await forwarding.stop(id);
    }),
    command('flespi.showForwardings', () => forwarding.show()),

    command('flespi.addSink', () => addSink(sinkDeps)),
    command('flespi.removeSink', (node?: SinkNode) => removeSink(sinkDeps, node, (name) => (forwarding.current()?.sinkStatus(name).length ?? 0) > 0)),
    command('flespi.testSink', (node?: SinkNode) => testSink(sinkDeps, node)),
    command('flespi.openSinkSettings', () => openSinkSettings(sinkDeps)),
    command('flespi.openDeadLetters', onSink('Open Dead Letters', (name) => forwarding.openDeadLetters(name))),
    command('flespi.resendDeadLetters', onSink('Send Dead Letters Again', (name) => forwarding.resendDeadLetters(name))),
    command('flespi.newHandler', () => custom.newHandler()),
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

  /** Offers the two ways to connect; true when connected afterwards. */
  async function offerConnect(): Promise<boolean> {
    const token = 'Set Token…';
    const sandbox = 'Use Local Sandbox';
    const choice = await vscode.window.showInformationMessage('Connect to flespi first.', token, sandbox);
    if (choice === token) await setToken(connection, log);
    else if (choice === sandbox) await useSandbox(connection);
    return connection.current !== undefined;
  }
}

/** Stops forwarding (checkpointing what was delivered) and the sandbox before the host goes away. */
export async function deactivate(): Promise<void> {
  await shutdown?.();
  shutdown = undefined;
}

function snapshot(sinks: SinkStore): Map<string, string> {
  return new Map(sinks.all().map((s) => [s.name, JSON.stringify(s)]));
}
