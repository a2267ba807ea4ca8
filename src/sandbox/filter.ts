// A small, safe subset of flespi expressions for `filter` and `{...}` selectors:
//   literals: numbers, 'strings' / "strings", true, false, null
//   parameters: position.speed (the message is skipped when it is missing), $position.speed (null when missing)
//   operators: ! * / + - == != > < >= <= ~ (wildcard match, * and ?) && || and parentheses
// Nothing is evaluated as JavaScript.
//
// Client input must never crash or freeze the sandbox: parentheses and prefix operators nest at most
// MAX_NESTING deep and an expression has at most MAX_TERMS operands (past either bound: a
// FilterSyntaxError saying so), so neither parsing nor evaluating can overflow the stack; and `~` masks
// are matched by a two-pointer scan (matchMask), never a backtracking RegExp.

/** Most nested parentheses and prefix operators (`!`, `-`) in one expression. */
export const MAX_NESTING = 64;
/** Most operands (values and parameter reads) in one expression; each binary operator adds a level of evaluation. */
export const MAX_TERMS = 512;

/** A filter that does not parse; the text says where and why. */
export class FilterSyntaxError extends Error {
  override readonly name = 'FilterSyntaxError';
}

export type Value = number | string | boolean | null;
export type Lookup = (name: string) => unknown;
type Node = (lookup: Lookup) => Value;

/** Thrown while evaluating when a parameter read without `$` is missing: the expression is false. */
const MISSING = Symbol('missing parameter');

interface Token {
  kind: 'num' | 'str' | 'name' | 'op' | 'end';
  text: string;
  value?: Value;
  at: number;
}

const OPERATORS = ['&&', '||', '==', '!=', '>=', '<=', '>', '<', '!', '(', ')', '+', '-', '*', '/', '~'];

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const at = i;
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(source[i + 1] ?? ''))) {
      const match = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(source.slice(i)) as RegExpExecArray;
      tokens.push({ kind: 'num', text: match[0], value: Number(match[0]), at });
      i += match[0].length;
    } else if (c === '"' || c === "'") {
      let text = '';
      i++;
      while (i < source.length && source[i] !== c) {
        if (source[i] === '\\' && i + 1 < source.length) i++;
        text += source[i];
        i++;
      }
      if (i >= source.length) throw new FilterSyntaxError(`unterminated string starting at position ${at + 1}`);
      i++;
      tokens.push({ kind: 'str', text, value: text, at });
    } else if (/[A-Za-z_$]/.test(c)) {
      const text = (/^[A-Za-z_$][A-Za-z0-9_.]*/.exec(source.slice(i)) as RegExpExecArray)[0];
      tokens.push({ kind: 'name', text, at });
      i += text.length;
    } else {
      const op = OPERATORS.find((o) => source.startsWith(o, i));
      if (!op) {
        const hint = c === '=' ? ' (compare with ==)' : c === '&' || c === '|' ? ' (use && and ||)' : '';
        throw new FilterSyntaxError(`unexpected "${c}" at position ${at + 1}${hint}`);
      }
      tokens.push({ kind: 'op', text: op, at });
      i += op.length;
    }
  }
  tokens.push({ kind: 'end', text: 'end of expression', at: source.length });
  return tokens;
}

class Parser {
  private pos = 0;
  private depth = 0;
  private terms = 0;
  constructor(private readonly tokens: Token[]) {}

  /** Enters one level of nesting at `token`; past MAX_NESTING, a FilterSyntaxError instead of a deeper recursion. */
  private nest(token: Token): void {
    if (++this.depth > MAX_NESTING) {
      throw new FilterSyntaxError(`the expression nests deeper than ${MAX_NESTING} levels at position ${token.at + 1} (parentheses, ! and -): simplify it`);
    }
  }

  parse(): Node {
    const node = this.or();
    const rest = this.peek();
    if (rest.kind !== 'end') throw this.error(rest, 'an operator or the end');
    return node;
  }

  private peek(): Token {
    return this.tokens[this.pos] as Token;
  }

  private take(op: string): boolean {
    const t = this.peek();
    if (t.kind === 'op' && t.text === op) {
      this.pos++;
      return true;
    }
    return false;
  }

  private error(token: Token, expected: string): FilterSyntaxError {
    const found = token.kind === 'end' ? 'the end' : `"${token.text}"`;
    return new FilterSyntaxError(`expected ${expected} at position ${token.at + 1}, found ${found}`);
  }

  private or(): Node {
    let left = this.and();
    while (this.take('||')) {
      const a = left;
      const b = this.and();
      left = (l) => truthy(safe(a, l)) || truthy(safe(b, l));
    }
    return left;
  }

  private and(): Node {
    let left = this.comparison();
    while (this.take('&&')) {
      const a = left;
      const b = this.comparison();
      left = (l) => truthy(a(l)) && truthy(b(l));
    }
    return left;
  }

  private comparison(): Node {
    const left = this.additive();
    const t = this.peek();
    if (t.kind === 'op' && ['==', '!=', '>', '<', '>=', '<=', '~'].includes(t.text)) {
      this.pos++;
      const right = this.additive();
      const op = t.text;
      return (l) => compare(op, left(l), right(l));
    }
    return left;
  }

  private additive(): Node {
    let left = this.multiplicative();
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'op' || (t.text !== '+' && t.text !== '-')) return left;
      this.pos++;
      const a = left;
      const b = this.multiplicative();
      left = t.text === '+' ? (l) => plus(a(l), b(l)) : (l) => arithmetic(a(l), b(l), (x, y) => x - y);
    }
  }

  private multiplicative(): Node {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      if (t.kind !== 'op' || (t.text !== '*' && t.text !== '/')) return left;
      this.pos++;
      const a = left;
      const b = this.unary();
      left = t.text === '*' ? (l) => arithmetic(a(l), b(l), (x, y) => x * y) : (l) => arithmetic(a(l), b(l), (x, y) => (y === 0 ? null : x / y));
    }
  }

  private unary(): Node {
    const t = this.peek();
    if (this.take('!')) {
      this.nest(t);
      const inner = this.unary();
      this.depth--;
      return (l) => !truthy(safe(inner, l));
    }
    if (this.take('-')) {
      this.nest(t);
      const inner = this.unary();
      this.depth--;
      return (l) => arithmetic(0, inner(l), (_, y) => -y);
    }
    return this.primary();
  }

  private primary(): Node {
    const t = this.peek();
    if ((t.kind === 'num' || t.kind === 'str' || t.kind === 'name') && ++this.terms > MAX_TERMS) {
      throw new FilterSyntaxError(`the expression has more than ${MAX_TERMS} values and parameters (at position ${t.at + 1}): split it up`);
    }
    if (t.kind === 'num' || t.kind === 'str') {
      this.pos++;
      const value = t.value as Value;
      return () => value;
    }
    if (t.kind === 'name') {
      this.pos++;
      if (t.text === 'true' || t.text === 'false') {
        const value = t.text === 'true';
        return () => value;
      }
      if (t.text === 'null') return () => null;
      if (t.text.startsWith('$')) {
        const name = t.text.slice(1);
        if (name === '') throw new FilterSyntaxError(`"$" at position ${t.at + 1} needs a parameter name, e.g. $position.speed`);
        return (l) => asValue(l(name));
      }
      const name = t.text;
      return (l) => {
        const value = l(name);
        if (value === undefined) throw MISSING;
        return asValue(value);
      };
    }
    if (this.take('(')) {
      this.nest(t);
      const inner = this.or();
      if (!this.take(')')) throw this.error(this.peek(), '")"');
      this.depth--;
      return inner;
    }
    throw this.error(t, 'a value or a parameter name');
  }
}

/** `a || b` and `!a` are still decided when one side reads a missing parameter: that side is false. */
function safe(node: Node, lookup: Lookup): Value {
  try {
    return node(lookup);
  } catch (error) {
    if (error === MISSING) return false;
    throw error;
  }
}

function asValue(value: unknown): Value {
  if (value === null || typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') return value;
  return value === undefined ? null : JSON.stringify(value);
}

function truthy(value: Value): boolean {
  return value !== null && value !== false && value !== 0 && value !== '';
}

function toNumber(value: Value): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return undefined;
}

function plus(a: Value, b: Value): Value {
  if (typeof a === 'string' && typeof b === 'string') return a + b;
  return arithmetic(a, b, (x, y) => x + y);
}

function arithmetic(a: Value, b: Value, op: (x: number, y: number) => number | null): Value {
  const x = toNumber(a);
  const y = toNumber(b);
  return x === undefined || y === undefined ? null : op(x, y);
}

function compare(op: string, a: Value, b: Value): boolean {
  if (op === '~') return typeof a === 'string' && typeof b === 'string' && matchMask(b, a);
  if (op === '==' || op === '!=') {
    const x = toNumber(a);
    const y = toNumber(b);
    const equal = x !== undefined && y !== undefined ? x === y : a === b;
    return op === '==' ? equal : !equal;
  }
  let x: number | string | undefined = toNumber(a);
  let y: number | string | undefined = toNumber(b);
  if (x === undefined || y === undefined) {
    if (typeof a !== 'string' || typeof b !== 'string') return false;
    x = a;
    y = b;
  }
  switch (op) {
    case '>':
      return x > y;
    case '<':
      return x < y;
    case '>=':
      return x >= y;
    default:
      return x <= y;
  }
}

/**
 * Whether `text` matches a flespi mask as a whole (`*` any run of characters, `?` exactly one, the rest
 * literally). A greedy two-pointer scan that backs up only to the last `*`: O(mask × text) at worst,
 * with no backtracking blow-up. (The RegExp it replaces took 22 s on `*a*a*a*a*a*a*a*a*a*a*a*b`
 * against a run of `a`s, blocking the whole sandbox.)
 */
export function matchMask(mask: string, text: string): boolean {
  let m = 0;
  let t = 0;
  let star = -1; // position in the mask just after the last `*`
  let resume = 0; // where in the text that `*` would take up again
  while (t < text.length) {
    const c = mask[m];
    if (c === '*') {
      star = ++m;
      resume = t;
    } else if (c !== undefined && (c === '?' || c === text[t])) {
      m++;
      t++;
    } else if (star >= 0) {
      m = star; // let the last `*` swallow one more character
      t = ++resume;
    } else {
      return false;
    }
  }
  while (mask[m] === '*') m++;
  return m === mask.length;
}

/** A mask compiled once for repeated tests (selectors, `fields` lists). */
export function compileMask(mask: string): (text: string) => boolean {
  return (text) => matchMask(mask, text);
}

/** Compiles an expression to a predicate; throws FilterSyntaxError with the position of the problem. */
export function compileFilter(source: string): (lookup: Lookup) => boolean {
  if (source.trim() === '') throw new FilterSyntaxError('the expression is empty');
  const node = new Parser(tokenize(source)).parse();
  return (lookup) => {
    try {
      return truthy(node(lookup));
    } catch (error) {
      if (error === MISSING) return false;
      throw error;
    }
  };
}
