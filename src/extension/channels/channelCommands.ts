/** Commands on channels: which channel (the clicked row, or a pick), copy id, messages history. */
import * as vscode from 'vscode';
import { errorMessage } from '../../core/errors';
import type { ChannelInfo } from './channelModel';
import type { ChannelNode, ChannelsTree } from './channelsTree';
import { historyDocument } from './history';

/**
 * The channel a command targets: the tree row it was invoked on, `{ id, name }` from another
 * command or test, or one the user picks from the list.
 */
export async function resolveChannel(tree: ChannelsTree, arg: unknown, title: string): Promise<ChannelInfo | undefined> {
  const node = arg as ChannelNode | undefined;
  if (node?.kind === 'channel') return node.channel;
  const plain = arg as { id?: unknown; name?: unknown } | undefined;
  if (typeof plain?.id === 'number') return { id: plain.id, name: typeof plain.name === 'string' ? plain.name : `channel ${plain.id}`, enabled: true, blocked: 0 };
  let channels: ChannelInfo[];
  try {
    channels = await tree.list();
  } catch (error) {
    void vscode.window.showErrorMessage(errorMessage(error));
    return undefined;
  }
  if (channels.length === 0) {
    void vscode.window.showInformationMessage('This flespi account has no channels yet.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    channels.map((channel) => ({ label: channel.name, description: `#${channel.id}${channel.protocol ? ` · ${channel.protocol}` : ''}`, channel })),
    { title, placeHolder: 'Pick a channel', matchOnDescription: true },
  );
  return picked?.channel;
}

export async function copyChannelId(channel: ChannelInfo): Promise<void> {
  await vscode.env.clipboard.writeText(String(channel.id));
  vscode.window.setStatusBarMessage(`Copied channel id ${channel.id}`, 3000);
}

/** Fetches the latest N messages (REST, newest first, then put in time order) and opens them as a JSON document. */
export async function openMessagesHistory(channel: ChannelInfo, client: { channelMessages: (id: number, params: { count: number; reverse: boolean }) => Promise<Record<string, unknown>[]> }, log: vscode.LogOutputChannel): Promise<void> {
  const fallback = vscode.workspace.getConfiguration('flespi').get<number>('history.count', 100);
  const answer = await vscode.window.showInputBox({
    title: `Messages history of ${channel.name}`,
    prompt: 'How many of the latest messages?',
    value: String(fallback),
    validateInput: (value) => (/^\d+$/.test(value.trim()) && Number(value) >= 1 && Number(value) <= 10_000 ? undefined : 'Enter a whole number from 1 to 10000'),
  });
  if (answer === undefined) return;
  const count = Number(answer.trim());
  try {
    const messages = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Fetching the latest ${count} messages of ${channel.name}…` }, () => client.channelMessages(channel.id, { count, reverse: true }));
    log.info(`history: ${messages.length} messages of channel ${channel.id}`);
    if (messages.length === 0) {
      void vscode.window.showInformationMessage(`Channel ${channel.name} has no stored messages.`);
      return;
    }
    const document = await vscode.workspace.openTextDocument({ language: 'json', content: historyDocument(messages) });
    await vscode.window.showTextDocument(document, { preview: false });
  } catch (error) {
    void vscode.window.showErrorMessage(`Cannot fetch the messages of ${channel.name}: ${errorMessage(error)}`);
  }
}
