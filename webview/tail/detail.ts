/** The selected message as collapsible JSON. Every key and value is set as text, never parsed as HTML. */
import type { TailItem } from '../../src/shared/tailProtocol';
import { formatEpochMs } from './columns';
import { renderDiff, readableTime } from './detailDiff';
import { el } from './dom';

export interface DetailOptions {
  /** The previous message of the same device (null: none in the buffer); undefined: no comparison. */
  previous?: TailItem | null;
  /** Offers "Plot" beside numeric top-level values. */
  plot?: (key: string) => void;
}

const MAX_CHILDREN = 500;

export function renderDetail(container: HTMLElement, item: TailItem | undefined, options: DetailOptions = {}): void {
  if (!item) {
    container.replaceChildren(el('p', { className: 'muted', text: 'Select a message to see it here.' }));
    return;
  }
  const heading = el('h2', { text: `Message #${item.id}`, attrs: { 'data-testid': 'detail-title' } });
  const received = el('p', { className: 'muted', text: `Received ${formatEpochMs(item.receivedAt)}` });
  const tree = el('div', { className: 'json', attrs: { 'data-testid': 'detail-json' }, children: [jsonNode(undefined, item.message, 0, options.plot)] });
  const diff = options.previous === undefined ? undefined : renderDiff(item, options.previous ?? undefined);
  container.replaceChildren(...[heading, received, diff, tree].filter((n): n is HTMLElement => n !== undefined));
}

function jsonNode(key: string | undefined, value: unknown, depth: number, plot?: (key: string) => void): HTMLElement {
  const label = key === undefined ? undefined : el('span', { className: 'json-key', text: `${JSON.stringify(key)}: ` });
  if (value === null || typeof value !== 'object') {
    const line = el('div', {
      className: 'json-line',
      children: [label, el('span', { className: `json-${value === null ? 'null' : typeof value}`, text: JSON.stringify(value) ?? String(value) })],
    });
    const time = key === undefined ? undefined : readableTime(key, value);
    if (time !== undefined) line.append(el('span', { className: 'json-time', text: time, attrs: { 'data-testid': 'detail-time' } }));
    if (plot && depth === 1 && key !== undefined && typeof value === 'number') {
      const button = el('button', {
        className: 'json-plot',
        text: 'Plot',
        attrs: { type: 'button', title: `Plot ${key} over time`, 'aria-label': `Plot ${key}`, 'data-plot': key },
      });
      button.addEventListener('click', () => plot(key));
      line.append(button);
    }
    return line;
  }
  const entries: Array<[string | undefined, unknown]> = Array.isArray(value) ? value.map((v) => [undefined, v]) : Object.entries(value);
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  const summary = el('summary', {
    children: [
      label,
      el('span', {
        className: 'json-punct',
        text: `${open} ${entries.length} ${Array.isArray(value) ? 'item' : 'key'}${entries.length === 1 ? '' : 's'} ${close}`,
      }),
    ],
  });
  const children = el('div', { className: 'json-children' });
  for (const [childKey, childValue] of entries.slice(0, MAX_CHILDREN)) children.append(jsonNode(childKey, childValue, depth + 1, plot));
  if (entries.length > MAX_CHILDREN)
    children.append(el('div', { className: 'muted', text: `… ${entries.length - MAX_CHILDREN} more (copy or export the message to see all)` }));
  const details = el('details', { children: [summary, children] });
  details.open = depth < 2;
  return details;
}
