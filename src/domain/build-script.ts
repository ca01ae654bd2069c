/**
 * Build scripts: the DEFAULT template of the cascade, and how scripts are
 * compared (two scripts that differ only in blank lines, comments or trailing
 * spaces are the same script: trying it twice would teach nothing).
 */
import { createHash } from 'node:crypto';

/** What the default template looks at, read at the base commit. */
export interface DefaultScriptInputs {
  /** Where the package lives ('' = the root). */
  repoSubdir: string;
  /** setup.py at the package root, if any. */
  setupPy: string | null;
  /** pyproject.toml at the package root, if any. */
  pyproject: string | null;
}

/** setup.py or pyproject.toml that builds compiled code (the runner's rule, plus setuptools' ext-modules table). */
const EXTENSION_HINT = /\bext_modules\b|\bExtension\s*\(|\bcythonize\s*\(/;
const PYPROJECT_EXTENSIONS = /^\s*\[tool\.setuptools\.ext-modules\]|^\s*ext-modules\s*=/m;

export function declaresExtensions(inputs: Pick<DefaultScriptInputs, 'setupPy' | 'pyproject'>): boolean {
  return (inputs.setupPy !== null && EXTENSION_HINT.test(inputs.setupPy)) || (inputs.pyproject !== null && PYPROJECT_EXTENSIONS.test(inputs.pyproject));
}

/**
 * The template: the package is built in place in the checkout (compiled
 * extensions next to their sources), nothing installed, so the base and the
 * patched tree can each be built the same way later. A pure-Python package
 * needs no step: it imports from the checkout as it is.
 */
export function defaultBuildScript(inputs: DefaultScriptInputs): string {
  const lines = [
    '#!/usr/bin/env bash',
    '# perfmine default build: the package is built in place; nothing is installed.',
    'set -euo pipefail',
  ];
  if (inputs.repoSubdir) lines.push(`cd ${shellQuote(inputs.repoSubdir)}`);
  if (declaresExtensions(inputs) && inputs.setupPy !== null) lines.push('python setup.py build_ext --inplace');
  else if (declaresExtensions(inputs)) lines.push('python -c "from setuptools import setup; setup()" build_ext --inplace');
  else lines.push('# pure Python: it imports from the checkout as it is');
  lines.push('python -c "import sys; print(\'built with\', sys.executable)"');
  return `${lines.join('\n')}\n`;
}

export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The script without what does not change what it does: comments, blank lines, trailing spaces. */
export function normalizeScript(script: string): string {
  return script.split('\n')
    .map((l) => l.replace(/\s+$/, ''))
    .filter((l) => l.trim() !== '' && !/^\s*#/.test(l))
    .join('\n');
}

export function scriptHash(script: string): string {
  return createHash('sha256').update(normalizeScript(script)).digest('hex').slice(0, 16);
}
