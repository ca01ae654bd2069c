/**
 * Which publishing failures are the service's (ServiceDownError: the stage's
 * breaker opens and the PR waits, its attempt uncounted) and which are this
 * change's own (an ordinary error: retried with backoff, then failed). Down:
 * no connection, a dropped one, no answer in time, 5xx, 429, and a refused
 * credential (401/403), which no retry of the row can fix either.
 */
import { ServiceDownError } from '../../bus/stage.js';

export const HUB_GROUP = 'hub';
export const REGISTRY_GROUP = 'registry';

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);

/** The error code of a network failure, looking through fetch's `cause` chain. */
export function networkCode(err: unknown): string | null {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return e.code;
  }
  return null;
}

/**
 * Classifies an error of the hub client. `timedOut`: our own time limit
 * fired (not the attempt's signal, which is rethrown as it is).
 */
export function hubFailure(err: unknown, o: { timedOut: boolean; timeoutS: number; where: string }): Error {
  const e = err as Error & { statusCode?: number };
  if (o.timedOut) return new ServiceDownError(HUB_GROUP, `${o.where}: no answer within ${o.timeoutS} s`);
  const status = typeof e.statusCode === 'number' ? e.statusCode : null;
  const text = (e.message ?? String(err)).slice(0, 500);
  if (status === 401 || status === 403) return new ServiceDownError(HUB_GROUP, `${o.where} refused the token (HTTP ${status}): ${text}`);
  if (status !== null && (status >= 500 || status === 429)) return new ServiceDownError(HUB_GROUP, `${o.where} answered HTTP ${status}: ${text}`);
  const code = networkCode(err);
  if (code) return new ServiceDownError(HUB_GROUP, `${o.where} cannot be reached (${code})`);
  if (e instanceof TypeError && /fetch failed/i.test(text)) return new ServiceDownError(HUB_GROUP, `${o.where} cannot be reached: ${text}`);
  return new Error(`${o.where}: ${text}`);
}

/** Messages of the engine's push that mean the registry (or the path to it) is down, or refused the credential. */
const REGISTRY_DOWN = /connection refused|no such host|i\/o timeout|timeout exceeded|TLS handshake timeout|connection reset|EOF\b|server misbehaving|network is unreachable|\b50[0234]\b|Service Unavailable|Bad Gateway|unauthorized|authentication required|denied|too many requests|\b429\b/i;

export function registryFailure(message: string, where: string): Error {
  const text = message.slice(0, 500);
  return REGISTRY_DOWN.test(text) ? new ServiceDownError(REGISTRY_GROUP, `${where}: ${text}`) : new Error(`${where}: ${text}`);
}
