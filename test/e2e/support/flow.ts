// The frame of an e2e file: one session, flows run in order in its window, each timed and with a
// screenshot at the moment it fails; at the end the session stops (its files kept after a failure).
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { outputDir } from './host';
import { extensionHostLogs, startSession, type Session, type SessionOptions } from './session';
import { record, writeTimings } from './timings';
import type { Workbench } from './workbench';

export interface Flows {
  /** The running session (set once the `before` hook started it). */
  readonly session: Session;
  flow(name: string, title: string, body: (wb: Workbench, t: TestContext) => Promise<void>): void;
}

/** Call inside a `describe`: starts the session before its flows and stops it after them. */
export function sessionFlows(options: SessionOptions): Flows {
  let session: Session | undefined;
  let failed = false;

  before(async () => {
    session = await startSession(options);
  });

  after(async () => {
    if (session) {
      if (failed) console.log(`e2e: kept ${session.root} for inspection; extension host logs: ${extensionHostLogs(session.profile)}`);
      await session.stop({ keepFiles: failed });
    }
    console.log(`e2e timings:\n${writeTimings(join(outputDir, `timings-${options.name}.json`))}\nscreenshots: ${outputDir}`);
  });

  return {
    get session() {
      assert.ok(session, 'the e2e session did not start (see the error of the "before" hook)');
      return session;
    },
    flow(name, title, body) {
      test(`${name}: ${title}`, { timeout: 180_000 }, async (t) => {
        assert.ok(session, 'the e2e session did not start (see the error of the "before" hook)');
        const wb = session.workbench;
        wb.beginFlow(name);
        const start = performance.now();
        try {
          await body(wb, t);
        } catch (error) {
          failed = true;
          console.log(
            `# ${name} failed; the page's last console lines:\n${wb
              .consoleLines()
              .map((l) => `#   ${l}`)
              .join('\n')}`,
          );
          // A copy goes to the kept temp folder too: the next run clears test-output/e2e.
          await wb
            .shot('FAILED')
            .then((file) => copyFileSync(file, join(session!.root, basename(file))))
            .catch(() => undefined);
          throw error;
        } finally {
          record(`${name}: ${title}`, (performance.now() - start) / 1000);
          await wb.closeQuickInput().catch(() => undefined);
        }
      });
    },
  };
}
