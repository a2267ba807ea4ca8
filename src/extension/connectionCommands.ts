/** Set Token…, Forget Token, Use Local Sandbox, Disconnect, Reconnect. */
import * as vscode from 'vscode';
import { FlespiError, errorMessage } from '../core/errors';
import type { Connection } from './connection';

/** Asks for a token, checks it against flespi and keeps it in SecretStorage only if flespi accepts it. */
export async function setToken(connection: Connection, log: vscode.LogOutputChannel): Promise<void> {
  const { label, restUrl } = safeEndpoints(connection);
  const token = await vscode.window.showInputBox({
    title: `flespi token (${label})`,
    prompt: "A flespi token (from flespi.io → Tokens). It is checked with flespi and kept in VS Code's secret storage only.",
    placeHolder: '64 characters',
    password: true,
    ignoreFocusOut: true,
    validateInput: (value) => {
      const bare = value.trim().replace(/^FlespiToken\s+/i, '');
      if (bare === '') return 'Paste the token';
      if (/\s/.test(bare)) return 'A token has no spaces';
      return undefined;
    },
  });
  if (token === undefined) return;
  try {
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Checking the token with ${restUrl}…` }, () =>
      connection.setToken(token),
    );
    void vscode.window.showInformationMessage(`flespi token accepted (${label}). It is kept in the secret storage.`);
  } catch (error) {
    log.warn(`token not accepted: ${errorMessage(error)}`);
    const retry = 'Try Again';
    const reachable = !(error instanceof FlespiError) || !['network', 'timeout', 'server'].includes(error.kind);
    if (reachable) {
      if ((await vscode.window.showErrorMessage(errorMessage(error), retry)) === retry) await setToken(connection, log);
      return;
    }
    // flespi could not be asked: the token may be fine, so let the user keep it.
    const save = 'Save Anyway';
    const choice = await vscode.window.showErrorMessage(`${errorMessage(error)}. The token was not checked.`, save, retry);
    if (choice === save) await connection.setToken(token, { saveAnyway: true });
    else if (choice === retry) await setToken(connection, log);
  }
}

export async function forgetToken(connection: Connection, log: vscode.LogOutputChannel): Promise<void> {
  if (!(await connection.hasToken())) {
    void vscode.window.showInformationMessage('No flespi token is stored.');
    return;
  }
  const forget = 'Forget Token';
  if ((await vscode.window.showWarningMessage('Remove the flespi token from the secret storage?', { modal: true }, forget)) !== forget) return;
  await connection.forgetToken();
  log.info('token removed from the secret storage');
  void vscode.window.showInformationMessage('The flespi token was removed from this machine.');
}

export async function useSandbox(connection: Connection): Promise<void> {
  try {
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'Starting the flespi sandbox…' }, () => connection.useSandbox());
  } catch (error) {
    void vscode.window.showErrorMessage(errorMessage(error));
  }
}

/** The endpoints for the prompt; a broken setting is reported when the token is checked. */
function safeEndpoints(connection: Connection): { label: string; restUrl: string } {
  try {
    return connection.endpoints();
  } catch {
    return { label: 'flespi', restUrl: 'flespi' };
  }
}
