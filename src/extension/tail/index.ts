/**
 * The live tail: one webview panel per flespi channel.
 * The extension calls `openTailPanel` (Channels view, command) and `registerTailSerializer` (on activation).
 */
import { TailPanel, type TailChannel, type TailDeps } from './tailPanel';

export { TAIL_VIEW_TYPE, disposeAllTails, registerTailSerializer, type ForwardResult, type TailChannel, type TailConnection, type TailDeps } from './tailPanel';

/** Opens the live tail of a channel, or reveals it when it is already open. */
export function openTailPanel(channel: TailChannel, deps: TailDeps): TailPanel {
  return TailPanel.open(channel, deps);
}
