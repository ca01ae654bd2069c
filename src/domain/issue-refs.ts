import { mapProse, proseOnly } from './markdown.js';

/** An issue (or pull request: GitHub numbers both alike) of some repository. */
export interface IssueRef {
  owner: string;
  name: string;
  number: number;
}

/** How a reference was written: a full URL, `owner/repo#N`, or `#N` (this repository). */
export type RefForm = 'url' | 'owner/repo#N' | '#N';

export interface FoundRef extends IssueRef {
  form: RefForm;
  /** Written as a `/pull/N` URL: known to be a pull request without asking GitHub. */
  pullUrl: boolean;
}

// Owner: letters, digits, hyphens; repository: also dots and underscores (GitHub's rules).
const OWNER = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})';
const REPO = '[A-Za-z0-9._-]{1,100}';
const URL_REF = new RegExp(`https?://(?:www\\.)?github\\.com/(${OWNER})/(${REPO})/(issues|pull|pulls)/(\\d{1,9})\\b`, 'g');
// Not inside a path or a longer word: `a/b/c#1`, `x.y/z#2` and `foo#3` are no references.
const CROSS_REF = new RegExp(`(?<![\\w/.#-])(${OWNER})/(${REPO})#(\\d{1,9})\\b`, 'g');
// Not `&#123;` (an HTML entity), `abc#1`, `/#1` or `##1`.
const SHORT_REF = /(?<![\w/&#])#(\d{1,9})\b/g;

export const refKey = (r: IssueRef): string => `${r.owner.toLowerCase()}/${r.name.toLowerCase()}#${r.number}`;
export const refLabel = (r: IssueRef): string => `${r.owner}/${r.name}#${r.number}`;

/**
 * The issue references in a text, in order of appearance, each once. Code
 * (fenced blocks, inline spans) is ignored: `#1` there is a comment or an
 * index, not a link. `here` is the repository a bare `#N` belongs to.
 */
export function findIssueRefs(text: string | null | undefined, here: { owner: string; name: string }): FoundRef[] {
  if (!text) return [];
  const found: Array<FoundRef & { at: number }> = [];
  let prose = proseOnly(text);
  prose = prose.replace(URL_REF, (whole, owner: string, name: string, kind: string, n: string, at: number) => {
    found.push({ owner, name: stripGitSuffix(name), number: Number(n), form: 'url', pullUrl: kind !== 'issues', at });
    return ' '.repeat(whole.length); // the URL's own text must not match again as `owner/repo#N`
  });
  prose = prose.replace(CROSS_REF, (whole, owner: string, name: string, n: string, at: number) => {
    found.push({ owner, name: stripGitSuffix(name), number: Number(n), form: 'owner/repo#N', pullUrl: false, at });
    return ' '.repeat(whole.length);
  });
  for (const m of prose.matchAll(SHORT_REF)) {
    found.push({ owner: here.owner, name: here.name, number: Number(m[1]), form: '#N', pullUrl: false, at: m.index! });
  }
  found.sort((a, b) => a.at - b.at);
  const seen = new Set<string>();
  const out: FoundRef[] = [];
  for (const { at: _at, ...ref } of found) {
    if (ref.number <= 0) continue;
    const key = refKey(ref);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(ref);
  }
  return out;
}

function stripGitSuffix(name: string): string {
  return name.endsWith('.git') ? name.slice(0, -4) : name;
}

/**
 * The text with every issue or PR reference in prose replaced by `[link]`: in
 * a problem statement a number leads only to the discussion of the fix (and
 * means nothing offline). Code is left as it is.
 */
export function maskIssueRefs(text: string): string {
  return mapProse(text, (prose) => prose.replace(URL_REF, '[link]').replace(CROSS_REF, '[link]').replace(SHORT_REF, '[link]'));
}
