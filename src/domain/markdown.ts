/**
 * Where the code is in GitHub-flavoured markdown: fenced blocks, inline code
 * spans, `<code>`/`<pre>` elements and pasted interpreter sessions (`>>>`
 * lines). Everything that reads issue text for people (references,
 * anonymization, sentences) must leave code alone, so it works on these
 * segments; joining the segments' text gives the input back unchanged.
 */

export interface Segment {
  text: string;
  code: boolean;
}

const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;
const DOCTEST_LINE = /^\s*(?:>>>|\.\.\.)(?: |$)/;

/** Block-level split: fenced code blocks and `>>>` session lines are code; the rest is prose (with inline code still in it). */
export function splitBlocks(text: string): Segment[] {
  const lines = text.split(/(?<=\n)/);
  const out: Segment[] = [];
  const push = (line: string, code: boolean) => {
    const last = out[out.length - 1];
    if (last && last.code === code) last.text += line;
    else out.push({ text: line, code });
  };
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE_OPEN.exec(lines[i]);
    if (open) {
      const fence = open[1];
      // A backtick fence's info string may not contain a backtick (CommonMark); then it is no fence.
      if (!(fence[0] === '`' && lines[i].slice(open[0].length).includes('`'))) {
        const close = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
        // An unclosed fence runs to the end of the text, as in CommonMark.
        let j = i + 1;
        while (j < lines.length && !close.test(lines[j])) j++;
        const block = lines.slice(i, Math.min(j + 1, lines.length)).join('');
        out.push({ text: block, code: true });
        i = j;
        continue;
      }
    }
    push(lines[i], DOCTEST_LINE.test(lines[i]));
  }
  return out;
}

const INLINE_HTML_CODE = /<(code|pre|tt|kbd)\b[^>]*>[\s\S]*?<\/\1\s*>/gi;

/** Prose split further at inline code spans (backtick runs closed by a run of the same length) and code elements. */
export function splitInline(prose: string): Segment[] {
  const out: Segment[] = [];
  const push = (text: string, code: boolean) => {
    if (!text) return;
    const last = out[out.length - 1];
    if (last && last.code === code) last.text += text;
    else out.push({ text, code });
  };
  let plainStart = 0;
  let i = 0;
  while (i < prose.length) {
    if (prose[i] === '`') {
      let n = 1;
      while (prose[i + n] === '`') n++;
      const closer = findRun(prose, i + n, n);
      if (closer >= 0) {
        pushHtml(prose.slice(plainStart, i), push);
        push(prose.slice(i, closer + n), true);
        i = closer + n;
        plainStart = i;
        continue;
      }
      i += n; // no closing run: the backticks are literal
      continue;
    }
    i++;
  }
  pushHtml(prose.slice(plainStart), push);
  return out;
}

/** Index of the next run of exactly `n` backticks at or after `from`, or -1. */
function findRun(s: string, from: number, n: number): number {
  for (let i = from; i < s.length; i++) {
    if (s[i] !== '`') continue;
    let m = 1;
    while (s[i + m] === '`') m++;
    if (m === n) return i;
    i += m - 1;
  }
  return -1;
}

function pushHtml(text: string, push: (t: string, code: boolean) => void): void {
  let last = 0;
  for (const m of text.matchAll(INLINE_HTML_CODE)) {
    push(text.slice(last, m.index), false);
    push(m[0], true);
    last = m.index! + m[0].length;
  }
  push(text.slice(last), false);
}

/** Blocks and inline code together: every piece of the text, in order. */
export function splitCode(text: string): Segment[] {
  const out: Segment[] = [];
  for (const block of splitBlocks(text)) {
    if (block.code) out.push(block);
    else out.push(...splitInline(block.text));
  }
  return out;
}

/** The text with `fn` applied to its prose only; code comes back as it was. */
export function mapProse(text: string, fn: (prose: string) => string): string {
  return splitCode(text).map((s) => (s.code ? s.text : fn(s.text))).join('');
}

/** The prose of a text, with each piece of code replaced by a space (for finding references in what people wrote). */
export function proseOnly(text: string): string {
  return splitCode(text).map((s) => (s.code ? ' ' : s.text)).join('');
}
