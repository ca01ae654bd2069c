import { reportServiceOk } from '../bus/attempt-scope.js';
import { ServiceDownError } from '../bus/stage.js';

/**
 * Tells a service-wide failure from a row's own. Some errors condemn the
 * service at once (a rejected credential, a refused connection); transient
 * ones (5xx, timeouts) do only when they come in a run with no success in
 * between, so one request that fails for its own reasons (a diff too large
 * to render) still counts against its row, while a storm pauses the group.
 */
export class ServiceHealth {
  private transientRun = 0;

  constructor(readonly group: string, private stormThreshold = 3) {}

  /** A request succeeded: the storm, if any, is over. */
  ok(): void {
    this.transientRun = 0;
    reportServiceOk(this.group);
  }

  /**
   * Classifies a failed request. Returns a ServiceDownError to throw instead
   * of `err`, or `err` itself when the failure belongs to the row.
   */
  failed(err: unknown, kind: 'fatal' | 'transient' | 'row', what: string): unknown {
    if (kind === 'row') {
      this.transientRun = 0;
      return err;
    }
    if (kind === 'fatal') return new ServiceDownError(this.group, what);
    this.transientRun++;
    return this.transientRun >= this.stormThreshold
      ? new ServiceDownError(this.group, `${what} (${this.transientRun} failures in a row)`)
      : err;
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'EPIPE', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT',
]);

/** Whether an error (or its cause chain) is a connection that never got an answer. */
export function isNetworkError(err: unknown): boolean {
  for (let e: any = err, depth = 0; e && depth < 6; e = e.cause, depth++) {
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true;
    if (e.name === 'ConnectTimeoutError' || e.name === 'HeadersTimeoutError') return true;
  }
  return false;
}
