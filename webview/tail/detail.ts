/** The selected message as collapsible JSON. Every key and value is set as text, never parsed as HTML. */
import type { TailItem } from '../../src/shared/tailProtocol';
import { formatEpochMs } from './columns';
import { el } from './dom';

const MAX_CHILDREN = 500;

export function renderDetail(container: HTMLElement, item: TailItem | undefined): void {
  if (!item) {
    container.replaceChildren(el('p', { className: 'muted', text: 'Select a message to see it here.' }));
    return;
  }
  const heading = el('h2', { text: `Message #${item.id}`, attrs: { 'data-testid': 'detail-title' } });
  const received = el('p', { className: 'muted', text: `Received ${formatEpochMs(item.receivedAt)}` });
  const tree = el('div', { className: 'json', attrs: { 'data-testid': 'detail-json' }, children: [jsonNode(undefined, item.message, 0)] });
  container.replaceChildren(heading, received, tree);
}

function jsonNode(key: string | undefined, value: unknown, depth: number): HTMLElement {
  const label = key === undefined ? undefined : el('span', { className: 'json-key', text: `${JSON.stringify(key)}: ` });
  if (value === null || typeof value !== 'object') {
    return el('div', { className: 'json-line', children: [label, el('span', { className: `json-${value === null ? 'null' : typeof value}`, text: JSON.stringify(value) ?? String(value) })] });
  }
  const entries: Array<[string | undefined, unknown]> = Array.isArray(value) ? value.map((v) => [undefined, v]) : Object.entries(value);
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  const summary = el('summary', { children: [label, el('span', { className: 'json-punct', text: `${open} ${entries.length} ${Array.isArray(value) ? 'item' : 'key'}${entries.length === 1 ? '' : 's'} ${close}` })] });
  const children = el('div', { className: 'json-children' });
  for (const [childKey, childValue] of entries.slice(0, MAX_CHILDREN)) children.append(jsonNode(childKey, childValue, depth + 1));
  if (entries.length > MAX_CHILDREN) children.append(el('div', { className: 'muted', text: `… ${entries.length - MAX_CHILDREN} more (copy or export the message to see all)` }));
  const details = el('details', { children: [summary, children] });
  details.open = depth < 2;
  return details;
}
