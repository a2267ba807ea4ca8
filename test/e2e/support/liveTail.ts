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
  static async find(workbench: Workbench, timeoutMs?: number): Promise<LiveTail> {
    return new LiveTail(workbench, await workbench.webviewFrame('[data-testid="received"]', timeoutMs));
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
    return waitFor(
      `the "${counter}" counter to reach ${atLeast}`,
      async () => {
        const value = await this.count(counter);
        return value >= atLeast ? value : undefined;
      },
      timeoutMs,
    );
  }

  rows(): Locator {
    return this.frame.locator('[role="row"][data-id]');
  }

  /** Ids of the rendered message rows, in display order. */
  async rowIds(): Promise<number[]> {
    return this.rows().evaluateAll((rows) => rows.map((row) => Number(row.getAttribute('data-id'))));
  }

  /** How many messages the table holds (its aria-rowcount counts the header row too). */
  async rowCount(): Promise<number> {
    return Number(await this.frame.locator('[role="grid"][data-testid="messages"]').getAttribute('aria-rowcount')) - 1;
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

  /**
   * Selects exactly these rows: a click on the first, Ctrl+click on the others. Each click is seen
   * through before the next (rows are redrawn on the next animation frame, late on a busy machine).
   */
  async select(ids: readonly number[]): Promise<void> {
    for (const [index, id] of ids.entries()) {
      await this.row(id).click(index === 0 ? {} : { modifiers: ['Control'] });
      const wanted = JSON.stringify([...ids.slice(0, index + 1)].sort((a, b) => a - b));
      await waitFor(`rows ${wanted} to be selected`, async () => JSON.stringify((await this.selectedIds()).sort((a, b) => a - b)) === wanted, 10_000);
    }
  }

  /** Pauses the tail unless it is paused already (the Pause button reads "Resume" then). */
  async pause(): Promise<void> {
    if ((await this.pauseButton().textContent())?.trim() === 'Pause') await this.pauseButton().click();
    await waitFor('the tail to be paused', async () => (await this.pauseButton().textContent())?.trim() === 'Resume');
  }

  async resume(): Promise<void> {
    if ((await this.pauseButton().textContent())?.trim() === 'Resume') await this.pauseButton().click();
    await waitFor('the tail to be live again', async () => (await this.pauseButton().textContent())?.trim() === 'Pause');
  }

  private pauseButton(): Locator {
    return this.button(/^(Pause|Resume)$/);
  }

  /**
   * The message with this id as the detail pane shows it after a click on its row: the JSON tree
   * read back into an object (each value is rendered as JSON text, so nothing is lost).
   */
  async message(id: number): Promise<Record<string, unknown>> {
    await this.row(id).click();
    await waitFor(
      `the detail pane to show message #${id}`,
      async () => (await this.frame.locator('[data-testid="detail-title"]').textContent()) === `Message #${id}`,
    );
    return (await this.frame.evaluate(`(${READ_DETAIL_JSON})(document.querySelector('[data-testid="detail-json"]'))`)) as Record<string, unknown>;
  }

  /** The text the tail shows after a forward ("Forwarded 3 messages to …"), once it is final. */
  forwardOutcome(timeoutMs = 60_000): Promise<string> {
    const result = this.frame.locator('[data-testid="forward-result"]');
    return waitFor(
      'the forward result',
      async () => ((await result.getAttribute('data-outcome')) ? ((await result.textContent()) ?? '') : undefined),
      timeoutMs,
    );
  }

  /** Ids of the rows the webview marks as selected. */
  async selectedIds(): Promise<number[]> {
    return this.frame.locator('[role="row"][data-id][aria-selected="true"]').evaluateAll((rows) => rows.map((row) => Number(row.getAttribute('data-id'))));
  }
}

/**
 * Reads the detail pane's JSON tree back into a value. Source text, not a function: tsx would wrap
 * a function's inner helpers in its own `__name`, which the page does not have.
 */
const READ_DETAIL_JSON = `(tree) => {
  const read = (node) => {
    if (node.classList.contains('json-line')) return JSON.parse(node.querySelector(':scope > .json-string, :scope > .json-number, :scope > .json-boolean, :scope > .json-null')?.textContent ?? 'null');
    const isArray = (node.querySelector(':scope > summary .json-punct')?.textContent ?? '').startsWith('[');
    const children = [...(node.querySelector(':scope > .json-children')?.children ?? [])].filter((c) => c.matches('.json-line, details'));
    const keyOf = (c) => JSON.parse((c.querySelector(':scope > .json-key, :scope > summary > .json-key')?.textContent ?? '""').replace(/:\\s*$/, ''));
    return isArray ? children.map(read) : Object.fromEntries(children.map((c) => [keyOf(c), read(c)]));
  };
  if (!tree.firstElementChild) throw new Error('the detail pane shows no message');
  return read(tree.firstElementChild);
}`;
