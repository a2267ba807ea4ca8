// Small guards shared by the CLI, the extension and the sinks: what a URL may show, when credentials
// travel in clear text, and whether a secret file is readable by other users.
import { stat } from 'node:fs/promises';
import type { Logger } from './logger';

/** `scheme://user:password@` at the start of a URL, or inside a text. */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'<>]*@/gi;

/**
 * The URL with its `user:password@` part replaced by `***@`, for errors, logs and tooltips; a URL
 * without one comes back unchanged. Works on text that is not a valid URL too.
 */
export function redactUrl(url: string): string {
  return url.replace(USERINFO, '$1***@');
}

/** Every URL in a text redacted as `redactUrl` does (for messages that may quote URLs from anywhere). */
export const redactUrls = redactUrl;

/** localhost, 127.0.0.0/8, ::1 and the IPv4-mapped ::ffff:127.x: traffic that never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (host === '::1' || host === '0:0:0:0:0:0:0:1') return true;
  const v4 = host.replace(/^::ffff:/, '');
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** Schemes that carry everything, credentials included, in clear text. */
const CLEARTEXT_SCHEMES: Readonly<Record<string, string>> = { 'http:': 'https://', 'mqtt:': 'mqtts://', 'ws:': 'wss://', 'tcp:': 'mqtts://' };

/**
 * A warning when `credentials` (e.g. "the flespi token", "the Authorization header") would be sent to
 * `url` unencrypted (http://, mqtt://, ws://) and to another machine; undefined when it is fine (TLS,
 * or a loopback address such as a local sandbox) or when `url` does not parse.
 */
export function cleartextCredentialsWarning(url: string, credentials: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const secure = CLEARTEXT_SCHEMES[parsed.protocol];
  if (secure === undefined || isLoopbackHost(parsed.hostname)) return undefined;
  return `${credentials} is sent unencrypted to ${redactUrl(url)}: anyone on the network path can read it; use ${secure}${parsed.host} instead`;
}

/** Logs `cleartextCredentialsWarning` when there is one; returns whether it warned. */
export function warnCleartextCredentials(url: string, credentials: string, log: Logger): boolean {
  const warning = cleartextCredentialsWarning(url, credentials);
  if (warning) log.warn(warning);
  return warning !== undefined;
}

/**
 * The permission bits (e.g. 0o644) of a file that users other than its owner may read or write (any
 * group or other bit set), or undefined when only the owner can. Always undefined on Windows, where
 * mode bits do not describe the ACLs. Throws like `fs.stat` when the file cannot be examined.
 */
export async function openToOthers(path: string): Promise<number | undefined> {
  if (process.platform === 'win32') return undefined;
  const { mode } = await stat(path);
  return mode & 0o077 ? mode & 0o777 : undefined;
}

/**
 * Warns once through `log` when a secret file (a token file, a private key) can be read by other
 * users: `setting` names it as the user wrote it ("tokenFile", "keyFile"). A file that cannot be
 * examined is left to the code that reads it, which reports that better.
 */
export async function warnIfOthersCanRead(path: string, setting: string, log: Logger): Promise<void> {
  let mode: number | undefined;
  try {
    mode = await openToOthers(path);
  } catch {
    return;
  }
  if (mode !== undefined) log.warn(`${setting} ${path} can be read by other users (mode ${mode.toString(8)}): restrict it with chmod 600 ${path}`);
}
