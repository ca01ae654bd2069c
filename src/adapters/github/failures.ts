import { GitHubConnectionError, GitHubTimeoutError, isUnreachable } from './transport.js';

/** Whose fault a failed GitHub request is (see ServiceHealth): the whole service's, maybe the service's, or the row's. */
export type FailureKind = 'fatal' | 'transient' | 'row';

const RATE_LIMIT_TEXT = /rate limit|abuse detection/i;

/**
 * Classifies a GitHub failure that is not a rate limit the client already
 * handled. Fatal: the credential is refused (401, or a 403 that is not a rate
 * limit: the token lacks access, "Resource not accessible by integration") or
 * the endpoint cannot be reached. Transient: 5xx after octokit's retries, a
 * timeout, a dropped connection. Everything else (404, 410, 422, GraphQL
 * errors about the query...) belongs to the row.
 */
export function classifyGitHubFailure(err: unknown): FailureKind {
  if (err instanceof GitHubTimeoutError) return 'transient';
  if (err instanceof GitHubConnectionError) return isUnreachable(err) ? 'fatal' : 'transient';
  const status = httpStatus(err);
  if (status === 401) return 'fatal';
  if (status === 403 || status === 429) return isRateLimit(err) ? 'transient' : status === 403 ? 'fatal' : 'transient';
  if (status !== undefined && status >= 500) return 'transient';
  return 'row';
}

/** A short, token-free account of a failure for errors and logs: status, GitHub's message, the request. */
export function describeGitHubFailure(err: unknown, what: string): string {
  const status = httpStatus(err);
  const message = firstLine(err instanceof Error ? err.message : String(err)).slice(0, 300);
  if (err instanceof GitHubTimeoutError) return `GitHub did not answer ${what} within ${err.timeoutMs} ms`;
  if (err instanceof GitHubConnectionError) return `no answer from GitHub for ${what}: ${err.reason}`;
  if (status === 401) return `GitHub rejected the credentials (401 ${message}) on ${what}`;
  if (status === 403 && !isRateLimit(err)) return `GitHub refused access (403 ${message}) on ${what}; check the token's permissions`;
  return status !== undefined ? `GitHub answered ${status} (${message}) on ${what}` : `${message} (${what})`;
}

export function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('status' in err)) return undefined;
  const n = Number((err as { status: unknown }).status);
  return Number.isFinite(n) ? n : undefined;
}

function isRateLimit(err: unknown): boolean {
  const e = err as { message?: unknown; response?: { headers?: Record<string, unknown> } };
  return e.response?.headers?.['x-ratelimit-remaining'] === '0' || e.response?.headers?.['retry-after'] !== undefined
    || RATE_LIMIT_TEXT.test(String(e.message ?? ''));
}

function firstLine(s: string): string {
  return s.split('\n')[0].trim();
}
