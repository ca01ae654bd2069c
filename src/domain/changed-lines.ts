/**
 * Which lines of the base tree a patch changes, per file: what the oracle's
 * tracing narrows a changed Python file to (only code whose lines meet a
 * changed range counts; see the runner's `trace`). Pure, no I/O.
 */
import { parsePatchFiles } from './oracle-patch.js';

/** [first, last] base-tree lines (1-based, inclusive), merged and sorted. */
export type LineRanges = Array<[number, number]>;

/**
 * Per base-tree path: the lines the patch removes or replaces, and for a pure
 * insertion the base lines on either side of it. A new file (no base side) is
 * left out; a file whose hunks cannot be read maps to null (the whole file).
 */
export function baseLineRanges(patch: string): Record<string, LineRanges | null> {
  const out: Record<string, LineRanges | null> = {};
  for (const f of parsePatchFiles(patch)) {
    if (f.oldPath === null) continue;
    const marks: number[] = [];
    let line = 0;
    let inHunk = false;
    let readable = true;
    let replacing = false;
    for (const raw of f.text.split('\n')) {
      const m = /^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@/.exec(raw);
      if (m) {
        inHunk = true;
        replacing = false;
        // `-s,0` (nothing removed) names the line after which the insertion goes.
        line = Number(m[2] === '0' ? Number(m[1]) + 1 : m[1]);
        continue;
      }
      if (!inHunk) continue;
      if (raw.startsWith('-')) {
        marks.push(line++);
        replacing = true;
      } else if (raw.startsWith('+')) {
        // Lines added in place of removed ones are covered by those; a pure insertion marks its neighbours.
        if (!replacing) marks.push(Math.max(1, line - 1), line);
      } else if (raw.startsWith(' ') || raw === '') {
        line++;
        replacing = false;
      }
      else if (raw.startsWith('\\')) continue;
      else if (raw.startsWith('diff ')) break;
      else readable = false;
    }
    const path = f.oldPath;
    if (!readable) {
      out[path] = null;
      continue;
    }
    if (!marks.length) continue; // a mode change or a rename without edits
    const sorted = [...new Set(marks)].sort((a, b) => a - b);
    const ranges: LineRanges = [];
    for (const n of sorted) {
      const last = ranges[ranges.length - 1];
      if (last && n <= last[1] + 1) last[1] = Math.max(last[1], n);
      else ranges.push([n, n]);
    }
    out[path] = ranges;
  }
  return out;
}
