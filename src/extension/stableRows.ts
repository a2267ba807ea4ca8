/**
 * The rows of a tree view that redraw only when what they show changed. VS Code redraws a row when
 * it is given the same node object again, and a redraw hides the row's tooltip, so a tree keeps one
 * node per key and, when asked to redraw, names only the rows whose text changed since they were
 * drawn; at most once per interval, however often it is asked. No vscode here.
 */
export class StableRows<K, T, N> {
  private readonly rows = new Map<K, { node: N; shown: string }>();
  private timer?: ReturnType<typeof setTimeout>;
  private last = 0;

  constructor(
    private readonly options: {
      /** What a row shows of its value (text, icon...), as a string to compare. */
      shows(value: T): string;
      makeNode(value: T): N;
      /** The value a node holds, and how a kept node takes a new one. */
      valueOf(node: N): T;
      update(node: N, value: T): void;
      /** Told the rows to redraw (a non-empty list). */
      redraw(nodes: N[]): void;
      intervalMs: number;
    },
  ) {}

  /** The nodes for these values, in their order: the same object as before for a key seen before (its value updated); others are forgotten. */
  nodes(values: readonly T[], keyOf: (value: T) => K): N[] {
    const keys = new Set(values.map(keyOf));
    for (const key of this.rows.keys()) if (!keys.has(key)) this.rows.delete(key);
    return values.map((value) => {
      const key = keyOf(value);
      const row = this.rows.get(key);
      if (row) {
        this.options.update(row.node, value);
        return row.node;
      }
      const node = this.options.makeNode(value);
      this.rows.set(key, { node, shown: '' });
      return node;
    });
  }

  /** VS Code is drawing `node`: remember what it shows (nodes that are no longer rows are ignored). */
  drawn(key: K, node: N): void {
    const row = this.rows.get(key);
    if (row?.node === node) row.shown = this.options.shows(this.options.valueOf(node));
  }

  /** Redraws the rows whose text changed, soon, at most once per interval. */
  schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.last = Date.now();
        const changed = [...this.rows.values()].filter((row) => this.options.shows(this.options.valueOf(row.node)) !== row.shown).map((row) => row.node);
        if (changed.length > 0) this.options.redraw(changed);
      },
      Math.max(0, this.last + this.options.intervalMs - Date.now()),
    );
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
