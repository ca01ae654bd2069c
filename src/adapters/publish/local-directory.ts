/**
 * The local directory target (the default): files under PERFMINE_PUBLISH_DIR
 * (default PERFMINE_DATA_DIR/published), each written to a temporary file
 * beside it and renamed into place, so a reader never sees half a file and a
 * failure leaves the previous version.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DatasetChange, DatasetTarget, TargetReceipt } from './target.js';

export class LocalDirectoryTarget implements DatasetTarget {
  readonly name = 'local';

  constructor(readonly location: string) {}

  async write(change: DatasetChange, signal: AbortSignal): Promise<TargetReceipt> {
    for (const file of change.files) {
      signal.throwIfAborted();
      const target = this.resolve(file.path);
      await mkdir(path.dirname(target), { recursive: true });
      const temporary = `${target}.tmp-${randomBytes(4).toString('hex')}`;
      try {
        await writeFile(temporary, file.bytes, { flush: true });
        await rename(temporary, target);
      } catch (err) {
        await rm(temporary, { force: true });
        throw err;
      }
    }
    for (const p of change.deletes) await rm(this.resolve(p), { force: true });
    return { target: this.name, location: this.location, revision: null };
  }

  /** A dataset path inside the directory (never outside it). */
  private resolve(relative: string): string {
    const parts = relative.split('/');
    if (path.isAbsolute(relative) || parts.some((p) => p === '..' || p === '')) throw new Error(`not a dataset path: ${relative}`);
    return path.join(this.location, ...parts);
  }
}
