/** Stage 4's pure logic: requirements, packaging files, the packaging root, the Python ladder, the memo key. */
import { describe, expect, it } from 'vitest';
import { asvMatrixRequirements, readPyproject } from '../src/domain/declared-requirements.js';
import { choosePackagingRoot, asvInstallDirs } from '../src/domain/packaging-root.js';
import { sortRequirements, canonicalName } from '../src/domain/python-requirements.js';
import { choosePython } from '../src/domain/python-version.js';
import { cutoffOf, memoKey } from '../src/domain/resolution-memo.js';
import { envPayload } from '../src/stages/resolve-packages.js';

const d = (requirement: string) => ({ requirement, source: 'test' });

describe('requirements', () => {
  it('keeps PEP 508 lines as written and drops the rest with the reason', () => {
    const { usable, dropped } = sortRequirements([
      d('numpy>=1.20'), d('pandas[all] >= 1.0 ; python_version < "3.10"'), d('numpy>=1.20'), d('bad req !'),
      d('foo @ https://example.com/foo.zip'), d('scipy>=1.2.*'), d('Pytest>=7'), d('setuptools_scm'), d('Demo_Lib[test]'), d('  '),
    ], 'demo-lib');
    expect(usable.map((u) => u.requirement)).toEqual(['numpy>=1.20', 'pandas[all] >= 1.0 ; python_version < "3.10"', 'setuptools_scm']);
    const why = Object.fromEntries(dropped.map((x) => [x.requirement, x.reason]));
    expect(why['bad req !']).toMatch(/^not a PEP 508 requirement/);
    expect(why['foo @ https://example.com/foo.zip']).toMatch(/direct URL/);
    expect(why['scipy>=1.2.*']).toMatch(/not valid PEP 440/);
    expect(why['Pytest>=7']).toMatch(/base tooling/);
    expect(why['Demo_Lib[test]']).toMatch(/the project itself/);
    expect(canonicalName('Foo_Bar.baz')).toBe('foo-bar-baz');
  });

  it('env_payload: pinned lines with hashes, base tooling stripped, sorted', () => {
    expect(envPayload([
      { name: 'Zeta', version: '1', sha256: 'ab'.repeat(32) }, { name: 'wheel', version: '0.40', sha256: null }, { name: 'alpha', version: '2.0', sha256: null },
    ])).toEqual(['alpha==2.0', `Zeta==1 --hash=sha256:${'ab'.repeat(32)}`]);
  });
});

describe('pyproject.toml', () => {
  it('reads [project] and [build-system]', () => {
    const r = readPyproject(`
[build-system]
requires = ["setuptools>=61", "cython"]
[project]
name = "demo"
requires-python = ">=3.9"
classifiers = ["Programming Language :: Python :: 3.10"]
dependencies = ["numpy>=1.22"]
[project.optional-dependencies]
io = ["h5py"]
`);
    expect(r.error).toBeUndefined();
    expect(r.name).toBe('demo');
    expect(r.requiresPython).toBe('>=3.9');
    expect(r.requirements).toEqual([
      { requirement: 'numpy>=1.22', source: 'pyproject.toml [project].dependencies' },
      { requirement: 'h5py', source: 'pyproject.toml [project.optional-dependencies].io' },
      { requirement: 'setuptools>=61', source: 'pyproject.toml [build-system].requires' },
      { requirement: 'cython', source: 'pyproject.toml [build-system].requires' },
    ]);
  });

  it('malformed TOML and binary files are errors with the reason', () => {
    expect(readPyproject('[project\nname = 1').error).toMatch(/^pyproject.toml is not valid TOML: /);
    expect(readPyproject('\x89PNG\r\n\x1a\n\0\0\0').error).toBe('pyproject.toml is a binary file, not text');
    expect(readPyproject('[project]\ndependencies = "numpy"\n').unreadable[0]).toMatchObject({ reason: 'not a list of strings' });
  });
});

describe('asv matrix', () => {
  it('follows the reference: req table, one version is ==, several or none bare, all null left out', () => {
    expect(asvMatrixRequirements({ matrix: { req: { numpy: ['1.21'], scipy: [], pandas: ['1.3', '1.4'], bottleneck: [null], 'pip+tqdm': [''] } } }).map((r) => r.requirement))
      .toEqual(['numpy==1.21', 'scipy', 'pandas', 'tqdm']);
    expect(asvMatrixRequirements({ matrix: { numpy: ['1.21'], env: { X: ['1'] }, env_nobuild: {} } }).map((r) => r.requirement)).toEqual(['numpy==1.21']);
    expect(asvMatrixRequirements({ environment_type: 'conda', matrix: { numpy: [], 'pip+tqdm': [] } }).map((r) => r.requirement)).toEqual(['tqdm']);
  });
});

describe('packaging root', () => {
  it('asv install command, then single, then name match, then shallowest', () => {
    const files = ['setup.py', 'python/pyproject.toml', 'tools/x/setup.py', 'README.md'];
    expect(choosePackagingRoot(files, 'lib', asvInstallDirs({ build_command: ['python -m pip wheel -w {build_cache_dir} {build_dir}/python'] }, ''))).toMatchObject({ dir: 'python', rule: 'asv' });
    expect(choosePackagingRoot(['src/pkg/core.py', 'pkg/pyproject.toml'], 'lib')).toMatchObject({ dir: 'pkg', rule: 'single' });
    expect(choosePackagingRoot(['a/setup.py', 'lib/setup.py', 'b/c/setup.py'], 'lib')).toMatchObject({ dir: 'lib', rule: 'name' });
    expect(choosePackagingRoot(files, 'lib')).toMatchObject({ dir: '', rule: 'shallowest' });
    expect(choosePackagingRoot(['README.md', 'node_modules/x/setup.py'], 'lib')).toBeNull();
    expect(asvInstallDirs({ repo_subdir: 'py' }, 'asv_bench')).toEqual(['asv_bench/py']);
  });
});

describe('python version ladder', () => {
  const at = (s: string) => new Date(s);
  const none = { requiresPython: null, classifiers: [], asvPythons: [] };
  it('newest minor released on or before the commit date, within floor and ceiling', () => {
    expect(choosePython(none, at('2022-01-01'), '3.8', '3.12')).toEqual({ ok: true, version: '3.10', rung: 'date' });
    expect(choosePython(none, at('2025-01-01'), '3.8', '3.12')).toEqual({ ok: true, version: '3.12', rung: 'date' });
    expect(choosePython(none, at('2017-01-01'), '3.8', '3.12')).toEqual({ ok: true, version: '3.8', rung: 'date' });
  });
  it('requires-python, then classifiers, then asv pythons', () => {
    expect(choosePython({ ...none, requiresPython: '>=3.8,<3.10', classifiers: ['Programming Language :: Python :: 3.11'] }, at('2023-06-01'), '3.8', '3.12'))
      .toEqual({ ok: true, version: '3.9', rung: 'requires-python' });
    expect(choosePython({ ...none, classifiers: ['Programming Language :: Python :: 3', 'Programming Language :: Python :: 3.9'], asvPythons: ['3.11'] }, at('2023-06-01'), '3.8', '3.12'))
      .toEqual({ ok: true, version: '3.9', rung: 'classifiers' });
    expect(choosePython({ ...none, asvPythons: ['3.8', '3.10'] }, at('2023-06-01'), '3.8', '3.12')).toEqual({ ok: true, version: '3.10', rung: 'asv-pythons' });
    expect(choosePython({ ...none, requiresPython: '<3.6' }, at('2023-06-01'), '3.8', '3.12')).toMatchObject({ ok: false });
  });
});

describe('memo key', () => {
  it('same requirements (any order), Python, cutoff day, index and resolver share a key; anything else does not', () => {
    const base = { requirements: ['a', 'b'], pythonVersion: '3.10', cutoffDay: '2022-01-01', indexUrl: 'http://x/simple', resolver: 'pip', resolverVersion: '23.0.1' };
    expect(memoKey({ ...base, requirements: ['b', 'a', 'a'] })).toBe(memoKey(base));
    expect(memoKey({ ...base, indexUrl: 'http://x/simple/' })).toBe(memoKey(base));
    for (const change of [{ pythonVersion: '3.11' }, { cutoffDay: '2022-01-02' }, { resolverVersion: '24.0' }, { indexUrl: 'http://y/simple' }, { requirements: ['a'] }]) {
      expect(memoKey({ ...base, ...change })).not.toBe(memoKey(base));
    }
    expect(cutoffOf(new Date('2022-03-04T15:16:17Z'))).toEqual({ day: '2022-03-04', at: new Date('2022-03-04T00:00:00Z') });
  });
});
