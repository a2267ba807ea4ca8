/**
 * The message table: a virtualized ARIA grid. Only the rows in view (plus a few) exist in the
 * DOM, so it stays responsive with 100,000 messages. Rows are positioned through the CSSOM
 * (element.style), which the webview's CSP allows, unlike style attributes in markup.
 */
import { Virtualizer, elementScroll, observeElementOffset, observeElementRect, type VirtualizerOptions } from '@tanstack/virtual-core';
import type { TailItem } from '../../src/shared/tailProtocol';
import { columnFor, type Column } from './columns';
import { el } from './dom';

const ROW_HEIGHT = 22;
const HEADER_HEIGHT = 24;

export interface TableEvents {
  /** The focused row changed (it is the one the detail pane shows). */
  activeChanged(item: TailItem | undefined): void;
  selectionChanged(): void;
  copyRequested(): void;
}

export class VirtualTable {
  readonly element: HTMLElement;
  /** Selected message ids. */
  readonly selection = new Set<number>();
  private readonly viewport: HTMLElement;
  private readonly headerRow: HTMLElement;
  private readonly body: HTMLElement;
  private readonly virtualizer: Virtualizer<HTMLElement, HTMLElement>;
  private readonly baseOptions: VirtualizerOptions<HTMLElement, HTMLElement>;
  private columns: Column[] = [];
  private rows: readonly TailItem[] = [];
  private readonly rowElements = new Map<number, HTMLElement>();
  private activeId: number | undefined;
  private anchorId: number | undefined;
  /** Keep the newest row in view as messages arrive, until the user scrolls up. */
  private following = true;
  private renderQueued = false;

  constructor(private readonly events: TableEvents) {
    this.headerRow = el('div', { className: 'row header', attrs: { role: 'row', 'aria-rowindex': '1' } });
    this.body = el('div', { className: 'rows', attrs: { role: 'rowgroup' } });
    this.viewport = el('div', {
      className: 'viewport',
      children: [el('div', { className: 'header-group', attrs: { role: 'rowgroup' }, children: [this.headerRow] }), this.body],
    });
    this.element = el('div', {
      className: 'grid',
      attrs: { role: 'grid', 'aria-label': 'Messages', 'aria-multiselectable': 'true', 'aria-rowcount': '1', tabindex: '0', 'data-testid': 'messages' },
      children: [this.viewport],
    });
    this.baseOptions = {
      count: 0,
      getScrollElement: () => this.viewport,
      estimateSize: () => ROW_HEIGHT,
      scrollToFn: elementScroll,
      observeElementRect,
      observeElementOffset,
      overscan: 8,
      scrollMargin: HEADER_HEIGHT,
      onChange: () => this.queueRender(),
    };
    this.virtualizer = new Virtualizer(this.baseOptions);
    this.viewport.addEventListener('scroll', () => {
      this.following = this.viewport.scrollTop + this.viewport.clientHeight >= this.viewport.scrollHeight - ROW_HEIGHT;
    });
    this.viewport.addEventListener('mousedown', (event) => {
      if (event.shiftKey) event.preventDefault(); // no text selection on shift-click
    });
    this.viewport.addEventListener('click', (event) => this.onClick(event));
    this.element.addEventListener('keydown', (event) => this.onKeyDown(event));
  }

  /** Call once the element is in the document. */
  mount(): () => void {
    const unmount = this.virtualizer._didMount();
    this.virtualizer._willUpdate();
    return unmount;
  }

  setColumns(keys: readonly string[]): void {
    this.columns = keys.map(columnFor);
    const template = this.columns.map((c, i) => (i === this.columns.length - 1 ? `minmax(${c.width}px, 1fr)` : `${c.width}px`)).join(' ');
    this.element.style.setProperty('--tail-columns', template);
    this.element.setAttribute('aria-colcount', String(this.columns.length));
    this.headerRow.replaceChildren(...this.columns.map((c, i) => el('div', { className: 'cell', text: c.label, attrs: { role: 'columnheader', 'aria-colindex': String(i + 1), title: c.key } })));
    this.rowElements.clear();
    this.body.replaceChildren();
    this.queueRender();
  }

  /**
   * Shows these rows. `removedFromFront` rows disappeared before the first one (buffer eviction):
   * when the user is reading older rows, the view moves up by as much so they stay in place.
   */
  setRows(rows: readonly TailItem[], removedFromFront = 0): void {
    this.rows = rows;
    this.element.setAttribute('aria-rowcount', String(rows.length + 1));
    this.virtualizer.setOptions({ ...this.baseOptions, count: rows.length });
    this.virtualizer._willUpdate();
    this.body.style.height = `${this.virtualizer.getTotalSize()}px`;
    if (this.following) this.viewport.scrollTop = this.viewport.scrollHeight;
    else if (removedFromFront > 0) this.viewport.scrollTop = Math.max(0, this.viewport.scrollTop - removedFromFront * ROW_HEIGHT);
    this.queueRender();
  }

  /** Drops selected ids that are no longer buffered. */
  pruneSelection(oldestId: number | undefined): void {
    for (const id of this.selection) if (oldestId === undefined || id < oldestId) this.selection.delete(id);
  }

  selectAll(): void {
    for (const row of this.rows) this.selection.add(row.id);
    this.selectionDone();
  }

  clearSelection(): void {
    this.selection.clear();
    this.selectionDone();
  }

  selectedIds(): number[] {
    return [...this.selection].sort((a, b) => a - b);
  }

  /** The row the detail pane shows, if any. */
  get activeRowId(): number | undefined {
    return this.activeId;
  }

  /** The rows were replaced by others (restart, a new filter): nothing stays selected or shown in the detail pane. */
  forget(): void {
    this.selection.clear();
    this.anchorId = undefined;
    this.activeId = undefined;
    this.events.activeChanged(undefined);
    this.selectionDone();
  }

  /** Selects the ids that are among the rows and shows `active` in the detail pane (the webview was shown again). */
  restore(ids: readonly number[], active: number | undefined): void {
    for (const id of ids) if (this.indexOf(id) >= 0) this.selection.add(id);
    if (active !== undefined && this.indexOf(active) >= 0) {
      this.anchorId = active;
      this.setActive(active);
      this.following = false;
      this.reveal(this.indexOf(active));
    }
    this.selectionDone();
  }

  private queueRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    requestAnimationFrame(() => {
      this.renderQueued = false;
      this.render();
    });
  }

  private render(): void {
    const wanted = new Set<number>();
    for (const virtual of this.virtualizer.getVirtualItems()) {
      const item = this.rows[virtual.index];
      if (!item) continue;
      wanted.add(item.id);
      let row = this.rowElements.get(item.id);
      if (!row) {
        row = this.createRow(item);
        this.rowElements.set(item.id, row);
        this.body.append(row);
      }
      row.style.transform = `translateY(${virtual.start - HEADER_HEIGHT}px)`;
      row.setAttribute('aria-rowindex', String(virtual.index + 2));
      const selected = this.selection.has(item.id);
      row.setAttribute('aria-selected', String(selected));
      row.classList.toggle('selected', selected);
      row.classList.toggle('active', item.id === this.activeId);
    }
    for (const [id, row] of this.rowElements) {
      if (!wanted.has(id)) {
        row.remove();
        this.rowElements.delete(id);
      }
    }
    if (this.activeId !== undefined && this.rowElements.has(this.activeId)) this.element.setAttribute('aria-activedescendant', `row-${this.activeId}`);
    else this.element.removeAttribute('aria-activedescendant');
  }

  private createRow(item: TailItem): HTMLElement {
    const row = el('div', { className: 'row', attrs: { role: 'row', 'data-id': String(item.id), id: `row-${item.id}` } });
    this.columns.forEach((column, i) => {
      const text = column.text(item.message);
      const cell = el('div', { className: 'cell', text, attrs: { role: 'gridcell', 'aria-colindex': String(i + 1) } });
      if (text.length > 24) cell.title = text;
      row.append(cell);
    });
    return row;
  }

  private onClick(event: MouseEvent): void {
    const row = (event.target as Element).closest<HTMLElement>('.row[data-id]');
    if (!row) return;
    const id = Number(row.dataset.id);
    if (event.shiftKey && this.anchorId !== undefined) {
      if (!(event.ctrlKey || event.metaKey)) this.selection.clear();
      this.selectRange(this.anchorId, id);
    } else if (event.ctrlKey || event.metaKey) {
      if (this.selection.has(id)) this.selection.delete(id);
      else this.selection.add(id);
      this.anchorId = id;
    } else {
      this.selection.clear();
      this.selection.add(id);
      this.anchorId = id;
    }
    this.element.focus({ preventScroll: true });
    this.setActive(id);
    this.selectionDone();
  }

  private onKeyDown(event: KeyboardEvent): void {
    const mod = event.ctrlKey || event.metaKey;
    if (mod && event.key.toLowerCase() === 'a') {
      event.preventDefault();
      this.selectAll();
      return;
    }
    if (mod && event.key.toLowerCase() === 'c') {
      event.preventDefault();
      this.events.copyRequested();
      return;
    }
    if (event.key === 'Escape') {
      if (this.selection.size > 0) {
        event.preventDefault();
        this.clearSelection();
      }
      return;
    }
    if (event.key === ' ' && this.activeId !== undefined) {
      event.preventDefault();
      if (this.selection.has(this.activeId)) this.selection.delete(this.activeId);
      else this.selection.add(this.activeId);
      this.anchorId = this.activeId;
      this.selectionDone();
      return;
    }
    const page = Math.max(1, Math.floor(this.viewport.clientHeight / ROW_HEIGHT) - 1);
    const current = this.activeId === undefined ? -1 : this.indexOf(this.activeId);
    const last = this.rows.length - 1;
    const moves: Record<string, number> = { ArrowDown: current + 1, ArrowUp: current - 1, PageDown: current + page, PageUp: current - page, Home: 0, End: last };
    if (!(event.key in moves) || last < 0) return;
    event.preventDefault();
    const target = this.rows[Math.max(0, Math.min(last, current < 0 && event.key === 'ArrowUp' ? last : moves[event.key]))];
    if (event.shiftKey) {
      this.anchorId ??= this.activeId ?? target.id;
      this.selection.clear();
      this.selectRange(this.anchorId, target.id);
    } else if (!mod) {
      this.selection.clear();
      this.selection.add(target.id);
      this.anchorId = target.id;
    }
    this.setActive(target.id);
    this.reveal(this.indexOf(target.id));
    this.selectionDone();
  }

  /** Scrolls as little as needed for row `index` to be in view below the sticky header. */
  private reveal(index: number): void {
    if (index < 0) return;
    const top = index * ROW_HEIGHT; // the scrollTop at which the row sits right under the header
    const bottom = HEADER_HEIGHT + (index + 1) * ROW_HEIGHT - this.viewport.clientHeight;
    if (this.viewport.scrollTop > top) this.viewport.scrollTop = top;
    else if (this.viewport.scrollTop < bottom) this.viewport.scrollTop = bottom;
  }

  private selectRange(fromId: number, toId: number): void {
    let a = this.indexOf(fromId);
    let b = this.indexOf(toId);
    if (a < 0) a = b;
    if (a > b) [a, b] = [b, a];
    for (let i = Math.max(0, a); i <= b; i++) this.selection.add(this.rows[i].id);
  }

  private setActive(id: number): void {
    this.activeId = id;
    const index = this.indexOf(id);
    this.events.activeChanged(index >= 0 ? this.rows[index] : undefined);
  }

  private selectionDone(): void {
    this.queueRender();
    this.events.selectionChanged();
  }

  private indexOf(id: number): number {
    let low = 0;
    let high = this.rows.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (this.rows[mid].id === id) return mid;
      if (this.rows[mid].id < id) low = mid + 1;
      else high = mid - 1;
    }
    return -1;
  }
}
