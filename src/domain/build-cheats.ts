/**
 * The cheat check: an LLM's build script is read before it runs, and a script
 * that tries to make the environment look verified without building it is
 * refused (and ends the cascade for the PR). Verification itself never trusts
 * what a script prints, so these rules are about intent, kept strict and
 * explainable: each hit names its rule and the line.
 *
 * - writes-protected: writes, moves or deletes the benchmark suite, the asv
 *   config, asv's results/html/env directories or the tests;
 * - git-state: moves HEAD or changes tracked files through git (commit,
 *   checkout, reset, stash, apply...), or hides changes from it
 *   (update-index --assume-unchanged / --skip-worktree);
 * - import-hook: writes sitecustomize/usercustomize or a .pth file (code that
 *   runs at every interpreter start can fake an import);
 * - shadows-python: an alias or function named python, or a file written over
 *   an interpreter;
 * - early-exit: `exit 0` with more commands after it, or a build command whose
 *   failure is swallowed (`|| true`, `|| exit 0`);
 * - verifier: mentions perfmine's own verification (its variables or scripts).
 */
import { isInside, isTestPath, type BuildLayout } from './build-layout.js';

export type CheatRule = 'writes-protected' | 'git-state' | 'import-hook' | 'shadows-python' | 'early-exit' | 'verifier';

export interface CheatHit {
  rule: CheatRule;
  line: number;
  text: string;
  detail: string;
}

/** Commands that write, move or delete every file they name, and those that write only their last one (the destination). */
const WRITES_ALL = new Set(['rm', 'rmdir', 'touch', 'truncate', 'tee', 'mkdir', 'chmod', 'chown', 'mv', 'patch', 'unlink', 'shred']);
const WRITES_LAST = new Set(['cp', 'ln', 'install', 'rsync']);
/** A redirection into a file (not 2>&1, not >/dev/null). */
const REDIRECT_TARGET = /(?<![<&0-9])\d?>{1,2}\s*(?!&|\/dev\/null)("[^"]+"|'[^']+'|[^\s;&|)]+)/g;
/** Python writing a file: open(..., 'w'/'a'/'x'), Path.write_text/bytes, shutil copies and moves, os.remove/rename. */
const PYTHON_WRITE = /\bopen\s*\([^)]*,\s*(?:mode\s*=\s*)?['"][wax]|\.write_(?:text|bytes)\s*\(|\bshutil\.(?:copy\w*|move|rmtree)\s*\(|\bos\.(?:remove|unlink|rename|replace|makedirs|mkdir)\s*\(/;
const SED_IN_PLACE = /^(?:sed|perl)$/;
const GIT_STATE = /\bgit\s+(?:-C\s+\S+\s+)?(?:commit|checkout|switch|reset|restore|stash|rebase|merge|cherry-pick|revert|am|apply|pull|rm|mv|update-ref|symbolic-ref|replace|update-index\s+.*--(?:assume-unchanged|skip-worktree))\b/;
const IMPORT_HOOK = /(?:^|\/)(?:sitecustomize|usercustomize)\.py$|\.pth$/;
const PYTHON_SHADOW = /\balias\s+python[0-9.]*=|\b(?:function\s+)?python[0-9.]*\s*\(\)\s*\{/;
const INTERPRETER_PATH = /(?:^|\/)bin\/python[0-9.]*$/;
/** Building the package itself (not installing some other package, whose failure a script may choose to tolerate). */
const BUILD_COMMAND = /\b(?:setup\.py|build_ext|make|cmake|meson|ninja|cython)\b|\bpip\d?(?:\.\d+)?\s+install\s+(?:-\S+\s+)*(?:-e\s+)?\.(?:\s|$|\[)|-m\s+build\b/;
const SWALLOWED = /\|\|\s*(?:true|:|exit\s+0)\b/;
const VERIFIER = /\bPERFMINE_\w+|perfmine_(?:probe|asv_runner)/;

/** Words of a command (quotes removed; redirections dropped). */
function words(command: string): string[] {
  const cleaned = command.replace(/\d?>{1,2}\s*("[^"]+"|'[^']+'|[^\s;&|)]+)/g, ' ').replace(/<\s*\S+/g, ' ');
  return [...cleaned.matchAll(/"([^"]*)"|'([^']*)'|([^\s]+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
}

/** Quoted strings of a line (the paths a Python one-liner or heredoc line names). */
function quotedWords(line: string): string[] {
  // Each kind of quote on its own: a shell's "..." often holds Python's '...'.
  return [...line.matchAll(/"([^"]+)"/g), ...line.matchAll(/'([^']+)'/g)].map((m) => m[1]);
}

/** The files the simple commands of a line write, move or delete (by the command's kind). */
function commandTargets(line: string): string[] {
  const out: string[] = [];
  for (const simple of line.split(/&&|\|\||[;|&(){}]/)) {
    let w = words(simple.trim());
    while (w.length && (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w[0]) || ['sudo', 'then', 'do', 'else', 'command', 'exec', 'xargs'].includes(w[0]))) w = w.slice(1);
    if (!w.length) continue;
    const cmd = w[0].split('/').at(-1)!;
    const args = w.slice(1).filter((a) => !a.startsWith('-'));
    if (WRITES_ALL.has(cmd)) out.push(...args);
    else if (WRITES_LAST.has(cmd) && args.length) out.push(args.at(-1)!);
    else if (SED_IN_PLACE.test(cmd) && w.slice(1).some((a) => /^-[a-zA-Z]*i/.test(a) || a.startsWith('--in-place'))) out.push(...args.slice(1));
    else if (cmd === 'dd') out.push(...w.filter((a) => a.startsWith('of=')).map((a) => a.slice(3)));
  }
  return out;
}

/** A path (as written in the script, relative to the checkout root) that a build must leave alone. */
export function isProtectedPath(layout: BuildLayout, raw: string): string | null {
  const p = raw.replace(/^\.\//, '').replace(/\/+$/, '').replace(/^\$\{?PWD\}?\//, '');
  if (!p || p.startsWith('-') || p.startsWith('/')) return null;
  if (layout.benchmarkDir && layout.benchmarkDir !== '.' && isInside(p, layout.benchmarkDir)) return `the benchmark suite (${layout.benchmarkDir})`;
  if (layout.asvConfigPath && (p === layout.asvConfigPath || p.endsWith('asv.conf.json'))) return `the asv config (${layout.asvConfigPath})`;
  for (const dir of layout.asvOutputDirs) if (isInside(p, dir)) return `asv's output directory ${dir}`;
  if (/(^|\/)\.asv(\/|$)/.test(p)) return "asv's output directory .asv";
  if (isTestPath(p)) return `the tests (${p})`;
  return null;
}

/** Lines of the script with their numbers, comments and continuation lines folded. */
function logicalLines(script: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  const raw = script.split('\n');
  for (let i = 0; i < raw.length; i++) {
    let text = raw[i];
    const line = i + 1;
    while (text.endsWith('\\') && i + 1 < raw.length) text = text.slice(0, -1) + raw[++i];
    const code = text.replace(/(^|\s)#.*$/, '$1').trim();
    if (code) out.push({ line, text: code });
  }
  return out;
}

export function checkScriptForCheats(script: string, layout: BuildLayout): CheatHit[] {
  const hits: CheatHit[] = [];
  const lines = logicalLines(script);
  const hit = (rule: CheatRule, l: { line: number; text: string }, detail: string) => hits.push({ rule, line: l.line, text: l.text.slice(0, 200), detail });
  lines.forEach((l, k) => {
    const t = l.text;
    // Writes: a redirection into a protected path, a writing command naming one, or Python writing one.
    const redirected = [...t.matchAll(REDIRECT_TARGET)].map((m) => m[1].replace(/^["']|["']$/g, ''));
    const pythonWrites = PYTHON_WRITE.test(t);
    const targets = [...redirected, ...commandTargets(t), ...(pythonWrites ? quotedWords(t) : [])];
    for (const target of targets) {
      const what = isProtectedPath(layout, target);
      if (what) {
        hit('writes-protected', l, `writes ${what}: ${target}`);
        break;
      }
    }
    if (GIT_STATE.test(t)) hit('git-state', l, 'changes HEAD or tracked files through git (the head commit must not drift)');
    if (targets.some((x) => IMPORT_HOOK.test(x))) hit('import-hook', l, 'writes code that runs at every interpreter start (sitecustomize, usercustomize or a .pth file)');
    if (PYTHON_SHADOW.test(t) || targets.some((x) => INTERPRETER_PATH.test(x))) hit('shadows-python', l, 'replaces the interpreter the checks run with');
    if (/^exit(\s+0)?\s*;?$/.test(t) && k < lines.length - 1 && !/^(fi|done|esac|\})/.test(lines[k + 1].text)) {
      hit('early-exit', l, `exits with success before the rest of the script (${lines.length - 1 - k} more command lines)`);
    }
    if (SWALLOWED.test(t) && BUILD_COMMAND.test(t)) hit('early-exit', l, 'swallows the failure of a build command');
    if (VERIFIER.test(t)) hit('verifier', l, "refers to perfmine's own verification");
  });
  return hits;
}

/** One line for records and build_reason. */
export function describeCheat(hits: CheatHit[]): string {
  const first = hits[0];
  const more = hits.length > 1 ? ` (and ${hits.length - 1} more: ${[...new Set(hits.slice(1).map((h) => h.rule))].join(', ')})` : '';
  return `the script tries to fake success: ${first.rule} at line ${first.line}: ${first.detail}${more}`;
}
