/**
 * Fault injection of the index stand-in: 5xx answers, requests held without
 * an answer (a timeout), and connections reset, for N requests or a time span,
 * on the simple pages, the files, or both.
 */
import type { ServerResponse } from 'node:http';

export type IndexFaultKind = 'http-500' | 'http-502' | 'http-503' | 'timeout' | 'reset';
export const INDEX_FAULT_KINDS: readonly IndexFaultKind[] = ['http-500', 'http-502', 'http-503', 'timeout', 'reset'];

export interface IndexFault {
  kind: IndexFaultKind;
  /** How many matching requests it hits (default 1). */
  times?: number;
  /** Hits every matching request for this long instead of `times`. */
  durationMs?: number;
  /** Which requests: the simple API pages, the files, or any (default). */
  match?: 'simple' | 'files' | 'any';
  /** `timeout`: answer normally after this long (default: never; the socket is dropped on clear/close). */
  delayMs?: number;
}

interface Queued { fault: IndexFault; left: number; until: number | null }

export class IndexFaults {
  private queue: Queued[] = [];
  private hits: Partial<Record<IndexFaultKind, number>> = {};
  private holds = new AbortController();

  inject(fault: IndexFault): void {
    if (!INDEX_FAULT_KINDS.includes(fault?.kind)) throw new Error(`unknown fault kind ${JSON.stringify(fault?.kind)}`);
    if (fault.durationMs !== undefined && !(fault.durationMs > 0)) throw new Error('fault durationMs must be > 0');
    this.queue.push({ fault, left: Math.max(1, fault.times ?? 1), until: fault.durationMs !== undefined ? Date.now() + fault.durationMs : null });
  }

  /** One use of the first fault that applies to a request of this category. */
  take(category: 'simple' | 'files' | 'other'): IndexFault | undefined {
    const now = Date.now();
    this.queue = this.queue.filter((q) => q.until === null || q.until > now);
    const i = this.queue.findIndex((q) => (q.fault.match ?? 'any') === 'any' || q.fault.match === category);
    if (i < 0) return undefined;
    const q = this.queue[i];
    if (q.until === null && --q.left <= 0) this.queue.splice(i, 1);
    this.hits[q.fault.kind] = (this.hits[q.fault.kind] ?? 0) + 1;
    return q.fault;
  }

  /**
   * Applies a fault to the response. True when the request should then be
   * answered as usual (a `timeout` with a delay that elapsed).
   */
  async apply(fault: IndexFault, res: ServerResponse): Promise<boolean> {
    if (fault.kind === 'reset') {
      res.destroy();
      return false;
    }
    if (fault.kind === 'timeout') {
      const released = this.holds.signal;
      const elapsed = await new Promise<boolean>((resolve) => {
        const timer = fault.delayMs !== undefined ? setTimeout(() => done(true), fault.delayMs) : undefined;
        const onGone = () => done(false);
        function done(v: boolean) {
          clearTimeout(timer);
          res.off('close', onGone);
          released.removeEventListener('abort', onGone);
          resolve(v);
        }
        res.once('close', onGone);
        if (released.aborted) done(false);
        else released.addEventListener('abort', onGone, { once: true });
      });
      if (elapsed && !res.destroyed) return true;
      res.destroy();
      return false;
    }
    const status = Number(fault.kind.slice(5));
    res.writeHead(status, { 'content-type': 'text/plain' }).end(`${status} injected by the index stand-in\n`);
    return false;
  }

  clear(): void {
    this.queue = [];
    this.holds.abort();
    this.holds = new AbortController();
  }

  hitsByKind(): Partial<Record<IndexFaultKind, number>> {
    return { ...this.hits };
  }
}
