/**
 * The resolver the stage uses, chosen once: `uv pip compile` when uv is on
 * PATH (or PERFMINE_RESOLVER=uv), else pip's resolver behind the cutoff proxy.
 */
import { childEnv } from '../process/child-env.js';
import { findExecutable } from '../process/run-process.js';
import { CutoffProxy } from './cutoff-proxy.js';
import { PipResolver, UvResolver, type PythonResolver } from './resolver.js';

export { INDEX_GROUP, type PythonResolver, type ResolveRequest, type ResolveResult, type Pin } from './resolver.js';

export interface ResolverSettings {
  kind: 'auto' | 'pip' | 'uv';
  /** The uv executable (a name looked up on the children's PATH, or a path). */
  uv: string;
  /** The interpreter whose pip resolves, and which reads setup.py. */
  python: string;
  indexUrl: string;
  timeoutMs: number;
  indexTimeoutMs: number;
  /** pip's download cache; null: none. */
  cacheDir: string | null;
}

/** A resolver made on first use (the proxy starts then), the same one after. */
export function lazyResolver(settings: ResolverSettings): () => Promise<PythonResolver> {
  let made: Promise<PythonResolver> | null = null;
  return () => {
    made ??= createResolver(settings);
    made.catch(() => { made = null; });
    return made;
  };
}

export async function createResolver(s: ResolverSettings): Promise<PythonResolver> {
  const uv = s.kind === 'pip' ? null : findExecutable(s.uv, childEnv().PATH);
  if (s.kind === 'uv' && !uv) throw new Error(`PERFMINE_RESOLVER=uv, but ${s.uv} is not on PATH`);
  if (uv) return new UvResolver({ uv, indexUrl: s.indexUrl, timeoutMs: s.timeoutMs });
  const proxy = await CutoffProxy.start({ upstream: s.indexUrl, timeoutMs: s.indexTimeoutMs });
  return new PipResolver({ python: s.python, indexUrl: s.indexUrl, timeoutMs: s.timeoutMs, proxy, cacheDir: s.cacheDir });
}

