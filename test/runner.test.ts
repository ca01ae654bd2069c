import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The asv runner is Python (it runs inside the environment under test); its
// own unittest suite lives in test/runner/. This makes `npm test` run it too.
describe('perfmine_asv_runner.py', () => {
  it('passes its Python unittest suite', () => {
    const run = spawnSync('python3', ['-m', 'unittest', 'discover', '-s', 'test/runner'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
      timeout: 200_000,
    });
    if (run.status !== 0) console.error(run.error ?? '', run.stdout, run.stderr);
    expect(run.status).toBe(0);
  }, 210_000);
});
