/**
 * The Python version a commit is resolved for: the newest minor released on
 * or before the commit date, within the settings' floor and ceiling, narrowed
 * by the first rung of the ladder that says anything: requires-python, then
 * the trove classifiers, then asv's `pythons`, then the date alone.
 */
import { satisfies, validRange } from '@renovatebot/pep440';

/** First release (x.y.0) of each CPython minor. */
export const PYTHON_RELEASES: Readonly<Record<string, string>> = {
  '3.6': '2016-12-23', '3.7': '2018-06-27', '3.8': '2019-10-14', '3.9': '2020-10-05', '3.10': '2021-10-04',
  '3.11': '2022-10-24', '3.12': '2023-10-02', '3.13': '2024-10-07', '3.14': '2025-10-07',
};

export type PythonRung = 'requires-python' | 'classifiers' | 'asv-pythons' | 'date';

export type PythonChoice =
  | { ok: true; version: string; rung: PythonRung }
  | { ok: false; reason: string };

export interface PythonHints {
  requiresPython: string | null;
  classifiers: readonly string[];
  asvPythons: readonly string[];
}

const minorKey = (v: string) => v.split('.').map(Number);
const cmpMinor = (a: string, b: string) => minorKey(a)[0] - minorKey(b)[0] || minorKey(a)[1] - minorKey(b)[1];

/** The minors known here between floor and ceiling, oldest first. */
export function pythonRange(floor: string, ceiling: string): string[] {
  return Object.keys(PYTHON_RELEASES).filter((v) => cmpMinor(v, floor) >= 0 && cmpMinor(v, ceiling) <= 0).sort(cmpMinor);
}

/**
 * Newest of `candidates` released on or before `date`; when none was
 * released yet (a commit older than the floor), the oldest candidate.
 */
function newestBy(candidates: readonly string[], date: Date): string {
  const day = date.toISOString().slice(0, 10);
  const released = candidates.filter((v) => PYTHON_RELEASES[v] <= day);
  return released.length ? released[released.length - 1] : candidates[0];
}

/** `3.10` from a classifier `Programming Language :: Python :: 3.10` (not `:: 3` or `:: 3 :: Only`). */
export function classifierMinors(classifiers: readonly string[]): string[] {
  const out: string[] = [];
  for (const c of classifiers) {
    const m = /^Programming Language :: Python :: (\d+\.\d+)\s*$/.exec(c.trim());
    if (m && !out.includes(m[1])) out.push(m[1]);
  }
  return out;
}

/** asv's pythons ("3.9", 3.1 as a JSON number means 3.1, "3.10.4") as minors. */
export function asvMinors(pythons: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of pythons) {
    const m = /^(\d+\.\d+)/.exec(p.trim());
    if (m && !out.includes(m[1])) out.push(m[1]);
  }
  return out;
}

export function choosePython(hints: PythonHints, commitDate: Date, floor: string, ceiling: string): PythonChoice {
  const range = pythonRange(floor, ceiling);
  if (range.length === 0) return { ok: false, reason: `no Python minor known between ${floor} and ${ceiling}` };
  const rp = hints.requiresPython?.trim();
  if (rp && validRange(rp)) {
    // As pip checks it for `--python-version X.Y`: the bare minor against the specifier.
    const allowed = range.filter((v) => satisfies(v, rp));
    if (allowed.length === 0) return { ok: false, reason: `requires-python ${JSON.stringify(rp)} allows no Python in ${floor}..${ceiling}` };
    return { ok: true, version: newestBy(allowed, commitDate), rung: 'requires-python' };
  }
  const fromClassifiers = classifierMinors(hints.classifiers).filter((v) => range.includes(v)).sort(cmpMinor);
  if (fromClassifiers.length) return { ok: true, version: newestBy(fromClassifiers, commitDate), rung: 'classifiers' };
  const fromAsv = asvMinors(hints.asvPythons).filter((v) => range.includes(v)).sort(cmpMinor);
  if (fromAsv.length) return { ok: true, version: newestBy(fromAsv, commitDate), rung: 'asv-pythons' };
  return { ok: true, version: newestBy(range, commitDate), rung: 'date' };
}
