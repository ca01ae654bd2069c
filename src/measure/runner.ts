import { fileURLToPath } from 'node:url';
import { childEnv } from '../adapters/process/child-env.js';
import { abortError, MAX_TIMER_MS, runProcess } from '../adapters/process/run-process.js';

/** The Python runner, shipped with the package and run with the target environment's interpreter. */
export const RUNNER_PATH = fileURLToPath(new URL('../../src/measure/runner/perfmine_asv_runner.py', import.meta.url));

/** The runner's path on this host (to copy it or mount it where `run` runs commands). */
export const hostRunnerPath = (): string => RUNNER_PATH;

/**
 * Runs a command where the trees are: on this host, or inside a PR's
 * container. argv[0] is the program; paths are as that place sees them.
 * Aborting `signal` (or `timeoutMs`) must leave no process behind.
 */
export interface RunInEnvironment {
  (argv: string[], opts: { timeoutMs: number; signal?: AbortSignal; stdin?: string }): Promise<{
    code: number | null; stdout: string; stderr: string; timedOut: boolean; aborted: boolean; durationMs: number;
  }>;
}

/** No limit on a runner call unless the caller sets one (setTimeout's own maximum). */
export const NO_LIMIT_MS = MAX_TIMER_MS;

/** `run` on this host: runProcess (allow-listed environment, the whole family killed on abort or timeout). */
export function hostRun(o: { onProgress?: (line: string) => void; cwd?: string } = {}): RunInEnvironment {
  return async (argv, opts) => {
    const r = await runProcess(argv[0], argv.slice(1), {
      env: childEnv(), signal: opts.signal, cwd: o.cwd,
      timeoutMs: opts.timeoutMs >= NO_LIMIT_MS ? undefined : opts.timeoutMs,
      input: opts.stdin,
      // stdout is the whole result (samples of every benchmark); stderr only matters for its tail.
      maxOutputBytes: { stdout: 256 * 1024 * 1024, stderr: 256 * 1024 },
      onLine: o.onProgress && ((line, stream) => { if (stream === 'stderr' && line.trim()) o.onProgress!(line); }),
    });
    return { code: r.code, stdout: r.stdoutTail, stderr: r.stderrTail, timedOut: r.timedOut, aborted: r.aborted, durationMs: r.durationMs };
  };
}

export interface SideResult { samples: number[]; error: string | null; number?: number | null; seconds?: number }

/** What calibrating a benchmark found (runner `--calibrate-only`). */
export interface Calibration {
  side: 'base' | 'head';
  number: number;
  /** Seconds of one sample of `number` calls. */
  sample_seconds: number;
  calibration_seconds: number | null;
  warmup_time: number | null;
  /** Wall seconds of the calibration process (start, import, setup, calibration). */
  process_seconds: number;
}

/** Per benchmark id (asv's `name(p1, p2)` form): the number of calls per sample and the rounds. */
export type RunnerPlan = Record<string, { number?: number | null; rounds?: number; samples_per_round?: number }>;

export interface RunnerBenchmark {
  name: string;
  params: string[];
  param_names: string[];
  number: number | null;
  base: SideResult;
  head: SideResult;
  /** A planned benchmark's own rounds and samples per round (else the run's). */
  rounds?: number;
  samples_per_round?: number;
  calibration?: Calibration;
}

export interface RunnerOutput {
  mode: 'runner' | 'asv';
  python: string;
  config: string | null;
  benchmark_dir: string | null;
  rounds: number;
  samples_per_round: number;
  order: string;
  /** forkserver (asv's default on POSIX), spawn, or asv (asv mode). */
  launch_method?: 'forkserver' | 'spawn' | 'asv' | null;
  /** The in-place build run in each tree first (null: none was needed). */
  builds?: Record<'base' | 'head', { command: string; error: string | null } | null>;
  benchmarks: RunnerBenchmark[];
  errors: Array<{ side: string | null; module?: string; error: string }>;
}

export interface RunnerOptions {
  python: string;
  base: string;
  head: string;
  config?: string;
  bench?: string;
  rounds?: number;
  samplesPerRound?: number;
  sampleTime?: number;
  warmupTime?: number;
  timeoutS?: number;
  /** runner (default) or asv: real asv, which needs both trees to be git checkouts. */
  mode?: 'runner' | 'asv';
  launchMethod?: 'auto' | 'forkserver' | 'spawn';
  build?: 'auto' | 'never' | 'always';
  /** Stops the runner and every process it started. */
  signal?: AbortSignal;
  /** Limit on the whole runner call (default: none; benchmarks have their own timeouts). */
  timeoutMs?: number;
  onProgress?: (line: string) => void;
  /** Where the runner runs (default: this host, with `python`). */
  run?: RunInEnvironment;
  /** The runner's path as `run` sees it (default RUNNER_PATH). */
  runnerPath?: string;
  /** --cpu: pin benchmark processes to this CPU (auto, none, or a number). */
  cpu?: string;
  /** Only calibrate: benchmarks come back with `calibration` and no samples. */
  calibrateOnly?: boolean;
  /** Per-benchmark number and rounds; only the benchmarks it names are measured. */
  plan?: RunnerPlan;
}

/**
 * Runs `perfmine_asv_runner.py measure` and returns its JSON (progress lines
 * go to onProgress). The runner runs as a child that leaves nothing behind:
 * allow-listed environment, and on abort (or `timeoutMs`) the runner, its
 * fork server and every benchmark process are killed.
 */
export async function runRunner(o: RunnerOptions): Promise<RunnerOutput> {
  const args = [o.runnerPath ?? RUNNER_PATH, 'measure', '--base', o.base, '--head', o.head];
  const opt = (flag: string, v: unknown) => { if (v !== undefined && v !== null) args.push(flag, String(v)); };
  opt('--config', o.config);
  opt('--bench', o.bench);
  opt('--rounds', o.rounds);
  opt('--samples-per-round', o.samplesPerRound);
  opt('--sample-time', o.sampleTime);
  opt('--warmup-time', o.warmupTime);
  opt('--timeout', o.timeoutS);
  opt('--mode', o.mode ?? 'runner');
  opt('--launch-method', o.launchMethod);
  opt('--build', o.build);
  opt('--cpu', o.cpu);
  if (o.calibrateOnly) args.push('--calibrate-only');
  if (o.plan) args.push('--plan', '-');
  const run = o.run ?? hostRun({ onProgress: o.onProgress });
  return parseRunnerJson<RunnerOutput>(
    await run([o.python, ...args], { timeoutMs: o.timeoutMs ?? NO_LIMIT_MS, signal: o.signal, stdin: o.plan ? JSON.stringify(o.plan) : undefined }),
    o,
  );
}

/** The runner's JSON from a `run` result, or an error that says why there is none. */
export function parseRunnerJson<T>(r: Awaited<ReturnType<RunInEnvironment>>, o: { signal?: AbortSignal; timeoutMs?: number }): T {
  if (r.aborted) throw abortError(o.signal);
  if (r.timedOut) throw new Error(`benchmark runner stopped after its time limit of ${Math.round((o.timeoutMs ?? 0) / 1000)} s`);
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    const how = r.code !== null ? `exit ${r.code}` : 'killed by a signal';
    throw new Error(`benchmark runner failed (${how}): ${r.stderr.trim().split('\n').slice(-5).join(' | ') || 'no output'}`);
  }
}
