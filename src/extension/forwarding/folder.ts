/** The folders forwarding keeps its files in (records, locks, dead letters). No vscode here. */
import { readdir } from 'node:fs/promises';

/** The names in `dir`; none when it does not exist yet (nothing was written there). */
export async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
