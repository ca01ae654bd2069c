import path from 'node:path';

/**
 * asv.conf.json is JSON with comments (asv strips // comments and allows
 * trailing commas). Returns the parsed object or throws with the reason.
 */
export function parseAsvConfig(text: string): Record<string, unknown> {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      i = text.indexOf('*/', i + 2);
      if (i < 0) break;
      i++;
    } else {
      out += c;
    }
  }
  const parsed = JSON.parse(out.replace(/,(\s*[}\]])/g, '$1'));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
  return parsed as Record<string, unknown>;
}

/**
 * A path taken from a repository's asv.conf.json, resolved against `base` (a
 * directory relative to the repository root) and normalised. The config comes
 * from the repository under test, so the result must stay inside it: an
 * absolute path or a `..` that climbs above the root is refused with an error
 * naming the key. (Symlinks need the files: the runner checks those.)
 */
export function confinedConfigPath(key: string, base: string, value: string): string {
  if (path.posix.isAbsolute(value) || path.win32.isAbsolute(value)) {
    throw new Error(`${key} ${JSON.stringify(value)} in asv.conf.json is an absolute path; it must be relative to the repository`);
  }
  const joined = path.posix.normalize(path.posix.join(base, value.replace(/\\/g, '/')));
  if (joined === '..' || joined.startsWith('../') || path.posix.isAbsolute(joined)) {
    throw new Error(`${key} ${JSON.stringify(value)} in asv.conf.json points outside the repository`);
  }
  return joined === '.' || joined === './' ? '.' : joined.replace(/^\.\//, '').replace(/\/$/, '');
}

/** The benchmark directory, relative to the repository root (asv's default is "benchmarks" beside the config). */
export function benchmarkDir(configPath: string, config: Record<string, unknown>): string {
  const dir = typeof config.benchmark_dir === 'string' && config.benchmark_dir ? config.benchmark_dir : 'benchmarks';
  return confinedConfigPath('benchmark_dir', path.posix.dirname(configPath), dir);
}

/** Where the package lives, relative to the repository root ('' for the root itself). */
export function repoSubdir(config: Record<string, unknown>): string {
  const dir = typeof config.repo_subdir === 'string' && config.repo_subdir ? config.repo_subdir : '.';
  const confined = confinedConfigPath('repo_subdir', '', dir);
  return confined === '.' ? '' : confined;
}
