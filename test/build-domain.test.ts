import { describe, expect, it } from 'vitest';
import { nearestScripts, failReason, skipDefault, failedStepOf, buildFailureEndsCascade, neighbourWindow } from '../src/domain/build-cascade.js';
import { checkScriptForCheats, describeCheat } from '../src/domain/build-cheats.js';
import { buildLayout, findAsvConfig, isBenchmarkSuitePath, type BuildLayout } from '../src/domain/build-layout.js';
import { declaresExtensions, defaultBuildScript, scriptHash } from '../src/domain/build-script.js';
import { chooseImportNames, judgeVerification, type ProbeFacts } from '../src/domain/build-verification.js';
import { parsePatchFiles, splitPatch } from '../src/domain/oracle-patch.js';
import { installableRequirements } from '../src/domain/python-requirements.js';
import { answerFor } from '../src/standins/llm/server.js';
import { synthesizeAnswer } from '../src/standins/llm/synthesize-answers.js';
import { loadPrompt } from '../src/stages/prompts.js';
import { render } from '../src/domain/prompt-template.js';

const LAYOUT: BuildLayout = { asvConfigPath: 'asv.conf.json', benchmarkDir: 'benchmarks', repoSubdir: '', asvOutputDirs: ['.asv/results', '.asv/html'], problem: null };

const PATCH = [
  'diff --git a/lib/core.py b/lib/core.py',
  'index 1111111..2222222 100644',
  '--- a/lib/core.py',
  '+++ b/lib/core.py',
  '@@ -1,2 +1,2 @@',
  ' def f(xs):',
  '-    return [x for x in xs]',
  '+    return list(xs)',
  'diff --git a/benchmarks/bench_core.py b/benchmarks/bench_core.py',
  '--- a/benchmarks/bench_core.py',
  '+++ b/benchmarks/bench_core.py',
  '@@ -1 +1 @@',
  '-X = 1',
  '+X = 2',
  'diff --git a/lib/old.py b/benchmarks/moved.py',
  'similarity index 100%',
  'rename from lib/old.py',
  'rename to benchmarks/moved.py',
  'diff --git a/asv.conf.json b/asv.conf.json',
  '--- a/asv.conf.json',
  '+++ b/asv.conf.json',
  '@@ -1 +1 @@',
  '-{}',
  '+{"version": 1}',
  'diff --git a/lib/new.py b/lib/new.py',
  'new file mode 100644',
  'index 0000000..3333333',
  '--- /dev/null',
  '+++ b/lib/new.py',
  '@@ -0,0 +1 @@',
  '+Y = 1',
  'diff --git "a/lib/sp ace.py" "b/lib/sp ace.py"',
  'deleted file mode 100644',
  'index 4444444..0000000',
  'diff --git a/lib/logo.png b/lib/logo.png',
  'index 5555555..6666666 100644',
  'Binary files a/lib/logo.png and b/lib/logo.png differ',
  '',
].join('\n');

describe('the oracle patch', () => {
  it('names every file of a git diff: edits, renames, new, deleted (quoted paths too), binary', () => {
    expect(parsePatchFiles(PATCH).map((f) => [f.oldPath, f.newPath])).toEqual([
      ['lib/core.py', 'lib/core.py'], ['benchmarks/bench_core.py', 'benchmarks/bench_core.py'], ['lib/old.py', 'benchmarks/moved.py'],
      ['asv.conf.json', 'asv.conf.json'], [null, 'lib/new.py'], ['lib/sp ace.py', null], ['lib/logo.png', 'lib/logo.png'],
    ]);
  });

  it('sets aside the benchmark suite and the asv config (a rename into the suite too) and keeps every other file whole', () => {
    const split = splitPatch(PATCH, (p) => isBenchmarkSuitePath(LAYOUT, p));
    expect(split.setAside).toEqual(['benchmarks/bench_core.py', 'benchmarks/moved.py', 'asv.conf.json']);
    expect(split.keptFiles).toEqual(['lib/core.py', 'lib/new.py', 'lib/sp ace.py', 'lib/logo.png']);
    expect(split.kept).toContain('+    return list(xs)\n');
    expect(split.kept).toContain('Binary files a/lib/logo.png and b/lib/logo.png differ\n');
    expect(split.kept).not.toContain('bench_core');
    expect(split.kept).not.toContain('asv.conf.json');
    const onlySuite = PATCH.slice(PATCH.indexOf('diff --git a/benchmarks/'), PATCH.indexOf('diff --git a/lib/old.py'));
    expect(splitPatch(onlySuite, (p) => isBenchmarkSuitePath(LAYOUT, p))).toEqual({ kept: '', keptFiles: [], setAside: ['benchmarks/bench_core.py'] });
  });
});

describe('the build layout', () => {
  it('finds the config asv would (the scraped path first, else the shallowest), resolves the suite and asv outputs beside it', () => {
    const files = ['asv_bench/asv.conf.json', 'asv_bench/benchmarks/__init__.py', 'docs/asv.conf.json', 'x/y/asv.conf.json', 'pkg/__init__.py'];
    expect(findAsvConfig(files, null)).toBe('asv_bench/asv.conf.json');
    expect(findAsvConfig(files, 'docs/asv.conf.json')).toBe('docs/asv.conf.json');
    expect(findAsvConfig(files, 'gone/asv.conf.json')).toBe('asv_bench/asv.conf.json');
    const layout = buildLayout(files, null, () => '{\n // comment\n "benchmark_dir": "benchmarks", "repo_subdir": "..", }');
    expect(layout.problem).toMatch(/repo_subdir "\.\." .* points outside/);
    const ok = buildLayout(files, null, () => '{"benchmark_dir": "benchmarks", "results_dir": "out"}');
    expect(ok).toMatchObject({ asvConfigPath: 'asv_bench/asv.conf.json', benchmarkDir: 'asv_bench/benchmarks', asvOutputDirs: ['asv_bench/out', 'asv_bench/html'], problem: null });
    expect(buildLayout(['pkg/a.py'], null, () => null)).toMatchObject({ benchmarkDir: null, problem: 'no asv.conf.json at this commit' });
  });
});

describe('the default template', () => {
  it('builds compiled extensions in place and leaves a pure-Python package as it is', () => {
    const ext = defaultBuildScript({ repoSubdir: '', setupPy: 'from setuptools import Extension, setup\nsetup(ext_modules=[Extension("a", ["a.c"])])', pyproject: null });
    expect(ext).toMatch(/^set -euo pipefail$/m);
    expect(ext).toMatch(/^python setup\.py build_ext --inplace$/m);
    const pure = defaultBuildScript({ repoSubdir: '', setupPy: 'from setuptools import setup\nsetup(name="a")', pyproject: '[project]\nname = "a"\n' });
    expect(pure).not.toMatch(/build_ext/);
    const sub = defaultBuildScript({ repoSubdir: 'python pkg', setupPy: 'cythonize("x.pyx")', pyproject: null });
    expect(sub).toMatch(/^cd 'python pkg'$/m);
    expect(declaresExtensions({ setupPy: null, pyproject: '[tool.setuptools.ext-modules]\nx = 1\n' })).toBe(true);
    // Comments and blank lines do not make another script.
    expect(scriptHash(`${ext}\n# note\n\n`)).toBe(scriptHash(ext));
    expect(scriptHash(pure)).not.toBe(scriptHash(ext));
  });
});

describe('the cheat check', () => {
  const hits = (script: string) => checkScriptForCheats(script, LAYOUT).map((h) => h.rule);

  it('refuses scripts that fake success, naming the rule and the line', () => {
    expect(hits('echo "def time_x(): pass" > benchmarks/bench_fake.py')).toEqual(['writes-protected']);
    expect(hits('mkdir -p .asv/results/m && echo {} > .asv/results/m/r.json')).toEqual(['writes-protected']);
    expect(hits('cat > asv.conf.json <<EOF\n{}\nEOF')).toEqual(['writes-protected']);
    expect(hits("sed -i 's/assert/pass/' tests/test_core.py")).toEqual(['writes-protected']);
    expect(hits('rm -rf tests')).toEqual(['writes-protected']);
    expect(hits('cp /tmp/fake.py benchmarks/')).toEqual(['writes-protected']);
    expect(hits('python -c "open(\'benchmarks/b.py\', \'w\').write(\'\')"')).toEqual(['writes-protected']);
    expect(hits('git checkout HEAD~1')).toEqual(['git-state']);
    expect(hits('git stash && python setup.py build_ext --inplace')).toEqual(['git-state']);
    expect(hits('git update-index --assume-unchanged lib/core.py')).toEqual(['git-state']);
    expect(hits('echo "import fake" > "$VIRTUAL_ENV/lib/python3.11/site-packages/hook.pth"')).toEqual(['import-hook']);
    expect(hits('printf "x" > sitecustomize.py')).toEqual(['import-hook']);
    expect(hits('alias python=true')).toEqual(['shadows-python']);
    expect(hits('cp /bin/true "$VIRTUAL_ENV/bin/python"')).toEqual(['shadows-python']);
    expect(hits('echo "Build succeeded"\nexit 0\npython setup.py build_ext --inplace')).toEqual(['early-exit']);
    expect(hits('python setup.py build_ext --inplace || true')).toEqual(['early-exit']);
    expect(hits('echo $PERFMINE_SCRATCH')).toEqual(['verifier']);
    const cheat = checkScriptForCheats('set -e\n# fake it\nmkdir -p benchmarks\nexit 0\nmake', LAYOUT);
    expect(describeCheat(cheat)).toBe('the script tries to fake success: writes-protected at line 3: writes the benchmark suite (benchmarks): benchmarks (and 1 more: early-exit)');
  });

  it('lets ordinary build scripts through', () => {
    const ordinary = [
      '#!/usr/bin/env bash\nset -euo pipefail\npython setup.py build_ext --inplace',
      'pip install cython==0.29.36\npython -m pip install --no-build-isolation -e .',
      'echo "building; tests and benchmarks come later" >&2\nmkdir -p build && cp data/table.csv build/',
      'cat benchmarks/README.md\ngrep -r time_ benchmarks/ | head',
      'git submodule update --init --recursive\ngit describe --tags || echo untagged',
      'rm -rf build/ dist/ *.egg-info\npython tools/generate_config.py > /dev/null 2>&1',
      'pip install optional-extra || true',
      'if [ -f prepared.txt ]; then\n  exit 0\nfi\npython tools/prepare.py',
      'export CFLAGS="-O2"\nmake -C src 2>&1 | tee build.log',
    ];
    for (const script of ordinary) expect(checkScriptForCheats(script, LAYOUT), script).toEqual([]);
  });
});

describe('the cascade', () => {
  const at = (d: string) => new Date(`${d}T00:00:00Z`);

  it('SIMILAR: the nearest verified scripts by merge date, each script once, none already tried', () => {
    const sources = [
      { pullRequestId: 1, mergedAt: at('2024-01-01'), script: 'A\n' },
      { pullRequestId: 2, mergedAt: at('2024-03-01'), script: 'B\n' },
      { pullRequestId: 3, mergedAt: at('2024-02-20'), script: 'A\n# same as A\n' },
      { pullRequestId: 4, mergedAt: null, script: 'C\n' },
      { pullRequestId: 5, mergedAt: at('2024-02-11'), script: 'D\n' },
    ];
    const near = nearestScripts(at('2024-02-15'), sources, 5);
    expect(near.map((s) => s.pullRequestId)).toEqual([5, 3, 2, 4]);
    expect(nearestScripts(at('2024-02-15'), sources, 2, new Set([scriptHash('D\n')])).map((s) => s.pullRequestId)).toEqual([3, 2]);
  });

  it('DEFAULT is skipped only after the repository\'s last N default builds all failed; some failures are no script\'s to fix', () => {
    expect(skipDefault([false, false, false], 3)).toBe(true);
    expect(skipDefault([false, false, true], 3)).toBe(false);
    expect(skipDefault([false, false], 3)).toBe(false);
    expect(skipDefault([false, false, false], 0)).toBe(false);
    expect(failedStepOf('no interpreter for Python 3.4 (looked in /usr/bin/python3.4)')).toBe('interpreter');
    expect(failedStepOf('build script exited 1', null)).toBe('script');
    expect(failedStepOf('whatever', 'dependencies')).toBe('dependencies');
    expect(['interpreter', 'dependencies', 'checkout', 'script', 'timeout'].map((s) => buildFailureEndsCascade(s as never))).toEqual([true, true, true, false, false]);
    expect(neighbourWindow(at('2024-03-01'), 60)).toEqual({ from: at('2024-01-01'), to: at('2024-04-30') });
  });

  it('build_reason: what ended it, then every attempt', () => {
    expect(failReason([
      { strategy: 'default', outcome: 'build_failed', reason: 'build script exited 1' },
      { strategy: 'llm', outcome: 'cheat', reason: 'the script tries to fake success: early-exit at line 2' },
    ], 'refused')).toBe('refused\n1. default: build_failed (build script exited 1)\n2. llm: cheat (the script tries to fake success: early-exit at line 2)');
    expect(failReason([], null)).toBe('nothing to try');
  });
});

function facts(over: Partial<ProbeFacts> = {}): ProbeFacts {
  return {
    python: { version: '3.11.2', executable: '/e/bin/python', prefix: '/e' },
    git: { head: 'abcdef0123456789', status: [{ code: '!!', path: 'build/' }, { code: '??', path: 'lib/_native.so' }], error: null },
    patch: { ok: true, output: 'Checking patch lib/core.py...' },
    imports: { candidates: [{ name: 'lib', ok: true, error: null }, { name: 'tools', ok: false, error: 'ImportError: x' }], project_names: ['lib'] },
    benchmarks: { count: 3, names: ['bench.time_a'], errors: [], fatal: null },
    tests: { suite: true, runner: 'unittest', collected: 4, exit_code: 0, errors: [], note: 'pytest is not installed in the environment: unittest discovery' },
    secrets: { files: [], env: [], scanned_files: 10, scanned_bytes: 4096, skipped: 0 },
    errors: [], seconds: 1,
    ...over,
  };
}
const ctx = { baseSha: 'abcdef0', layout: LAYOUT, patchEmpty: false };

describe('verification verdicts', () => {
  it('passes a clean environment; only the package named like the project has to import', () => {
    const v = judgeVerification(facts(), ctx);
    expect(v).toMatchObject({ ok: true, reason: null, imported: ['lib'] });
    expect(v.checks.drift.detail).toBe('HEAD at the base commit, tracked files unchanged (2 untracked or ignored build products)');
    expect(chooseImportNames(['a', 'b'], ['other-project'])).toEqual(['a', 'b']);
    expect(chooseImportNames(['my_lib', 'x'], ['My-Lib'])).toEqual(['my_lib']);
  });

  it('drift: HEAD moved, a tracked file changed, a file planted in the suite or asv results', () => {
    const drift = (git: ProbeFacts['git']) => judgeVerification(facts({ git }), ctx);
    expect(drift({ head: '1234567', status: [], error: null }).reason).toBe('drift: HEAD is 1234567, not the base commit abcdef0');
    expect(drift({ head: 'abcdef0999', status: [{ code: ' M', path: 'lib/core.py' }], error: null }).reason).toBe('drift: tracked files changed: lib/core.py');
    expect(drift({ head: 'abcdef0999', status: [{ code: '??', path: 'benchmarks/bench_fake.py' }, { code: '!!', path: 'benchmarks/__pycache__/' }], error: null }).reason)
      .toBe("drift: files appeared in the benchmark suite or asv's results: benchmarks/bench_fake.py");
    expect(drift({ head: 'abcdef0999', status: [{ code: '!!', path: '.asv/results/m/r.json' }], error: null }).retryable).toBe(true);
  });

  it('a secret, a patch that does not apply, or no suite ends the cascade; imports, benchmarks and tests another script may fix', () => {
    const secret = judgeVerification(facts({ secrets: { files: [{ path: 'build_info.txt', kind: 'configured', what: 'a configured secret' }], env: [], scanned_files: 1, scanned_bytes: 1, skipped: 0 } }), ctx);
    expect(secret).toMatchObject({ ok: false, retryable: false, reason: 'secrets: secret found: a configured secret in build_info.txt' });
    const patch = judgeVerification(facts({ patch: { ok: false, output: 'error: patch failed: lib/core.py:1\nerror: lib/core.py: patch does not apply' } }), ctx);
    expect(patch).toMatchObject({ retryable: false, reason: 'patch: the patch does not apply cleanly to the base tree: error: patch failed: lib/core.py:1 | error: lib/core.py: patch does not apply' });
    expect(judgeVerification(facts(), { ...ctx, patchEmpty: true }).reason).toMatch(/^patch: the patch changes only the benchmark suite/);
    const noSuite = judgeVerification(facts({ benchmarks: { count: 0, names: [], errors: [], fatal: 'benchmark discovery failed: no asv.conf.json found in /t' } }), ctx);
    expect(noSuite).toMatchObject({ retryable: false });
    const importFails = judgeVerification(facts({
      imports: { candidates: [{ name: 'lib', ok: false, error: "ModuleNotFoundError: No module named 'lib._native'" }], project_names: ['lib'] },
      benchmarks: { count: 0, names: [], errors: [{ module: 'bench', error: "No module named 'lib._native'" }], fatal: null },
    }), ctx);
    expect(importFails).toMatchObject({ ok: false, retryable: true, reason: "benchmarks: no benchmark discovered: bench: No module named 'lib._native'" });
    expect(importFails.checks.imports.detail).toBe("import lib failed: ModuleNotFoundError: No module named 'lib._native'");
  });

  it('tests: a module that needs pytest (not installed) is excused and recorded; any other collection error fails', () => {
    const excused = judgeVerification(facts({ tests: { suite: true, runner: 'unittest', collected: 3, exit_code: 1, errors: ["ModuleNotFoundError: No module named 'pytest'"], note: 'pytest is not installed in the environment: unittest discovery' } }), ctx);
    expect(excused.ok).toBe(true);
    expect(excused.checks.tests.detail).toBe('3 tests collected with unittest (pytest is not installed in the environment: unittest discovery; 1 test module need base tooling the environment does not have)');
    const broken = judgeVerification(facts({ tests: { suite: true, runner: 'pytest', collected: 0, exit_code: 2, errors: ["ImportError: cannot import name 'value' from 'lib'"], note: null } }), ctx);
    expect(broken).toMatchObject({ ok: false, retryable: true, reason: "tests: the tests do not collect (pytest): ImportError: cannot import name 'value' from 'lib'" });
  });
});

describe('pins for pip install --no-deps', () => {
  it('requires hashes only when every line has one', () => {
    expect(installableRequirements(['b==1 --hash=sha256:bb', 'a==2 --hash=sha256:aa'])).toEqual({ lines: ['a==2 --hash=sha256:aa', 'b==1 --hash=sha256:bb'], requireHashes: true });
    expect(installableRequirements(['b==1 --hash=sha256:bb', 'a==2'])).toEqual({ lines: ['a==2', 'b==1'], requireHashes: false });
    expect(installableRequirements([])).toEqual({ lines: [], requireHashes: false });
  });
});

describe('the LLM stand-in writes build scripts from the failure log', () => {
  const prompt = loadPrompt('synthesize');
  const ask = (o: { title?: string; previous: string; log: string; files?: string[] }) => render(prompt, {
    repo: 'o/r', title: o.title ?? 'Speed up', python: '3.11', commit: 'abc', requirements: '- a==1', file_limit: '300',
    files: (o.files ?? ['setup.py', 'tools/generate_config.py', 'lib/_native.c']).map((f) => `- ${f}`).join('\n'), build_files: '(none)',
    previous_script: o.previous, previous_reason: 'build script exited 1', log_tail: o.log, benchmark_dir: 'benchmarks', asv_config: 'asv.conf.json',
  });
  const previous = '#!/usr/bin/env bash\nset -euo pipefail\npython setup.py build_ext --inplace';

  it('a generated file missing: the generator first; a build step the log names: that step first; nothing known: the same script', () => {
    const generated = synthesizeAnswer(ask({ previous, log: 'lib/_native.c:1:10: fatal error: _config.h: No such file or directory' }).map((m) => m.content).join('\n'));
    expect(generated.script).toBe('#!/usr/bin/env bash\nset -euo pipefail\npython tools/generate_config.py\npython setup.py build_ext --inplace\n');
    const step = synthesizeAnswer(ask({ previous, log: 'error: run `python tools/prepare.py` first' }).map((m) => m.content).join('\n'));
    expect(step.script).toBe('#!/usr/bin/env bash\nset -euo pipefail\npython tools/prepare.py\npython setup.py build_ext --inplace\n');
    const again = synthesizeAnswer(ask({ previous: step.script, log: 'error: run `python tools/prepare.py` first' }).map((m) => m.content).join('\n'));
    expect(scriptHash(again.script)).toBe(scriptHash(step.script));
    // Through the server's dispatcher, as the real client gets it: JSON with a script.
    const answer = JSON.parse(answerFor(ask({ previous, log: 'fatal error: _config.h: No such file or directory' })));
    expect(answer.script).toMatch(/^python tools\/generate_config\.py$/m);
  });

  it('[standin:cheat] in the prompt: a script the cheat check refuses', () => {
    const cheat = synthesizeAnswer(ask({ title: 'Faster [standin:cheat]', previous, log: 'error' }).map((m) => m.content).join('\n'));
    expect(checkScriptForCheats(cheat.script, LAYOUT).map((h) => h.rule)).toEqual(expect.arrayContaining(['writes-protected', 'early-exit']));
  });
});
