/** Commands on channels: which channel (the clicked row, or a pick), copy id, messages history. */
import * as vscode from 'vscode';
import { errorMessage } from '../../core/errors';
import type { ChannelInfo } from './channelModel';
import type { ChannelNode, ChannelsTree } from './channelsTree';
import type { ChannelHistoryParams } from '../../core/flespi/client';
import { formatLocalTime, parseStartTime } from '../timeInput';
import { HISTORY_MAX_COUNT, historyDocument, historyRequest, type HistoryRange } from './history';

/**
 * The channel a command targets: the tree row it was invoked on, `{ id, name }` from another
 * command or test, or one the user picks from the list.
 */
export async function resolveChannel(tree: ChannelsTree, arg: unknown, title: string): Promise<ChannelInfo | undefined> {
  const node = arg as ChannelNode | undefined;
  if (node?.kind === 'channel') return node.channel;
  const plain = arg as { id?: unknown; name?: unknown } | undefined;
  if (typeof plain?.id === 'number')
    return { id: plain.id, name: typeof plain.name === 'string' ? plain.name : `channel ${plain.id}`, enabled: true, blocked: 0 };
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

/** Read-only documents of fetched history: their text is kept here while they are open. */
const HISTORY_SCHEME = 'flespi-history';
const historyTexts = new Map<string, string>();

/** Registers the provider of history documents; their text is dropped when the document closes. */
export function registerHistoryDocuments(): vscode.Disposable {
  return vscode.Disposable.from(
    vscode.workspace.registerTextDocumentContentProvider(HISTORY_SCHEME, { provideTextDocumentContent: (uri) => historyTexts.get(uri.toString()) ?? '[]\n' }),
    vscode.workspace.onDidCloseTextDocument((document) => {
      if (document.uri.scheme === HISTORY_SCHEME) historyTexts.delete(document.uri.toString());
    }),
  );
}

/** Asks which messages (the latest N, the last hour or day, or a time range), fetches them over REST and opens them read-only as JSON in time order. */
export async function openMessagesHistory(
  channel: ChannelInfo,
  client: { channelMessages: (id: number, params: ChannelHistoryParams) => Promise<Record<string, unknown>[]> },
  log: vscode.LogOutputChannel,
): Promise<void> {
  const range = await askHistoryRange(channel);
  if (!range) return;
  const { params, title } = historyRequest(range);
  try {
    const messages = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Fetching messages of ${channel.name} (${title})…` },
      () => client.channelMessages(channel.id, params),
    );
    log.info(`history: ${messages.length} messages of channel ${channel.id} (${title})`);
    if (messages.length === 0) {
      void vscode.window.showInformationMessage(`Channel ${channel.name} has no stored messages${range.kind === 'range' ? ' in that time range' : ''}.`);
      return;
    }
    if (range.kind === 'range' && messages.length >= HISTORY_MAX_COUNT)
      void vscode.window.showInformationMessage(`Showing the first ${HISTORY_MAX_COUNT} messages of the range: narrow it to see the rest.`);
    const uri = vscode.Uri.from({ scheme: HISTORY_SCHEME, path: `/${channel.name.replace(/[\\/:*?"<>|]+/g, '_')} ${title}.json`, query: `t=${Date.now()}` });
    historyTexts.set(uri.toString(), historyDocument(messages, params.reverse === true));
    const document = await vscode.workspace.openTextDocument(uri);
    await vscode.languages.setTextDocumentLanguage(document, 'json');
    await vscode.window.showTextDocument(document, { preview: false });
  } catch (error) {
    void vscode.window.showErrorMessage(`Cannot fetch the messages of ${channel.name}: ${errorMessage(error)}`);
  }
}

async function askHistoryRange(channel: ChannelInfo): Promise<HistoryRange | undefined> {
  const now = Date.now();
  const fallback = vscode.workspace.getConfiguration('flespi').get<number>('history.count', 100);
  const choices = [
    { label: 'The latest messages', detail: `How many: ${fallback} by default`, id: 'latest' },
    { label: 'The last hour', detail: `From ${formatLocalTime(now - 3_600_000)}`, id: 'hour' },
    { label: 'The last 24 hours', detail: `From ${formatLocalTime(now - 86_400_000)}`, id: 'day' },
    { label: 'A time range…', detail: 'From and to, e.g. 2026-11-26 14:05, or 2h (ago)', id: 'range' },
  ] as const;
  const picked = await vscode.window.showQuickPick(choices, { title: `Messages history of ${channel.name}`, placeHolder: 'Which messages?' });
  if (!picked) return undefined;
  if (picked.id === 'hour') return { kind: 'range', fromMs: now - 3_600_000, toMs: now };
  if (picked.id === 'day') return { kind: 'range', fromMs: now - 86_400_000, toMs: now };
  if (picked.id === 'latest') {
    const answer = await vscode.window.showInputBox({
      title: `Messages history of ${channel.name}`,
      prompt: 'How many of the latest messages?',
      value: String(fallback),
      validateInput: (value) =>
        /^\d+$/.test(value.trim()) && Number(value) >= 1 && Number(value) <= HISTORY_MAX_COUNT
          ? undefined
          : `Enter a whole number from 1 to ${HISTORY_MAX_COUNT}`,
    });
    return answer === undefined ? undefined : { kind: 'latest', count: Number(answer.trim()) };
  }
  const hint = 'A time like 2026-11-26 14:05, an ISO time, or 15m, 2h, 1d (ago)';
  const from = await vscode.window.showInputBox({
    title: `Messages of ${channel.name}: from`,
    value: formatLocalTime(now - 3_600_000),
    validateInput: (v) => (parseStartTime(v) === undefined ? hint : undefined),
  });
  if (from === undefined) return undefined;
  const fromMs = parseStartTime(from)!;
  const to = await vscode.window.showInputBox({
    title: `Messages of ${channel.name}: to`,
    value: formatLocalTime(now),
    validateInput: (v) => {
      const ms = parseStartTime(v);
      return ms === undefined ? hint : ms <= fromMs ? `It must be after ${formatLocalTime(fromMs)}` : undefined;
    },
  });
  return to === undefined ? undefined : { kind: 'range', fromMs, toMs: parseStartTime(to)! };
}
