/** The tail webview's HTML, without vscode, so that tests serve exactly what the panel shows. */
import { randomBytes } from 'node:crypto';

export interface TailHtmlOptions {
  /** `webview.cspSource`: the origin the webview's own resources come from. */
  cspSource: string;
  /** A fresh random value per render (`createNonce()`). */
  nonce: string;
  /** `webview.asWebviewUri(dist/webview/tail.js)`. */
  scriptUri: string;
  title: string;
  /** The map's tile origin (mapTiles().imgSource): the one other place images may come from. */
  tileSource?: string;
}

export function createNonce(): string {
  return randomBytes(18).toString('base64url');
}

/** Nothing but our nonced bundle may run; styles come from our origin or the CSSOM, never inline markup. */
export function tailContentSecurityPolicy(cspSource: string, nonce: string, tileSource?: string): string {
  return [
    `default-src 'none'`,
    `img-src ${cspSource} data:${tileSource ? ` ${tileSource}` : ''}`,
    `style-src ${cspSource}`,
    `script-src 'nonce-${nonce}'`,
    `font-src ${cspSource}`,
  ].join('; ');
}

export function renderTailHtml(options: TailHtmlOptions): string {
  const csp = tailContentSecurityPolicy(options.cspSource, options.nonce, options.tileSource);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title)}</title>
</head>
<body>
<div id="app"></div>
<script nonce="${escapeHtml(options.nonce)}" src="${escapeHtml(options.scriptUri)}"></script>
</body>
</html>
`;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
