/**
 * The oracle's tests, pure parts (src/domain/oracle-tests.ts): which tests
 * cover a patch, what pytest's and unittest's output says per test, and when
 * the head broke a test.
 */
import { describe, expect, it } from 'vitest';
import {
  compareTests, parsePytest, parseUnittest, selectTests, testCommand, testFilesOf, type TreeTests,
} from '../src/domain/oracle-tests.js';

describe('selecting the tests that cover a patch', () => {
  const tests = [
    { path: 'tests/test_stats.py', text: 'import unittest\nfrom fastlib.stats import clamp\n' },
    { path: 'tests/test_native.py', text: 'from fastlib import native\n' },
    { path: 'tests/test_report.py', text: 'from fastlib import (\n    report,\n    stats,\n)\n' },
    { path: 'tests/test_text.py', text: 'import fastlib.text as t\n' },
  ];

  it('by name (test_<module>, a C file\'s module without its underscore) and by import', () => {
    expect(selectTests(['fastlib/stats.py'], tests)).toMatchObject({ method: 'covering', files: ['tests/test_report.py', 'tests/test_stats.py'] });
    expect(selectTests(['fastlib/_native.c'], tests).files).toEqual(['tests/test_native.py']);
    expect(selectTests(['fastlib/text.py'], tests).files).toEqual(['tests/test_text.py']);
  });

  it('the whole suite when nothing names the changed modules; none when there are no tests; the PR\'s own test files too', () => {
    expect(selectTests(['fastlib/dedupe.py'], tests)).toMatchObject({ method: 'all', files: tests.map((t) => t.path) });
    expect(selectTests(['fastlib/dedupe.py'], [])).toMatchObject({ method: 'none', files: [], reason: 'no tests found' });
    expect(selectTests(['fastlib/dedupe.py', 'tests/test_text.py'], tests).files).toEqual(['tests/test_text.py']);
  });

  it('test files by convention, never inside the benchmark suite or hidden directories', () => {
    expect(testFilesOf(['tests/test_a.py', 'tests/helpers.py', 'pkg/b_test.py', 'benchmarks/test_bench.py', '.tox/tests/test_x.py', 'tests/conftest.py'], 'benchmarks'))
      .toEqual(['pkg/b_test.py', 'tests/test_a.py']);
  });

  it('commands: pytest with every test reported, unittest with dotted module names', () => {
    expect(testCommand('pytest', 'py', ['tests/test_a.py'])).toEqual(['py', '-m', 'pytest', '-q', '-rA', '-p', 'no:cacheprovider', '--color=no', '-o', 'addopts=', 'tests/test_a.py']);
    expect(testCommand('unittest', 'py', ['tests/test_a.py'])).toEqual(['py', '-m', 'unittest', '-v', 'tests.test_a']);
  });
});

describe('reading test output', () => {
  it('pytest -rA: every outcome line, a teardown error after a pass counts', () => {
    const out = parsePytest([
      '..F', '=========================== short test summary info ============================',
      'PASSED tests/test_stats.py::TestClamp::test_ok',
      'PASSED tests/test_stats.py::TestClamp::test_teardown',
      'ERROR tests/test_stats.py::TestClamp::test_teardown - RuntimeError: boom',
      'FAILED tests/test_stats.py::TestClamp::test_rejects_inverted_bounds - AssertionError: ValueError not raised',
      'SKIPPED [1] tests/test_native.py:12: no compiler',
      'ERROR tests/test_text.py - ImportError: cannot import name',
    ].join('\n'));
    expect(Object.fromEntries(out)).toEqual({
      'tests/test_stats.py::TestClamp::test_ok': 'passed',
      'tests/test_stats.py::TestClamp::test_teardown': 'error',
      'tests/test_stats.py::TestClamp::test_rejects_inverted_bounds': 'failed',
      'tests/test_native.py': 'skipped',
      'tests/test_text.py': 'error',
    });
  });

  it('unittest -v: Python 3.11\'s ids, older ones, docstrings on the next line, modules that do not import', () => {
    const out = parseUnittest([
      'test_ok (tests.test_stats.TestClamp.test_ok) ... ok',
      'test_rejects_inverted_bounds (tests.test_stats.TestClamp.test_rejects_inverted_bounds) ... FAIL',
      'test_old (tests.test_old.T) ... ERROR',
      'test_doc (tests.test_stats.TestClamp.test_doc)',
      'Clamp keeps values inside. ... ok',
      "test_skip (tests.test_stats.TestClamp.test_skip) ... skipped 'no'",
      'ERROR: test_text (unittest.loader._FailedTest.test_text)',
    ].join('\n'));
    expect(Object.fromEntries(out)).toEqual({
      'tests.test_stats.TestClamp.test_ok': 'passed',
      'tests.test_stats.TestClamp.test_rejects_inverted_bounds': 'failed',
      'tests.test_old.T.test_old': 'error',
      'tests.test_stats.TestClamp.test_doc': 'passed',
      'tests.test_stats.TestClamp.test_skip': 'skipped',
      'import:test_text': 'error',
    });
  });
});

describe('the verdict on both trees', () => {
  const tree = (o: Record<string, string>, extra: Partial<TreeTests> = {}): TreeTests => ({
    runner: 'pytest', exitCode: 0, timedOut: false, seconds: 1, outcomes: new Map(Object.entries(o)) as TreeTests['outcomes'], ...extra,
  });

  it('a test passing on the base and failing on the head breaks the run; one failing on both does not', () => {
    const v = compareTests(tree({ a: 'passed', b: 'passed', c: 'failed' }), tree({ a: 'passed', b: 'failed', c: 'failed' }, { exitCode: 1 }));
    expect(v).toMatchObject({ ok: false, broken: ['b'] });
    expect(v.reason).toMatch(/pass on the base and fail on the head: b/);
    expect(compareTests(tree({ a: 'passed', c: 'failed' }), tree({ a: 'passed', c: 'failed' }, { exitCode: 1 }))).toMatchObject({ ok: true, broken: [] });
  });

  it('a test module that no longer imports on the head breaks its tests', () => {
    expect(compareTests(tree({ 'tests/t.py::x': 'passed' }), tree({ 'tests/t.py': 'error' }, { exitCode: 2 }))).toMatchObject({ ok: false, broken: ['tests/t.py::x'] });
    expect(compareTests(tree({ 'tests.test_t.T.x': 'passed' }), tree({ 'import:test_t': 'error' }, { exitCode: 1 }))).toMatchObject({ ok: false, broken: ['tests.test_t.T.x'] });
  });

  it('a head that times out or dies without results fails; a base that times out or passes nothing is not compared', () => {
    expect(compareTests(tree({ a: 'passed' }), tree({}, { timedOut: true, exitCode: null })).ok).toBe(false);
    expect(compareTests(tree({ a: 'passed' }), tree({}, { exitCode: 139 })).ok).toBe(false);
    expect(compareTests(tree({}, { timedOut: true }), tree({ a: 'failed' })).ok).toBeNull();
    expect(compareTests(tree({ a: 'failed' }), tree({ a: 'failed' })).ok).toBeNull();
  });
});
