/** The text of a messages-history document. No vscode here. */

/** Messages fetched newest first (`reverse: true`), as a JSON array in time order. */
export function historyDocument(newestFirst: readonly Record<string, unknown>[]): string {
  return JSON.stringify([...newestFirst].reverse(), null, 2) + '\n';
}
