/**
 * What goes to the webview and when, without vscode: nothing before the webview says `ready`,
 * nothing while it is hidden (VS Code drops those posts), a full resync on every `ready`, and
 * between them at most one batch per tick.
 */
import type { ConnectionState, HostMessage, NoticeLevel } from '../../shared/tailProtocol';
import type { TailModel } from './tailModel';

type InitMessage = Extract<HostMessage, { type: 'init' }>;

export class TailFeed {
  private attached = false;
  private connection: { connection: ConnectionState; detail: string } = { connection: 'connecting', detail: '' };
  private lastCounters = '';

  constructor(
    private readonly model: TailModel,
    private readonly post: (message: HostMessage) => void,
    private readonly init: () => InitMessage,
  ) {}

  /** The webview (re)loaded and listens: send it everything it needs. */
  ready(): void {
    this.attached = true;
    this.resync();
  }

  /** The webview is hidden or gone; it says `ready` again when it is back. Messages wait in the model. */
  detach(): void {
    this.attached = false;
  }

  get isAttached(): boolean {
    return this.attached;
  }

  /** Init, connection state, and the whole buffer (replacing what the webview holds). */
  resync(): void {
    if (!this.attached) return;
    this.post(this.init());
    this.post({ type: 'state', ...this.connection });
    const batch = this.model.snapshot();
    const counters = this.model.counters();
    this.post({ type: 'messages', batch, counters, reset: true });
    this.lastCounters = JSON.stringify(counters);
  }

  /** Called on a timer: the next batch, or the counters when only they changed. */
  tick(limit?: number): void {
    if (!this.attached) return;
    const batch = this.model.takeBatch(limit);
    const counters = this.model.counters();
    const json = JSON.stringify(counters);
    if (batch.length > 0) this.post({ type: 'messages', batch, counters });
    else if (json !== this.lastCounters) this.post({ type: 'counters', counters });
    this.lastCounters = json;
  }

  setState(connection: ConnectionState, detail: string): void {
    this.connection = { connection, detail };
    this.send({ type: 'state', connection, detail });
  }

  notice(level: NoticeLevel, text: string): void {
    this.send({ type: 'notice', level, text });
  }

  /** Posts now if the webview listens; otherwise drops it (state and buffer come back with the next resync). */
  send(message: HostMessage): void {
    if (this.attached) this.post(message);
  }
}
