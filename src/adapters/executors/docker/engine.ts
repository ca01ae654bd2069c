/**
 * The Docker engine connection: dockerode against DOCKER_HOST (or the default
 * socket), whether an engine answers at all, image look-ups, and the names
 * of the containers perfmine starts.
 *
 * Containers are named `perfmine-<job>-<host>-<pid>-<random>` rather than
 * labelled, because a build container's labels would be committed into the
 * image it makes; the name says which process owns it, so a container whose
 * owner died (SIGKILL, a crash) is found and removed by reapOrphanContainers.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import Docker from 'dockerode';

export type EngineStatus = { ok: true; version: string; apiVersion: string } | { ok: false; reason: string };

/** dockerode reads DOCKER_HOST (unix://, tcp://, ssh://) itself; unset means /var/run/docker.sock. */
export function connectEngine(): Docker {
  return new Docker();
}

/** Where the engine is, as people write it (for messages). */
export function engineAddress(): string {
  return process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/** Whether an engine answers within `timeoutMs`, and its version; else why not, in words. */
export async function engineStatus(docker: Docker, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<EngineStatus> {
  const timeout = AbortSignal.timeout(o.timeoutMs ?? 5000);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  try {
    const v = await withSignal(docker.version(), signal) as { Version: string; ApiVersion: string };
    return { ok: true, version: v.Version, apiVersion: v.ApiVersion };
  } catch (err) {
    if (o.signal?.aborted) throw err;
    const e = err as NodeJS.ErrnoException;
    const why = timeout.aborted ? `no answer within ${Math.round((o.timeoutMs ?? 5000) / 1000)} s`
      : e.code === 'ENOENT' ? 'no socket there (is dockerd running?)'
        : e.code === 'EACCES' ? 'permission denied on the socket'
          : e.code === 'ECONNREFUSED' ? 'connection refused (is dockerd running?)'
            : e.message;
    return { ok: false, reason: `no Docker engine answers at ${engineAddress()}: ${why}` };
  }
}

export interface ImageSummary {
  /** sha256:... */
  id: string;
  labels: Record<string, string>;
  size: number;
  created: string;
  tags: string[];
  parent: string;
}

/** The image a reference (name:tag or id) names, or null when the engine has none. */
export async function findImage(docker: Docker, ref: string): Promise<ImageSummary | null> {
  try {
    const info = await docker.getImage(ref).inspect();
    return {
      id: info.Id, labels: info.Config?.Labels ?? {}, size: info.Size, created: info.Created,
      tags: info.RepoTags ?? [], parent: info.Parent ?? '',
    };
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

/** Removes a container and whatever still runs in it; a container that is already gone is fine. */
export async function removeContainer(docker: Docker, id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true, v: true });
  } catch (err) {
    const code = (err as { statusCode?: number }).statusCode;
    // 404: gone; 409: removal already in progress (it will be gone).
    if (code !== 404 && code !== 409) throw err;
  }
}

const NAME_PREFIX = 'perfmine-';

function hostPart(): string {
  return os.hostname().toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 20) || 'host';
}

/** A fresh container name for `job` (build, exec, layer, probe) owned by this process. */
export function containerName(job: string): string {
  return `${NAME_PREFIX}${job}-${hostPart()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Names of the containers this process owns now match this prefix (for tests and diagnostics). */
export function ownNamePattern(job?: string): RegExp {
  return new RegExp(`^/?${NAME_PREFIX}${job ?? '[a-z]+'}-${hostPart()}-${process.pid}-[0-9a-f]{8}$`);
}

/**
 * Removes containers that a perfmine process on this host started and that
 * outlived it (it was killed before it could remove them). Returns their names.
 */
export async function reapOrphanContainers(docker: Docker): Promise<string[]> {
  const all = await docker.listContainers({ all: true, filters: JSON.stringify({ name: [NAME_PREFIX] }) });
  const pattern = new RegExp(`^/?${NAME_PREFIX}[a-z]+-${hostPart()}-(\\d+)-[0-9a-f]{8}$`);
  const reaped: string[] = [];
  for (const c of all) {
    const name = c.Names.find((n) => pattern.test(n));
    if (!name) continue;
    const pid = Number(pattern.exec(name)![1]);
    if (pid === process.pid || processAlive(pid)) continue;
    await removeContainer(docker, c.Id);
    reaped.push(name.replace(/^\//, ''));
  }
  return reaped;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Rejects with the signal's reason when it aborts first (dockerode calls have no signal of their own everywhere). */
export function withSignal<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new DOMException('aborted', 'AbortError'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then((v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e); });
  });
}
