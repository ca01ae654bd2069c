/**
 * Verification of a built environment, through Executor.exec (so it is the
 * same for every executor): the probe (perfmine_probe.py, stdlib only) runs
 * with the environment's interpreter in the checkout and reports facts; the
 * verdict is src/domain/build-verification.ts's. The environment verified is
 * the one stage 7 runs in: nothing is rebuilt after this.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../../config.js';
import { TOKEN_SHAPE_SOURCES } from '../../../domain/anonymize.js';
import type { BuildLayout } from '../../../domain/build-layout.js';
import {
  judgeVerification, unverifiable, type ProbeFacts, type Verification,
} from '../../../domain/build-verification.js';
import { RUNNER_PATH } from '../../../measure/runner.js';
import type { EnvironmentRef, Executor } from '../executor.js';

export const PROBE_PATH = fileURLToPath(new URL('../../../../src/adapters/executors/verification/perfmine_probe.py', import.meta.url));

/** Variable names that must not be set inside an environment (a value is a credential). */
const SECRET_VARIABLE_NAMES = ['TOKEN', 'SECRET', 'PASSW', 'CREDENTIAL', 'API_?KEY', 'ACCESS_?KEY', '^DATABASE_URL$', '^NETRC$'];
/** Shorter "secrets" (a demo's placeholder token) are words, not credentials: searching for them would find them everywhere. */
const MIN_SECRET_LENGTH = 8;
const CREDENTIAL_NAME = /TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY/i;

export interface SecretFingerprint { length: number; sha256: string }

/**
 * The values of the secrets perfmine holds (its credentials and the database
 * URL and password, plus any secret-named variable of its environment), as
 * (byte length, sha256): the probe finds them without ever being told them.
 */
export function secretFingerprints(config: Config, env: NodeJS.ProcessEnv = process.env): SecretFingerprint[] {
  return configuredSecrets(config, env).map((v) => ({ length: Buffer.byteLength(v), sha256: createHash('sha256').update(v).digest('hex') }));
}

/** The secret values themselves (for checks inside perfmine, such as what stage 8 publishes); never log them. */
export function configuredSecrets(config: Config, env: NodeJS.ProcessEnv = process.env): string[] {
  const values = new Set<string>();
  const add = (v: string | undefined | null) => { if (v && Buffer.byteLength(v) >= MIN_SECRET_LENGTH) values.add(v); };
  add(config.GITHUB_TOKEN);
  for (const t of config.GITHUB_TOKENS ?? []) add(t);
  add(config.OPENAI_API_KEY);
  add(config.PERFMINE_HF_TOKEN);
  add(config.PERFMINE_PUBLISH_REGISTRY_PASSWORD);
  for (const url of [config.DATABASE_URL, env.DATABASE_URL]) {
    if (!url) continue;
    add(url);
    try {
      add(decodeURIComponent(new URL(url).password));
    } catch { /* not a URL */ }
  }
  // Credential-named variables only: PGUSER or PGHOST values are words found everywhere, not secrets.
  for (const [name, value] of Object.entries(env)) if (CREDENTIAL_NAME.test(name)) add(value);
  return [...values];
}

export interface VerifyOptions {
  env: EnvironmentRef;
  baseSha: string;
  layout: BuildLayout;
  /** The patch the oracle applies (benchmark suite and asv config set aside); null: the PR has none. */
  patch: { kept: string } | null;
  secrets: SecretFingerprint[];
  timeoutMs: number;
  signal: AbortSignal;
}

export interface VerifyResult {
  verification: Verification;
  facts: ProbeFacts | null;
  durationMs: number;
}

let scripts: { probe: string; runner: string } | null = null;

export async function verifyEnvironment(executor: Executor, o: VerifyOptions): Promise<VerifyResult> {
  scripts ??= { probe: readFileSync(PROBE_PATH, 'utf8'), runner: readFileSync(RUNNER_PATH, 'utf8') };
  const budgetS = Math.max(30, Math.floor(o.timeoutMs / 1000));
  const request = {
    base_sha: o.baseSha,
    asv_config: o.layout.asvConfigPath,
    runner: 'perfmine_asv_runner.py',
    patch_file: o.patch?.kept ? 'oracle.patch' : null,
    token_patterns: TOKEN_SHAPE_SOURCES,
    secret_name_patterns: SECRET_VARIABLE_NAMES,
    secret_fingerprints: o.secrets,
    timeouts: { import: Math.min(120, budgetS), discover: Math.min(300, budgetS), tests: Math.min(300, budgetS) },
    scan: { max_file_bytes: 8 * 1024 * 1024, max_total_bytes: 1024 * 1024 * 1024 },
  };
  const files: Record<string, string> = {
    'perfmine_probe.py': scripts.probe,
    'perfmine_asv_runner.py': scripts.runner,
    'request.json': JSON.stringify(request),
  };
  if (o.patch?.kept) files['oracle.patch'] = o.patch.kept;
  const started = performance.now();
  // argv is not a shell: the probe finds its files through $PERFMINE_SCRATCH.
  const launcher = 'import os, runpy, sys; d = os.environ["PERFMINE_SCRATCH"]; '
    + 'sys.argv = [os.path.join(d, "perfmine_probe.py"), os.path.join(d, "request.json")]; runpy.run_path(sys.argv[0], run_name="__main__")';
  const r = await executor.exec(o.env, [o.env.python, '-c', launcher], {
    files, timeoutMs: o.timeoutMs, signal: o.signal, maxOutputBytes: 16 * 1024 * 1024,
  });
  const durationMs = Math.round(performance.now() - started);
  if (r.aborted) throw o.signal.reason instanceof Error ? o.signal.reason : new Error('verification aborted');
  if (r.timedOut) return { verification: unverifiable(`the checks took longer than ${Math.round(o.timeoutMs / 1000)} s`), facts: null, durationMs };
  let facts: ProbeFacts;
  try {
    facts = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as ProbeFacts;
  } catch {
    const why = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ') || `exit ${r.code}`;
    return { verification: unverifiable(`the probe failed (exit ${r.code}): ${why.slice(0, 500)}`), facts: null, durationMs };
  }
  const verification = judgeVerification(facts, { baseSha: o.baseSha, layout: o.layout, patchEmpty: o.patch !== null && !o.patch.kept });
  return { verification, facts, durationMs };
}
