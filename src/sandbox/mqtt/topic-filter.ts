import { compileFilter, FilterSyntaxError } from '../filter';

/** Whether a message (a parsed JSON payload) passes a `$filter/payload=` expression. */
export type MessagePredicate = (message: Readonly<Record<string, unknown>>) => boolean;

/**
 * A subscription's topic filter with flespi's extensions (flespi's SKILL.md, `flespi-software/skills`;
 * see docs/flespi-assumptions.md M7–M10):
 * - `$share/{group}/{filter}`: a shared subscription;
 * - sticky shared subscriptions: `$share/{name}:{count}/{filter}` sends all messages whose topic has
 *   the same first `count` levels to the same member, `$share/{name}:{from}:{count}/` the same for
 *   `count` levels from level `from` (zero-based);
 * - `$filter/payload={url-encoded expression}/{filter}`: only messages whose JSON payload matches
 *   (the same expression language as REST `filter`, from ../filter.ts);
 * - `$filter/cid={account id}/{filter}`: only messages of that account (their `cid` user property);
 * - comma lists in one level: `flespi/message/gw/channels/10,20/+`.
 * They combine as `$share/{group}/$filter/cid=.../$filter/payload=.../{filter}`.
 */
export interface TopicFilter {
  /** The filter as the client sent it (the key of the subscription). */
  readonly raw: string;
  /** The shared subscription group, for `$share/...` filters (with a sticky suffix, `name:6`, as written). */
  readonly shareGroup?: string;
  /** For sticky shared subscriptions: the topic levels whose values pick the member. */
  readonly sticky?: { readonly from: number; readonly count: number };
  /** `$filter/cid=`: only messages whose account (`cid` user property) is this one. */
  readonly cid?: string;
  /** The filter without `$share/{group}/` (identifies a shared subscription together with the group). */
  readonly unshared: string;
  readonly payloadFilter?: MessagePredicate;
  /** Level patterns; more than one when a level holds a comma list. */
  readonly patterns: readonly (readonly string[])[];
}

/** Most patterns one filter may expand to through comma lists. */
const MAX_PATTERNS = 1024;

export class TopicFilterError extends Error {
  override readonly name = 'TopicFilterError';
}

/** A client's text in an error, quoted and cut to 80 characters (a refused filter may be 9,000 characters long). */
function quote(text: string): string {
  return `'${text.length > 80 ? `${text.slice(0, 80)}…` : text}'`;
}

/** Parses a SUBSCRIBE topic filter; throws TopicFilterError saying what is wrong. */
export function parseTopicFilter(raw: string): TopicFilter {
  let rest = raw;
  let shareGroup: string | undefined;
  if (rest.startsWith('$share/')) {
    const slash = rest.indexOf('/', 7);
    shareGroup = slash < 0 ? '' : rest.slice(7, slash);
    if (shareGroup === '' || /[+#]/.test(shareGroup))
      throw new TopicFilterError(`${quote(raw)}: $share needs a group name and a topic filter: $share/{group}/{filter}`);
    rest = rest.slice(slash + 1);
  }
  const sticky = shareGroup === undefined ? undefined : stickySlice(raw, shareGroup);
  const unshared = rest;
  const predicates: MessagePredicate[] = [];
  let cid: string | undefined;
  while (rest.startsWith('$filter/')) {
    const slash = rest.indexOf('/', 8);
    if (slash < 0) throw new TopicFilterError(`${quote(raw)}: $filter needs a spec and a topic filter: $filter/payload={expression}/{filter}`);
    const spec = rest.slice(8, slash);
    rest = rest.slice(slash + 1);
    if (spec.startsWith('cid=')) {
      const value = spec.slice('cid='.length);
      if (!/^[1-9]\d{0,15}$/.test(value))
        throw new TopicFilterError(`${quote(raw)}: $filter/cid= needs an account id (a positive integer), not '${value.slice(0, 40)}'`);
      if (cid !== undefined && cid !== value) throw new TopicFilterError(`${quote(raw)}: two different $filter/cid= in one filter match nothing`);
      cid = value;
      continue;
    }
    if (!spec.startsWith('payload='))
      throw new TopicFilterError(
        `${quote(raw)}: the sandbox supports only $filter/payload={url-encoded expression} and $filter/cid={account id}, not '${spec.slice(0, 80)}'`,
      );
    let expression: string;
    try {
      expression = decodeURIComponent(spec.slice('payload='.length));
    } catch {
      throw new TopicFilterError(`${quote(raw)}: the $filter expression is not valid URL encoding`);
    }
    try {
      const test = compileFilter(expression);
      predicates.push((message) => test((name) => message[name]));
    } catch (error) {
      if (error instanceof FilterSyntaxError) throw new TopicFilterError(`${quote(raw)}: bad $filter expression ${quote(expression)}: ${error.message}`);
      throw error;
    }
  }
  if (rest === '') throw new TopicFilterError(`${quote(raw)}: the topic filter is empty`);
  const levels = rest.split('/');
  let patterns: string[][] = [[]];
  levels.forEach((level, index) => {
    if (level.includes('#') && (level !== '#' || index !== levels.length - 1))
      throw new TopicFilterError(`${quote(raw)}: '#' must be a whole level and the last one`);
    if (level.includes('+') && level !== '+') throw new TopicFilterError(`${quote(raw)}: '+' must be a whole level`);
    const alternatives = level.includes(',') ? level.split(',') : [level];
    if (alternatives.length > 1 && alternatives.some((a) => a === '' || a === '+' || a === '#'))
      throw new TopicFilterError(`${quote(raw)}: a comma list holds plain names only`);
    if (patterns.length * alternatives.length > MAX_PATTERNS)
      throw new TopicFilterError(`${quote(raw)}: the comma lists expand to more than ${MAX_PATTERNS} topics`);
    patterns = patterns.flatMap((pattern) => alternatives.map((alternative) => [...pattern, alternative]));
  });
  patterns = [...new Map(patterns.map((pattern) => [pattern.join('/'), pattern])).values()];
  const payloadFilter: MessagePredicate | undefined =
    predicates.length === 0 ? undefined : predicates.length === 1 ? predicates[0] : (message) => predicates.every((p) => p(message));
  return { raw, shareGroup, sticky, cid, unshared, payloadFilter, patterns };
}

/**
 * The sticky part of a share name: `name:{count}` or `name:{from}:{count}` (numbers), or undefined
 * for a plain name (MQTT allows `:` in share names, so `a:b` is just a name).
 */
function stickySlice(raw: string, group: string): { from: number; count: number } | undefined {
  const match = /^[^:]+:(\d{1,4})(?::(\d{1,4}))?$/.exec(group);
  if (!match) return undefined;
  const from = match[2] === undefined ? 0 : Number(match[1]);
  const count = Number(match[2] ?? match[1]);
  if (count < 1)
    throw new TopicFilterError(
      `${quote(raw)}: a sticky shared subscription needs at least one topic level: $share/{name}:{count}/ or $share/{name}:{from}:{count}/`,
    );
  return { from, count };
}

/** A fast, stable 32-bit hash (FNV-1a) of a text, for picking a sticky shared member. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Whether a topic name (split in levels) matches one level pattern. Topics starting with `$` are not matched by a leading wildcard. */
export function patternMatches(pattern: readonly string[], topic: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const level = pattern[i];
    if (level === '#') return !(i === 0 && topic[0].startsWith('$'));
    if (i >= topic.length) return false;
    if (level === '+') {
      if (i === 0 && topic[0].startsWith('$')) return false;
      continue;
    }
    if (level !== topic[i]) return false;
  }
  return pattern.length === topic.length;
}

export function filterMatches(filter: TopicFilter, topic: readonly string[]): boolean {
  return filter.patterns.some((pattern) => patternMatches(pattern, topic));
}

class TrieNode<T> {
  readonly children = new Map<string, TrieNode<T>>();
  readonly values: T[] = [];
}

/** Maps level patterns to values, and finds every value whose pattern matches a topic in one walk. */
export class TopicTrie<T> {
  private readonly root = new TrieNode<T>();

  add(pattern: readonly string[], value: T): void {
    let node = this.root;
    for (const level of pattern) {
      let child = node.children.get(level);
      if (!child) {
        child = new TrieNode<T>();
        node.children.set(level, child);
      }
      node = child;
    }
    node.values.push(value);
  }

  remove(pattern: readonly string[], value: T): void {
    const path: TrieNode<T>[] = [this.root];
    for (const level of pattern) {
      const child = path[path.length - 1].children.get(level);
      if (!child) return;
      path.push(child);
    }
    const leaf = path[path.length - 1];
    const index = leaf.values.indexOf(value);
    if (index >= 0) leaf.values.splice(index, 1);
    // Prune nodes left empty so the trie does not grow with churn.
    for (let i = pattern.length; i > 0; i--) {
      const node = path[i];
      if (node.values.length > 0 || node.children.size > 0) break;
      path[i - 1].children.delete(pattern[i - 1]);
    }
  }

  /** Appends to `out` every value whose pattern matches `topic` (a value added under several patterns may appear more than once). */
  match(topic: readonly string[], out: T[]): void {
    this.walk(this.root, topic, 0, out);
  }

  private walk(node: TrieNode<T>, topic: readonly string[], index: number, out: T[]): void {
    const system = index === 0 && topic[0].startsWith('$');
    const hash = system ? undefined : node.children.get('#');
    if (hash) for (const value of hash.values) out.push(value);
    if (index === topic.length) {
      for (const value of node.values) out.push(value);
      return;
    }
    const plus = system ? undefined : node.children.get('+');
    if (plus) this.walk(plus, topic, index + 1, out);
    const exact = node.children.get(topic[index]);
    if (exact) this.walk(exact, topic, index + 1, out);
  }
}
