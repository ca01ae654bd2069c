/**
 * The problem statement's template (prompts/problem.md): `{{name}}` is
 * replaced by a value, and `{{#name}}...{{/name}}` is kept only when `name`
 * has a non-empty value, so an absent section leaves no empty heading.
 */
import { hashText } from './prompt-template.js';

const SECTION = /\{\{#([a-z_]+)\}\}([\s\S]*?)\{\{\/\1\}\}/g;
const PLACEHOLDER = /\{\{([a-z_]+)\}\}/g;
/** An HTML comment at the top of the file explains the template to its editors; it is not part of the problem. */
const LEADING_COMMENT = /^\s*<!--[\s\S]*?-->\s*/;

export interface ProblemTemplate {
  /** The whole file (its hash covers the comment too: a stored problem names the file it came from). */
  text: string;
  hash: string;
  /** The template without the leading comment. */
  body: string;
  placeholders: string[];
}

export function parseProblemTemplate(text: string): ProblemTemplate {
  const body = text.replace(LEADING_COMMENT, '');
  const names = new Set<string>();
  for (const m of body.matchAll(SECTION)) names.add(m[1]);
  for (const m of body.matchAll(PLACEHOLDER)) names.add(m[1]);
  return { text, hash: hashText(text), body, placeholders: [...names] };
}

/** The filled template; a placeholder without a value is a programming error, not a silent blank. */
export function renderProblem(t: ProblemTemplate, values: Record<string, string>): string {
  const missing = t.placeholders.filter((p) => values[p] === undefined);
  if (missing.length) throw new Error(`problem template: no value for ${missing.join(', ')}`);
  // Values are inserted last and once, so text in them that looks like a placeholder stays as it is.
  // Blank lines are tidied in the skeleton, before the values go in, so code in a value keeps its own.
  const skeleton = t.body.replace(SECTION, (_all, name: string, inner: string) => (values[name].trim() ? inner : ''))
    .replace(/[ \t]+$/gm, '').replace(/\n{3,}/g, '\n\n');
  return `${skeleton.replace(PLACEHOLDER, (_all, name: string) => values[name].trim()).trim()}\n`;
}
