/** Entry of the live tail webview (bundled by scripts/build.mjs into dist/webview/tail.js). */
import type { HostMessage } from '../../src/shared/tailProtocol';
import { TailApp, type VsCodeApi } from './app';
import css from './tail.css';

declare function acquireVsCodeApi(): VsCodeApi;

// A constructed stylesheet goes through the CSSOM, so the CSP needs no 'unsafe-inline' styles.
const sheet = new CSSStyleSheet();
sheet.replaceSync(css);
document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];

const root = document.getElementById('app') ?? document.body.appendChild(document.createElement('div'));
const app = new TailApp(root, acquireVsCodeApi());

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  const message = event.data;
  // Only the extension host posts to this page; still, skip anything that is not one of its messages.
  if (typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string') {
    app.handle(message as HostMessage);
  }
});
app.start();
