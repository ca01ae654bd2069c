/**
 * The history of the generated repository: issues and merged pull requests in
 * number order (GitHub numbers both in one sequence), with fixed dates over
 * January to August 2024. Each PR says what it changes (exact text
 * replacements on the files of sources.ts) and what the funnel should make of
 * it; the generator's tests check those expectations against real builds,
 * test runs and measurements.
 */

export type ExpectedOutcome = 'published' | 'no change' | 'tests fail' | 'build fails' | 'not perf';

export interface Person {
  login: string;
  name: string;
}

export interface FileEdit {
  path: string;
  /** [before, after] pairs; each `before` must occur exactly once in the file. */
  replace?: Array<[string, string]>;
  /** The whole new content (a new file, or a rewrite). */
  content?: string;
}

export interface BranchCommit {
  message: string;
  at: string;
  edits: FileEdit[];
}

export interface Expectation {
  outcome: ExpectedOutcome;
  /** Stage 2's symbolic verdict on the PR (title words, non-core paths). */
  symbolic: boolean;
  /** Stage 3's verdict through the LLM stand-in; null when it is never judged (symbolic false). */
  judgedPerf: boolean | null;
  /** Why, in words: what the stage that stops it should find. */
  why: string;
  /**
   * Benchmarks (runner names) that run the changed code and show the outcome:
   * faster for published, unchanged for no change. Empty for a no-change PR
   * whose code no benchmark runs: the whole suite is unchanged.
   */
  benchmarks: string[];
  /** For published: the speedup the generator's tests require on those benchmarks, at least. */
  minSpeedup?: number;
}

export interface PRScript {
  kind: 'pr';
  number: number;
  title: string;
  body: string;
  author: Person;
  openedAt: string;
  mergedAt: string;
  /** squash: one new commit "Title (#N)" on main; merge: "Merge pull request #N from ..." with the branch as second parent. */
  style: 'squash' | 'merge';
  branch: string;
  commits: BranchCommit[];
  labels: string[];
  expected: Expectation;
}

export interface IssueScript {
  kind: 'issue';
  number: number;
  title: string;
  body: string;
  comments: string[];
  author: Person;
  openedAt: string;
}

export const MAINTAINER: Person = { login: 'ada-lindqvist', name: 'Ada Lindqvist' };
const BRN: Person = { login: 'brn-okafor', name: 'Bruno Okafor' };
const CHEN: Person = { login: 'chen-wei-dev', name: 'Chen Wei' };
const DMITRI: Person = { login: 'dmitri-k', name: 'Dmitri Kovalenko' };
const ELI: Person = { login: 'eli-perf', name: 'Eli Marchetti' };
const FATIMA: Person = { login: 'fatima-r', name: 'Fatima Rahman' };

/** The first commit on main (pushed directly, not a PR). */
export const INITIAL_COMMIT = { message: 'Initial import of fastlib', at: '2024-01-08T10:00:00+01:00', author: MAINTAINER };

const FENCE = '```';

export const HISTORY: ReadonlyArray<PRScript | IssueScript> = [
  {
    kind: 'issue', number: 1, author: DMITRI, openedAt: '2024-01-15T09:21:37+02:00',
    title: 'unique() takes seconds on a list of 50k ids',
    body: `I use \`fastlib.unique\` to drop duplicate ids from an export of about 50,000 rows, and it takes several seconds, far more than the rest of the pipeline.

${FENCE}python
import time, fastlib
ids = list(range(25_000)) * 2
t = time.perf_counter(); fastlib.unique(ids); print(time.perf_counter() - t)
${FENCE}

This prints about 6 seconds here. Doubling the input makes it four times slower.`,
    comments: [
      'Same here with 20k strings: it gets much worse as the input grows.',
      'Every item is compared with every item kept so far, so the time grows with the square of the input size. All the inputs I know of are hashable.',
    ],
  },
  {
    kind: 'pr', number: 2, author: BRN, openedAt: '2024-01-17T14:02:11+01:00', mergedAt: '2024-01-22T11:45:09+01:00',
    style: 'squash', branch: 'unique-linear', labels: ['performance'],
    title: 'Speed up unique: linear time instead of quadratic',
    body: `Fixes #1.

\`unique\` compared each item with every item kept so far. It now keeps the first-seen order with \`dict.fromkeys\`, one hash lookup per item. Items must be hashable, which every caller's are.`,
    commits: [{
      message: 'unique: one hash lookup per item instead of a list scan', at: '2024-01-17T13:58:40+01:00',
      edits: [{
        path: 'fastlib/dedupe.py', replace: [[
          `    """The distinct items of \`values\`, in the order they first appear."""
    kept = []
    for value in ensure_sequence(values):
        if value not in kept:
            kept.append(value)
    return kept
`,
          `    """The distinct (hashable) items of \`values\`, in the order they first appear."""
    # A dict keeps insertion order: one hash lookup per item instead of a scan of the kept items.
    return list(dict.fromkeys(ensure_sequence(values)))
`,
        ]],
      }],
    }],
    expected: {
      outcome: 'published', symbolic: true, judgedPerf: true, benchmarks: ['bench_dedupe.time_unique'], minSpeedup: 1.5,
      why: 'quadratic to linear: unique is many times faster',
    },
  },
  {
    kind: 'pr', number: 3, author: FATIMA, openedAt: '2024-01-30T10:15:00+00:00', mergedAt: '2024-02-06T16:20:31+00:00',
    style: 'squash', branch: 'describe-size', labels: ['enhancement'],
    title: 'Add describe_size for human-readable sizes',
    body: `Adds \`fastlib.describe_size(data)\`, e.g. \`"1.5 KiB (checksum 0x1c9a2b3f)"\`, for log lines. Byte units come from the small \`demo-units\` package, now a dependency.`,
    commits: [{
      message: 'Add describe_size', at: '2024-01-30T10:11:02+00:00',
      edits: [
        {
          path: 'fastlib/sizes.py', content: `"""Human-readable descriptions of byte strings."""

from demo_units import format_bytes

from .native import checksum


def describe_size(data):
    """\`data\`'s size in readable units and its checksum, e.g. "1.5 KiB (checksum 0x1c9a2b3f)"."""
    return "%s (checksum 0x%08x)" % (format_bytes(len(data)), checksum(data))
`,
        },
        {
          path: 'fastlib/__init__.py', replace: [
            ['from .report import to_json\n', 'from .report import to_json\nfrom .sizes import describe_size\n'],
            ['__all__ = ["checksum", "clamp_all", ', '__all__ = ["checksum", "clamp_all", "describe_size", '],
          ],
        },
        { path: 'pyproject.toml', replace: [['    "demo-helpers>=1.0",\n', '    "demo-helpers>=1.0",\n    "demo-units>=0.9",\n']] },
        {
          path: 'tests/test_sizes.py', content: `import unittest

from fastlib import describe_size


class DescribeSizeTest(unittest.TestCase):
    def test_units_and_checksum(self):
        self.assertEqual(describe_size(b"a"), "1 B (checksum 0xe40c292c)")
        self.assertTrue(describe_size(bytes(1536)).startswith("1.5 KiB "))
`,
        },
      ],
    }],
    expected: { outcome: 'not perf', symbolic: true, judgedPerf: false, benchmarks: [], why: 'a new feature and a new dependency' },
  },
  {
    kind: 'issue', number: 4, author: ELI, openedAt: '2024-02-08T18:03:12-05:00',
    title: 'rolling_sum gets slow with wide windows',
    body: `\`rolling_sum(values, window)\` is fine for small windows, but our smoothing uses windows of a few thousand samples and then a single call over a day of data takes most of a second. The time seems to grow with the window size, not just with the number of values.

${FENCE}python
values = list(range(200_000))
rolling_sum(values, 10)     # fast
rolling_sum(values, 2000)   # ~200 times slower
${FENCE}`,
    comments: [
      'Confirmed on 0.1.0. The C loop re-adds every value of each window, so the cost is values x window.',
      'cc @ada-lindqvist: would a patch to the extension be welcome?',
    ],
  },
  {
    kind: 'pr', number: 5, author: ELI, openedAt: '2024-02-12T09:30:00-05:00', mergedAt: '2024-02-20T14:12:48+01:00',
    style: 'merge', branch: 'rolling-sum-window', labels: ['performance', 'C extension'],
    title: 'Make rolling_sum linear in the window size for faster wide windows',
    body: `Closes #4.

Each window's sum is now the previous one plus the value that enters minus the value that leaves, so a call costs one pass over the values whatever the window. Integer sums, so the results are exactly the same.`,
    commits: [
      {
        message: 'rolling_sum: slide the window instead of re-summing it', at: '2024-02-12T09:12:33-05:00',
        edits: [{
          path: 'fastlib/_native.c', replace: [[
            `    for (Py_ssize_t i = 0; i < count; i++) {
        long long total = 0;
        for (Py_ssize_t j = i; j < i + window; j++)
            total += xs[j];
        PyObject *item`,
            `    /* Each window's sum is the previous one plus the value entering it minus the value leaving it. */
    long long total = 0;
    for (Py_ssize_t j = 0; j < window && j < n; j++)
        total += xs[j];
    for (Py_ssize_t i = 0; i < count; i++) {
        if (i > 0)
            total += xs[i + window - 1] - xs[i - 1];
        PyObject *item`,
          ]],
        }],
      },
      {
        message: 'Test a window longer than the input', at: '2024-02-13T11:40:05-05:00',
        edits: [{
          path: 'tests/test_native.py', replace: [[
            `    def test_window_of_one_is_the_input(self):`,
            `    def test_window_longer_than_the_input(self):
        self.assertEqual(rolling_sum([1, 2], 5), [])

    def test_window_of_one_is_the_input(self):`,
          ]],
        }],
      },
    ],
    expected: {
      outcome: 'published', symbolic: true, judgedPerf: true, benchmarks: ['bench_native.time_rolling_sum'], minSpeedup: 1.5,
      why: 'the C extension slides its window: rolling_sum is several times faster once rebuilt',
    },
  },
  {
    kind: 'issue', number: 6, author: CHEN, openedAt: '2024-02-26T08:44:19+08:00',
    title: 'tokenize is slow on long documents',
    body: 'Tokenizing our 40 MB corpus with `fastlib.tokenize` takes about a minute. A profile shows nearly all of it inside `re.findall`. Is there a faster way to split the text?',
    comments: ['Maybe the pattern is compiled again on every call?'],
  },
  {
    kind: 'pr', number: 7, author: CHEN, openedAt: '2024-02-29T10:02:51+08:00', mergedAt: '2024-03-05T09:31:17+01:00',
    style: 'squash', branch: 'precompile-word-pattern', labels: ['performance'],
    title: 'Speed up tokenize by precompiling the word pattern',
    body: 'Fixes #6.\n\nCompiles the word pattern once at import instead of passing the pattern string to `re.findall` on every call.',
    commits: [{
      message: 'Precompile the word pattern', at: '2024-02-29T09:58:10+08:00',
      edits: [{
        path: 'fastlib/text.py', replace: [
          ['import re\n\n\n', 'import re\n\n_WORD = re.compile(r"[a-z0-9\']+")\n\n\n'],
          [`    return re.findall(r"[a-z0-9']+", text.lower())`, '    return _WORD.findall(text.lower())'],
        ],
      }],
    }],
    expected: {
      outcome: 'no change', symbolic: true, judgedPerf: true, benchmarks: ['bench_text.time_tokenize'],
      why: "Python's re module already caches compiled patterns, so tokenize costs the same",
    },
  },
  {
    kind: 'issue', number: 8, author: DMITRI, openedAt: '2024-03-07T12:00:45+02:00',
    title: 'word_frequencies is slow for long documents',
    body: '`word_frequencies` on a 1 MB text takes over ten seconds, while tokenizing the same text takes a fraction of a second. It gets slower the more different words the text has.',
    comments: ['It counts each distinct word with a separate pass over all the words, so a text with many different words pays for every one of them.'],
  },
  {
    kind: 'pr', number: 9, author: BRN, openedAt: '2024-03-11T15:20:00+01:00', mergedAt: '2024-03-14T10:05:44+01:00',
    style: 'squash', branch: 'word-frequencies-counter', labels: ['performance'],
    title: 'Speed up word_frequencies with collections.Counter',
    body: 'Fixes #8.\n\nCounts all words in one pass with `collections.Counter` instead of one `list.count` pass per distinct word.',
    commits: [{
      message: 'word_frequencies: count in one pass', at: '2024-03-11T15:12:09+01:00',
      edits: [{
        path: 'fastlib/text.py', replace: [
          ['import re\n', 'import re\nfrom collections import Counter\n'],
          [`    words = tokenize(text)
    return {word: words.count(word) for word in set(words)}`, '    return dict(Counter(tokenize(text)))'],
        ],
      }],
    }],
    expected: {
      outcome: 'published', symbolic: true, judgedPerf: true, benchmarks: ['bench_text.time_word_frequencies'], minSpeedup: 1.5,
      why: 'one counting pass instead of one per distinct word: word_frequencies is several times faster',
    },
  },
  {
    kind: 'pr', number: 10, author: FATIMA, openedAt: '2024-03-18T09:00:00+00:00', mergedAt: '2024-03-21T13:37:02+00:00',
    style: 'squash', branch: 'unique-mixed-tests', labels: ['tests'],
    title: 'Add tests for unique with mixed types',
    body: 'Pins down what `unique` does with values that compare equal across types (1, 1.0 and True are one item).',
    commits: [{
      message: 'Test unique with mixed types', at: '2024-03-18T08:55:31+00:00',
      edits: [{
        path: 'tests/test_dedupe.py', replace: [[
          '    def test_empty(self):',
          `    def test_mixed_types(self):
        self.assertEqual(unique([1, "1", 1.0, True, None, None]), [1, "1", None])

    def test_empty(self):`,
        ]],
      }],
    }],
    expected: { outcome: 'not perf', symbolic: false, judgedPerf: null, benchmarks: [], why: 'changes only tests' },
  },
  {
    kind: 'issue', number: 11, author: CHEN, openedAt: '2024-03-26T07:15:00+08:00',
    title: 'import fastlib is slow in a command-line tool',
    body: 'Our CLI imports fastlib at start and `python -X importtime` lists `json` among the modules it pulls in. We never write reports from the CLI. Could fastlib import less at start?',
    comments: ['`json` is only needed by `to_json`; the other modules never use it.'],
  },
  {
    kind: 'pr', number: 12, author: CHEN, openedAt: '2024-03-28T11:11:11+08:00', mergedAt: '2024-04-03T17:02:26+02:00',
    style: 'squash', branch: 'lazy-json', labels: ['performance'],
    title: 'Lazy import of json for faster startup',
    body: 'Fixes #11.\n\n`json` is imported the first time `to_json` runs instead of when fastlib is imported.',
    commits: [{
      message: 'Import json when to_json first runs', at: '2024-03-28T11:02:40+08:00',
      edits: [{
        path: 'fastlib/report.py', replace: [
          ['"""Reports of word counts."""\n\nimport json\n', '"""Reports of word counts."""\n'],
          ['    """Word counts as JSON, most frequent first."""\n', '    """Word counts as JSON, most frequent first."""\n    import json  # here, not at the top: most programs never write a report\n\n'],
        ],
      }],
    }],
    expected: {
      outcome: 'no change', symbolic: true, judgedPerf: true, benchmarks: [],
      why: 'only import time changes, which no benchmark times',
    },
  },
  {
    kind: 'issue', number: 13, author: ELI, openedAt: '2024-04-09T16:48:00-04:00',
    title: 'clamp_all is a hotspot in our signal pipeline',
    body: 'Profiling our pipeline shows `clamp_all` at 30% of the time: it is called on every block of 100k samples. Two builtin calls per value seem expensive for what it does.',
    comments: ['A conditional expression per value should be much cheaper than calling min and max.'],
  },
  {
    kind: 'pr', number: 14, author: ELI, openedAt: '2024-04-11T10:00:00-04:00', mergedAt: '2024-04-16T12:30:00+02:00',
    style: 'squash', branch: 'clamp-conditional', labels: ['performance'],
    title: 'Faster clamp_all: conditional expressions instead of min/max',
    body: 'Fixes #13.\n\nCompares each value with the bounds directly instead of calling `min` and `max` on it.',
    commits: [{
      message: 'clamp_all: compare instead of calling min and max', at: '2024-04-11T09:47:19-04:00',
      edits: [{
        path: 'fastlib/stats.py', replace: [[
          `    if lo > hi:
        raise ValueError("clamp_all: lo (%r) is greater than hi (%r)" % (lo, hi))
    return [min(max(value, lo), hi) for value in ensure_sequence(values)]`,
          `    # Comparisons instead of two builtin calls per value.
    return [lo if value < lo else hi if value > hi else value for value in ensure_sequence(values)]`,
        ]],
      }],
    }],
    expected: {
      outcome: 'tests fail', symbolic: true, judgedPerf: true, benchmarks: ['bench_stats.time_clamp_all'],
      why: 'faster, but the rewrite dropped the check for lo > hi: tests.test_stats fails test_rejects_inverted_bounds',
    },
  },
  {
    kind: 'pr', number: 15, author: MAINTAINER, openedAt: '2024-04-17T08:10:00+02:00', mergedAt: '2024-04-17T09:02:13+02:00',
    style: 'squash', branch: 'restore-clamp-check', labels: ['bug'],
    title: 'Restore the bounds check in clamp_all',
    body: 'The rewrite in #14 dropped the `ValueError` for `lo > hi`; `test_rejects_inverted_bounds` has failed on main since.',
    commits: [{
      message: 'clamp_all: reject lo > hi again', at: '2024-04-17T08:05:51+02:00',
      edits: [{
        path: 'fastlib/stats.py', replace: [[
          '    # Comparisons instead of two builtin calls per value.\n',
          `    if lo > hi:
        raise ValueError("clamp_all: lo (%r) is greater than hi (%r)" % (lo, hi))
    # Comparisons instead of two builtin calls per value.
`,
        ]],
      }],
    }],
    expected: { outcome: 'not perf', symbolic: true, judgedPerf: false, benchmarks: [], why: 'a bug fix' },
  },
  {
    kind: 'pr', number: 16, author: FATIMA, openedAt: '2024-05-02T13:00:00+00:00', mergedAt: '2024-05-08T15:45:10+00:00',
    style: 'squash', branch: 'window-validation', labels: ['enhancement'],
    title: 'Validate the rolling_sum window with demo-helpers 1.1',
    body: '`demo-helpers` 1.1 has `require_positive`, whose error names the argument and its value. Requires demo-helpers>=1.1.',
    commits: [{
      message: 'Use require_positive for the window', at: '2024-05-02T12:52:19+00:00',
      edits: [
        {
          path: 'fastlib/native.py', replace: [
            ['from demo_helpers import ensure_sequence\n', 'from demo_helpers import ensure_sequence, require_positive\n'],
            ['    return _native.rolling_sum(ensure_sequence(values), window)', '    require_positive("window", window)\n    return _native.rolling_sum(ensure_sequence(values), window)'],
          ],
        },
        { path: 'pyproject.toml', replace: [['    "demo-helpers>=1.0",\n', '    "demo-helpers>=1.1",\n']] },
      ],
    }],
    expected: { outcome: 'not perf', symbolic: true, judgedPerf: false, benchmarks: [], why: 'input validation and a raised requirement' },
  },
  {
    kind: 'issue', number: 17, author: DMITRI, openedAt: '2024-05-13T10:31:02+02:00',
    title: 'checksum of large files is slow',
    body: 'We checksum uploaded files with `fastlib.checksum` and a 2 GB file takes about two seconds. Other hashes we tried run at several GB/s. Is there room to make checksum faster?',
    comments: ['FNV-1a processes one byte at a time with a multiply in between, so each step waits for the previous one.'],
  },
  {
    kind: 'pr', number: 18, author: DMITRI, openedAt: '2024-05-20T09:00:00+02:00', mergedAt: '2024-05-28T18:20:44+02:00',
    style: 'merge', branch: 'simd-checksum', labels: ['performance', 'C extension'],
    title: 'Vectorize checksum with SIMD kernels',
    body: 'Fixes #17.\n\nHashes 16 bytes per step with the kernels in `simd_kernels.h`.',
    commits: [{
      message: 'checksum: use the 16-lane kernel', at: '2024-05-20T08:41:27+02:00',
      edits: [{
        path: 'fastlib/_native.c', replace: [
          ['#include <stdint.h>\n', '#include <stdint.h>\n\n#include "simd_kernels.h" /* fnv1a_16_lanes */\n'],
          [`    uint32_t hash = 2166136261u;
    for (Py_ssize_t i = 0; i < view.len; i++)
        hash = mix(hash, bytes[i]);`, '    uint32_t hash = fnv1a_16_lanes(bytes, view.len, 2166136261u);'],
        ],
      }],
    }],
    expected: {
      outcome: 'build fails', symbolic: true, judgedPerf: true, benchmarks: ['bench_native.time_checksum'],
      why: 'simd_kernels.h was never committed: build_ext of the merge fails (the base builds)',
    },
  },
  {
    kind: 'pr', number: 19, author: MAINTAINER, openedAt: '2024-05-29T07:30:00+02:00', mergedAt: '2024-05-29T08:14:51+02:00',
    style: 'squash', branch: 'fix-extension-build', labels: ['bug'],
    title: 'Fix the extension build after #18',
    body: '#18 includes `simd_kernels.h`, which was never added, so the extension does not compile. Back to the byte loop until the kernels land.',
    commits: [{
      message: 'Back to the byte loop', at: '2024-05-29T07:26:13+02:00',
      edits: [{
        path: 'fastlib/_native.c', replace: [
          ['#include <stdint.h>\n\n#include "simd_kernels.h" /* fnv1a_16_lanes */\n', '#include <stdint.h>\n'],
          ['    uint32_t hash = fnv1a_16_lanes(bytes, view.len, 2166136261u);', `    uint32_t hash = 2166136261u;
    for (Py_ssize_t i = 0; i < view.len; i++)
        hash = mix(hash, bytes[i]);`],
        ],
      }],
    }],
    expected: { outcome: 'not perf', symbolic: true, judgedPerf: false, benchmarks: [], why: 'a build fix' },
  },
  {
    kind: 'pr', number: 20, author: ELI, openedAt: '2024-06-10T14:00:00-04:00', mergedAt: '2024-06-13T10:10:10+02:00',
    style: 'squash', branch: 'inline-mix', labels: ['performance', 'C extension'],
    title: 'Optimize checksum: mark the mixing step inline',
    body: 'Towards #17.\n\nMarks `mix` as `static inline` so the checksum loop has no call in it.',
    commits: [{
      message: 'inline mix', at: '2024-06-10T13:51:42-04:00',
      edits: [{
        path: 'fastlib/_native.c', replace: [[
          '/* One FNV-1a step. */\nstatic uint32_t mix(',
          '/* One FNV-1a step, inlined into the checksum loop. */\nstatic inline uint32_t mix(',
        ]],
      }],
    }],
    expected: {
      outcome: 'no change', symbolic: true, judgedPerf: true, benchmarks: ['bench_native.time_checksum'],
      why: 'the compiler already inlines a static function this small at -O2: the same machine code',
    },
  },
  {
    kind: 'pr', number: 21, author: FATIMA, openedAt: '2024-06-20T09:00:00+00:00', mergedAt: '2024-06-25T11:11:00+00:00',
    style: 'squash', branch: 'docs-native', labels: ['documentation'],
    title: 'Describe the native functions in the docs',
    body: 'Documents `rolling_sum` and `checksum`, and how to build the extension.',
    commits: [{
      message: 'docs: rolling_sum and checksum', at: '2024-06-20T08:50:00+00:00',
      edits: [{
        path: 'docs/usage.md', replace: [[
          `word_frequencies("a b a")      # {"a": 2, "b": 1}
${FENCE}
`,
          `word_frequencies("a b a")      # {"a": 2, "b": 1}
${FENCE}

## The C extension

\`rolling_sum(values, window)\` sums every run of \`window\` consecutive integers, and
\`checksum(data)\` is the 32-bit FNV-1a hash of a bytes-like object. Both live in
\`fastlib._native\`: build it with \`python setup.py build_ext --inplace\`.
`,
        ]],
      }],
    }],
    expected: { outcome: 'not perf', symbolic: false, judgedPerf: null, benchmarks: [], why: 'documentation only' },
  },
  {
    kind: 'pr', number: 22, author: ELI, openedAt: '2024-07-08T10:00:00-04:00', mergedAt: '2024-07-10T09:45:00+02:00',
    style: 'squash', branch: 'bench-clamp-ints', labels: ['benchmarks'],
    title: 'Add a benchmark for clamp_all on integers',
    body: 'Integers take another path through the comparisons than floats; this times them too.',
    commits: [{
      message: 'bench: clamp_all on ints', at: '2024-07-08T09:41:00-04:00',
      edits: [{
        path: 'benchmarks/bench_stats.py', replace: [
          ['FLOATS = [_rng.uniform(-2.0, 2.0) for _ in range(20000)]\n', 'FLOATS = [_rng.uniform(-2.0, 2.0) for _ in range(20000)]\nINTS = [_rng.randrange(-200, 200) for _ in range(20000)]\n'],
          ['    clamp_all(FLOATS, -1.0, 1.0)\n', '    clamp_all(FLOATS, -1.0, 1.0)\n\n\ndef time_clamp_all_ints():\n    clamp_all(INTS, -100, 100)\n'],
        ],
      }],
    }],
    expected: { outcome: 'not perf', symbolic: false, judgedPerf: null, benchmarks: [], why: 'changes only the benchmark suite' },
  },
  {
    kind: 'pr', number: 23, author: BRN, openedAt: '2024-08-01T16:00:00+01:00', mergedAt: '2024-08-07T12:00:00+01:00',
    style: 'squash', branch: 'trimmed-mean', labels: ['enhancement'],
    title: 'Add trimmed_mean',
    body: '`trimmed_mean(values, proportion=0.1)`: the mean without the lowest and highest tenth, for noisy measurements.',
    commits: [{
      message: 'Add trimmed_mean', at: '2024-08-01T15:40:00+01:00',
      edits: [
        {
          path: 'fastlib/stats.py', replace: [[
            '    return [lo if value < lo else hi if value > hi else value for value in ensure_sequence(values)]\n',
            `    return [lo if value < lo else hi if value > hi else value for value in ensure_sequence(values)]


def trimmed_mean(values, proportion=0.1):
    """The mean of \`values\` without the lowest and highest \`proportion\` of them."""
    ordered = sorted(ensure_sequence(values))
    cut = int(len(ordered) * proportion)
    kept = ordered[cut:len(ordered) - cut] or ordered
    return sum(kept) / len(kept)
`,
          ]],
        },
        {
          path: 'fastlib/__init__.py', replace: [
            ['from .stats import clamp_all\n', 'from .stats import clamp_all, trimmed_mean\n'],
            ['"tokenize", "unique", "word_frequencies"]', '"tokenize", "trimmed_mean", "unique", "word_frequencies"]'],
          ],
        },
        {
          path: 'tests/test_stats.py', replace: [
            ['from fastlib import clamp_all\n', 'from fastlib import clamp_all, trimmed_mean\n'],
            [`            clamp_all([1, 2], 5, 1)
`, `            clamp_all([1, 2], 5, 1)


class TrimmedMeanTest(unittest.TestCase):
    def test_drops_the_extremes(self):
        self.assertEqual(trimmed_mean([1, 2, 3, 4, 5, 6, 7, 8, 9, 1000]), 5.5)

    def test_short_input_keeps_everything(self):
        self.assertEqual(trimmed_mean([2, 4]), 3)
`],
          ],
        },
      ],
    }],
    expected: { outcome: 'not perf', symbolic: true, judgedPerf: false, benchmarks: [], why: 'a new function' },
  },
];
