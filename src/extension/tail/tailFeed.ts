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

  /** Called on a timer: the next batch, or the counters when only they changed. Returns how many messages it sent. */
  tick(limit?: number): number {
    if (!this.attached) return 0;
    const batch = this.model.takeBatch(limit);
    const counters = this.model.counters();
    const json = JSON.stringify(counters);
    if (batch.length > 0) this.post({ type: 'messages', batch, counters });
    else if (json !== this.lastCounters) this.post({ type: 'counters', counters });
    this.lastCounters = json;
    return batch.length;
  }

  setState(connection: ConnectionState, detail: string): void {
    this.connection = { connection, detail };
    this.send({ type: 'state', connection, detail });
  }

  notice(level: NoticeLevel, text: string, link?: { text: string; id: number }): void {
    this.send({ type: 'notice', level, text, ...(link ? { link } : {}) });
  }

  /** Posts now if the webview listens; otherwise drops it (state and buffer come back with the next resync). */
  send(message: HostMessage): void {
    if (this.attached) this.post(message);
  }
}

/**
 * How many messages the next tick may send to the webview: a token bucket filled at `perSecond` that
 * holds at most one second's worth. Arrivals come in bursts (MQTT, a busy extension host) and ticks
 * come late, so a fixed cap per tick would drop messages even when the average rate is within
 * `perSecond`; what a tick leaves unused carries over, and no batch exceeds a second's worth.
 */
export class SendAllowance {
  private tokens = 0;

  constructor(
    private readonly perSecond: number,
    private last: number,
  ) {}

  /** The messages a tick at time `now` (ms) may send. */
  available(now: number): number {
    this.tokens = Math.min(this.perSecond, this.tokens + (this.perSecond * Math.max(0, now - this.last)) / 1000);
    this.last = now;
    return Math.floor(this.tokens);
  }

  spend(count: number): void {
    this.tokens = Math.max(0, this.tokens - count);
  }
}

/**
 * Notices a tail page that never says `ready`. The page is made again each time the panel is shown;
 * under load, code-server has left it blank (its script never ran), and nothing but a new page
 * helps. So a page that has not started after a while is loaded again, with growing patience, and
 * after the last attempt the user is told.
 */
export class PageWatch {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private attempts = 0;

  constructor(
    private readonly handlers: { reload(attempt: number, waitedMs: number): void; giveUp(waitedMs: number): void },
    /** How long each page may take to start: the first, then each reload. */
    private readonly patienceMs: readonly number[] = [10_000, 20_000, 40_000],
  ) {}

  /** A page is loading (new HTML, or the panel shown again). */
  loading(): void {
    this.clear();
    const patience = this.patienceMs[this.attempts];
    if (patience === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.attempts++;
      if (this.attempts < this.patienceMs.length) this.handlers.reload(this.attempts, patience);
      else this.handlers.giveUp(patience);
    }, patience);
  }

  /** The page said `ready`: it works, and the next trouble gets every attempt again. */
  started(): void {
    this.clear();
    this.attempts = 0;
  }

  /** Hidden or closed: no page loads until the panel is shown again, which gets every attempt again. */
  stop(): void {
    this.clear();
    this.attempts = 0;
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
