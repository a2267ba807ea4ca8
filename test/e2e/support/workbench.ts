// Acting as a user on the VS Code workbench served by code-server: the activity bar, views,
// the command palette, quick inputs, notifications and webviews, with a screenshot per step.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Frame, type Locator, type Page } from 'playwright-core';

const chromiumArgs = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/**
 * Chromium with its profile in `profileDir` (not a hidden temp folder), so what the workbench keeps
 * in the browser (state, secret storage, webview state) can be inspected after the run.
 */
export function launchChromium(profileDir: string, env: NodeJS.ProcessEnv): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: chromiumArgs,
    env: { ...process.env, ...env },
    viewport: { width: 1440, height: 900 },
  });
}

/** A console line's origin, short: the webview's or the workbench's file. */
function frameName(url: string): string {
  return url.replace(/^.*\//, '').replace(/\?.*$/, '') || 'page';
}

/** Polls `probe` until it returns a value other than undefined/false, or fails with `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const cause = lastError instanceof Error ? ` (last error: ${lastError.message.split('\n')[0]})` : '';
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${cause}`);
}

export class Workbench {
  private step = 0;
  private flow = 'setup';
  /** The newest console lines and page errors of the workbench and its webviews, for a failed flow's report. */
  private readonly console: string[] = [];

  private constructor(
    readonly page: Page,
    private readonly shotsDir: string,
  ) {}

  static async open(context: BrowserContext, url: string, shotsDir: string): Promise<Workbench> {
    mkdirSync(shotsDir, { recursive: true });
    const page = context.pages()[0] ?? (await context.newPage());
    // Fail a click or fill that cannot happen well before the flow's own timeout.
    page.setDefaultTimeout(15_000);
    // A "leave site?" prompt on reload would otherwise be dismissed, i.e. keep the old page.
    page.on('dialog', (dialog) => void dialog.accept().catch(() => undefined));
    const workbench = new Workbench(page, shotsDir);
    page.on(
      'console',
      (message) =>
        ['error', 'warning'].includes(message.type()) && workbench.remember(`${message.type()} ${frameName(message.location().url)}: ${message.text()}`),
    );
    page.on('pageerror', (error) => workbench.remember(`pageerror: ${error.message}`));
    await page.goto(url);
    await workbench.waitUntilLoaded();
    return workbench;
  }

  private async waitUntilLoaded(): Promise<void> {
    await this.page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    // The activity bar is drawn once the extension host has registered contributions.
    await this.page.locator('.part.activitybar').waitFor({ timeout: 60_000 });
  }

  /** "Developer: Reload Window": the page reloads and a new extension host starts. */
  async reloadWindow(): Promise<void> {
    const navigated = this.page.waitForEvent('framenavigated', { predicate: (frame) => frame === this.page.mainFrame(), timeout: 60_000 });
    await this.runCommand('Developer: Reload Window');
    await navigated;
    await this.waitUntilLoaded();
  }

  /** Names the screenshots that follow, e.g. "flow2" → flow2-01-....png. */
  beginFlow(name: string): void {
    this.flow = name;
    this.step = 0;
  }

  /** A screenshot of what a person would see now, named after the step; returns its path. */
  async shot(name: string): Promise<string> {
    this.step += 1;
    const file = join(this.shotsDir, `${this.flow}-${String(this.step).padStart(2, '0')}-${name.replace(/[^\w-]+/g, '-')}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  /** The activity-bar item of a view container, found by its title (its aria-label starts with it). */
  activityItem(title: string): Locator {
    return this.page.locator(`.part.activitybar .action-item a[aria-label^="${title}"], .part.activitybar .action-item[aria-label^="${title}"]`).first();
  }

  /** Opens a view container (the side bar) by clicking its activity-bar item unless already open. */
  async openContainer(title: string): Promise<void> {
    const item = this.activityItem(title);
    await item.waitFor({ timeout: 30_000 });
    const sidebarTitle = this.page.locator('.part.sidebar .composite.title h2');
    const current = (await sidebarTitle.count()) > 0 ? ((await sidebarTitle.first().textContent()) ?? '') : '';
    if (!current.toLowerCase().startsWith(title.toLowerCase())) await item.click();
    await waitFor(`the side bar to show "${title}"`, async () =>
      ((await sidebarTitle.first().textContent()) ?? '').toLowerCase().startsWith(title.toLowerCase()),
    );
  }

  /** A view pane in the side bar, by its title. */
  view(title: string): Locator {
    return this.page.locator('.part.sidebar .pane').filter({ has: this.page.locator(`.pane-header[aria-label^="${title}"]`) });
  }

  /** Expands a collapsed view pane. */
  async expandView(title: string): Promise<Locator> {
    const pane = this.view(title);
    const header = pane.locator('.pane-header').first();
    await header.waitFor({ timeout: 30_000 });
    if ((await header.getAttribute('aria-expanded')) === 'false') await header.click();
    return pane;
  }

  /** Labels of the visible rows of a tree view. */
  async treeLabels(viewTitle: string): Promise<string[]> {
    const rows = this.view(viewTitle).locator('.monaco-list-row');
    return (await rows.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? e.textContent ?? ''))).map((s) => s.trim());
  }

  private remember(line: string): void {
    this.console.push(`${new Date().toISOString().slice(11, 23)} [${this.flow}] ${line.slice(0, 500)}`);
    if (this.console.length > 300) this.console.splice(0, this.console.length - 300);
  }

  /** The newest console lines (workbench and webviews) and page errors, oldest first. */
  consoleLines(count = 40): string[] {
    return this.console.slice(-count);
  }

  /** Runs a command through the command palette, by its full title ("flespi: Open Live Tail"). */
  async runCommand(title: string): Promise<void> {
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    // Focus moving at the wrong moment (a webview re-rendering, a notification) closes the palette right
    // after it opened; then it is opened again. Nothing has run until the row is clicked below.
    await waitFor(`the command palette to take "${title}"`, async () => {
      await this.closeQuickInput();
      await this.page.keyboard.press('F1');
      await input.waitFor({ state: 'visible', timeout: 5_000 });
      await input.fill(`>${title}`, { timeout: 5_000 });
      return true;
    });
    const row = this.quickPickRow(title);
    await row.waitFor({ timeout: 30_000 }).catch(async () => {
      throw new Error(`the command palette has no command "${title}"; it offers: ${(await this.quickPickLabels()).join(' | ') || 'nothing'}`);
    });
    await row.click();
  }

  /**
   * Runs a command whose first question is a quick pick, and picks `label` in it. Like the palette, the
   * pick closes when focus moves at the wrong moment (seen once in CI: "offers: nothing"); dismissing it
   * runs nothing, so the command is simply run again.
   */
  async runCommandAndPick(title: string, label: string, attempts = 3): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await this.runCommand(title);
      const row = this.quickPickRow(label);
      if (
        await row.waitFor({ timeout: 15_000 }).then(
          () => true,
          () => false,
        )
      ) {
        await row.click();
        return;
      }
      const offered = (await this.quickPickLabels()).join(' | ') || 'nothing';
      if (attempt === attempts) throw new Error(`"${title}" asked no question offering "${label}" in ${attempts} attempts; the quick pick offers: ${offered}`);
      console.log(`# "${title}": no quick pick offering "${label}" (it offers: ${offered}); running the command again`);
    }
  }

  /** A visible row of the open quick pick whose label contains `label` (the widget may keep hidden rows). */
  quickPickRow(label: string): Locator {
    return this.page.locator('.quick-input-widget .monaco-list-row').filter({ visible: true, hasText: label }).first();
  }

  /** Labels of the visible rows of the open quick pick. */
  async quickPickLabels(): Promise<string[]> {
    const rows = this.page.locator('.quick-input-widget .monaco-list-row').filter({ visible: true });
    return (await rows.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? e.textContent ?? ''))).map((s) => s.trim());
  }

  /** In a multi-select quick pick: checks exactly the items with these labels, then accepts (Enter). */
  async pickMany(labels: readonly string[]): Promise<void> {
    for (const label of labels) {
      const row = this.quickPickRow(label);
      await row.waitFor({ timeout: 30_000 }).catch(async () => {
        throw new Error(`the quick pick has no item "${label}"; it offers: ${(await this.quickPickLabels()).join(' | ') || 'nothing'}`);
      });
      if ((await row.getAttribute('aria-checked')) !== 'true') await row.click();
      await waitFor(`"${label}" to be checked`, async () => (await row.getAttribute('aria-checked')) === 'true', 10_000);
    }
    await this.page.locator('.quick-input-widget .quick-input-box input').press('Enter');
  }

  /** Picks an item of the open quick pick by label. */
  async pick(label: string): Promise<void> {
    const row = this.quickPickRow(label);
    await row.waitFor({ timeout: 30_000 }).catch(async () => {
      throw new Error(`the quick pick has no item "${label}"; it offers: ${(await this.quickPickLabels()).join(' | ') || 'nothing'}`);
    });
    await row.click();
  }

  /**
   * Types into the open input box (or quick pick filter) and presses Enter. `title`: wait until the
   * quick input asks this question, since consecutive input boxes reuse the same widget.
   */
  async answer(text: string, title?: RegExp): Promise<void> {
    const widget = this.page.locator('.quick-input-widget');
    const input = widget.locator('.quick-input-box input');
    await input.waitFor({ state: 'visible' });
    if (title) await waitFor(`an input box titled ${title}`, async () => title.test(await this.quickInputPrompt()), 15_000);
    await input.fill(text);
    await input.press('Enter');
  }

  /**
   * Answers code-server's save dialog (a quick input with a path box) with an absolute path; the
   * dialog must propose a file name (the command gave it a default one). The dialog ignores Enter
   * while it is still listing the folder of what was typed, so Enter is pressed until it closes.
   */
  async saveAs(path: string, title: RegExp): Promise<void> {
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await waitFor(`a save dialog titled ${title}`, async () => title.test(await this.quickInputPrompt()), 15_000);
    // The dialog opens with the folder ("…/") and, once it has listed it, puts the proposed file
    // name after it, replacing whatever was typed meanwhile: type only after that.
    await waitFor('the save dialog to propose a file name', async () => !/[\\/]$/.test(await input.inputValue()), 15_000);
    await this.acceptPath(path, title);
  }

  /** Answers code-server's open dialog (a quick input with a path box) with the absolute path of a file. */
  async openFile(path: string, title: RegExp): Promise<void> {
    const input = this.page.locator('.quick-input-widget .quick-input-box input');
    await waitFor(`an open dialog titled ${title}`, async () => title.test(await this.quickInputPrompt()), 15_000);
    // As in the save dialog, the folder it opens with replaces what is typed before it has listed it.
    await waitFor('the open dialog to show its folder', async () => /[\\/]$/.test(await input.inputValue()), 15_000);
    await this.acceptPath(path, title);
  }

  /** Types `path` into the dialog titled `title` and presses Enter until that dialog is gone (the next question may reuse the widget). */
  private async acceptPath(path: string, title: RegExp): Promise<void> {
    const widget = this.page.locator('.quick-input-widget');
    const input = widget.locator('.quick-input-box input');
    const gone = async () => !(await widget.isVisible()) || !title.test(await this.quickInputPrompt());
    await input.fill(path);
    await waitFor(`the dialog ${title} to accept ${path}`, async () => {
      if (await gone()) return true;
      if ((await input.inputValue()) !== path) await input.fill(path);
      await input.press('Enter');
      await waitFor(`the dialog ${title} to close`, gone, 2_000).catch(() => undefined);
      return gone();
    });
  }

  /** The title, message and placeholder the open quick input shows (which question it asks). */
  async quickInputPrompt(): Promise<string> {
    const widget = this.page.locator('.quick-input-widget');
    if (!(await widget.isVisible())) return '';
    const texts = await widget.locator('.quick-input-title, .quick-input-message').allTextContents();
    const placeholder = (await widget.locator('.quick-input-box input').first().getAttribute('placeholder')) ?? '';
    return [...texts, placeholder].join(' ').trim();
  }

  /** Brings an editor tab to the front by (the start of) its label. */
  async showEditor(label: string): Promise<void> {
    await this.page.locator('.tabs-container .tab').filter({ hasText: label }).first().click();
  }

  /** Labels of the open editor tabs. */
  async editorTabs(): Promise<string[]> {
    return (await this.page.locator('.tabs-container .tab .label-name').allTextContents()).map((s) => s.trim());
  }

  async closeQuickInput(): Promise<void> {
    if (await this.page.locator('.quick-input-widget').isVisible()) await this.page.keyboard.press('Escape');
  }

  /** Texts of the notification toasts on screen. */
  async notifications(): Promise<string[]> {
    return (await this.page.locator('.notifications-toasts .notification-list-item-message').allTextContents()).map((s) => s.trim());
  }

  /** Waits for a notification whose text matches, and returns it. */
  waitForNotification(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    return waitFor(`a notification matching ${pattern}`, async () => (await this.notifications()).find((t) => pattern.test(t)), timeoutMs);
  }

  /** Waits for an error notification (not a progress or information one) and returns its text. */
  waitForErrorNotification(timeoutMs = 30_000): Promise<string> {
    const errors = this.page.locator('.notifications-toasts .notification-list-item').filter({ has: this.page.locator('.codicon-error') });
    return waitFor(
      'an error notification',
      async () => ((await errors.count()) > 0 ? ((await errors.first().locator('.notification-list-item-message').textContent()) ?? '').trim() : undefined),
      timeoutMs,
    );
  }

  async clearNotifications(): Promise<void> {
    await this.runCommand('Notifications: Clear All Notifications').catch(() => undefined);
  }

  /** Texts of the status bar items. */
  async statusBarTexts(): Promise<string[]> {
    return (await this.page.locator('.part.statusbar .statusbar-item').allTextContents()).map((s) => s.trim()).filter(Boolean);
  }

  /** Waits for a status bar item whose text matches, and returns it. */
  waitForStatusBar(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    return waitFor(`a status bar item matching ${pattern}`, async () => (await this.statusBarTexts()).find((t) => pattern.test(t)), timeoutMs);
  }

  /** A button of the modal dialog on screen (VS Code draws its own dialogs in the page). */
  dialogButton(name: RegExp): Locator {
    return this.page.locator('.monaco-dialog-box').getByRole('button', { name }).first();
  }

  /** Clicks a button of a notification toast. */
  async clickNotificationButton(message: RegExp, button: string): Promise<void> {
    const toast = this.page.locator('.notifications-toasts .notification-list-item').filter({ hasText: message }).first();
    await toast.getByRole('button', { name: button }).click();
  }

  /**
   * The frame (nested inside webview iframes) that shows `selector`. Only a visible one: a hidden
   * editor's webview may linger in the page without being what the user sees.
   */
  webviewFrame(selector: string, timeoutMs = 30_000): Promise<Frame> {
    return waitFor(
      `a visible webview showing ${selector}`,
      async () => {
        for (const frame of this.page.frames()) {
          if (frame === this.page.mainFrame() || frame.isDetached()) continue;
          if (
            !(await frame
              .locator(selector)
              .first()
              .isVisible()
              .catch(() => false))
          )
            continue;
          if (await shownInPage(frame)) return frame;
        }
        return undefined;
      },
      timeoutMs,
    );
  }
}

/** True when every iframe from the page down to `frame` is visible. */
async function shownInPage(frame: Frame): Promise<boolean> {
  for (let current: Frame | null = frame; current?.parentFrame(); current = current.parentFrame()) {
    const owner = await current.frameElement().catch(() => undefined);
    if (!owner || !(await owner.isVisible())) return false;
  }
  return true;
}
