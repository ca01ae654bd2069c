import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IndexStandin, type IndexStandinOptions } from '../../src/standins/index/server.js';
import { buildWheels, type WheelSpec } from '../../src/standins/index/wheels.js';

/** Debian's interpreter: what a fresh machine has (pip 23.0.1, no cutoff flag). */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** An index stand-in serving freshly built tiny wheels. */
export async function startIndex(specs: WheelSpec[], opts: IndexStandinOptions = {}): Promise<{ index: IndexStandin; dir: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'perfmine-wheels-'));
  await buildWheels(dir, specs, { python: SYSTEM_PYTHON });
  const index = await IndexStandin.start({ ...opts, wheelsDir: dir });
  return { index, dir };
}

/** A small world: alpha 1.0 (2020) and 2.0 (2022, needs beta); beta 1.0 (2019) and 2.0 (2022); gamma pinned to alpha 1.0. */
export const WORLD: WheelSpec[] = [
  { name: 'alpha', version: '1.0', uploadTime: '2020-01-10T00:00:00Z' },
  { name: 'alpha', version: '2.0', requiresDist: ['beta>=1.0'], uploadTime: '2022-06-01T00:00:00Z' },
  { name: 'beta', version: '1.0', uploadTime: '2019-05-01T00:00:00Z' },
  { name: 'beta', version: '2.0', uploadTime: '2022-06-02T00:00:00Z', requiresPython: '>=3.9' },
  { name: 'gamma', version: '1.0', requiresDist: ['alpha==1.0'], uploadTime: '2019-01-01T00:00:00Z' },
  { name: 'numpy-lite', version: '1.5', uploadTime: '2019-01-01T00:00:00Z' },
  { name: 'pytest', version: '7.0', uploadTime: '2019-01-01T00:00:00Z' },
  { name: 'setuptools', version: '60.0', uploadTime: '2019-01-01T00:00:00Z' },
];
