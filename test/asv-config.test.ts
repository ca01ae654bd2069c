import { describe, expect, it } from 'vitest';
import { benchmarkDir, parseAsvConfig, repoSubdir } from '../src/domain/asv-config.js';

// benchmark_dir and repo_subdir come from the repository under test: they must stay inside it.
describe('asv.conf.json paths', () => {
  it('resolve relative to the config and stay inside the repository', () => {
    expect(benchmarkDir('asv.conf.json', {})).toBe('benchmarks');
    expect(benchmarkDir('asv_bench/asv.conf.json', parseAsvConfig('{"benchmark_dir": "benchmarks",}'))).toBe('asv_bench/benchmarks');
    expect(benchmarkDir('asv_bench/asv.conf.json', { benchmark_dir: '../benchmarks' })).toBe('benchmarks');
    expect(benchmarkDir('asv.conf.json', { benchmark_dir: '.' })).toBe('.');
    expect(repoSubdir({})).toBe('');
    expect(repoSubdir({ repo_subdir: 'python/' })).toBe('python');
  });

  it('refuse absolute paths and climbs out of the repository, naming the key', () => {
    expect(() => benchmarkDir('asv.conf.json', { benchmark_dir: '/etc' })).toThrow(/^benchmark_dir "\/etc" in asv.conf.json is an absolute path/);
    expect(() => benchmarkDir('asv_bench/asv.conf.json', { benchmark_dir: '../../outside' })).toThrow(/benchmark_dir "..\/..\/outside" .* points outside the repository/);
    expect(() => benchmarkDir('asv.conf.json', { benchmark_dir: 'a/../../b' })).toThrow(/points outside/);
    expect(() => benchmarkDir('asv.conf.json', { benchmark_dir: 'C:\\bench' })).toThrow(/absolute path/);
    expect(() => repoSubdir({ repo_subdir: '..' })).toThrow(/^repo_subdir ".." in asv.conf.json points outside the repository/);
    expect(() => repoSubdir({ repo_subdir: '/srv/pkg' })).toThrow(/absolute path/);
  });
});
