import { fileURLToPath } from 'node:url';
import { childEnv } from '../adapters/process/child-env.js';
import { abortError, runProcess } from '../adapters/process/run-process.js';

/** The Python runner, shipped with the package and run with the target environment's interpreter. */
export const RUNNER_PATH = fileURLToPath(new URL('../../src/measure/runner/perfmine_asv_runner.py', import.meta.url));

export interface SideResult { samples: number[]; error: string | null; number?: number | null }

export interface RunnerBenchmark {
  name: string;
  params: string[];
  param_names: string[];
  number: number | null;
  base: SideResult;
  head: SideResult;
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
}

/**
 * Runs `perfmine_asv_runner.py measure` and returns its JSON (progress lines
 * go to onProgress). The runner runs as a child that leaves nothing behind:
 * allow-listed environment, and on abort (or `timeoutMs`) the runner, its
 * fork server and every benchmark process are killed.
 */
export async function runRunner(o: RunnerOptions): Promise<RunnerOutput> {
  const args = [RUNNER_PATH, 'measure', '--base', o.base, '--head', o.head];
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
  const r = await runProcess(o.python, args, {
    env: childEnv(), signal: o.signal, timeoutMs: o.timeoutMs,
    // stdout is the whole result (samples of every benchmark); stderr only matters for its tail.
    maxOutputBytes: { stdout: 256 * 1024 * 1024, stderr: 256 * 1024 },
    onLine: o.onProgress && ((line, stream) => { if (stream === 'stderr' && line.trim()) o.onProgress!(line); }),
  });
  if (r.aborted) throw abortError(o.signal);
  if (r.timedOut) throw new Error(`benchmark runner stopped after its time limit of ${Math.round(o.timeoutMs! / 1000)} s`);
  try {
    return JSON.parse(r.stdoutTail) as RunnerOutput;
  } catch {
    const how = r.code !== null ? `exit ${r.code}` : `killed by ${r.signal}`;
    throw new Error(`benchmark runner failed (${how}): ${r.stderrTail.trim().split('\n').slice(-5).join(' | ') || 'no output'}`);
  }
}
