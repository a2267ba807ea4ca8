// Looking for secrets where they must not be: every file of a folder, byte for byte (as UTF-8 and
// as UTF-16LE text), and what the workbench keeps in the browser, read through the page. Findings
// name the secret by its label and the place, never by its value.
import { createDecipheriv } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface Secret {
  /** What it is, for messages ("the flespi token"); the value is never printed. */
  label: string;
  value: string;
}

export interface Finding {
  secret: string;
  where: string;
  encoding: 'UTF-8' | 'UTF-16LE';
}

/** The base64 body lines of a PEM private key: each line alone is secret material. */
export function pemBodySecrets(pem: string, label: string): Secret[] {
  return (
    pem
      .split(/\r?\n/)
      .filter((line) => line !== '' && !line.startsWith('-----'))
      .map((line, index) => ({ label: `${label}, body line ${index + 1}`, value: line }))
      // A very short last line could occur anywhere by chance.
      .filter((secret) => secret.value.length >= 16)
  );
}

/** The places where `secrets` occur in `bytes`. */
export function searchBytes(bytes: Buffer, where: string, secrets: readonly Secret[]): Finding[] {
  const findings: Finding[] = [];
  for (const secret of secrets) {
    if (bytes.includes(Buffer.from(secret.value, 'utf8'))) findings.push({ secret: secret.label, where, encoding: 'UTF-8' });
    if (bytes.includes(Buffer.from(secret.value, 'utf16le'))) findings.push({ secret: secret.label, where, encoding: 'UTF-16LE' });
  }
  return findings;
}

export interface FolderScan {
  files: number;
  bytes: number;
  /** Paths relative to the folder. */
  paths: string[];
  findings: Finding[];
}

/** Searches every regular file under `folder` (symbolic links are not followed). */
export function scanFolder(folder: string, secrets: readonly Secret[]): FolderScan {
  const scan: FolderScan = { files: 0, bytes: 0, paths: [], findings: [] };
  const visit = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const stat = lstatSync(path);
      if (stat.isDirectory()) visit(path);
      else if (stat.isFile()) {
        const bytes = readFileSync(path);
        scan.files++;
        scan.bytes += bytes.length;
        scan.paths.push(relative(folder, path));
        scan.findings.push(...searchBytes(bytes, path, secrets));
      }
    }
  };
  visit(folder);
  return scan;
}

/** One stored value of the browser, as text, and where it was. */
export interface StoredText {
  where: string;
  text: string;
}

/**
 * Page code (source text: see LiveTail.message for why) that reads everything the page's origin
 * keeps: each IndexedDB database (VS Code's global, profile and workspace state, the webview state,
 * the workbench's logs), localStorage (where code-server keeps the secret storage) and
 * sessionStorage. It sees values as the page does, whatever the on-disk format (compressed tables).
 */
export const READ_BROWSER_STORAGE = `(async () => {
  const asText = (value) => {
    if (value === undefined || value === null) return '';
    if (typeof value === 'string') return value;
    if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return new TextDecoder().decode(value);
    try { return JSON.stringify(value); } catch { return String(value); }
  };
  const request = (r) => new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
  const out = [];
  for (const { name } of await indexedDB.databases()) {
    const db = await request(indexedDB.open(name));
    for (const store of db.objectStoreNames) {
      const tx = db.transaction(store, 'readonly');
      const [keys, values] = await Promise.all([request(tx.objectStore(store).getAllKeys()), request(tx.objectStore(store).getAll())]);
      values.forEach((value, i) => out.push({ where: 'IndexedDB ' + name + ' / ' + store + ' / ' + asText(keys[i]), text: asText(keys[i]) + '\\n' + asText(value) }));
    }
    db.close();
  }
  for (const [kind, storage] of [['localStorage', localStorage], ['sessionStorage', sessionStorage]]) {
    for (let i = 0; i < storage.length; i++) {
      const key = storage.key(i);
      out.push({ where: kind + ' ' + key, text: key + '\\n' + storage.getItem(key) });
    }
  }
  return out;
})()`;

/** localStorage key under which code-server's workbench keeps the secret storage (sealed). */
export const SECRET_STORAGE_KEY = 'secrets.provider';

/**
 * Opens code-server's sealed secret storage: base64 of a 32-byte client key, a 12-byte IV and
 * AES-256-GCM ciphertext with its tag; the AES key is the client key XOR the server's key half
 * (user-data/serve-web-key-half, handed out by POST /mint-key).
 */
export function unsealSecretStorage(sealed: string, serverKeyHalf: Buffer): Record<string, string> {
  const data = Buffer.from(sealed, 'base64');
  const clientKey = data.subarray(0, 32);
  const iv = data.subarray(32, 44);
  const cipherText = data.subarray(44, data.length - 16);
  const tag = data.subarray(data.length - 16);
  const key = Buffer.from(clientKey.map((byte, i) => byte ^ (serverKeyHalf[i] ?? 0)));
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAuthTag(tag);
  const plain = Buffer.concat([decipher.update(cipherText), decipher.final()]).toString('utf8');
  return JSON.parse(plain) as Record<string, string>;
}

/** "the flespi token in user-data/logs/…/flespi.log (UTF-8)" lines, for an assertion message. */
export function describeFindings(findings: readonly Finding[], root: string): string {
  return findings.map((f) => `- ${f.secret} in ${f.where.startsWith(root) ? relative(root, f.where) : f.where} (${f.encoding})`).join('\n');
}
