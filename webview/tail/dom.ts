/** Builds elements from text only: payload data never passes through innerHTML. */
export interface ElementSpec {
  className?: string;
  text?: string;
  attrs?: Record<string, string>;
  children?: Array<Node | undefined>;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, spec?: ElementSpec): HTMLElementTagNameMap[K];
export function el(tag: string, spec?: ElementSpec): HTMLElement;
export function el(tag: string, spec: ElementSpec = {}): HTMLElement {
  const element = document.createElement(tag);
  if (spec.className) element.className = spec.className;
  if (spec.text !== undefined) element.textContent = spec.text;
  for (const [name, value] of Object.entries(spec.attrs ?? {})) element.setAttribute(name, value);
  for (const child of spec.children ?? []) if (child) element.append(child);
  return element;
}

/** Sets an element's text only when it changed (counters update four times a second). */
export function setText(element: Element, text: string): void {
  if (element.textContent !== text) element.textContent = text;
}
