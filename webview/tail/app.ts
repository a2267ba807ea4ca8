/**
 * The live tail's UI: toolbar, counters bar, virtualized table, detail pane. It renders what the
 * host sends (webview/tail/main.ts wires the messages) and turns clicks into host commands.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-split-layout/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { VscodeButton } from '@vscode-elements/elements/dist/vscode-button/vscode-button.js';
import type { VscodeCheckbox } from '@vscode-elements/elements/dist/vscode-checkbox/vscode-checkbox.js';
import type { VscodeTextfield } from '@vscode-elements/elements/dist/vscode-textfield/vscode-textfield.js';
import {
  DEFAULT_COLUMNS,
  LIMITS,
  type ExportFormat,
  type ExportScope,
  type HostMessage,
  type TailCounters,
  type TailItem,
  type WebviewMessage,
} from '../../src/shared/tailProtocol';
import { MessageBuffer } from './buffer';
import { columnLabel, formatClock } from './columns';
import { renderDetail } from './detail';
import { previousOfDevice } from './detailDiff';
import { identOf } from './devices';
import { FleetPanel, readFleetState, type FleetState } from './fleet';
import { el, setText } from './dom';
import { VirtualTable } from './table';

/** What survives a reload of the webview (vscode.setState): UI preferences only, never tokens or messages. */
export interface UiState {
  channelId?: number;
  channelName?: string;
  columns?: string[];
  /** Column widths the user set (px), by column key. */
  widths?: Record<string, number>;
  search?: string;
  filter?: string;
  /**
   * The selected rows and the one in the detail pane, restored when the webview is shown again (it is
   * torn down while hidden). Message ids restart at 1 with the buffer: `stamp` (the receive time of the
   * first id) tells whether the buffer is still the one they were chosen in.
   */
  selection?: { ids: number[]; active?: number; stamp: number };
  /** The map / chart / devices panel: which view is open, the plotted parameters, the device filter. */
  fleet?: FleetState;
}

/** At most this many selected ids are kept for when the webview is shown again. */
const SAVED_SELECTION = 10_000;

export interface VsCodeApi {
  postMessage(message: WebviewMessage): void;
  getState(): unknown;
  setState(state: UiState): void;
}

const SEARCH_DEBOUNCE_MS = 200;

export class TailApp {
  private readonly buffer = new MessageBuffer(10_000);
  private readonly table: VirtualTable;
  private readonly fleet: FleetPanel;
  private state: UiState;
  private columns: string[] = [...DEFAULT_COLUMNS];
  private paused = false;
  private counters: TailCounters | undefined;
  /** Batches that arrived while paused (already on their way when the user paused): shown on resume. */
  private held: TailItem[] = [];
  private searchTimer: ReturnType<typeof setTimeout> | undefined;
  /** The connection state the host reported last (the pill says "paused" over "live"). */
  private connection: string = 'connecting';
  /** The first buffer after the webview loaded restores the saved selection; later ones replace it. */
  private restored = false;
  /** Until then, a page-wide text selection (VS Code's own Select All after Ctrl+A) is undone: Ctrl+A selects rows. */
  private undoTextSelectionUntil = 0;

  private readonly title = el('h1', { className: 'title', text: 'flespi live tail', attrs: { 'data-testid': 'title' } });
  private readonly pauseButton = button('Pause', 'pause');
  private readonly stopButton = button('Stop', 'stop', true);
  private readonly restartButton = button('Restart', 'restart', true);
  private readonly searchField = textfield('Search messages', 'Search the buffer…', 'search');
  private readonly filterField = textfield('Server filter expression', 'Server filter, e.g. position.speed>60', 'filter');
  private readonly applyFilterButton = button('Apply filter', 'apply-filter', true);
  private readonly columnsButton = button('Columns…', 'columns', true);
  private readonly copyButton = button('Copy', 'copy', true);
  private readonly forwardButton = button('Forward to sink…', 'forward');
  private readonly exportButton = button('Export…', 'export', true);
  private readonly columnsPanel = el('div', { className: 'popover', attrs: { role: 'dialog', 'aria-label': 'Columns', 'data-testid': 'columns-panel' } });
  private readonly exportPanel = el('div', { className: 'popover', attrs: { role: 'dialog', 'aria-label': 'Export', 'data-testid': 'export-panel' } });
  private readonly counterValues = {
    state: counterValue('state'),
    received: counterValue('received'),
    shown: counterValue('shown'),
    dropped: counterValue('dropped'),
    rate: counterValue('rate'),
    last: counterValue('last'),
    new: counterValue('new'),
    selected: counterValue('selected'),
    matching: counterValue('matching'),
  };
  private readonly stateDetail = el('span', { className: 'state-detail', attrs: { 'data-testid': 'state-detail' } });
  private readonly pausedCounter: HTMLElement;
  private readonly matchingCounter: HTMLElement;
  private readonly notice = el('div', { className: 'notice', attrs: { role: 'status', 'aria-live': 'polite', 'data-testid': 'notice' } });
  private readonly forwardResult = el('div', {
    className: 'forward-result',
    attrs: { role: 'status', 'aria-live': 'polite', 'data-testid': 'forward-result' },
  });
  private readonly detail = el('section', { className: 'detail', attrs: { 'aria-label': 'Message detail', 'data-testid': 'detail' } });

  constructor(
    private readonly root: HTMLElement,
    private readonly vscode: VsCodeApi,
  ) {
    this.state = readUiState(vscode.getState());
    this.table = new VirtualTable({
      activeChanged: (item) => {
        this.showDetail(item);
        this.fleet.showActive(item);
        this.saveSelection();
      },
      selectionChanged: () => {
        this.selectionChanged();
        this.saveSelection();
      },
      copyRequested: () => this.copySelection(),
      widthsChanged: (widths) => this.saveState({ widths }),
    });
    this.fleet = new FleetPanel(
      {
        items: () => this.buffer.all,
        paused: () => this.paused,
        select: (id) => this.selectMessage(id),
        filterDevice: (ident) => {
          this.buffer.setDevice(ident);
          this.matchingCounter.hidden = !this.buffer.searching;
          this.showRows(0);
        },
        keys: () => this.buffer.keys,
        save: (fleet) => this.saveState({ fleet }),
      },
      this.state.fleet,
    );
    this.buffer.setDevice(this.fleet.deviceFilter);
    this.pausedCounter = counter('Paused:', 'new', this.counterValues.new);
    this.pausedCounter.hidden = true;
    this.matchingCounter = counter('', 'matching', this.counterValues.matching);
    this.matchingCounter.hidden = true;
    this.layout();
    this.wire();
    if (this.state.columns) this.columns = this.state.columns;
    this.searchField.value = this.state.search ?? '';
    this.buffer.setQuery(this.searchField.value);
    this.matchingCounter.hidden = !this.buffer.searching;
    this.table.setWidths(this.state.widths ?? {});
    this.table.setColumns(this.columns);
    renderDetail(this.detail, undefined);
    this.selectionChanged();
  }

  /** Tells the host the webview listens: nothing is posted to it before this. */
  start(): void {
    this.vscode.postMessage({ type: 'ready' });
  }

  handle(message: HostMessage): void {
    switch (message.type) {
      case 'init': {
        setText(this.title, `${message.channel.name} (#${message.channel.id}) · ${message.connectionLabel}`);
        this.buffer.setCapacity(message.bufferSize);
        if (!this.state.columns) {
          this.columns = message.columns.length > 0 ? [...message.columns] : [...DEFAULT_COLUMNS];
          this.table.setColumns(this.columns);
        }
        this.filterField.value = message.filter;
        this.fleet.configure(message.map);
        this.setPaused(message.paused);
        this.saveState({ channelId: message.channel.id, channelName: message.channel.name, filter: message.filter });
        break;
      }
      case 'messages': {
        if (message.reset) {
          this.held = [];
          this.buffer.reset(message.batch);
          this.fleet.reset();
          if (this.restored) this.table.forget();
          this.showRows(0);
          if (!this.restored) this.restoreSelection();
        } else if (this.paused) {
          this.held.push(...message.batch);
          if (this.held.length > this.buffer.capacity) this.held.splice(0, this.held.length - this.buffer.capacity);
        } else {
          this.showRows(this.buffer.append(message.batch));
        }
        this.restored = true;
        this.showCounters(message.counters);
        break;
      }
      case 'counters':
        this.showCounters(message.counters);
        break;
      case 'state':
        this.connection = message.connection;
        this.showState();
        setText(this.stateDetail, message.detail);
        setEnabled(this.stopButton, message.connection !== 'stopped');
        // Stopped, there is nothing to pause: Restart starts again.
        setEnabled(this.pauseButton, message.connection !== 'stopped');
        break;
      case 'filter':
        this.saveState({ filter: message.expression });
        this.filterField.invalid = message.refused !== undefined;
        if (message.refused === undefined) this.filterField.value = message.expression;
        break;
      case 'forwardResult':
        this.showForwardResult(message);
        break;
      case 'notice':
        this.showNotice(message);
        break;
    }
  }

  private layout(): void {
    const toolbar = el('div', {
      className: 'toolbar',
      attrs: { role: 'toolbar', 'aria-label': 'Live tail' },
      children: [
        this.pauseButton,
        this.stopButton,
        this.restartButton,
        el('span', { className: 'separator' }),
        this.searchField,
        el('div', { className: 'filter-form', attrs: { 'data-testid': 'filter-form' }, children: [this.filterField, this.applyFilterButton] }),
        el('span', { className: 'separator' }),
        this.columnsButton,
        this.copyButton,
        this.forwardButton,
        this.exportButton,
        el('span', { className: 'separator' }),
        ...this.fleet.buttons,
      ],
    });
    const counters = el('div', {
      className: 'counters',
      attrs: { 'aria-label': 'Counters', 'data-testid': 'counters' },
      children: [
        el('span', { className: 'counter', children: [this.counterValues.state, this.stateDetail] }),
        counter('Received', '', this.counterValues.received),
        counter('Shown', '', this.counterValues.shown),
        counter('Dropped', '', this.counterValues.dropped),
        counter('', 'msg/s', this.counterValues.rate),
        counter('Last', '', this.counterValues.last),
        this.pausedCounter,
        counter('Selected', '', this.counterValues.selected),
        this.matchingCounter,
      ],
    });
    setText(this.counterValues.state, 'connecting');
    setText(this.counterValues.last, '—');
    const split = el('vscode-split-layout', {
      className: 'split',
      attrs: { split: 'vertical', 'initial-handle-position': '68%', 'min-start': '200px', 'min-end': '120px' },
      children: [
        el('div', { className: 'pane', attrs: { slot: 'start' }, children: [this.table.frame] }),
        el('div', { className: 'pane', attrs: { slot: 'end' }, children: [this.detail] }),
      ],
    });
    this.columnsPanel.hidden = true;
    this.exportPanel.hidden = true;
    this.root.replaceChildren(
      el('header', { children: [this.title, toolbar, this.columnsPanel, this.exportPanel, counters, this.notice, this.forwardResult] }),
      this.fleet.wrap(split, split),
    );
    this.table.mount();
  }

  private wire(): void {
    this.pauseButton.addEventListener('click', () => {
      const pause = !this.paused;
      this.post({ type: pause ? 'pause' : 'resume' });
      this.setPaused(pause);
    });
    this.stopButton.addEventListener('click', () => this.post({ type: 'stop' }));
    this.restartButton.addEventListener('click', () => this.post({ type: 'restart' }));
    this.searchField.addEventListener('input', () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => this.applySearch(), SEARCH_DEBOUNCE_MS);
    });
    this.filterField.maxLength = LIMITS.filterLength;
    const applyFilter = () => {
      const expression = this.filterField.value.trim();
      this.post({ type: 'setFilter', expression });
      this.saveState({ filter: expression });
    };
    this.applyFilterButton.addEventListener('click', applyFilter);
    this.filterField.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        applyFilter();
      }
    });
    // Ctrl+A anywhere but in a text field selects the rows; VS Code then runs its own Select All in the
    // page, whose text selection is undone right away.
    document.addEventListener('keydown', (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === 'a' && !isTextEntry(event.target)) {
        event.preventDefault();
        if (!this.table.element.contains(event.target as Node)) this.table.selectAll();
        this.table.element.focus({ preventScroll: true });
        this.undoTextSelectionUntil = performance.now() + 1000;
        window.getSelection()?.removeAllRanges();
      }
      if (event.key === 'Escape') this.closePanels();
    });
    document.addEventListener('selectionchange', () => {
      if (performance.now() < this.undoTextSelectionUntil && !isTextEntry(document.activeElement)) window.getSelection()?.removeAllRanges();
    });
    // A click outside an open popover (and its button) closes it.
    document.addEventListener('mousedown', (event) => {
      for (const [panel, opener] of [
        [this.columnsPanel, this.columnsButton],
        [this.exportPanel, this.exportButton],
      ] as const) {
        const target = event.target as Node;
        if (!panel.hidden && !panel.contains(target) && !opener.contains(target)) panel.hidden = true;
      }
    });
    this.copyButton.addEventListener('click', () => this.copySelection());
    this.forwardButton.addEventListener('click', () => {
      const ids = this.table.selectedIds();
      if (ids.length === 0) return;
      setText(this.forwardResult, `Forwarding ${plural(ids.length, 'message')}…`);
      delete this.forwardResult.dataset.outcome;
      this.post({ type: 'forward', ids });
    });
    this.columnsButton.addEventListener('click', () => this.togglePanel(this.columnsPanel, this.columnsButton, () => this.fillColumnsPanel()));
    this.exportButton.addEventListener('click', () => this.togglePanel(this.exportPanel, this.exportButton, () => this.fillExportPanel()));
    for (const [panel, opener] of [
      [this.columnsPanel, this.columnsButton],
      [this.exportPanel, this.exportButton],
    ] as const) {
      panel.addEventListener('keydown', (event) => {
        if (event.key === 'Escape') {
          panel.hidden = true;
          opener.focus();
        }
      });
    }
  }

  private post(message: WebviewMessage): void {
    this.vscode.postMessage(message);
  }

  /** The pill: the host's connection state, or "paused" while live and paused. */
  private showState(): void {
    const shown = this.paused && this.connection === 'live' ? 'paused' : this.connection;
    setText(this.counterValues.state, shown);
    this.counterValues.state.dataset.state = shown;
  }

  private closePanels(): void {
    for (const [panel, opener] of [
      [this.columnsPanel, this.columnsButton],
      [this.exportPanel, this.exportButton],
    ] as const) {
      if (panel.hidden) continue;
      const focusInside = panel.contains(document.activeElement);
      panel.hidden = true;
      if (focusInside) opener.focus();
    }
  }

  /** The detail pane: the message, what changed since the device's previous one, Plot beside numbers. */
  private showDetail(item: TailItem | undefined): void {
    renderDetail(this.detail, item, item ? { previous: previousOfDevice(this.buffer.all, item, identOf) ?? null, plot: (key) => this.fleet.plot(key) } : {});
  }

  /** A message picked on the map: selected alone in the table and shown in the detail pane. */
  private selectMessage(id: number): void {
    if (this.buffer.rowIndex(id) < 0) return;
    this.table.selection.clear();
    this.table.restore([id], id);
  }

  private saveSelection(): void {
    const ids = this.table.selectedIds().slice(0, SAVED_SELECTION);
    const first = this.buffer.rows[0];
    const active = this.table.activeRowId;
    if (ids.length === 0 && active === undefined) {
      if (this.state.selection) this.saveState({ selection: undefined });
      return;
    }
    const stampId = ids[0] ?? active;
    const stamp = this.buffer.rows.find((row) => row.id === stampId)?.receivedAt ?? first?.receivedAt ?? 0;
    this.saveState({ selection: { ids, ...(active === undefined ? {} : { active }), stamp } });
  }

  /** After the webview was shown again: the rows selected before, when the buffer is the same one. */
  private restoreSelection(): void {
    const saved = this.state.selection;
    if (!saved) return;
    const stampId = saved.ids[0] ?? saved.active;
    const same = this.buffer.rows.find((row) => row.id === stampId)?.receivedAt === saved.stamp;
    if (same) this.table.restore(saved.ids, saved.active);
    else this.saveState({ selection: undefined });
  }

  private setPaused(paused: boolean): void {
    this.paused = paused;
    // Sorting only while paused: resuming returns to arrival order before the held rows are added.
    this.table.setSortable(paused);
    this.showState();
    setText(this.pauseButton, paused ? 'Resume' : 'Pause');
    this.pausedCounter.hidden = !paused;
    if (!paused && this.held.length > 0) {
      const held = this.held;
      this.held = [];
      this.showRows(this.buffer.append(held));
    }
    this.showNewCount();
  }

  private showRows(removedFromFront: number): void {
    this.table.pruneSelection(this.buffer.oldestId());
    this.table.setRows(this.buffer.rows, removedFromFront);
    this.fleet.changed();
    setText(this.counterValues.matching, String(this.buffer.rows.length));
    this.selectionChanged();
  }

  private showCounters(counters: TailCounters): void {
    this.counters = counters;
    setText(this.counterValues.received, String(counters.received));
    setText(this.counterValues.shown, String(counters.shown));
    setText(this.counterValues.dropped, String(counters.dropped));
    setText(this.counterValues.rate, String(counters.rate));
    setText(this.counterValues.last, counters.lastMessageAt === null ? '—' : formatClock(counters.lastMessageAt));
    this.showNewCount();
  }

  /** While paused: what the host holds back plus what arrived here after the pause. */
  private showNewCount(): void {
    const pending = this.paused ? (this.counters?.pending ?? 0) : 0;
    setText(this.counterValues.new, String(pending + this.held.length));
  }

  private applySearch(): void {
    const query = this.searchField.value;
    this.buffer.setQuery(query);
    this.matchingCounter.hidden = !this.buffer.searching;
    this.showRows(0);
    this.saveState({ search: query });
  }

  private selectionChanged(): void {
    const count = this.table.selection.size;
    setText(this.counterValues.selected, String(count));
    setEnabled(this.copyButton, count > 0);
    setEnabled(this.forwardButton, count > 0);
  }

  private copySelection(): void {
    const ids = this.table.selectedIds();
    if (ids.length > 0) this.post({ type: 'copy', ids });
  }

  /** The notice line; its link (an exported file's path) opens in VS Code through the host. */
  private showNotice(message: Extract<HostMessage, { type: 'notice' }>): void {
    this.notice.dataset.level = message.level;
    const link = message.link;
    const at = link ? message.text.indexOf(link.text) : -1;
    if (!link || at < 0 || link.text === '') {
      this.notice.textContent = message.text;
      return;
    }
    const anchor = el('button', {
      className: 'notice-link',
      text: link.text,
      attrs: { type: 'button', title: 'Open in VS Code', 'data-testid': 'notice-link' },
    });
    anchor.addEventListener('click', () => this.vscode.postMessage({ type: 'openLink', id: link.id }));
    this.notice.replaceChildren(message.text.slice(0, at), anchor, message.text.slice(at + link.text.length));
  }

  private showForwardResult(message: Extract<HostMessage, { type: 'forwardResult' }>): void {
    const lines: string[] = [];
    if (message.cancelled) {
      lines.push('Forward cancelled.');
      this.forwardResult.dataset.outcome = 'cancelled';
    } else if (message.error !== undefined || !message.result) {
      lines.push(`Forward failed: ${message.error ?? 'no result'}`);
      this.forwardResult.dataset.outcome = 'error';
    } else {
      const r = message.result;
      const counts = `${r.acknowledged} acknowledged, ${plural(r.errors.length, 'error')}, ${r.ms} ms`;
      // Nothing acknowledged is a failure, whatever else happened; some acknowledged with errors is partial.
      if (r.acknowledged === 0 && message.count > 0)
        lines.push(`Forward failed: ${r.sink} acknowledged none of ${plural(message.count, 'message')} (${counts})`);
      else if (r.errors.length > 0 || r.acknowledged < message.count)
        lines.push(`Forwarded ${r.acknowledged} of ${plural(message.count, 'message')} to ${r.sink}: ${counts}`);
      else lines.push(`Forwarded ${plural(message.count, 'message')} to ${r.sink}: ${counts}`);
      lines.push(...r.errors.slice(0, 20));
      if (r.errors.length > 20) lines.push(`… ${r.errors.length - 20} more errors in the log`);
      this.forwardResult.dataset.outcome =
        r.acknowledged === 0 && message.count > 0 ? 'error' : r.errors.length === 0 && r.acknowledged === message.count ? 'ok' : 'partial';
    }
    this.forwardResult.replaceChildren(...lines.map((text, i) => el('div', { className: i === 0 ? 'summary' : 'error-line', text })));
  }

  private togglePanel(panel: HTMLElement, opener: VscodeButton, fill: () => void): void {
    const open = panel.hidden;
    this.columnsPanel.hidden = true;
    this.exportPanel.hidden = true;
    if (!open) {
      opener.focus();
      return;
    }
    fill();
    panel.hidden = false;
    (panel.querySelector('vscode-checkbox, vscode-button') as HTMLElement | null)?.focus();
  }

  private fillColumnsPanel(): void {
    const keys = [...DEFAULT_COLUMNS, ...[...this.buffer.keys].filter((k) => !DEFAULT_COLUMNS.includes(k)).sort()];
    for (const key of this.columns) if (!keys.includes(key)) keys.push(key);
    const newest = this.buffer.all[this.buffer.all.length - 1];
    const boxes = keys.map((key) => {
      const box = el('vscode-checkbox', { attrs: { 'data-column': key } }) as VscodeCheckbox;
      box.label = columnLabel(key) === key ? key : `${columnLabel(key)} (${key})`;
      box.checked = this.columns.includes(key);
      box.addEventListener('change', () => {
        const chosen = box.checked ? [...this.columns.filter((k) => k !== key), key] : this.columns.filter((k) => k !== key);
        this.setColumns(chosen);
      });
      if (typeof newest?.message[key] !== 'number') return box;
      // Numeric parameters can be charted from here too.
      const plot = el('button', { className: 'json-plot', text: 'Plot', attrs: { type: 'button', 'aria-label': `Plot ${key}`, 'data-plot-column': key } });
      plot.addEventListener('click', () => {
        this.columnsPanel.hidden = true;
        this.fleet.plot(key);
      });
      return el('div', { className: 'column-choice', children: [box, plot] });
    });
    const reset = button('Reset to defaults', 'columns-reset', true);
    reset.addEventListener('click', () => {
      this.table.setWidths({});
      this.saveState({ widths: undefined });
      this.setColumns([...DEFAULT_COLUMNS]);
      this.fillColumnsPanel();
    });
    this.columnsPanel.replaceChildren(el('div', { className: 'column-list', children: boxes }), reset);
  }

  private setColumns(columns: string[]): void {
    this.columns = columns.slice(0, LIMITS.columns);
    this.table.setColumns(this.columns);
    this.post({ type: 'setColumns', columns: this.columns });
    this.saveState({ columns: this.columns });
  }

  private fillExportPanel(): void {
    const choices: Array<[ExportScope, ExportFormat, string]> = [
      ['selection', 'ndjson', 'Export selection as NDJSON'],
      ['selection', 'csv', 'Export selection as CSV'],
      ['buffer', 'ndjson', 'Export buffer as NDJSON'],
      ['buffer', 'csv', 'Export buffer as CSV'],
    ];
    const selected = this.table.selectedIds();
    this.exportPanel.replaceChildren(
      ...choices.map(([scope, format, label]) => {
        const choice = button(label, `export-${scope}-${format}`, true);
        if (scope === 'selection') setEnabled(choice, selected.length > 0);
        choice.addEventListener('click', () => {
          this.exportPanel.hidden = true;
          const ids = this.table.selectedIds();
          if (scope === 'selection') this.post({ type: 'export', scope, format, ids });
          else this.post({ type: 'export', scope, format });
        });
        return choice;
      }),
    );
  }

  private saveState(patch: UiState): void {
    this.state = { ...this.state, ...patch };
    this.vscode.setState(this.state);
  }
}

function button(text: string, testId: string, secondary = false): VscodeButton {
  const b = el('vscode-button', { text, attrs: { 'data-testid': testId } }) as VscodeButton;
  b.secondary = secondary;
  return b;
}

/** vscode-button does not tell assistive technology it is disabled; aria-disabled does. */
function setEnabled(b: VscodeButton, enabled: boolean): void {
  b.disabled = !enabled;
  b.setAttribute('aria-disabled', String(!enabled));
}

function textfield(label: string, placeholder: string, testId: string): VscodeTextfield {
  const field = el('vscode-textfield', { attrs: { 'data-testid': testId } }) as VscodeTextfield;
  field.label = label;
  field.placeholder = placeholder;
  return field;
}

function counterValue(testId: string): HTMLElement {
  return el('span', { className: 'value', attrs: { 'data-testid': testId } });
}

function counter(before: string, after: string, value: HTMLElement): HTMLElement {
  return el('span', {
    className: 'counter',
    children: [
      before ? el('span', { className: 'label', text: `${before} ` }) : undefined,
      value,
      after ? el('span', { className: 'label', text: ` ${after}` }) : undefined,
    ],
  });
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** An input or text field, where Ctrl+A selects its text. */
function isTextEntry(target: EventTarget | null): boolean {
  return (
    target instanceof HTMLElement && (target.matches('input, textarea, [contenteditable], vscode-textfield') || target.closest('vscode-textfield') !== null)
  );
}

function readUiState(value: unknown): UiState {
  if (typeof value !== 'object' || value === null) return {};
  const v = value as Record<string, unknown>;
  const state: UiState = {};
  if (typeof v.channelId === 'number') state.channelId = v.channelId;
  if (typeof v.channelName === 'string') state.channelName = v.channelName;
  if (Array.isArray(v.columns) && v.columns.every((c) => typeof c === 'string')) state.columns = v.columns as string[];
  const widths = readWidths(v.widths);
  if (widths) state.widths = widths;
  if (typeof v.search === 'string') state.search = v.search;
  if (typeof v.filter === 'string') state.filter = v.filter;
  const sel = v.selection as Record<string, unknown> | undefined;
  if (typeof sel === 'object' && sel !== null && Array.isArray(sel.ids) && sel.ids.every((id) => Number.isInteger(id)) && typeof sel.stamp === 'number') {
    state.selection = {
      ids: (sel.ids as number[]).slice(0, SAVED_SELECTION),
      stamp: sel.stamp,
      ...(Number.isInteger(sel.active) ? { active: sel.active as number } : {}),
    };
  }
  const fleet = readFleetState(v.fleet);
  if (fleet) state.fleet = fleet;
  return state;
}

/** Saved column widths: finite numbers by key, at most as many as there can be columns. */
function readWidths(value: unknown): Record<string, number> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const entries = Object.entries(value as Record<string, unknown>).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]));
  return entries.length > 0 ? Object.fromEntries(entries.slice(0, LIMITS.columns)) : undefined;
}
