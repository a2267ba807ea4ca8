// flespi item selectors (`all`, `1,2,3`, `name=car*,enabled=true`, `{expression}`) and `fields` projection.
import { compileFilter, compileMask, FilterSyntaxError } from './filter';

export type Item = Record<string, unknown>;

export type Selector = { kind: 'all' } | { kind: 'ids'; ids: number[] } | { kind: 'match'; test: (item: Item) => boolean };

/** A selector that does not parse. */
export class SelectorError extends Error {
  override readonly name = 'SelectorError';
}

/**
 * Reads a selector. `aliases` maps old flat names to nested ones (devices: `ident` → `configuration.ident`).
 */
export function parseSelector(text: string, aliases: Readonly<Record<string, string>> = {}): Selector {
  const selector = text.trim();
  if (selector === 'all') return { kind: 'all' };
  if (/^\d+(,\d+)*$/.test(selector)) return { kind: 'ids', ids: [...new Set(selector.split(',').map(Number))] };
  const read = (item: Item, name: string) => readPath(item, aliases[name] ?? name);
  if (selector.startsWith('{') && selector.endsWith('}')) {
    try {
      const test = compileFilter(selector.slice(1, -1));
      return { kind: 'match', test: (item) => test((name) => read(item, name)) };
    } catch (error) {
      if (error instanceof FilterSyntaxError) throw new SelectorError(`selector expression ${selector} is invalid: ${error.message}`);
      throw error;
    }
  }
  const conditions = selector.split(',').map((part) => {
    const eq = part.indexOf('=');
    if (eq <= 0) {
      throw new SelectorError(
        `selector "${selector}" is invalid at "${part}": use all, an id list like 1,2,3, field masks like name=car*,enabled=true, or an expression in braces`,
      );
    }
    const name = part.slice(0, eq).trim();
    const matches = compileMask(part.slice(eq + 1).trim());
    return (item: Item) => {
      const value = read(item, name);
      return value !== undefined && value !== null && typeof value !== 'object' && matches(String(value));
    };
  });
  return { kind: 'match', test: (item) => conditions.every((c) => c(item)) };
}

/** The items a selector picks, and the listed ids that do not exist. */
export function selectItems<T extends Item>(items: readonly T[], selector: Selector): { found: T[]; missing: number[] } {
  if (selector.kind === 'all') return { found: [...items], missing: [] };
  if (selector.kind === 'match') return { found: items.filter(selector.test), missing: [] };
  const byId = new Map(items.map((item) => [item.id as number, item]));
  const found: T[] = [];
  const missing: number[] = [];
  for (const id of selector.ids) {
    const item = byId.get(id);
    if (item) found.push(item);
    else missing.push(id);
  }
  return { found, missing };
}

/** Reads `a.b.c` from a flat key first, then from nested objects. */
export function readPath(item: Item, path: string): unknown {
  if (path in item) return item[path];
  let value: unknown = item;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Item)[part];
  }
  return value;
}

/** Keeps only `fields` of an item (top-level names). */
export function projectItem(item: Item, fields: readonly string[]): Item {
  const out: Item = {};
  for (const name of fields) if (name in item) out[name] = item[name];
  return out;
}

/**
 * Compiles a message `fields` list (wildcards allowed, e.g. `timestamp,position.*,*can*`) to a projection;
 * it returns undefined for a message that has none of them (flespi skips such messages).
 */
export function messageProjection(fields: string): (message: Item) => Item | undefined {
  const patterns = fields
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
  const exact = new Set(patterns.filter((p) => !/[*?]/.test(p)));
  const masks = patterns.filter((p) => /[*?]/.test(p)).map(compileMask);
  return (message) => {
    const out: Item = {};
    let any = false;
    for (const name of Object.keys(message)) {
      if (exact.has(name) || masks.some((matches) => matches(name))) {
        out[name] = message[name];
        any = true;
      }
    }
    return any ? out : undefined;
  };
}
