import { isNetworkError } from '../adapters/service-health.js';

/**
 * SQLSTATE classes of failures that say nothing about the statement itself:
 * connection exceptions (08), transaction rollbacks such as serialization
 * failures and deadlocks (40), insufficient resources (53), operator
 * intervention such as a server shutdown or a statement timeout (57),
 * system errors (58).
 */
const TRANSIENT_CLASSES = new Set(['08', '40', '53', '57', '58']);

/** node-postgres reports a lost or refused connection without a SQLSTATE. */
const CONNECTION_MESSAGE = /connection terminated|connection ended|timeout exceeded when trying to connect|client has encountered a connection error|terminating connection|server closed the connection|not queryable|Connection refused|cannot use a pool after calling end/i;

/** A database failure that may well succeed if tried again (the statement is fine, the server or the link was not). */
export function isTransientDbError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return TRANSIENT_CLASSES.has(code.slice(0, 2)) || code === '55P03';
  if (isNetworkError(err)) return true;
  return CONNECTION_MESSAGE.test(String((err as Error | null)?.message ?? ''));
}

/** A lost connection (as opposed to a statement the server refused to run). */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code.startsWith('08') || code.startsWith('57P');
  return isNetworkError(err) || CONNECTION_MESSAGE.test(String((err as Error | null)?.message ?? ''));
}
