/**
 * Stage 8's gate, fail-closed: a PR is published only when everything below
 * holds, and each way it can fail is a reason in words. Stage 7 decides per
 * PR (family-wise over its benchmarks); this checks that decision's evidence
 * again rather than trusting the spine column alone: the run exists, belongs
 * to the PR, succeeded with tests not failing, decided `faster`, has
 * benchmarks that passed the PR-level gate with a lower-bound speedup of at
 * least the minimum, ran on an allowed machine and in the environment the PR
 * still names. (The reference publishes on max_speedup over all benchmarks,
 * with no correction and no look at where the run came from.)
 */

export interface RunEvidence {
  id: number;
  pullRequestId: number;
  succeeded: boolean | null;
  decision: string | null;
  reason: string | null;
  testsOk: boolean | null;
  maxSpeedup: number | null;
  maxSpeedupLowerBound: number | null;
  /** The environment the run measured in (container_name and environment_digest at the time), when stage 7 recorded them. */
  containerName: string | null;
  environmentDigest: string | null;
  machine: Record<string, unknown> | null;
  machineFingerprint: string | null;
  finishedAt: Date | null;
}

export interface PassingBenchmark {
  name: string;
  params: unknown;
  speedup: number;
  speedupLowerBound: number | null;
  pValue: number | null;
}

export interface PrEvidence {
  id: number;
  benchmarkDecision: string | null;
  benchmarkRunId: number | null;
  containerName: string | null;
  environmentDigest: string | null;
  executor: string | null;
  mergedAt: Date | null;
  mergeCommitSha: string | null;
  baseSha: string | null;
  renderedProblem: string | null;
  patch: string | null;
}

export interface GateSettings {
  minSpeedup: number;
  /** PERFMINE_PUBLISH_MACHINES: empty = any machine. */
  machines: readonly string[];
}

export type GateVerdict = { ok: true } | { ok: false; reason: string };

/** The names a run's machine answers to: its fingerprint and the name (or host) stage 7 recorded. */
export function machineNames(run: Pick<RunEvidence, 'machine' | 'machineFingerprint'>): string[] {
  const m = run.machine ?? {};
  const names = [run.machineFingerprint, m.fingerprint, m.name, m.host].filter((v): v is string => typeof v === 'string' && v.length > 0);
  return [...new Set(names)];
}

export function machineAllowed(run: Pick<RunEvidence, 'machine' | 'machineFingerprint'>, allowed: readonly string[]): boolean {
  if (!allowed.length) return true;
  const names = machineNames(run);
  return names.some((n) => allowed.includes(n));
}

/** A machine in words, for reasons: "name (fingerprint)". */
export function describeMachine(run: Pick<RunEvidence, 'machine' | 'machineFingerprint'>): string {
  const names = machineNames(run);
  return names.length ? names.join(' / ') : 'an unrecorded machine';
}

const fmt = (x: number) => `${Number(x.toFixed(3))}x`;

export function judgePublication(pr: PrEvidence, run: RunEvidence | null, passing: PassingBenchmark[], s: GateSettings): GateVerdict {
  const no = (reason: string): GateVerdict => ({ ok: false, reason: `not published: ${reason}` });
  if (pr.benchmarkDecision !== 'faster') return no(`stage 7 decided ${pr.benchmarkDecision ?? 'nothing'}, not faster`);
  if (pr.benchmarkRunId === null) return no('no benchmark run is named (benchmark_run_id is NULL): nothing measured, nothing published');
  if (!run) return no(`benchmark run ${pr.benchmarkRunId} does not exist`);
  if (run.pullRequestId !== pr.id) return no(`benchmark run ${run.id} measured another pull request`);
  if (run.succeeded !== true) return no(`benchmark run ${run.id} did not succeed${run.reason ? `: ${run.reason}` : ''}`);
  if (!run.finishedAt) return no(`benchmark run ${run.id} never finished`);
  if (run.testsOk === false) return no(`tests failed in benchmark run ${run.id}`);
  if (run.decision !== 'faster') return no(`benchmark run ${run.id} decided ${run.decision ?? 'nothing'}, not faster`);
  if (!passing.length) return no(`benchmark run ${run.id} has no benchmark that passed the PR-level gate`);
  const bestLower = Math.max(...passing.map((b) => b.speedupLowerBound ?? -Infinity));
  const runLower = run.maxSpeedupLowerBound;
  if (runLower === null || !Number.isFinite(runLower)) return no(`benchmark run ${run.id} has no lower-bound speedup`);
  if (runLower < s.minSpeedup || bestLower < s.minSpeedup) {
    return no(`lower-bound speedup ${fmt(Math.min(runLower, bestLower))} of run ${run.id} is below PERFMINE_MIN_SPEEDUP (${fmt(s.minSpeedup)})`);
  }
  if (run.maxSpeedup === null || !Number.isFinite(run.maxSpeedup)) return no(`benchmark run ${run.id} has no max_speedup`);
  if (!machineAllowed(run, s.machines)) {
    return no(`benchmark run ${run.id} ran on ${describeMachine(run)}, not a machine PERFMINE_PUBLISH_MACHINES allows (${s.machines.join(', ')})`);
  }
  if (!pr.containerName || !pr.environmentDigest || !pr.executor) return no('the PR has no verified environment (container_name, environment_digest, executor)');
  if (run.environmentDigest && run.environmentDigest !== pr.environmentDigest) {
    return no(`the PR's environment changed after benchmark run ${run.id} measured it (${run.environmentDigest} then, ${pr.environmentDigest} now)`);
  }
  if (run.containerName && run.containerName !== pr.containerName) {
    return no(`the PR's environment changed after benchmark run ${run.id} measured it (${run.containerName} then, ${pr.containerName} now)`);
  }
  if (!pr.mergedAt) return no('the PR has no merge date (it names the month file)');
  if (!pr.mergeCommitSha || !pr.baseSha) return no('the PR has no merge or base commit');
  if (!pr.renderedProblem) return no('the PR has no rendered problem');
  if (!pr.patch) return no('the PR has no patch');
  return { ok: true };
}

/** Which configured secret values occur in the texts (by position in `secrets`, never the values). */
export function secretsFoundIn(texts: readonly string[], secrets: readonly string[]): number[] {
  const found: number[] = [];
  secrets.forEach((secret, i) => { if (secret && texts.some((t) => t.includes(secret))) found.push(i); });
  return found;
}
