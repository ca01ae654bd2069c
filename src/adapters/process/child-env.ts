/**
 * The environment of every child process perfmine starts (git, the Python
 * runner, builds, benchmark code from pull requests): built from an allow-list,
 * never a copy of ours, so no GitHub token, LLM key or database URL can reach
 * code we do not trust.
 */

/** Variables a child may inherit from us: how to find programs, where home and temp are, how to format text. */
const INHERITED = [
  'PATH',
  'HOME',
  // Who we are: getpass.getuser(), git's ident fallback and ssh read these; they name a user, nothing more.
  'USER',
  'LOGNAME',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'TERM',
  // Honoured by many tools to turn colour off in captured output; carries no data.
  'NO_COLOR',
] as const;

/** Locale categories (LC_ALL, LC_CTYPE, ...) are inherited too. */
const INHERITED_PREFIX = 'LC_';

/**
 * Names that look like credentials or name where credentials live. A match is
 * dropped even when passed as an extra, unless the caller allows it by name.
 */
const SECRET_NAME = /TOKEN|KEY|SECRET|PASSW|CREDENTIAL|COOKIE|AUTH(?!OR)/i;
const SECRET_EXACT = new Set(['DATABASE_URL', 'PGPASSFILE', 'PGSERVICEFILE', 'NETRC', 'SSH_AUTH_SOCK']);
const SECRET_PREFIXES = ['PG', 'GITHUB_', 'GH_', 'OPENAI_', 'AWS_', 'HF_', 'PERFMINE_DATABASE'];

/**
 * Git variables that point git at another repository, index or object store.
 * A leftover GIT_DIR in our environment would make `git -C tree ...` act on
 * the wrong repository (git hooks export them), so extras cannot carry them.
 */
const GIT_LOCATION = new Set([
  'GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_COMMON_DIR', 'GIT_NAMESPACE', 'GIT_CEILING_DIRECTORIES', 'GIT_DISCOVERY_ACROSS_FILESYSTEM',
  'GIT_CONFIG', 'GIT_CONFIG_PARAMETERS', 'GIT_CONFIG_COUNT', 'GIT_PREFIX', 'GIT_QUARANTINE_PATH',
]);

/** Whether a variable name is one a child must not get unless explicitly allowed. */
export function isSecretName(name: string): boolean {
  const upper = name.toUpperCase();
  return SECRET_NAME.test(upper) || SECRET_EXACT.has(upper) || SECRET_PREFIXES.some((p) => upper.startsWith(p));
}

export interface ChildEnvOptions {
  /** Extras that would otherwise be dropped (a secret-looking or git-location name), by exact name. */
  allow?: readonly string[];
  /** Where inherited values come from (default: process.env). */
  from?: NodeJS.ProcessEnv;
}

/**
 * The allow-listed environment plus `extra`. Extras with a secret-looking or
 * git-location name are dropped unless named in `opts.allow`; an extra set to
 * undefined removes an inherited variable.
 */
export function childEnv(extra: Record<string, string | undefined> = {}, opts: ChildEnvOptions = {}): NodeJS.ProcessEnv {
  const from = opts.from ?? process.env;
  const allowed = new Set(opts.allow ?? []);
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(from)) {
    if (value === undefined) continue;
    if ((INHERITED as readonly string[]).includes(name) || name.startsWith(INHERITED_PREFIX)) env[name] = value;
  }
  for (const [name, value] of Object.entries(extra)) {
    if (!allowed.has(name) && (isSecretName(name) || GIT_LOCATION.has(name.toUpperCase()))) continue;
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

/** The environment for git: allow-listed, never prompting for credentials. */
export function gitEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return childEnv({ GIT_TERMINAL_PROMPT: '0', ...extra });
}
