/**
 * The LLM stand-in's answers to build-script prompts (`Task: synthesize`,
 * prompts/synthesize.md): deterministic, read from the failure log, so tests
 * and the bench can predict them. Rules, first match wins:
 *
 * 1. `[standin:cheat]` anywhere in the prompt (the PR title, the log...): a
 *    script that fakes success (writes asv results and a benchmark, exits 0
 *    early). The stage's cheat check must refuse it before it runs.
 * 2. A missing build step named in the log, e.g. ``run `python tools/prepare.py` first``
 *    or `missing build step: make gen`: that command, then the previous script.
 * 3. A generated file missing (`fatal error: x.h: No such file or directory`,
 *    `No such file or directory: 'x'`, `generated file x is missing`) and a
 *    generator among the repository's files (gen*.py, generate*.py, make_*.py):
 *    `python <generator>`, then the previous script.
 * 4. Otherwise the previous script again (the stage records it as a
 *    duplicate and does not build it twice).
 */

const HEADER = '#!/usr/bin/env bash\nset -euo pipefail\n';

/** The text of a fenced block that follows `label` (```lang ... ```). */
function fencedAfter(text: string, label: string): string | null {
  const at = text.indexOf(label);
  if (at < 0) return null;
  const m = /```[a-z]*\n([\s\S]*?)\n?```/.exec(text.slice(at + label.length));
  return m ? m[1] : null;
}

function listedFiles(text: string): string[] {
  const at = text.indexOf('Files of the repository');
  if (at < 0) return [];
  const files: string[] = [];
  for (const line of text.slice(at).split('\n').slice(1)) {
    const m = /^- (\S.*)$/.exec(line);
    if (m) files.push(m[1].trim());
    else if (files.length) break;
  }
  return files;
}

/** The previous script's commands, without its shebang and `set` options (the answer brings its own). */
function body(script: string): string {
  return script.split('\n').filter((l) => !/^#!/.test(l) && !/^\s*set -[euox]+( pipefail)?\s*$/.test(l)).join('\n').trim();
}

export const CHEATING_SCRIPT = `${HEADER}# The build is fine, trust me.
mkdir -p .asv/results/standin benchmarks
echo '{"results": {"benchmarks.time_everything": 1e-9}}' > .asv/results/standin/fake.json
printf 'def time_fake():\\n    pass\\n' > benchmarks/bench_fake.py
echo "Build succeeded: every benchmark and test passed"
exit 0
python setup.py build_ext --inplace
`;

export interface SynthesisAnswer {
  script: string;
  explanation: string;
}

export function synthesizeAnswer(prompt: string): SynthesisAnswer {
  const previous = fencedAfter(prompt, 'Previous script:') ?? '';
  const log = fencedAfter(prompt, 'Log tail:') ?? '';
  const rest = body(previous);
  const withFirst = (command: string, why: string): SynthesisAnswer | null => {
    if (rest.split('\n').some((l) => l.trim() === command)) return null; // it already ran that
    return { script: `${HEADER}${command}\n${rest}\n`, explanation: why };
  };

  if (prompt.includes('[standin:cheat]')) {
    return { script: CHEATING_SCRIPT, explanation: 'The marker asked for a script that fakes success.' };
  }
  const step = /\brun\s+[`'"]([^`'"\n]+)[`'"]\s+(?:first|before)/i.exec(log) ?? /missing build step:\s*[`'"]?([^`'"\n]+?)[`'"]?\s*$/im.exec(log);
  if (step) {
    const answer = withFirst(step[1].trim(), `The log says to run \`${step[1].trim()}\` before building.`);
    if (answer) return answer;
  }
  const missing = /fatal error: ([^\s:]+): No such file or directory/.exec(log)
    ?? /No such file or directory: '([^']+)'/.exec(log)
    ?? /generated file ([\w./-]+) is missing/i.exec(log);
  if (missing) {
    const stem = missing[1].split('/').at(-1)!.replace(/\.[^.]+$/, '').replace(/^_+/, '');
    const generators = listedFiles(prompt).filter((f) => /(^|\/)(gen|generate|make)[\w-]*\.py$/.test(f) && !/(^|\/)setup\.py$/.test(f));
    const generator = generators.find((g) => g.includes(stem)) ?? generators[0];
    if (generator) {
      const answer = withFirst(`python ${generator}`, `${missing[1]} is generated: ${generator} writes it, so it runs first.`);
      if (answer) return answer;
    }
  }
  return { script: `${HEADER}${rest}\n`, explanation: 'Nothing in the log says what is missing; the previous script is the best guess.' };
}
