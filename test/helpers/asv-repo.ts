import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** An empty temporary directory with a git runner and a file writer for it. */
export function scratchRepo(prefix: string) {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=Dev', '-c', 'user.email=dev@example.com', '-c', 'init.defaultBranch=main', ...args], { cwd: dir, encoding: 'utf8' }).trim();
  const write = (p: string, text: string) => {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), text);
  };
  return { dir, git, write };
}

/**
 * A real repository with an ASV suite: commit `slow` has a quadratic
 * de-duplication, commit `fast` makes it linear. The suite also has a
 * parameterized class, a benchmark that raises and one that times out.
 */
export function makeAsvRepo(): { dir: string; slow: string; fast: string } {
  const { dir, git, write } = scratchRepo('perfmine-asv-');
  git('init', '-q');
  write('asv.conf.json', '{\n  // a real asv config allows comments\n  "version": 1,\n  "project": "dedup",\n  "benchmark_dir": "benchmarks",\n}\n');
  write('dedup/__init__.py', 'from .core import dedupe\n');
  write('dedup/core.py', [
    'def dedupe(xs):',
    '    out = []',
    '    for x in xs:',
    '        if x not in out:  # quadratic: a list scan per item',
    '            out.append(x)',
    '    return out',
    '',
  ].join('\n'));
  write('benchmarks/__init__.py', '');
  write('benchmarks/bench_dedupe.py', [
    'import time',
    'from dedup import dedupe',
    '',
    'DATA = list(range(400)) * 2',
    '',
    'def time_dedupe():',
    '    dedupe(DATA)',
    '',
    'def time_boom():',
    '    raise ValueError("boom")',
    '',
    'def time_hang():',
    '    time.sleep(30)',
    'time_hang.timeout = 1',
    '',
    'class TimeSizes:',
    '    params = [[10, 50], ["list", "tuple"]]',
    '    param_names = ["n", "kind"]',
    '    def setup(self, n, kind):',
    '        self.data = list(range(n)) if kind == "list" else tuple(range(n))',
    '    def time_dedupe_sized(self, n, kind):',
    '        dedupe(self.data)',
    '',
  ].join('\n'));
  git('add', '.');
  git('commit', '-qm', 'quadratic dedupe');
  const slow = git('rev-parse', 'HEAD');
  write('dedup/core.py', [
    'def dedupe(xs):',
    '    return list(dict.fromkeys(xs))  # linear',
    '',
  ].join('\n'));
  git('commit', '-qam', 'Speed up dedupe: linear instead of quadratic (#2)');
  const fast = git('rev-parse', 'HEAD');
  return { dir, slow, fast };
}

/**
 * A real repository whose package is a C extension: commit `slow` does
 * n*n iterations in C, commit `fast` does n. Its trees only import after
 * `setup.py build_ext --inplace`.
 */
export function makeExtensionRepo(): { dir: string; slow: string; fast: string } {
  const { dir, git, write } = scratchRepo('perfmine-asv-ext-');
  const source = (loop: string) => [
    '#include <Python.h>',
    'static PyObject *work(PyObject *self, PyObject *arg) {',
    '    long n = PyLong_AsLong(arg); volatile long total = 0;',
    `    ${loop}`,
    '    return PyLong_FromLong(total);',
    '}',
    'static PyMethodDef methods[] = {{"work", work, METH_O, NULL}, {NULL, NULL, 0, NULL}};',
    'static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_core", NULL, -1, methods};',
    'PyMODINIT_FUNC PyInit__core(void) { return PyModule_Create(&module); }',
    '',
  ].join('\n');
  git('init', '-q');
  write('asv.conf.json', '{"version": 1, "project": "cwork", "benchmark_dir": "benchmarks"}\n');
  write('setup.py', 'from setuptools import Extension, setup\nsetup(name="cwork", packages=["cwork"], ext_modules=[Extension("cwork._core", sources=["cwork/_core.c"])])\n');
  write('cwork/__init__.py', 'from ._core import work\n');
  write('cwork/_core.c', source('for (long i = 0; i < n * n; i++) total += i;'));
  write('benchmarks/__init__.py', '');
  write('benchmarks/bench_work.py', 'from cwork import work\n\ndef time_work():\n    work(2000)\n');
  git('add', '-A');
  git('commit', '-q', '-m', 'C work, quadratic');
  const slow = git('rev-parse', 'HEAD');
  write('cwork/_core.c', source('for (long i = 0; i < n; i++) total += i * n;'));
  git('commit', '-q', '-am', 'C work, linear');
  const fast = git('rev-parse', 'HEAD');
  return { dir, slow, fast };
}
