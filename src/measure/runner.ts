import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

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
  mode?: 'auto' | 'runner' | 'asv';
  launchMethod?: 'auto' | 'forkserver' | 'spawn';
  build?: 'auto' | 'never' | 'always';
  signal?: AbortSignal;
  onProgress?: (line: string) => void;
}

/** Runs `perfmine_asv_runner.py measure` and returns its JSON (progress lines go to onProgress). */
export function runRunner(o: RunnerOptions): Promise<RunnerOutput> {
  const args = [RUNNER_PATH, 'measure', '--base', o.base, '--head', o.head];
  const opt = (flag: string, v: unknown) => { if (v !== undefined && v !== null) args.push(flag, String(v)); };
  opt('--config', o.config);
  opt('--bench', o.bench);
  opt('--rounds', o.rounds);
  opt('--samples-per-round', o.samplesPerRound);
  opt('--sample-time', o.sampleTime);
  opt('--warmup-time', o.warmupTime);
  opt('--timeout', o.timeoutS);
  opt('--mode', o.mode);
  opt('--launch-method', o.launchMethod);
  opt('--build', o.build);
  return new Promise((resolve, reject) => {
    const child = spawn(o.python, args, { stdio: ['ignore', 'pipe', 'pipe'], signal: o.signal });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d: Buffer) => {
      err += d;
      if (o.onProgress) for (const line of String(d).split('\n')) if (line.trim()) o.onProgress(line);
    });
    child.on('error', (e) => reject(new Error(`could not run ${o.python}: ${e.message}`)));
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out) as RunnerOutput);
      } catch {
        reject(new Error(`benchmark runner failed (exit ${code}): ${err.trim().split('\n').slice(-5).join(' | ') || 'no output'}`));
      }
    });
  });
}
