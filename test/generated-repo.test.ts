import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mineGitPRs } from '../src/adapters/git/git-source.js';
import { GitHubClient } from '../src/adapters/github/client.js';
import { childEnv } from '../src/adapters/process/child-env.js';
import { runProcess } from '../src/adapters/process/run-process.js';
import { generateDemoRepo, outcomesOf, type GeneratedPR, type GeneratedRepo } from '../src/demo/generated-repo/index.js';
import { decidePr, fasterPValue } from '../src/domain/pr-gate.js';
import { symbolicVerdict } from '../src/domain/symbolic.js';
import { silentLogger } from '../src/log.js';
import { git } from '../src/measure/git.js';
import { exactBenchmarkRegex, measure } from '../src/measure/measure.js';
import { GitHubStandin } from '../src/standins/github/server.js';
import { answerFor } from '../src/standins/llm/server.js';

// The demo's generated repository must do in the funnel what its PRs say:
// these tests build, test and measure it for real (Debian's python3, gcc,
// the generated wheels installed with pip into a virtual environment).

const PYTHON = '/usr/bin/python3';
let root: string;
let repo: GeneratedRepo;
let venvPython: string;
let generationMs: number;

const prByNumber = (n: number) => repo.prs.find((p) => p.pr.number === n)!;
const withOutcome = (o: GeneratedPR['expected']['outcome']) => repo.prs.filter((p) => p.expected.outcome === o);

async function run(cmd: string, args: string[], cwd?: string) {
  const r = await runProcess(cmd, args, { cwd, env: childEnv(), timeoutMs: 120_000, maxOutputBytes: 256 * 1024 });
  return { ok: r.code === 0, output: `${r.stdoutTail}\n${r.stderrTail}` };
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'perfmine-generated-'));
  const t0 = performance.now();
  repo = await generateDemoRepo(path.join(root, 'gen'));
  generationMs = performance.now() - t0;
  // One environment for every commit: the newest dependency versions any PR's date allows.
  const venv = path.join(root, 'venv');
  const made = await run(PYTHON, ['-m', 'venv', '--system-site-packages', '--without-pip', venv]);
  expect(made.ok, made.output).toBe(true);
  venvPython = path.join(venv, 'bin', 'python');
  const installed = await run(venvPython, ['-m', 'pip', 'install', '--isolated', '--no-index', '--find-links', repo.wheelDir,
    '--disable-pip-version-check', '--no-input', 'demo-helpers==1.1.0', 'demo-units==0.9.0']);
  expect(installed.ok, installed.output).toBe(true);
}, 120_000);

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('the generated repository: its history as GitHub would have it', () => {
  it('is generated in a few seconds, the same shas every time', async () => {
    expect(generationMs).toBeLessThan(5000);
    const again = await generateDemoRepo(path.join(root, 'again'));
    expect(again.tipSha).toBe(repo.tipSha);
    expect(again.prs.map((p) => [p.pr.merge_commit_sha, p.pr.base_sha, p.pr.head_sha, p.pr.patch]))
      .toEqual(repo.prs.map((p) => [p.pr.merge_commit_sha, p.pr.base_sha, p.pr.head_sha, p.pr.patch]));
    expect(again.wheels.map((w) => w.sha256)).toEqual(repo.wheels.map((w) => w.sha256));
    await expect(generateDemoRepo(path.join(root, 'gen'))).rejects.toThrow(/not empty/);
  });

  it('has merged PRs of every kind, over months, each referencing an issue with comments when it is performance work', () => {
    const outcomes = outcomesOf(repo);
    expect(outcomes.published.length).toBeGreaterThanOrEqual(3);
    expect(outcomes['no change'].length).toBeGreaterThanOrEqual(2);
    expect(outcomes['tests fail']).toHaveLength(1);
    expect(outcomes['build fails']).toHaveLength(1);
    expect(outcomes['not perf'].length).toBeGreaterThanOrEqual(4);
    expect(new Set(repo.prs.map((p) => p.style))).toEqual(new Set(['squash', 'merge']));

    const merged = repo.prs.map((p) => Date.parse(p.pr.merged_at));
    expect(merged).toEqual([...merged].sort((a, b) => a - b));
    expect(merged.at(-1)! - merged[0]).toBeGreaterThan(180 * 86_400_000);
    const numbers = [...repo.prs.map((p) => p.pr.number), ...repo.issues.map((i) => i.number)];
    expect(new Set(numbers).size).toBe(numbers.length); // one numbering for issues and PRs, as on GitHub

    for (const p of repo.prs.filter((x) => x.expected.judgedPerf)) {
      const refs = [...(p.pr.body ?? '').matchAll(/#(\d+)/g)].map((m) => Number(m[1]));
      const issues = repo.issues.filter((i) => refs.includes(i.number));
      expect(issues.length, `PR #${p.pr.number} links an issue`).toBeGreaterThan(0);
      expect(issues.some((i) => (i.comments ?? []).length > 0), `PR #${p.pr.number}'s issue has comments`).toBe(true);
    }
  });

  it('is what perfmine\'s git source mines from the bare repository: numbers, shas, files and diffs', async () => {
    const mined = [];
    for await (const pr of mineGitPRs(repo.bare)) mined.push(pr);
    mined.reverse();
    expect(mined.map((m) => m.number)).toEqual(repo.prs.map((p) => p.pr.number));
    for (const [i, m] of mined.entries()) {
      const pr = repo.prs[i].pr;
      expect(m.title).toBe(pr.title);
      // A squash merge does not say where its branch ended; a merge commit's second parent is the head.
      expect([m.mergeCommitSha, m.baseSha, m.headSha]).toEqual([pr.merge_commit_sha, pr.base_sha, pr.kind === 'merge' ? pr.head_sha : null]);
      expect(m.mergedAt).toBe(new Date(pr.merged_at).toISOString());
      expect(m.files).toEqual(pr.files);
      expect(m.patch).toBe(pr.patch);
    }
    // GitHub keeps every PR's head, squashed or not.
    for (const { pr } of repo.prs) {
      expect((await git(['-C', repo.bare, 'rev-parse', `refs/pull/${pr.number}/head`])).trim()).toBe(pr.head_sha);
    }
  });

  it('gets the stage 2 and stage 3 verdicts its expectations say, from the symbolic filter and the LLM stand-in', () => {
    for (const { pr, expected } of repo.prs) {
      const symbolic = symbolicVerdict({ title: pr.title, files: pr.files, filesCount: pr.changed_files, additions: null, deletions: null });
      expect(symbolic.verdict, `#${pr.number} ${pr.title}`).toBe(expected.symbolic);
      if (!expected.symbolic) continue;
      const answer = JSON.parse(answerFor([{ role: 'user', content: `Task: classify\nTitle: ${pr.title}\n` }])) as { answer: string };
      expect(answer.answer === 'YES', `#${pr.number} ${pr.title}`).toBe(expected.judgedPerf);
    }
  });

  it('is served by the GitHub stand-in with its real diffs, through the real client', async () => {
    const standin = await GitHubStandin.start();
    try {
      standin.addRepo(repo.repo);
      standin.addPRs(repo.prs.map((p) => p.pr));
      for (const issue of repo.issues) standin.addIssue(repo.fullName, issue);
      const client = new GitHubClient({ baseUrl: standin.url, tokens: [], log: silentLogger, graphqlMinIntervalMs: 0, searchMinIntervalMs: 0 });
      const pr = prByNumber(3).pr; // four files, two of them new
      expect(await client.pullDiff(repo.owner, repo.name, pr.number)).toEqual({ status: 200, diff: pr.patch });
      expect(await client.pullFiles(repo.owner, repo.name, pr.number)).toEqual(pr.files);
      const listed = await (await fetch(`${standin.url}/repos/${repo.fullName}/pulls/${pr.number}/files`)).json() as Array<{ filename: string; status: string; patch: string }>;
      const sizes = listed.find((f) => f.filename === 'fastlib/sizes.py')!;
      expect(sizes.status).toBe('added');
      expect(sizes.patch).toMatch(/^@@ -0,0 \+1,10 @@\n\+"""Human-readable descriptions of byte strings\."""\n/);
      for (const f of listed) {
        const counted = (sign: string) => f.patch.split('\n').filter((l) => l.startsWith(sign)).length;
        const file = pr.files.find((x) => x.path === f.filename)!;
        expect([counted('+'), counted('-')]).toEqual([file.additions, file.deletions]);
      }
      expect(await client.fileText(repo.owner, repo.name, 'asv.conf.json')).toBe(repo.repo.files!['asv.conf.json']);
    } finally {
      await standin.close();
    }
  });
});

describe('the generated dependencies', () => {
  it('are wheels pip resolves: the newest version needs the other package, and the files carry their upload times', async () => {
    const report = path.join(root, 'report.json');
    const r = await run(venvPython, ['-m', 'pip', 'install', '--isolated', '--no-index', '--find-links', repo.wheelDir, '--disable-pip-version-check',
      '--dry-run', '--ignore-installed', '--report', report, 'demo-helpers']);
    expect(r.ok, r.output).toBe(true);
    const resolved = (JSON.parse(await readFile(report, 'utf8')) as { install: Array<{ metadata: { name: string; version: string } }> })
      .install.map((i) => `${i.metadata.name}==${i.metadata.version}`).sort();
    expect(resolved).toEqual(['demo-helpers==2.0.0', 'demo-units==1.0.0']);
    for (const w of repo.wheels) expect((await stat(w.path)).mtime.toISOString()).toBe(new Date(w.uploadedAt).toISOString());
    const manifest = JSON.parse(await readFile(path.join(repo.dir, 'wheels.json'), 'utf8')) as Array<{ filename: string; uploadedAt: string }>;
    expect(manifest.map((w) => w.filename)).toEqual(repo.wheels.map((w) => w.filename));
  });
});

describe('the generated repository builds, tests and measures as each PR expects', () => {
  it('every commit on main builds and passes its tests, except the merges of the PRs meant to break them', async () => {
    const work = path.join(root, 'walk');
    await git(['clone', '--quiet', repo.bare, work]);
    const commits = [repo.initialSha, ...repo.prs.map((p) => p.pr.merge_commit_sha!)];
    const failing: string[] = [];
    for (const sha of commits) {
      await git(['-C', work, 'checkout', '--quiet', '--detach', sha]);
      const pr = repo.prs.find((p) => p.pr.merge_commit_sha === sha);
      const label = pr ? `#${pr.pr.number}` : 'initial';
      const built = await run(venvPython, ['setup.py', 'build_ext', '--inplace', '--force'], work);
      if (!built.ok) {
        failing.push(`${label}: build`);
        expect(built.output).toMatch(/simd_kernels\.h: No such file or directory/);
        continue;
      }
      const tested = await run(venvPython, ['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.'], work);
      if (!tested.ok) {
        failing.push(`${label}: tests`);
        expect(tested.output).toMatch(/FAIL: test_rejects_inverted_bounds/);
      }
    }
    expect(failing).toEqual(repo.prs.flatMap((p) => (p.expected.outcome === 'tests fail' ? [`#${p.pr.number}: tests`]
      : p.expected.outcome === 'build fails' ? [`#${p.pr.number}: build`] : [])));
  }, 120_000);

  // Two rounds: the changes are either large or nothing. A large one needs no second stage; for
  // nothing, the second stage only runs for a benchmark that looks changed, and guards against noise.
  const measured = (p: GeneratedPR, confirm: boolean) => measure({
    repo: repo.bare, base: p.pr.base_sha!, head: p.pr.merge_commit_sha!, python: venvPython, rounds: 2, confirm,
    bench: p.expected.benchmarks.length ? exactBenchmarkRegex(p.expected.benchmarks.map((name) => ({ name, params: [] }))) : undefined,
  });

  it('the real optimizations are faster on their benchmarks, the algorithmic one and the C one by at least 1.5x', async () => {
    for (const p of withOutcome('published')) {
      const report = await measured(p, false);
      expect(report.builds?.head?.error ?? null).toBeNull();
      for (const name of p.expected.benchmarks) {
        const b = report.benchmarks.find((x) => x.name === name)!;
        expect(b.verdict, `#${p.pr.number} ${name}`).toBe('faster');
        expect(b.faster_lower_bound, `#${p.pr.number} ${name}`).toBeGreaterThanOrEqual(p.expected.minSpeedup ?? 1.05);
      }
    }
    expect(prByNumber(2).expected.minSpeedup).toBeGreaterThanOrEqual(1.5); // algorithmic
    expect(prByNumber(5).pr.files.map((f) => f.path)).toContain('fastlib/_native.c'); // in the C extension
  }, 180_000);

  it('the PRs that change nothing measurable measure as no change', async () => {
    for (const p of withOutcome('no change')) {
      const report = await measured(p, true);
      expect(report.benchmarks.length, `#${p.pr.number}`).toBeGreaterThan(0);
      // Stage 7's question: is the PR faster or slower over all its benchmarks, the family-wise error
      // controlled (Holm)? One benchmark's verdict alone, over the whole suite, errs on a noisy host.
      const d = decidePr(report.benchmarks.map((b) => ({
        id: b.name, pFaster: fasterPValue(b.base_samples, b.head_samples), pSlower: fasterPValue(b.head_samples, b.base_samples),
        speedup: null, lowerBound: b.faster_lower_bound, verdict: b.verdict, unmeasurable: false, error: b.error,
      })), { minSpeedup: 1.05 });
      expect(d.decision, `#${p.pr.number}: ${d.reason}`).toBe('no change');
    }
  }, 180_000);
});
