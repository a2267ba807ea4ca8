/**
 * A small subset of flespi expressions, enough for `$filter/payload=<expr>/...` subscriptions:
 * comparisons `== != > < >= <=` (a single `=` means `==`) between parameters and number, string
 * ('…' or "…") or boolean literals, `&&`, `||`, `!`, parentheses, and a bare parameter name meaning
 * "the message has this parameter". Parameter names are dotted (`position.speed`); a leading `$`
 * (flespi's safe access) is accepted and ignored.
 *
 * A comparison with a missing parameter is false. Booleans compare with numbers as 1/0; a string and
 * a number are never equal. Example: `position.speed>60 && position.valid==true`.
 */

export type MessagePredicate = (message: Readonly<Record<string, unknown>>) => boolean;

export class ExpressionError extends Error {
  override readonly name = 'ExpressionError';
}

type Literal = number | string | boolean | null;
type Operand = { kind: 'param'; name: string } | { kind: 'literal'; value: Literal };
type ComparisonOperator = '==' | '!=' | '>' | '<' | '>=' | '<=';
type Node =
  | { kind: 'or' | 'and'; left: Node; right: Node }
  | { kind: 'not'; operand: Node }
  | { kind: 'compare'; op: ComparisonOperator; left: Operand; right: Operand }
  | { kind: 'has'; name: string }
  | { kind: 'constant'; value: boolean };

type Token =
  | { type: 'name'; text: string; at: number }
  | { type: 'literal'; value: Literal; at: number }
  | { type: 'op'; text: string; at: number }
  | { type: 'end'; at: number };

const OPERATORS = ['&&', '||', '==', '!=', '>=', '<=', '>', '<', '!', '(', ')', '='];

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const start = i;
    if (c === '"' || c === "'") {
      let text = '';
      i++;
      while (i < source.length && source[i] !== c) {
        if (source[i] === '\\' && i + 1 < source.length) i++;
        text += source[i++];
      }
      if (i >= source.length) throw new ExpressionError(`unterminated string starting at position ${start + 1}`);
      i++;
      tokens.push({ type: 'literal', value: text, at: start });
      continue;
    }
    const number = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(source.slice(i));
    if (number) {
      tokens.push({ type: 'literal', value: Number(number[0]), at: start });
      i += number[0].length;
      continue;
    }
    const name = /^\$?[A-Za-z_][A-Za-z0-9_.]*/.exec(source.slice(i));
    if (name) {
      const text = name[0].replace(/^\$/, '');
      if (text === 'true' || text === 'false') tokens.push({ type: 'literal', value: text === 'true', at: start });
      else if (text === 'null') tokens.push({ type: 'literal', value: null, at: start });
      else tokens.push({ type: 'name', text, at: start });
      i += name[0].length;
      continue;
    }
    const op = OPERATORS.find((candidate) => source.startsWith(candidate, i));
    if (!op) throw new ExpressionError(`unexpected '${c}' at position ${start + 1}`);
    tokens.push({ type: 'op', text: op === '=' ? '==' : op, at: start });
    i += op.length;
  }
  tokens.push({ type: 'end', at: source.length });
  return tokens;
}

class Parser {
  private position = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Node {
    const node = this.or();
    const token = this.peek();
    if (token.type !== 'end') throw new ExpressionError(`unexpected ${describe(token)} at position ${token.at + 1}`);
    return node;
  }

  private peek(): Token {
    return this.tokens[this.position];
  }

  private isOp(text: string): boolean {
    const token = this.peek();
    return token.type === 'op' && token.text === text;
  }

  private or(): Node {
    let left = this.and();
    while (this.isOp('||')) {
      this.position++;
      left = { kind: 'or', left, right: this.and() };
    }
    return left;
  }

  private and(): Node {
    let left = this.unary();
    while (this.isOp('&&')) {
      this.position++;
      left = { kind: 'and', left, right: this.unary() };
    }
    return left;
  }

  private unary(): Node {
    if (this.isOp('!')) {
      this.position++;
      return { kind: 'not', operand: this.unary() };
    }
    if (this.isOp('(')) {
      this.position++;
      const inner = this.or();
      if (!this.isOp(')')) throw new ExpressionError(`missing ')' at position ${this.peek().at + 1}`);
      this.position++;
      return inner;
    }
    const left = this.operand();
    const token = this.peek();
    if (token.type === 'op' && ['==', '!=', '>', '<', '>=', '<='].includes(token.text)) {
      this.position++;
      return { kind: 'compare', op: token.text as ComparisonOperator, left, right: this.operand() };
    }
    if (left.kind === 'param') return { kind: 'has', name: left.name };
    if (typeof left.value === 'boolean') return { kind: 'constant', value: left.value };
    throw new ExpressionError(`a value alone is not a condition: compare it, e.g. \`param==${JSON.stringify(left.value)}\``);
  }

  private operand(): Operand {
    const token = this.peek();
    this.position++;
    if (token.type === 'name') return { kind: 'param', name: token.text };
    if (token.type === 'literal') return { kind: 'literal', value: token.value };
    throw new ExpressionError(`expected a parameter name or a value at position ${token.at + 1}, found ${describe(token)}`);
  }
}

function describe(token: Token): string {
  if (token.type === 'end') return 'the end of the expression';
  if (token.type === 'op') return `'${token.text}'`;
  if (token.type === 'name') return `'${token.text}'`;
  return JSON.stringify(token.value);
}

function resolve(operand: Operand, message: Readonly<Record<string, unknown>>): unknown {
  return operand.kind === 'param' ? message[operand.name] : operand.value;
}

function compare(op: ComparisonOperator, a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return false;
  if (typeof a === 'boolean' && typeof b === 'number') a = a ? 1 : 0;
  if (typeof b === 'boolean' && typeof a === 'number') b = b ? 1 : 0;
  const comparable = (typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string');
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '>':
      return comparable && (a as number) > (b as number);
    case '<':
      return comparable && (a as number) < (b as number);
    case '>=':
      return comparable && (a as number) >= (b as number);
    case '<=':
      return comparable && (a as number) <= (b as number);
  }
}

function evaluate(node: Node, message: Readonly<Record<string, unknown>>): boolean {
  switch (node.kind) {
    case 'or':
      return evaluate(node.left, message) || evaluate(node.right, message);
    case 'and':
      return evaluate(node.left, message) && evaluate(node.right, message);
    case 'not':
      return !evaluate(node.operand, message);
    case 'has':
      return message[node.name] !== undefined;
    case 'constant':
      return node.value;
    case 'compare':
      return compare(node.op, resolve(node.left, message), resolve(node.right, message));
  }
}

/** Compiles `source` into a predicate over flat flespi messages. Throws ExpressionError naming the position of a syntax error. */
export function compileExpression(source: string): MessagePredicate {
  if (source.trim() === '') throw new ExpressionError('the expression is empty');
  const tree = new Parser(tokenize(source)).parse();
  return (message) => evaluate(tree, message);
}
