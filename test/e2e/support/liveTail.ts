// The live tail webview as a user sees it: counters, rows and buttons, inside the webview's iframes.
import type { Frame, Locator } from 'playwright-core';
import { waitFor, type Workbench } from './workbench';

export type Counter = 'received' | 'shown' | 'dropped' | 'new' | 'rate' | 'state';

export class LiveTail {
  private constructor(
    readonly workbench: Workbench,
    readonly frame: Frame,
  ) {}

  /** Finds the live tail webview that is open in the editor area. */
  static async find(workbench: Workbench): Promise<LiveTail> {
    return new LiveTail(workbench, await workbench.webviewFrame('[data-testid="received"]'));
  }

  async text(counter: Counter): Promise<string> {
    return ((await this.frame.locator(`[data-testid="${counter}"]`).first().textContent()) ?? '').trim();
  }

  /** A counter's value as a number ("1,234" → 1234; "12.5/s" → 12.5; empty → 0). */
  async count(counter: Exclude<Counter, 'state'>): Promise<number> {
    const match = /\d[\d,\s]*(\.\d+)?/.exec(await this.text(counter));
    return match ? Number(match[0].replace(/[,\s]/g, '')) : 0;
  }

  /** Waits until a counter reaches at least `atLeast`; returns its value. */
  waitForCount(counter: Exclude<Counter, 'state'>, atLeast: number, timeoutMs = 30_000): Promise<number> {
    return waitFor(`the "${counter}" counter to reach ${atLeast}`, async () => {
      const value = await this.count(counter);
      return value >= atLeast ? value : undefined;
    }, timeoutMs);
  }

  rows(): Locator {
    return this.frame.locator('[role="row"][data-id]');
  }

  /** Ids of the rendered message rows, in display order. */
  async rowIds(): Promise<number[]> {
    return this.rows().evaluateAll((rows) => rows.map((row) => Number(row.getAttribute('data-id'))));
  }

  row(id: number): Locator {
    return this.frame.locator(`[role="row"][data-id="${id}"]`);
  }

  button(name: string | RegExp): Locator {
    return this.frame.getByRole('button', { name }).first();
  }

  async click(name: string | RegExp): Promise<void> {
    await this.button(name).click();
  }

  /** Selects exactly these rows: a click on the first, Ctrl+click on the others. */
  async select(ids: readonly number[]): Promise<void> {
    const [first, ...rest] = ids;
    await this.row(first).click();
    for (const id of rest) await this.row(id).click({ modifiers: ['Control'] });
  }

  /** Ids of the rows the webview marks as selected. */
  async selectedIds(): Promise<number[]> {
    return this.frame.locator('[role="row"][data-id][aria-selected="true"]').evaluateAll((rows) => rows.map((row) => Number(row.getAttribute('data-id'))));
  }
}
