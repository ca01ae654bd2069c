/**
 * The fidelity check: every sentence the extractor returns must be supported
 * by the text it was given, so a problem statement never states something no
 * one wrote. A prose sentence is supported when the longest common
 * subsequence of its words with some source sentence (or two adjacent ones,
 * for a sentence the splitter cut differently) covers at least `minRatio` of
 * its words; a code block must appear in the source verbatim (up to trailing
 * spaces). Unsupported pieces are dropped and recorded.
 */
import { splitBlocks } from './markdown.js';
import { SECTION_NAMES, type SectionName, type Sections } from './extraction.js';

export interface DroppedPiece {
  section: SectionName;
  kind: 'sentence' | 'code';
  text: string;
  /** Best support found (1 = fully supported); below the minimum, hence dropped. */
  best_ratio: number;
}

export interface FidelityRecord {
  min_ratio: number;
  /** Sentences and code blocks checked, and how many were kept. */
  checked: number;
  kept: number;
  dropped: DroppedPiece[];
}

const SENTENCES = new Intl.Segmenter('en', { granularity: 'sentence' });
/** A list bullet, a quote marker or a heading marker at the start of a line: structure, not words. */
const LINE_PREFIX = /^(\s*(?:>\s*)*(?:[-*+]\s+|\d{1,3}[.)]\s+|#{1,6}\s+)?)/;

export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}_]+/gu) ?? [];
}

/** Sentences of a prose text: paragraphs (lines joined, structure markers dropped) cut by Intl.Segmenter. */
export function sentences(prose: string): string[] {
  const out: string[] = [];
  for (const paragraph of prose.split(/\n\s*\n/)) {
    const joined = paragraph.split('\n').map((l) => l.replace(LINE_PREFIX, '').trim()).filter(Boolean).join(' ');
    for (const { segment } of SENTENCES.segment(joined)) if (segment.trim()) out.push(segment.trim());
  }
  return out;
}

interface Window { words: string[]; set: Set<string> }

/** The source texts, prepared for many support questions. */
export class SupportIndex {
  private readonly windows: Window[] = [];
  private readonly code: string;

  constructor(sources: string[]) {
    const codeParts: string[] = [];
    for (const source of sources) {
      const units: string[][] = [];
      for (const block of splitBlocks(source)) {
        if (block.code) {
          codeParts.push(normalizeCode(block.text));
          // A code line quoted inside a sentence is supported by the code it came from.
          for (const line of block.text.split('\n')) if (words(line).length) units.push(words(line));
        } else {
          for (const s of sentences(block.text)) if (words(s).length) units.push(words(s));
        }
      }
      codeParts.push(normalizeCode(source));
      // Adjacent pairs cover every single sentence too (the ratio is over the extracted sentence's words).
      if (units.length === 1) this.add(units[0]);
      for (let i = 0; i + 1 < units.length; i++) this.add([...units[i], ...units[i + 1]]);
    }
    this.code = codeParts.join('\n\u0000\n');
  }

  private add(w: string[]): void {
    this.windows.push({ words: w, set: new Set(w) });
  }

  /** The best share of the sentence's words found in order in one source window (0..1). */
  support(sentence: string): number {
    const a = words(sentence);
    if (!a.length) return 1;
    let best = 0;
    for (const w of this.windows) {
      // The words of `a` present in the window bound the subsequence: skip hopeless windows cheaply.
      let present = 0;
      for (const x of a) if (w.set.has(x)) present++;
      if (present / a.length <= best) continue;
      best = Math.max(best, lcsLength(a, w.words) / a.length);
      if (best === 1) break;
    }
    return best;
  }

  /** Whether a code block appears in the source as it is (trailing spaces and fences aside). */
  hasCode(block: string): boolean {
    const body = normalizeCode(stripFence(block)).trim();
    return body.length === 0 || this.code.includes(body);
  }
}

/** Longest common subsequence of two word lists (two rows of the classic table). */
export function lcsLength(a: string[], b: string[]): number {
  let prev = new Int32Array(b.length + 1);
  let cur = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

function normalizeCode(text: string): string {
  return text.replace(/\r\n?/g, '\n').split('\n').map((l) => l.trimEnd()).join('\n');
}

/** A fenced block's content without its fence lines. */
function stripFence(block: string): string {
  const lines = block.replace(/\r\n?/g, '\n').replace(/\n$/, '').split('\n');
  if (/^ {0,3}(`{3,}|~{3,})/.test(lines[0] ?? '')) lines.shift();
  if (lines.length && /^ {0,3}(`{3,}|~{3,})\s*$/.test(lines[lines.length - 1])) lines.pop();
  return lines.join('\n');
}

/**
 * The sections with every unsupported sentence and code block removed, and
 * the record of what was checked and dropped. Lines keep their list or quote
 * markers; a line left without a sentence disappears.
 */
export function checkFidelity(sections: Sections, sources: string[], minRatio: number): { sections: Sections; record: FidelityRecord } {
  const index = new SupportIndex(sources);
  const record: FidelityRecord = { min_ratio: minRatio, checked: 0, kept: 0, dropped: [] };
  const kept = {} as Sections;
  for (const name of SECTION_NAMES) {
    const out: string[] = [];
    for (const block of splitBlocks(sections[name] ?? '')) {
      if (block.code) {
        record.checked++;
        if (index.hasCode(block.text)) {
          record.kept++;
          out.push(block.text.replace(/\n?$/, '\n'));
        } else {
          record.dropped.push({ section: name, kind: 'code', text: block.text.trim(), best_ratio: 0 });
        }
        continue;
      }
      for (const line of block.text.split('\n')) {
        const prefix = LINE_PREFIX.exec(line)![1];
        const content = line.slice(prefix.length);
        if (!content.trim()) {
          out.push('\n');
          continue;
        }
        const keptHere: string[] = [];
        for (const { segment } of SENTENCES.segment(content)) {
          const sentence = segment.trim();
          if (!sentence) continue;
          record.checked++;
          const ratio = index.support(sentence);
          if (ratio >= minRatio) {
            record.kept++;
            keptHere.push(sentence);
          } else {
            record.dropped.push({ section: name, kind: 'sentence', text: sentence, best_ratio: Math.round(ratio * 100) / 100 });
          }
        }
        if (keptHere.length) out.push(`${prefix}${keptHere.join(' ')}\n`);
      }
    }
    kept[name] = out.join('').replace(/\n{3,}/g, '\n\n').trim();
  }
  return { sections: kept, record };
}
