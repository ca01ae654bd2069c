import { MAX_TIMER_MS } from '../process/run-process.js';
import type { SessionOptions } from './executor.js';

/**
 * Ends a session (calls `end`) at its deadline or when its owner's signal
 * aborts, whichever comes first; a signal already aborted ends it as soon as
 * the constructor that asked has returned. `release()` unhooks both, for the
 * session's close().
 */
export function sessionLifetime(o: Pick<SessionOptions, 'timeoutMs' | 'signal'>, end: () => void): { release(): void } {
  const timer = setTimeout(end, Math.min(o.timeoutMs, MAX_TIMER_MS));
  timer.unref();
  o.signal?.addEventListener('abort', end, { once: true });
  if (o.signal?.aborted) queueMicrotask(end);
  return {
    release() {
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', end);
    },
  };
}
