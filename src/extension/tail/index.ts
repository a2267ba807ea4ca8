/**
 * The live tail: one webview panel per flespi channel.
 * The extension calls `openTailPanel` (Channels view, command) and `registerTailSerializer` (on activation).
 * The panel code, and MQTT.js with it, loads when the first tail opens or is restored, not on activation.
 */
import * as vscode from 'vscode';
import type { TailChannel, TailDeps } from './tailPanel';

export type { ForwardResult, TailChannel, TailConnection, TailDeps } from './tailPanel';

export const TAIL_VIEW_TYPE = 'flespi.tail';

let panels: typeof import('./tailPanel') | undefined;
const loadPanels = async () => (panels ??= await import('./tailPanel.js'));

/** Opens the live tail of a channel, or reveals it when it is already open. */
export async function openTailPanel(channel: TailChannel, deps: TailDeps): Promise<void> {
  (await loadPanels()).TailPanel.open(channel, deps);
}

/** Restores tail panels after a window reload; the caller disposes the registration. */
export function registerTailSerializer(deps: TailDeps): vscode.Disposable {
  return vscode.window.registerWebviewPanelSerializer(TAIL_VIEW_TYPE, {
    async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown) {
      (await loadPanels()).restoreTailPanel(panel, state, deps);
    },
  });
}

/** Closes every tail (extension deactivation). */
export function disposeAllTails(): void {
  panels?.disposeAllTails();
}
