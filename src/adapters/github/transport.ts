import type { Octokit } from '@octokit/core';
import { isNetworkError } from '../service-health.js';

/** GitHub did not answer one HTTP request within the timeout. */
export class GitHubTimeoutError extends Error {
  constructor(readonly what: string, readonly timeoutMs: number) {
    super(`GitHub did not answer ${what} within ${timeoutMs} ms`);
    this.name = 'GitHubTimeoutError';
  }
}

/** A request that got no HTTP answer at all: connection refused, name not resolved, connection dropped. */
export class GitHubConnectionError extends Error {
  readonly reason: string;
  constructor(readonly what: string, cause: unknown) {
    const reason = networkReason(cause);
    super(`no answer from GitHub for ${what}: ${reason}`, { cause });
    this.reason = reason;
    this.name = 'GitHubConnectionError';
  }
}

/**
 * An octokit plugin that gives each HTTP attempt (retries included) the
 * caller's AbortSignal plus a timeout of its own. Registered before the
 * throttling and retry plugins, it wraps the single attempt.
 *
 * A failure without an HTTP answer leaves as a plain error rather than
 * octokit's RequestError, because the retry plugin retries every RequestError
 * with status 500, which is what octokit makes of an abort with a custom reason,
 * of a timeout and of a refused connection: a cancelled call would run on for
 * tens of seconds, and a dead endpoint would be retried in place instead of
 * being reported to ServiceHealth and the bus at once.
 */
export function transportPlugin(timeoutMs: number) {
  return (octokit: Octokit): Record<string, never> => {
    // The caller's own signal, per request: on a retry, options.request.signal is already ours.
    const callerSignals = new WeakMap<object, AbortSignal | undefined>();
    octokit.hook.wrap('request', async (request, options) => {
      if (!callerSignals.has(options)) callerSignals.set(options, options.request?.signal as AbortSignal | undefined);
      const caller = callerSignals.get(options);
      const timer = AbortSignal.timeout(timeoutMs);
      const signal = caller ? AbortSignal.any([caller, timer]) : timer;
      // Every hook layer is bound to this same options object (before-after-hook ignores the
      // argument passed down), so the signal is set on it rather than on a copy.
      options.request = { ...options.request, signal };
      try {
        return await request(options);
      } catch (err) {
        if (err && typeof err === 'object' && 'response' in err && (err as { response?: unknown }).response) throw err; // GitHub answered
        const what = `${options.method} ${routeOf(String(options.url))}`;
        if (caller?.aborted) throw caller.reason;
        if (timer.aborted) throw new GitHubTimeoutError(what, timeoutMs);
        if (isNetworkError(err) || isFetchFailure(err)) throw new GitHubConnectionError(what, err);
        throw err;
      }
    });
    return {};
  };
}

/** The path of a request URL or route template ("/repos/{owner}/{repo}"), without host or query. */
export function routeOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url, 'http://github.invalid').pathname);
  } catch {
    return url.split('?')[0];
  }
}

/** undici reports an unreachable host as TypeError('fetch failed') with the reason in `cause`. */
function isFetchFailure(err: unknown): boolean {
  for (let e: any = err, depth = 0; e && depth < 6; e = e.cause, depth++) {
    if (e instanceof TypeError && /fetch failed/i.test(e.message)) return true;
  }
  return false;
}

/** The innermost cause's code or message ("ECONNREFUSED", "getaddrinfo ENOTFOUND api.example"). */
export function networkReason(err: unknown): string {
  let reason = err instanceof Error ? err.message : String(err);
  for (let e: any = err, depth = 0; e && depth < 6; e = e.cause, depth++) {
    if (typeof e.code === 'string') reason = e.code;
    else if (e instanceof Error && e.message) reason = e.message;
  }
  return reason;
}

/** Codes of a connection that was never made: nothing at that address, or no such name. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** Whether a connection failure means the endpoint cannot be reached (rather than one connection dropping). */
export function isUnreachable(err: unknown): boolean {
  for (let e: any = err, depth = 0; e && depth < 6; e = e.cause, depth++) {
    if (typeof e.code === 'string' && UNREACHABLE_CODES.has(e.code)) return true;
    if (e.name === 'ConnectTimeoutError') return true;
  }
  return false;
}
