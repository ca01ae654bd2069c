/**
 * Fault injection of the GitHub stand-in: the queue of injected faults, which
 * request each one hits, and what the stand-in does instead of its usual
 * answer (an error reply, a shortened page, or a request held unanswered).
 */
import type { ServerResponse } from 'node:http';
import type { Fault, FaultKind, FaultStats } from './types.js';

export const FAULT_KINDS: readonly FaultKind[] = [
  'secondary-403',
  'secondary-429',
  'primary-403',
  'http-500',
  'http-502',
  'http-503',
  'http-504',
  'graphql-rate-limited',
  'truncate',
  'timeout',
];

const DOCS = 'https://docs.github.com/rest';
export const PRIMARY_LIMIT_MESSAGE = 'API rate limit exceeded for user ID 1.';
const SECONDARY_LIMIT_BODY = {
  message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
  documentation_url:
    'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
};
/** What GitHub's front end says for each 5xx. */
const SERVER_ERROR_MESSAGES: Record<number, string> = {
  500: 'Server Error',
  502: 'Server Error',
  503: 'Service Unavailable',
  504: 'We couldn\'t respond to your request in time. Sorry about that. Please try resubmitting your request and contact us if the problem persists.',
};

/** The parts of a routed request that decide which faults hit it. */
export interface FaultTarget {
  category: 'graphql' | 'search' | 'rest';
  /** The route's stats key, e.g. `rest:issues/comments`. */
  key?: string;
  /** A list page that a `truncate` fault can shorten. */
  truncatable?: boolean;
}

/** An error answer in place of the real one. */
export interface FaultReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** A fault with its defaults filled in. */
export interface ArmedFault {
  kind: FaultKind;
  times: number;
  /** Epoch ms until which the fault hits every matching request; null = counted by `times`. */
  until: number | null;
  retryAfterSeconds: number;
  match: 'graphql' | 'rest' | 'search' | 'any';
  route: string | null;
  drop: number;
  delayMs: number | null;
  after: 'answer' | 'reset';
}

interface QueuedFault {
  fault: ArmedFault;
  left: number;
}

/**
 * The faults waiting to hit requests, in injection order. A request takes
 * the first fault that applies to it: one use of a counted fault, or a
 * time-span fault while its span lasts.
 */
export class FaultQueue {
  private queue: QueuedFault[] = [];
  private hits: Partial<Record<FaultKind, number>> = {};
  /** Ends every request a `timeout` fault is holding (clear() and close()). */
  private holds = new AbortController();

  inject(fault: Fault): void {
    if (!FAULT_KINDS.includes(fault?.kind)) throw new Error(`unknown fault kind ${JSON.stringify(fault?.kind)}`);
    if (fault.durationMs !== undefined && !(fault.durationMs > 0)) throw new Error('fault durationMs must be > 0');
    if (fault.delayMs !== undefined && !(fault.delayMs >= 0)) throw new Error('fault delayMs must be >= 0');
    if (fault.after !== undefined && fault.after !== 'answer' && fault.after !== 'reset') {
      throw new Error(`fault after must be "answer" or "reset", got ${JSON.stringify(fault.after)}`);
    }
    const armed: ArmedFault = {
      kind: fault.kind,
      times: Math.max(1, fault.times ?? 1),
      until: fault.durationMs !== undefined ? Date.now() + fault.durationMs : null,
      retryAfterSeconds: fault.retryAfterSeconds ?? 1,
      match: fault.match ?? 'any',
      route: fault.route ?? null,
      drop: fault.drop ?? 1,
      delayMs: fault.delayMs ?? null,
      after: fault.after ?? 'answer',
    };
    this.queue.push({ fault: armed, left: armed.times });
  }

  get length(): number {
    return this.queue.length;
  }

  /** Consumes one use of the first queued fault that applies to this request. */
  take(target: FaultTarget): ArmedFault | undefined {
    const now = Date.now();
    // Spans that have ended are gone, whether or not anything hit them.
    this.queue = this.queue.filter(({ fault }) => fault.until === null || fault.until > now);
    const i = this.queue.findIndex(({ fault }) => applies(fault, target));
    if (i < 0) return undefined;
    const queued = this.queue[i];
    if (queued.fault.until === null && --queued.left <= 0) this.queue.splice(i, 1);
    this.hits[queued.fault.kind] = (this.hits[queued.fault.kind] ?? 0) + 1;
    return queued.fault;
  }

  /** Drops every queued fault and the connections `timeout` faults are holding. */
  clear(): void {
    this.queue = [];
    this.holds.abort();
    this.holds = new AbortController();
  }

  /** Requests hit so far, by kind. */
  hitsByKind(): FaultStats['byKind'] {
    return { ...this.hits };
  }

  /**
   * A `timeout` fault: holds the request for its delay (forever without one).
   * True when the stand-in should then answer as usual; false when the
   * connection was dropped (`after: 'reset'`, clear(), close()) or the
   * client gave up first.
   */
  async hold(fault: ArmedFault, res: ServerResponse): Promise<boolean> {
    const released = this.holds.signal;
    const outcome = await new Promise<'elapsed' | 'client-gone' | 'released'>((resolve) => {
      const timer = fault.delayMs !== null ? setTimeout(() => done('elapsed'), fault.delayMs) : undefined;
      const onClose = () => done('client-gone');
      const onRelease = () => done('released');
      function done(why: 'elapsed' | 'client-gone' | 'released') {
        clearTimeout(timer);
        res.off('close', onClose);
        released.removeEventListener('abort', onRelease);
        resolve(why);
      }
      res.once('close', onClose);
      if (released.aborted) done('released');
      else released.addEventListener('abort', onRelease, { once: true });
    });
    if (outcome === 'elapsed' && fault.after === 'answer' && !res.destroyed) return true;
    // No answer at all: the socket goes away as when a proxy gives up on the backend.
    res.destroy();
    return false;
  }
}

function applies(fault: ArmedFault, target: FaultTarget): boolean {
  if (fault.match !== 'any' && fault.match !== target.category) return false;
  if (fault.route !== null && !(target.key ?? '').startsWith(fault.route)) return false;
  // These two only make sense for some requests; others pass them by.
  if (fault.kind === 'truncate') return target.truncatable === true;
  if (fault.kind === 'graphql-rate-limited') return target.category === 'graphql';
  return true;
}

/** Whether the fault is answered with an error reply (rather than shortening or holding the request). */
export function isReplyFault(fault: ArmedFault): boolean {
  return fault.kind !== 'truncate' && fault.kind !== 'timeout';
}

export function faultReply(fault: ArmedFault): FaultReply {
  const wait = fault.retryAfterSeconds;
  const drained = (): Record<string, string> => ({
    'x-ratelimit-remaining': '0',
    'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + wait),
  });
  switch (fault.kind) {
    case 'secondary-403':
    case 'secondary-429':
      return {
        status: fault.kind === 'secondary-403' ? 403 : 429,
        body: SECONDARY_LIMIT_BODY,
        headers: { 'retry-after': String(wait) },
      };
    case 'primary-403':
      return {
        status: 403,
        body: { message: PRIMARY_LIMIT_MESSAGE, documentation_url: `${DOCS}/overview/rate-limits-for-the-rest-api` },
        headers: drained(),
      };
    case 'http-500':
    case 'http-502':
    case 'http-503':
    case 'http-504': {
      const status = Number(fault.kind.slice(5));
      return { status, body: { message: SERVER_ERROR_MESSAGES[status] } };
    }
    case 'graphql-rate-limited':
      return {
        status: 200,
        body: { data: null, errors: [{ type: 'RATE_LIMITED', message: PRIMARY_LIMIT_MESSAGE }] },
        headers: drained(),
      };
    default:
      throw new Error(`fault ${fault.kind} is not a reply`);
  }
}
