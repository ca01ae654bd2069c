/**
 * The build cascade's order and choices, free of I/O:
 *
 *   CHECK_CACHE  a verified environment of the same repository and commit (and
 *                the same Python and pins): reused, nothing built;
 *   SIMILAR      the verified scripts of the nearest PRs of the repository by
 *                merge date (distinct scripts, nearest first);
 *   DEFAULT      the template script, unless the repository's last few default
 *                attempts all failed;
 *   LLM          a bounded number of scripts written by the LLM, each from the
 *                previous attempt's script and the tail of its log;
 *   FAIL         build_reason says why.
 *
 * A script already tried for the PR is never built twice. Some failures are
 * not a script's to fix and end the cascade at once: no interpreter, pins that
 * do not install, a checkout that fails, a cheat, and verification failures
 * no build can change (no benchmark suite, a patch that does not apply, a
 * secret found).
 */
import { scriptHash } from './build-script.js';

export type BuildStrategy = 'cache' | 'similar' | 'default' | 'llm';
export const CASCADE: readonly BuildStrategy[] = ['cache', 'similar', 'default', 'llm'];

export type AttemptOutcome =
  | 'verified'             // built (or reused) and every check passed: this is the environment
  | 'build_failed'         // the install or the script failed, or timed out
  | 'verification_failed'  // built, but a check failed
  | 'cheat'                // the LLM's script was refused before it ran
  | 'duplicate'            // the LLM answered a script already tried: not built again
  | 'llm_failed';          // the LLM gave no valid answer

/** Where a build failed: the first three are no script's fault. */
export type FailedStep = 'interpreter' | 'dependencies' | 'checkout' | 'script' | 'timeout';

export interface ScriptSource {
  pullRequestId: number;
  mergedAt: Date | null;
  script: string;
}

/**
 * The `limit` nearest distinct scripts by merge date (a PR without a date
 * comes last), leaving out scripts whose hash is in `exclude`. Ties: the
 * later PR first (its script is the more recent knowledge of the build).
 */
export function nearestScripts(target: Date | null, candidates: readonly ScriptSource[], limit: number, exclude: ReadonlySet<string> = new Set()): ScriptSource[] {
  const t = target?.getTime() ?? null;
  const distance = (c: ScriptSource) => (t === null || c.mergedAt === null ? Number.POSITIVE_INFINITY : Math.abs(c.mergedAt.getTime() - t));
  const sorted = [...candidates].sort((a, b) => distance(a) - distance(b)
    || (b.mergedAt?.getTime() ?? 0) - (a.mergedAt?.getTime() ?? 0) || b.pullRequestId - a.pullRequestId);
  const seen = new Set(exclude);
  const out: ScriptSource[] = [];
  for (const c of sorted) {
    const h = scriptHash(c.script);
    if (seen.has(h)) continue;
    seen.add(h);
    out.push(c);
    if (out.length >= limit) break;
  }
  return out;
}

/** DEFAULT is skipped for a repository whose `maxFailures` most recent default attempts all failed (newest first). */
export function skipDefault(recentDefaultSucceeded: readonly boolean[], maxFailures: number): boolean {
  return maxFailures > 0 && recentDefaultSucceeded.length >= maxFailures && recentDefaultSucceeded.slice(0, maxFailures).every((ok) => !ok);
}

/** A build failure no other script can fix: the cascade ends there. */
export function buildFailureEndsCascade(step: FailedStep | null | undefined): boolean {
  return step === 'interpreter' || step === 'dependencies' || step === 'checkout';
}

/** The failed step of a build result that does not say it (an executor may only give a reason). */
export function failedStepOf(reason: string | null, declared?: FailedStep | null): FailedStep {
  if (declared) return declared;
  const r = (reason ?? '').toLowerCase();
  if (r.startsWith('no interpreter')) return 'interpreter';
  if (r.startsWith('installing dependencies')) return 'dependencies';
  if (r.startsWith('checkout')) return 'checkout';
  if (/timed out|time limit/.test(r)) return 'timeout';
  return 'script';
}

export interface AttemptSummary {
  strategy: BuildStrategy;
  outcome: AttemptOutcome;
  reason: string | null;
}

/** build_reason of a PR the cascade gave up on: what ended it, then every attempt in one line each. */
export function failReason(attempts: readonly AttemptSummary[], ended: string | null): string {
  const lines = attempts.map((a, i) => `${i + 1}. ${a.strategy}: ${a.outcome}${a.reason ? ` (${a.reason.replace(/\s+/g, ' ').slice(0, 200)})` : ''}`);
  const head = ended ?? (attempts.length ? `no attempt gave a verified environment (${attempts.length} attempt${attempts.length === 1 ? '' : 's'})` : 'nothing to try');
  return [head, ...lines].join('\n').slice(0, 4000);
}

/** The merge-date window whose PRs move to the front of the queue after a success. */
export function neighbourWindow(mergedAt: Date, days: number): { from: Date; to: Date } {
  const span = days * 86_400_000;
  return { from: new Date(mergedAt.getTime() - span), to: new Date(mergedAt.getTime() + span) };
}
