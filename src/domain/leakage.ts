/**
 * The leakage check: a problem statement must not hand over the solution.
 * The solution is what the patch adds to the library's own code (tests,
 * benchmarks and docs aside) that was not there before: runs of 6 code tokens
 * of added lines that occur in no removed or context line. The score is the
 * overlap coefficient of those runs with the problem's own runs,
 * |shared| / min(|solution|, |problem|): 1 when the whole (small) solution is
 * quoted, or when the problem is nothing but solution code.
 */
import { isNonCorePath } from './symbolic.js';

export const SHINGLE_TOKENS = 6;

export interface LeakageResult {
  /** 0..1; above the threshold the problem is rejected. */
  score: number;
  /** Distinct solution runs, problem runs, and runs in both. */
  solution_runs: number;
  problem_runs: number;
  shared_runs: number;
  /** Added lines the problem quotes (the first few), to show a reader why it was rejected. */
  quoted_lines: string[];
}

/** Identifiers, numbers, and each other non-space character. */
export function codeTokens(text: string): string[] {
  return text.match(/[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|[^\sA-Za-z0-9_]/g) ?? [];
}

function shingles(tokens: string[], into: Set<string>): void {
  for (let i = 0; i + SHINGLE_TOKENS <= tokens.length; i++) into.add(tokens.slice(i, i + SHINGLE_TOKENS).join('\u0001'));
}

interface PatchText {
  /** Runs of consecutive added lines (per hunk), of core files only. */
  added: string[][];
  /** Removed and context lines of core files. */
  before: string[];
}

/** The added-line runs and the old lines of a unified diff, per file, without the non-core files. */
export function readPatch(patch: string): PatchText {
  const added: string[][] = [];
  const before: string[] = [];
  let core = true;
  let run: string[] = [];
  const endRun = () => {
    if (run.length) added.push(run);
    run = [];
  };
  for (const line of patch.split('\n')) {
    if (line.startsWith('diff --git ')) {
      endRun();
      const m = / b\/(.+)$/.exec(line);
      core = m ? !isNonCorePath(m[1]) : true;
      continue;
    }
    if (line.startsWith('+++ ') || line.startsWith('--- ') || line.startsWith('@@') || line.startsWith('\\')) {
      endRun();
      continue;
    }
    if (!core) continue;
    if (line.startsWith('+')) run.push(line.slice(1));
    else {
      endRun();
      if (line.startsWith('-') || line.startsWith(' ')) before.push(line.slice(1));
    }
  }
  endRun();
  return { added, before };
}

/** How much of the patch's new code a problem text reproduces (see the module comment). */
export function measureLeakage(problem: string, patch: string | null): LeakageResult {
  const { added, before } = readPatch(patch ?? '');
  const old = new Set<string>();
  for (const line of before) shingles(codeTokens(line), old);
  const solution = new Set<string>();
  for (const run of added) {
    const s = new Set<string>();
    shingles(codeTokens(run.join('\n')), s);
    for (const x of s) if (!old.has(x)) solution.add(x);
  }
  const problemRuns = new Set<string>();
  shingles(codeTokens(problem), problemRuns);
  let shared = 0;
  for (const x of problemRuns) if (solution.has(x)) shared++;
  const denominator = Math.min(solution.size, problemRuns.size);
  const quoted: string[] = [];
  if (shared) {
    for (const line of added.flat()) {
      const own = new Set<string>();
      shingles(codeTokens(line), own);
      if ([...own].some((x) => solution.has(x) && problemRuns.has(x))) quoted.push(line.trim());
      if (quoted.length >= 5) break;
    }
  }
  return {
    score: denominator ? Math.round((shared / denominator) * 1000) / 1000 : 0,
    solution_runs: solution.size, problem_runs: problemRuns.size, shared_runs: shared, quoted_lines: quoted,
  };
}
