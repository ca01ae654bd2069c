/**
 * The PR's patch as the oracle applies it: every file of the diff, except the
 * benchmark suite and the asv config, which stay as the base has them (a PR
 * that edits the benchmarks would otherwise time different code on each
 * side). Stage 6 checks that this part applies cleanly to the base tree;
 * stage 7 applies exactly it. File-level cuts of a git diff, so every kept
 * file keeps its headers (modes, renames, binary markers) and hunks intact.
 */

export interface PatchFile {
  /** Path before (null for a new file) and after (null for a deleted file). */
  oldPath: string | null;
  newPath: string | null;
  text: string;
}

export interface SplitPatch {
  /** What the oracle applies (empty string: nothing). */
  kept: string;
  keptFiles: string[];
  /** Files left as the base has them, with why. */
  setAside: string[];
}

/** A git path as written in a diff header: `a/x`, or quoted `"a/x y"` with C escapes. */
function unquote(raw: string): string {
  const s = raw.trim();
  if (!s.startsWith('"')) return s;
  const body = s.slice(1, s.lastIndexOf('"'));
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const next = body[++i];
    if (/[0-7]/.test(next)) {
      bytes.push(parseInt(body.slice(i, i + 3), 8));
      i += 2;
    } else bytes.push(({ n: 10, t: 9, '"': 34, '\\': 92 } as Record<string, number>)[next] ?? next.charCodeAt(0));
  }
  return Buffer.from(bytes).toString('utf8');
}

const stripPrefix = (p: string) => (p === '/dev/null' ? null : p.replace(/^[ab]\//, ''));

/** The files of a unified diff (git's format; plain `---`/`+++` diffs too). */
export function parsePatchFiles(patch: string): PatchFile[] {
  const lines = patch.split(/(?<=\n)/);
  const starts: number[] = [];
  const gitFormat = lines.some((l) => l.startsWith('diff --git '));
  lines.forEach((l, i) => {
    if (gitFormat ? l.startsWith('diff --git ') : (l.startsWith('--- ') && lines[i + 1]?.startsWith('+++ '))) starts.push(i);
  });
  return starts.map((start, k) => {
    const chunk = lines.slice(start, starts[k + 1] ?? lines.length);
    let oldPath: string | null | undefined;
    let newPath: string | null | undefined;
    for (const l of chunk) {
      const line = l.replace(/\r?\n$/, '');
      if (line.startsWith('@@')) break;
      if (line.startsWith('--- ')) oldPath = stripPrefix(unquote(line.slice(4).replace(/\t.*$/, '')));
      else if (line.startsWith('+++ ')) newPath = stripPrefix(unquote(line.slice(4).replace(/\t.*$/, '')));
      else if (line.startsWith('rename from ')) oldPath = unquote(line.slice(12));
      else if (line.startsWith('rename to ')) newPath = unquote(line.slice(10));
      else if (line.startsWith('copy from ')) oldPath = unquote(line.slice(10));
      else if (line.startsWith('copy to ')) newPath = unquote(line.slice(8));
    }
    if ((oldPath === undefined || newPath === undefined) && chunk[0].startsWith('diff --git ')) {
      // No ---/+++ (a mode change, a binary file, an empty new file): the header names both.
      const header = chunk[0].replace(/\r?\n$/, '').slice('diff --git '.length);
      const m = /^("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)$/.exec(header) ?? /^a\/(.*) b\/\1$/.exec(header);
      const [a, b] = m && m.length === 3 ? [unquote(m[1]), unquote(m[2])] : m ? [`a/${m[1]}`, `b/${m[1]}`] : [header, header];
      const isNew = chunk.some((l) => l.startsWith('new file mode'));
      const isDeleted = chunk.some((l) => l.startsWith('deleted file mode'));
      oldPath ??= isNew ? null : stripPrefix(a);
      newPath ??= isDeleted ? null : stripPrefix(b);
    }
    return { oldPath: oldPath ?? null, newPath: newPath ?? null, text: chunk.join('') };
  });
}

/** Splits `patch` into what the oracle applies and the files `setAside(path)` keeps as the base has them. */
export function splitPatch(patch: string, setAside: (path: string) => boolean): SplitPatch {
  const kept: PatchFile[] = [];
  const aside: string[] = [];
  for (const f of parsePatchFiles(patch)) {
    const paths = [f.oldPath, f.newPath].filter((p): p is string => p !== null);
    if (paths.some(setAside)) aside.push(f.newPath ?? f.oldPath ?? '?');
    else kept.push(f);
  }
  let text = kept.map((f) => f.text).join('');
  if (text && !text.endsWith('\n')) text += '\n';
  return { kept: text, keptFiles: kept.map((f) => f.newPath ?? f.oldPath ?? '?'), setAside: aside };
}
