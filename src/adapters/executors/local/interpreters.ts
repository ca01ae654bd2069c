/**
 * Python interpreters on this machine, by minor version, from a list of
 * places to look (PERFMINE_PYTHON_PATHS): patterns where `{v}` is the minor
 * version (3.11), `~` and `$VAR` expand, and `*` matches within one path
 * segment. The first that runs, reports that minor version and has venv and
 * ensurepip wins. Nothing found is an answer with the places looked in.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { childEnv } from '../../process/child-env.js';
import { runProcess } from '../../process/run-process.js';

export const DEFAULT_PYTHON_PATHS = [
  '/usr/bin/python{v}',
  '/usr/local/bin/python{v}',
  '$PYENV_ROOT/versions/{v}.*/bin/python{v}',
  '~/.pyenv/versions/{v}.*/bin/python{v}',
  '/opt/python/{v}*/bin/python{v}',
];

export interface Interpreter {
  /** As found (what environments are made with). */
  path: string;
  realPath: string;
  /** The full version, e.g. 3.11.2. */
  version: string;
}

export type InterpreterLookup = { found: Interpreter; looked: string[] } | { found: null; looked: string[]; rejected: string[] };

/** `pattern` with {v}, ~ and $VAR expanded (an unset variable leaves the pattern out). */
export function expandPattern(pattern: string, minor: string, env: NodeJS.ProcessEnv = process.env): string | null {
  let unset = false;
  let p = pattern.replaceAll('{v}', minor).replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => {
    const value = env[name];
    if (!value) unset = true;
    return value ?? '';
  });
  if (unset) return null;
  if (p === '~' || p.startsWith('~/')) p = path.join(env.HOME || os.homedir(), p.slice(1));
  return p;
}

/** Files matching a pattern with `*` inside segments (no `**`), sorted newest version first within a segment. */
export function globFiles(pattern: string): string[] {
  const segments = pattern.split('/');
  let bases = [pattern.startsWith('/') ? '/' : '.'];
  for (const [i, seg] of segments.entries()) {
    if (seg === '' && i === 0) continue;
    const last = i === segments.length - 1;
    const next: string[] = [];
    for (const base of bases) {
      if (!seg.includes('*')) {
        next.push(path.join(base, seg));
        continue;
      }
      const re = new RegExp(`^${seg.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
      let names: string[] = [];
      try {
        names = readdirSync(base).filter((n) => re.test(n));
      } catch { /* not a directory */ }
      names.sort((a, b) => b.localeCompare(a, undefined, { numeric: true }));
      next.push(...names.map((n) => path.join(base, n)));
    }
    bases = last ? next : next.filter((d) => isDir(d));
  }
  return bases.filter((f) => isFile(f));
}

const isDir = (p: string) => { try { return statSync(p).isDirectory(); } catch { return false; } };
const isFile = (p: string) => { try { return statSync(p).isFile(); } catch { return false; } };

const PROBE = 'import sys, json, venv, ensurepip; print(json.dumps("%d.%d.%d" % sys.version_info[:3]))';

export class InterpreterFinder {
  private readonly cache = new Map<string, Promise<InterpreterLookup>>();

  constructor(private readonly patterns: readonly string[]) {}

  find(minor: string, signal?: AbortSignal): Promise<InterpreterLookup> {
    if (!/^\d+\.\d+$/.test(minor)) return Promise.resolve({ found: null, looked: [], rejected: [`${JSON.stringify(minor)} is not a Python minor version`] });
    let p = this.cache.get(minor);
    if (!p) {
      p = this.lookup(minor, signal);
      this.cache.set(minor, p);
      // A lookup cut short is not an answer: the next build looks again.
      p.catch(() => this.cache.delete(minor));
    }
    return p;
  }

  private async lookup(minor: string, signal?: AbortSignal): Promise<InterpreterLookup> {
    const looked: string[] = [];
    const rejected: string[] = [];
    const seen = new Set<string>();
    for (const pattern of this.patterns) {
      const expanded = expandPattern(pattern, minor);
      if (!expanded) continue;
      looked.push(expanded);
      for (const file of globFiles(expanded)) {
        let real: string;
        try {
          real = realpathSync(file);
        } catch {
          continue;
        }
        if (seen.has(real)) continue;
        seen.add(real);
        const r = await runProcess(file, ['-c', PROBE], { env: childEnv(), timeoutMs: 30_000, signal, registryDir: null });
        if (r.aborted) throw signal?.reason ?? new Error('aborted');
        let version = '';
        try {
          version = JSON.parse(r.stdoutTail.trim()) as string;
        } catch { /* not a working interpreter with venv */ }
        if (r.code !== 0 || !version) {
          rejected.push(`${file}: ${r.stderrTail.trim().split('\n').at(-1) || `exit ${r.code}`} (an interpreter without venv and ensurepip cannot make environments)`);
        } else if (version.split('.').slice(0, 2).join('.') !== minor) {
          rejected.push(`${file}: is Python ${version}`);
        } else {
          return { found: { path: file, realPath: real, version }, looked };
        }
      }
    }
    return { found: null, looked, rejected };
  }
}
