/**
 * Fault injection of the LLM stand-in: the queue of per-request faults (429s,
 * 5xx, bad answers, slowness), their error replies, and total outages (the
 * port refuses connections, or every request gets a 503) for a time span.
 */

export type LlmFaultKind =
  | 'rate-limit-429'
  | 'quota-429'
  | 'malformed'
  | 'invalid-label'
  | 'slow'
  | 'server-500'
  | 'server-502'
  | 'server-503';

export interface LlmFault {
  kind: LlmFaultKind;
  /** How many chat completion requests it applies to; default 1. */
  times?: number;
  /** Applies to every chat completion request for this long after it reaches the head of the queue, instead of `times`. */
  durationMs?: number;
  /** `rate-limit-429`: the `retry-after` header; default 1. */
  retryAfterSeconds?: number;
  /** `slow`: how long to wait before answering; default 2000. */
  delayMs?: number;
}

/**
 * `refuse`: the stand-in stops listening (connections are refused, open ones
 * reset) and listens again on the same port when the outage ends.
 * `http-503`: it keeps listening and answers every request with a 503.
 */
export type OutageMode = 'refuse' | 'http-503';

export const FAULT_KINDS: readonly LlmFaultKind[] = [
  'rate-limit-429',
  'quota-429',
  'malformed',
  'invalid-label',
  'slow',
  'server-500',
  'server-502',
  'server-503',
];

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** An armed fault: defaults filled in; `until` is set when a span starts. */
export interface ArmedLlmFault {
  kind: LlmFaultKind;
  times: number;
  durationMs: number | null;
  retryAfterSeconds: number;
  delayMs: number;
}

interface QueuedFault {
  fault: ArmedLlmFault;
  left: number;
  /** Epoch ms when a span fault stops applying (set on first use). */
  until?: number;
}

/** What the server lets the fault module do to it during a `refuse` outage. */
export interface Listening {
  stop(): Promise<void>;
  resume(): Promise<void>;
}

/** OpenAI's error envelope. */
export function errorReply(
  status: number,
  message: string,
  type: string,
  code: string | null = null,
  param: string | null = null,
): Reply {
  return { status, body: { error: { message, type, param, code } } };
}

export class LlmFaults {
  private queue: QueuedFault[] = [];
  /** Requests hit per fault kind; `outage-<mode>`: outages started; `outage-replies`: requests answered 503 by one. */
  private hits: Record<string, number> = {};
  private outageMode: OutageMode | null = null;
  private outageTimer?: NodeJS.Timeout;

  constructor(private listening: Listening) {}

  /** Queues a fault for the next chat completion request(s), after any already queued. */
  inject(fault: LlmFault): void {
    if (!FAULT_KINDS.includes(fault.kind)) throw new Error(`unknown LLM fault kind: ${String(fault.kind)}`);
    const armed: ArmedLlmFault = {
      kind: fault.kind,
      times: fault.times ?? 1,
      durationMs: fault.durationMs ?? null,
      retryAfterSeconds: fault.retryAfterSeconds ?? 1,
      delayMs: fault.delayMs ?? 2000,
    };
    if (!Number.isInteger(armed.times) || armed.times < 1) throw new Error(`fault times must be a positive integer`);
    if (!(armed.retryAfterSeconds >= 0) || !(armed.delayMs >= 0)) throw new Error(`fault durations must be >= 0`);
    if (armed.durationMs !== null && !(armed.durationMs > 0)) throw new Error(`fault durationMs must be > 0`);
    this.queue.push({ fault: armed, left: armed.times });
  }

  /** The head of the fault queue, consuming one of its `times` (a span fault stays until its span ends). */
  take(): ArmedLlmFault | null {
    const now = Date.now();
    while (this.queue.length) {
      const head = this.queue[0];
      if (head.fault.durationMs !== null) {
        head.until ??= now + head.fault.durationMs;
        if (head.until <= now) {
          this.queue.shift();
          continue;
        }
      } else if (--head.left <= 0) {
        this.queue.shift();
      }
      this.count(head.fault.kind);
      return head.fault;
    }
    return null;
  }

  /** Drops every queued fault (an outage in progress goes on until endOutage()). */
  clear(): void {
    this.queue = [];
  }

  /** The outage in progress, if any. */
  get outage(): OutageMode | null {
    return this.outageMode;
  }

  /**
   * Starts a total outage; it ends after `durationMs` (if given) or at
   * endOutage(). Starting one while another runs switches the mode.
   */
  async startOutage(mode: OutageMode, durationMs?: number): Promise<void> {
    if (mode !== 'refuse' && mode !== 'http-503') throw new Error(`unknown outage mode ${JSON.stringify(mode)}`);
    clearTimeout(this.outageTimer);
    const wasRefusing = this.outageMode === 'refuse';
    this.outageMode = mode;
    this.count(`outage-${mode}`);
    if (mode === 'refuse' && !wasRefusing) await this.listening.stop();
    if (mode !== 'refuse' && wasRefusing) await this.listening.resume();
    if (durationMs !== undefined) this.outageTimer = setTimeout(() => void this.endOutage(), durationMs);
  }

  async endOutage(): Promise<void> {
    clearTimeout(this.outageTimer);
    const wasRefusing = this.outageMode === 'refuse';
    this.outageMode = null;
    if (wasRefusing) await this.listening.resume();
  }

  /** Stops the outage timer without listening again (the stand-in is closing). */
  dispose(): void {
    clearTimeout(this.outageTimer);
    this.outageMode = null;
    this.queue = [];
  }

  hitsByKind(): Record<string, number> {
    return { ...this.hits };
  }

  /** Counts a request answered by an `http-503` outage. */
  countOutageReply(): void {
    this.count('outage-replies');
  }

  private count(kind: string): void {
    this.hits[kind] = (this.hits[kind] ?? 0) + 1;
  }
}

/** The answer to every request during an `http-503` outage. */
export function outageReply(): Reply {
  return errorReply(503, 'The engine is currently overloaded, please try again later', 'server_error', 'service_unavailable');
}

/** The error reply of a fault that answers with one, or null (malformed, invalid-label and slow answer the request). */
export function faultReply(fault: ArmedLlmFault): Reply | null {
  switch (fault.kind) {
    case 'rate-limit-429': {
      const reply = errorReply(429, 'Rate limit reached for requests', 'requests', 'rate_limit_exceeded');
      const seconds = fault.retryAfterSeconds;
      reply.headers = {
        'retry-after': String(Math.ceil(seconds)),
        'retry-after-ms': String(Math.round(seconds * 1000)),
        'x-ratelimit-remaining-requests': '0',
      };
      return reply;
    }
    case 'quota-429':
      return errorReply(
        429,
        'You exceeded your current quota, please check your plan and billing details.',
        'insufficient_quota',
        'insufficient_quota',
      );
    case 'server-500':
      return errorReply(500, 'The server had an error while processing your request.', 'server_error');
    case 'server-502':
      return errorReply(502, 'Bad gateway.', 'server_error');
    case 'server-503':
      return errorReply(503, 'The engine is currently overloaded, please try again later', 'server_error');
    default:
      return null;
  }
}
