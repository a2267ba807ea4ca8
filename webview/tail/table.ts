/**
 * The message table: a virtualized ARIA grid. Only the rows in view (plus a few) exist in the
 * DOM, so it stays responsive with 100,000 messages. Rows are positioned through the CSSOM
 * (element.style), which the webview's CSP allows, unlike style attributes in markup.
 *
 * Columns can be resized (drag the header's edge, double-click it to fit the text, Shift+arrows on
 * a header), a cue shows how many columns are scrolled out of view, and while sortable (the tail is
 * paused) a header click sorts the rows; selection and the active row are kept by message id.
 */
import { Virtualizer, elementScroll, observeElementOffset, observeElementRect, type VirtualizerOptions } from '@tanstack/virtual-core';
import type { TailItem } from '../../src/shared/tailProtocol';
import { MAX_COLUMN_WIDTH, MIN_COLUMN_WIDTH, columnFor, type Column } from './columns';
import { el } from './dom';

const ROW_HEIGHT = 22;
const HEADER_HEIGHT = 24;
/** Shift+ArrowLeft/Right on a header changes its column's width by this much. */
const RESIZE_STEP = 10;
/** ArrowLeft/Right in the grid scroll sideways by this much. */
const SCROLL_STEP = 60;

type SortDirection = 'ascending' | 'descending';
interface SortState {
  key: string;
  direction: SortDirection;
}

/** Live, rows keep arrival order: the header says why it does not sort. */
const LIVE_SORT_HINT = 'Pause the tail to sort by this column (live rows keep their arrival order)';
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

export interface TableEvents {
  /** The focused row changed (it is the one the detail pane shows). */
  activeChanged(item: TailItem | undefined): void;
  selectionChanged(): void;
  copyRequested(): void;
  /** The user resized a column: every width set so far, by column key. */
  widthsChanged(widths: Record<string, number>): void;
}

export class VirtualTable {
  /** The grid (focus target). */
  readonly element: HTMLElement;
  /** The grid with its off-screen column cues: what goes into the page. */
  readonly frame: HTMLElement;
  /** Selected message ids. */
  readonly selection = new Set<number>();
  private readonly viewport: HTMLElement;
  private readonly headerRow: HTMLElement;
  private readonly body: HTMLElement;
  private readonly virtualizer: Virtualizer<HTMLElement, HTMLElement>;
  private readonly baseOptions: VirtualizerOptions<HTMLElement, HTMLElement>;
  private columns: Column[] = [];
  /** Widths the user set, by column key (kept for columns not shown too). */
  private readonly widths = new Map<string, number>();
  /** The rows in arrival order, as given. */
  private source: readonly TailItem[] = [];
  /** The rows as shown: `source`, or a sorted copy of it. */
  private rows: readonly TailItem[] = [];
  /** Row index by id while sorted (ids no longer increase down the rows). */
  private positions: Map<number, number> | undefined;
  private sortable = false;
  private sort: SortState | undefined;
  private followingBeforeSort = true;
  private readonly cueLeft = cue('left');
  private readonly cueRight = cue('right');
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
    this.frame = el('div', { className: 'grid-frame', children: [this.element, this.cueLeft, this.cueRight] });
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
      if (!this.sort) this.following = this.viewport.scrollTop + this.viewport.clientHeight >= this.viewport.scrollHeight - ROW_HEIGHT;
      this.showOverflow();
    });
    new ResizeObserver(() => this.showOverflow()).observe(this.viewport);
    this.headerRow.addEventListener('click', (event) => {
      const header = (event.target as Element).closest<HTMLElement>('[role="columnheader"]');
      if (header && !(event.target as Element).closest('.resize-handle')) this.toggleSort(header.dataset.key ?? '');
    });
    this.headerRow.addEventListener('keydown', (event) => this.onHeaderKeyDown(event));
    this.wireResizing();
    this.cueLeft.addEventListener('click', () => this.scrollToHidden('left'));
    this.cueRight.addEventListener('click', () => this.scrollToHidden('right'));
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
    this.applyWidths();
    this.element.setAttribute('aria-colcount', String(this.columns.length));
    this.headerRow.replaceChildren(
      ...this.columns.map((c, i) =>
        el('div', {
          className: 'cell',
          attrs: { role: 'columnheader', 'aria-colindex': String(i + 1), 'data-key': c.key },
          children: [
            el('button', {
              className: 'sort',
              attrs: { type: 'button', tabindex: i === 0 ? '0' : '-1', 'aria-keyshortcuts': 'Shift+ArrowLeft Shift+ArrowRight' },
              children: [el('span', { className: 'label', text: c.label }), el('span', { className: 'sort-mark', attrs: { 'aria-hidden': 'true' } })],
            }),
            el('div', { className: 'resize-handle', attrs: { 'aria-hidden': 'true', title: 'Drag to resize, double-click to fit' } }),
          ],
        }),
      ),
    );
    if (this.sort && !keys.includes(this.sort.key)) this.setSort(undefined);
    else this.showSort();
    this.rowElements.clear();
    this.body.replaceChildren();
    this.showOverflow();
    this.queueRender();
  }

  /** The widths the user set before (from the saved UI state). */
  setWidths(widths: Readonly<Record<string, number>>): void {
    this.widths.clear();
    for (const [key, width] of Object.entries(widths)) this.widths.set(key, clampWidth(width));
    this.applyWidths();
  }

  /**
   * Sorting is offered only while paused: live, rows must keep arrival order. Turning it off
   * returns to arrival order.
   */
  setSortable(sortable: boolean): void {
    this.sortable = sortable;
    if (!sortable && this.sort) this.setSort(undefined);
    else this.showSort();
  }

  /**
   * Shows these rows. `removedFromFront` rows disappeared before the first one (buffer eviction):
   * when the user is reading older rows, the view moves up by as much so they stay in place.
   */
  setRows(rows: readonly TailItem[], removedFromFront = 0): void {
    this.source = rows;
    this.arrange();
    if (this.sort) removedFromFront = 0; // sorted rows are not in arrival order: nothing to shift by
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
      const title = column.title?.(item.message) ?? (text.length > 24 ? text : '');
      if (title) cell.title = title;
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
    // The rest moves among rows: not for keys pressed on a header's button.
    if (event.target !== this.element) return;
    if ((event.key === 'ArrowLeft' || event.key === 'ArrowRight') && !mod && !event.shiftKey) {
      event.preventDefault();
      this.viewport.scrollLeft += event.key === 'ArrowRight' ? SCROLL_STEP : -SCROLL_STEP;
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
    const moves: Record<string, number> = {
      ArrowDown: current + 1,
      ArrowUp: current - 1,
      PageDown: current + page,
      PageUp: current - page,
      Home: 0,
      End: last,
    };
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

  private applyWidths(): void {
    const template = this.columns
      .map((c, i) => {
        const set = this.widths.get(c.key);
        // The last column takes the room left over, unless the user gave it a width.
        if (set === undefined && i === this.columns.length - 1) return `minmax(${c.width}px, 1fr)`;
        return `${set ?? c.width}px`;
      })
      .join(' ');
    this.element.style.setProperty('--tail-columns', template);
    this.showOverflow();
  }

  private resize(key: string, width: number, save: boolean): void {
    this.widths.set(key, clampWidth(width));
    this.applyWidths();
    if (save) this.events.widthsChanged(Object.fromEntries(this.widths));
  }

  /** Drag a header's right edge to resize its column; double-click it to fit the widest text in view. */
  private wireResizing(): void {
    let drag: { key: string; startX: number; startWidth: number; pointer: number } | undefined;
    this.headerRow.addEventListener('pointerdown', (event) => {
      const handle = (event.target as Element).closest<HTMLElement>('.resize-handle');
      const header = handle?.closest<HTMLElement>('[role="columnheader"]');
      if (!handle || !header || event.button !== 0) return;
      event.preventDefault();
      handle.setPointerCapture(event.pointerId);
      drag = { key: header.dataset.key ?? '', startX: event.clientX, startWidth: header.getBoundingClientRect().width, pointer: event.pointerId };
      this.frame.classList.add('resizing');
    });
    this.headerRow.addEventListener('pointermove', (event) => {
      if (drag?.pointer === event.pointerId) this.resize(drag.key, drag.startWidth + event.clientX - drag.startX, false);
    });
    const end = (event: PointerEvent) => {
      if (drag?.pointer !== event.pointerId) return;
      const moved = event.clientX !== drag.startX;
      if (moved) this.resize(drag.key, drag.startWidth + event.clientX - drag.startX, true);
      drag = undefined;
      this.frame.classList.remove('resizing');
    };
    this.headerRow.addEventListener('pointerup', end);
    this.headerRow.addEventListener('pointercancel', end);
    this.headerRow.addEventListener('dblclick', (event) => {
      const header = (event.target as Element).closest('.resize-handle')?.closest<HTMLElement>('[role="columnheader"]');
      if (header) this.autoFit(header.dataset.key ?? '');
    });
  }

  /** Fits a column to the widest text among its header and the rows in the DOM. */
  private autoFit(key: string): void {
    const index = this.columns.findIndex((c) => c.key === key);
    if (index < 0) return;
    const range = document.createRange();
    const textWidth = (node: Element | null | undefined) => {
      if (!node) return 0;
      range.selectNodeContents(node);
      return range.getBoundingClientRect().width;
    };
    const header = this.headerRow.children[index];
    // The header's text plus room for the sort mark; cells' text; both plus the cell padding.
    let widest = textWidth(header?.querySelector('.label')) + 14;
    for (const row of this.rowElements.values()) widest = Math.max(widest, textWidth(row.children[index]));
    this.resize(key, Math.ceil(widest) + 14, true);
  }

  /** On a header: arrows move between headers (down: to the rows), Shift+arrows resize the column, Enter and Space sort (it is a button). */
  private onHeaderKeyDown(event: KeyboardEvent): void {
    const header = (event.target as Element).closest<HTMLElement>('[role="columnheader"]');
    if (header && event.key === 'ArrowDown') {
      event.preventDefault();
      this.element.focus({ preventScroll: true }); // back to the rows
      return;
    }
    if (!header || (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight')) return;
    event.preventDefault();
    const step = event.key === 'ArrowRight' ? 1 : -1;
    const key = header.dataset.key ?? '';
    if (event.shiftKey) {
      // From the width on screen: a last column without a set width is wider than its default.
      this.resize(key, header.getBoundingClientRect().width + step * RESIZE_STEP, true);
      return;
    }
    const buttons = [...this.headerRow.querySelectorAll<HTMLElement>('button.sort')];
    const at = buttons.findIndex((b) => header.contains(b));
    const next = buttons[Math.max(0, Math.min(buttons.length - 1, at + step))];
    if (!next) return;
    for (const b of buttons) b.tabIndex = b === next ? 0 : -1;
    next.focus();
  }

  /** Ascending, descending, then arrival order again; only while sortable. */
  private toggleSort(key: string): void {
    if (!this.sortable || !key) return;
    const current = this.sort?.key === key ? this.sort.direction : undefined;
    this.setSort(current === undefined ? { key, direction: 'ascending' } : current === 'ascending' ? { key, direction: 'descending' } : undefined);
  }

  private setSort(sort: SortState | undefined): void {
    if (sort && !this.sort) this.followingBeforeSort = this.following;
    const wasSorted = this.sort !== undefined;
    this.sort = sort;
    this.arrange();
    this.showSort();
    this.virtualizer._willUpdate();
    const active = this.activeId === undefined ? -1 : this.indexOf(this.activeId);
    if (sort) this.following = false;
    else if (wasSorted) this.following = this.followingBeforeSort;
    // Keep the row in the detail pane in view; else start at the top (sorted) or the end (following).
    if (active >= 0) this.reveal(active);
    else if (sort) this.viewport.scrollTop = 0;
    else if (this.following) this.viewport.scrollTop = this.viewport.scrollHeight;
    this.queueRender();
  }

  /** `rows` from `source`: the same array in arrival order, or a sorted copy (ties keep arrival order). */
  private arrange(): void {
    const sort = this.sort;
    const column = sort && this.columns.find((c) => c.key === sort.key);
    if (!sort || !column) {
      this.rows = this.source;
      this.positions = undefined;
      return;
    }
    const sign = sort.direction === 'ascending' ? 1 : -1;
    const keyed = this.source.map((item, index) => ({ item, index, value: column.sortValue(item.message) }));
    keyed.sort((a, b) => {
      // Rows without a value go last either way.
      if (a.value === undefined || b.value === undefined) return a.value === b.value ? a.index - b.index : a.value === undefined ? 1 : -1;
      return sign * compareSortValues(a.value, b.value) || a.index - b.index;
    });
    this.rows = keyed.map((k) => k.item);
    this.positions = new Map(this.rows.map((item, index) => [item.id, index]));
  }

  /** aria-sort, the sort mark and the header's tooltip. */
  private showSort(): void {
    for (const header of this.headerRow.querySelectorAll<HTMLElement>('[role="columnheader"]')) {
      const key = header.dataset.key ?? '';
      const direction = this.sort?.key === key ? this.sort.direction : undefined;
      if (direction) header.setAttribute('aria-sort', direction);
      else header.removeAttribute('aria-sort');
      const button = header.querySelector<HTMLElement>('button.sort');
      const mark = header.querySelector('.sort-mark');
      if (mark) mark.textContent = direction === 'ascending' ? '▲' : direction === 'descending' ? '▼' : '';
      if (!button) continue;
      button.setAttribute('aria-disabled', String(!this.sortable));
      const next = direction === undefined ? 'sort ascending' : direction === 'ascending' ? 'sort descending' : 'back to arrival order';
      button.title = this.sortable ? `${key}: click to ${next}` : `${key}. ${LIVE_SORT_HINT}`;
    }
  }

  /** The "+N columns" cues and the edge shading, from where the columns are against the scrolled view. */
  private showOverflow(): void {
    const { left, right } = this.hiddenColumns();
    this.frame.style.setProperty('--tail-scrollbar', `${this.viewport.offsetWidth - this.viewport.clientWidth}px`);
    for (const [element, hidden, arrow] of [
      [this.cueLeft, left, 'left'],
      [this.cueRight, right, 'right'],
    ] as const) {
      element.hidden = hidden.length === 0;
      const columns = `${hidden.length} column${hidden.length === 1 ? '' : 's'}`;
      const text = arrow === 'left' ? `← ${columns}` : `+${columns} →`;
      if (element.textContent !== text) element.textContent = text;
      element.title = `${columns} out of view to the ${arrow}: click to scroll (or use the arrow keys in the table)`;
    }
    this.frame.dataset.overflowLeft = String(left.length > 0);
    this.frame.dataset.overflowRight = String(right.length > 0);
  }

  /** Header cells (partly) out of the scrolled view on each side. */
  private hiddenColumns(): { left: HTMLElement[]; right: HTMLElement[] } {
    const from = this.viewport.scrollLeft;
    const to = from + this.viewport.clientWidth;
    const cells = [...this.headerRow.children] as HTMLElement[];
    if (this.viewport.clientWidth === 0) return { left: [], right: [] };
    return {
      left: cells.filter((c) => c.offsetLeft < from - 1),
      right: cells.filter((c) => c.offsetLeft + c.offsetWidth > to + 1),
    };
  }

  /** Scrolls the nearest hidden column on that side fully into view (or to its start when wider than the view). */
  private scrollToHidden(side: 'left' | 'right'): void {
    const { left, right } = this.hiddenColumns();
    const width = this.viewport.clientWidth;
    const cell = side === 'right' ? right[0] : left[left.length - 1];
    if (!cell) return;
    const start = cell.offsetLeft;
    const end = start + cell.offsetWidth;
    this.viewport.scrollLeft = side === 'right' && cell.offsetWidth <= width ? end - width : start;
  }

  private selectionDone(): void {
    this.queueRender();
    this.events.selectionChanged();
  }

  private indexOf(id: number): number {
    if (this.positions) return this.positions.get(id) ?? -1;
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

/** Numbers by value and before strings; strings numeric-aware ("dev-9" before "dev-10"). */
export function compareSortValues(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return collator.compare(a, b);
}

function clampWidth(width: number): number {
  return Math.round(Math.max(MIN_COLUMN_WIDTH, Math.min(MAX_COLUMN_WIDTH, Number.isFinite(width) ? width : MIN_COLUMN_WIDTH)));
}

/** A "+N →" cue over one edge of the grid; clicking it scrolls the next hidden column in. */
function cue(side: 'left' | 'right'): HTMLButtonElement {
  const button = el('button', { className: `overflow-cue ${side}`, attrs: { type: 'button', tabindex: '-1', 'data-testid': `overflow-${side}` } });
  button.hidden = true;
  return button;
}
