import { describe, expect, it } from 'vitest';
import { anonymize } from '../src/domain/anonymize.js';
import { countedSections, extractAnswer, promptSources, sectionCounts, type Sections } from '../src/domain/extraction.js';
import { checkFidelity, lcsLength, SupportIndex } from '../src/domain/fidelity.js';
import { findIssueRefs, maskIssueRefs } from '../src/domain/issue-refs.js';
import { measureLeakage } from '../src/domain/leakage.js';
import { parseProblemTemplate, renderProblem } from '../src/domain/problem-template.js';
import { splitCode } from '../src/domain/markdown.js';
import { countTokens, truncateToTokens } from '../src/domain/tokens.js';
import { extractDocuments, extractSections, INVENTED_SENTENCE } from '../src/standins/llm/extract-answers.js';

const here = { owner: 'acme', name: 'lib' };
const sections = (s: Partial<Sections>): Sections =>
  ({ initial_observations: '', triage_attempts: '', solution_overview: '', solution_observations: '', ...s });

describe('issue references', () => {
  it('finds full URLs, owner/repo#N and #N, in order, each once', () => {
    const refs = findIssueRefs(
      'Closes #12. See https://github.com/numpy/numpy/issues/345#issuecomment-1 and pandas-dev/pandas#678, again #12; '
      + 'discussed in https://github.com/acme/lib/pull/9.', here);
    expect(refs.map((r) => [`${r.owner}/${r.name}#${r.number}`, r.form, r.pullUrl])).toEqual([
      ['acme/lib#12', '#N', false],
      ['numpy/numpy#345', 'url', false],
      ['pandas-dev/pandas#678', 'owner/repo#N', false],
      ['acme/lib#9', 'url', true],
    ]);
  });

  it('masks references in prose, not in code', () => {
    expect(maskIssueRefs('Fixed by #10 and numpy/numpy#3, see https://github.com/acme/lib/pull/10. `x #2`'))
      .toBe('Fixed by [link] and [link], see [link]. `x #2`');
  });

  it('ignores code, HTML entities, anchors and words glued to a #', () => {
    const text = 'Use `x[#3]` here.\n```python\nx = y  #4\n```\n&#123; foo#5 path/a/b#6 see issue#7 and (#8)';
    expect(findIssueRefs(text, here).map((r) => r.number)).toEqual([8]);
  });
});

describe('markdown code', () => {
  it('splits fences, inline spans and >>> sessions, and joins back to the input', () => {
    const text = 'a `b` c\n```py\n@property\n```\n>>> @x\nplain ``d ` e`` and `unclosed\n~~~\nopen fence';
    const segs = splitCode(text);
    expect(segs.map((s) => s.text).join('')).toBe(text);
    expect(segs.filter((s) => s.code).map((s) => s.text)).toEqual(['`b`', '```py\n@property\n```\n>>> @x\n', '``d ` e``', '~~~\nopen fence']);
  });
});

describe('anonymization', () => {
  it('leaves @property in code blocks and inline code alone, and decorators outside code', () => {
    const text = 'Thanks @alice!\n\n```python\nclass A:\n    @property\n    def x(self):\n        return self._x\n```\n'
      + 'Use `@property` or `@functools.cache`, like the @property decorator.\n@lru_cache(maxsize=None)\ndef f(): ...\n';
    const { text: out, counts } = anonymize(text);
    expect(out).toContain('Thanks @[user]!');
    expect(out).toContain('    @property\n    def x(self):');
    expect(out).toContain('Use `@property` or `@functools.cache`, like the @property decorator.');
    expect(out).toContain('@lru_cache(maxsize=None)\ndef f()');
    expect(counts.mentions).toBe(1);
  });

  it('replaces e-mails, mentions, user URLs, images, home paths, IPs and tokens', () => {
    const text = [
      'Reported by jane.doe@example.org and @bob-smith with @acme/core-team, see https://github.com/carol.',
      'Repository links stay: https://github.com/acme/lib/issues/3.',
      '![profile](https://user-images.githubusercontent.com/1/2.png) <img src="https://example.com/x.png" width=300>',
      'Plot: https://example.com/plots/run.jpg',
      'Traceback from /home/dave/venv/lib/site.py and /Users/erin/proj and C:\\Users\\Frank\\x.py',
      'Server 10.0.0.12 but not version 1.2.3.4.5; token ghp_abcdefghijklmnopqrstuvwxyz012345, password=hunter2hunter2',
      '```\nFile "/home/dave/lib.py", connecting to 192.168.1.7 as ops@example.com\n```',
    ].join('\n');
    const { text: out, counts } = anonymize(text);
    for (const gone of ['jane.doe', '@bob-smith', 'core-team', 'carol', 'user-images', 'x.png', 'run.jpg', 'dave', 'erin', 'Frank',
      '10.0.0.12', '192.168.1.7', 'ghp_', 'hunter2', 'ops@example.com']) expect(out).not.toContain(gone);
    expect(out).toContain('https://github.com/acme/lib/issues/3');
    expect(out).toContain('version 1.2.3.4.5');
    expect(out).toContain('~/venv/lib/site.py');
    expect(out).toContain('File "~/lib.py"');
    expect(counts).toEqual({ emails: 2, mentions: 2, user_urls: 1, images: 3, home_paths: 4, ips: 2, tokens: 2 });
    expect(anonymize(out).counts).toEqual({ emails: 0, mentions: 0, user_urls: 0, images: 0, home_paths: 0, ips: 0, tokens: 0 });
  });
});

describe('fidelity', () => {
  const source = [
    'Calling `ds.groupby("x").sum()` with a million groups takes more than 30 seconds. I expected well under a second.',
    '```python\nds = lib.make(1_000_000)\nds.groupby("x").sum()\n```',
    'I profiled it with cProfile and most of the time is spent in the Python loop over groups.',
  ].join('\n\n');

  it('drops a made-up sentence and keeps the supported ones and verbatim code', () => {
    const extracted = sections({
      initial_observations: 'Calling `ds.groupby("x").sum()` with a million groups takes more than 30 seconds. '
        + 'The slowdown was first measured on a Cray supercomputer in 1998.\n\n```python\nds = lib.make(1_000_000)\nds.groupby("x").sum()\n```',
      triage_attempts: '- most of the time is spent in the Python loop over groups.\n- It was caused by a missing index on the database.',
    });
    const { sections: kept, record } = checkFidelity(extracted, [source], 0.75);
    expect(kept.initial_observations).toBe('Calling `ds.groupby("x").sum()` with a million groups takes more than 30 seconds.\n\n'
      + '```python\nds = lib.make(1_000_000)\nds.groupby("x").sum()\n```');
    expect(kept.triage_attempts).toBe('- most of the time is spent in the Python loop over groups.');
    expect(record.dropped.map((d) => [d.section, d.text])).toEqual([
      ['initial_observations', 'The slowdown was first measured on a Cray supercomputer in 1998.'],
      ['triage_attempts', 'It was caused by a missing index on the database.'],
    ]);
    expect(record).toMatchObject({ checked: 5, kept: 3, min_ratio: 0.75 });
  });

  it('code must be verbatim; a sentence the splitter cut differently is still supported', () => {
    const altered = sections({ initial_observations: '```python\nds = lib.make(2_000_000)\nds.groupby("x").sum()\n```' });
    const { record } = checkFidelity(altered, [source], 0.75);
    expect(record.dropped).toMatchObject([{ kind: 'code', section: 'initial_observations' }]);
    const index = new SupportIndex([source]);
    expect(index.support('I expected well under a second, and I profiled it with cProfile.')).toBeLessThan(0.75);
    expect(index.support('takes more than 30 seconds. I expected well under a second.')).toBe(1);
  });

  it('the ratio is the longest common subsequence over the sentence\'s words', () => {
    expect(lcsLength(['a', 'b', 'c', 'd'], ['a', 'x', 'c', 'd', 'b'])).toBe(3);
    const index = new SupportIndex(['one two three four five six seven eight']);
    expect(index.support('one two three four five six')).toBe(1);
    expect(index.support('one two three four nine ten eleven twelve')).toBe(0.5);
    expect(index.support('one two three four five six nine ten')).toBe(0.75);
  });
});

describe('extraction answer', () => {
  it('a section counts with >= 20 characters and a letter', () => {
    expect(sectionCounts('too short')).toBe(false);
    expect(sectionCounts('1234567890 1234567890 12')).toBe(false);
    expect(sectionCounts('This is long enough to count.')).toBe(true);
    expect(countedSections(sections({ initial_observations: '  slow ', triage_attempts: 'Profiling shows the loop dominates.' })))
      .toEqual(sections({ triage_attempts: 'Profiling shows the loop dominates.' }));
  });

  it('checks the JSON with zod: lists join, odd keys normalize, other types are invalid', () => {
    expect(extractAnswer.parse({ 'Initial observations': ['a', 'b'], solution_overview: null })).toEqual(sections({ initial_observations: 'a\nb' }));
    expect(extractAnswer.safeParse({ initial_observations: 42 }).success).toBe(false);
    expect(extractAnswer.safeParse({ verdict: 'YES' }).success).toBe(false);
  });

  it('the prompt shows documents within a budget, each cut to a share of it', () => {
    const docs = [
      { kind: 'pull request' as const, heading: 'Pull request: t', text: 'word '.repeat(3000) },
      { kind: 'issue' as const, heading: 'Issue a/b#1: slow', text: 'The issue text.' },
    ];
    const out = promptSources(docs, 1000, countTokens, (t, n) => truncateToTokens(t, n).text);
    expect(countTokens(out.shown[0].text)).toBeLessThanOrEqual(260);
    expect(out.shown[0].text.endsWith('[...]')).toBe(true);
    expect(out.text).toContain('=== Issue a/b#1: slow ===\nThe issue text.');
    expect(out.omitted).toBe(0);
  });
});

describe('leakage', () => {
  const patch = [
    'diff --git a/lib/groupby.py b/lib/groupby.py',
    '--- a/lib/groupby.py',
    '+++ b/lib/groupby.py',
    '@@ -1,4 +1,4 @@',
    ' def groupby_reduce(values, codes):',
    '-    return [values[codes == c].sum() for c in np.unique(codes)]',
    '+    order = np.argsort(codes, kind="stable")',
    '+    starts = np.flatnonzero(np.diff(codes[order], prepend=-1))',
    '+    return np.add.reduceat(values[order], starts)',
    'diff --git a/lib/tests/test_groupby.py b/lib/tests/test_groupby.py',
    '--- a/lib/tests/test_groupby.py',
    '+++ b/lib/tests/test_groupby.py',
    '@@ -1,1 +1,2 @@',
    '+    assert groupby_reduce(np.arange(10), np.zeros(10, int)) == [45]',
  ].join('\n');

  it('a problem that quotes the new code scores high; the old code and the tests do not count', () => {
    const leaked = measureLeakage('It is slow.\n```python\norder = np.argsort(codes, kind="stable")\nreturn np.add.reduceat(values[order], starts)\n```', patch);
    expect(leaked.score).toBeGreaterThan(0.5);
    expect(leaked.quoted_lines).toEqual(['order = np.argsort(codes, kind="stable")', 'return np.add.reduceat(values[order], starts)']);
    const fine = measureLeakage('`groupby_reduce` is slow: `return [values[codes == c].sum() for c in np.unique(codes)]` loops in Python.\n'
      + '`assert groupby_reduce(np.arange(10), np.zeros(10, int)) == [45]`', patch);
    expect(fine.score).toBe(0);
    expect(measureLeakage('anything at all here for sure', null).score).toBe(0);
  });
});

describe('problem template', () => {
  it('fills values, drops empty sections, keeps code in values as it is', () => {
    const t = parseProblemTemplate('<!-- {{ignored}} for editors -->\n# {{repo}}\n\n{{#triage}}\n## Triage\n\n{{triage}}\n{{/triage}}\n\n\n## Issues\n\n{{issues}}\n');
    expect(t.placeholders.sort()).toEqual(['issues', 'repo', 'triage']);
    expect(renderProblem(t, { repo: 'a/b', triage: '  ', issues: '```\nx\n\n\n\ny\n```' })).toBe('# a/b\n\n## Issues\n\n```\nx\n\n\n\ny\n```\n');
    expect(renderProblem(t, { repo: 'a/b', triage: 'Profiled: {{repo}}', issues: '' })).toContain('## Triage\n\nProfiled: {{repo}}');
    expect(() => renderProblem(t, { repo: 'a/b', triage: '' })).toThrow(/no value for issues/);
  });
});

describe('LLM stand-in: extraction answers', () => {
  const prompt = (prBody: string) => [
    'Task: extract', 'Title: Speed up groupby', '',
    `=== Pull request: Speed up groupby ===\n${prBody}`, '',
    '=== Issue acme/lib#5: groupby is slow ===\nGroupby with many groups takes 30 seconds on my data. It should take one. Third.\n\n```python\nds.groupby("x").sum()\n```', '',
    '--- Comment 1 on acme/lib#5 ---\nProfiling shows the Python loop dominates. More.', '',
    'Reply exactly in this JSON shape:', '{"initial_observations": "..."}',
  ].join('\n');

  it('copies sentences deterministically, and misbehaves only when a marker says so', () => {
    expect(extractDocuments(prompt('Use reduceat.')).map((d) => d.kind)).toEqual(['pull request', 'issue', 'comment']);
    const plain = extractSections(prompt('This uses reduceat. It is 20x faster. Benchmarks included.'));
    expect(plain).toEqual({
      initial_observations: 'Groupby with many groups takes 30 seconds on my data. It should take one.\n\n```python\nds.groupby("x").sum()\n```',
      triage_attempts: 'Profiling shows the Python loop dominates.',
      solution_overview: 'This uses reduceat. It is 20x faster.',
      solution_observations: 'Benchmarks included.',
    });
    expect(extractSections(prompt('Use reduceat. [standin:invent]')).initial_observations.endsWith(INVENTED_SENTENCE)).toBe(true);
    const copied = extractSections(prompt('[standin:copy-solution] Use reduceat:\n```python\nnp.add.reduceat(v, s)\n```'));
    expect(copied.initial_observations).toContain('Use reduceat:\n```python\nnp.add.reduceat(v, s)\n```');
    expect(copied.initial_observations).not.toContain('[standin:');
    expect(Object.values(extractSections(prompt('[standin:empty]')))).toEqual(['', '', '', '']);
  });
});
