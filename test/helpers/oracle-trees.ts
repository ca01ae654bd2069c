import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A tree of a tiny package with an asv suite, as a PR's base or head: module
 * `pkg/hot.py` does `hotWork` loop iterations per call, `pkg/cold.py` a fixed
 * amount; `hotBenchmarks` benchmarks call hot, `coldBenchmarks` call cold (so
 * tracing a change to hot.py must select only the first kind). `extra` adds
 * files (tree-relative path -> text).
 */
export function writeOracleTree(root: string, o: { hotWork: number; hotBenchmarks: number; coldBenchmarks: number; comment?: string; extra?: Record<string, string> }): string {
  const write = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  };
  write('asv.conf.json', '{"version": 1, "benchmark_dir": "benchmarks"}');
  write('pkg/__init__.py', 'from . import hot, cold\n');
  const loop = (name: string, n: number) => [`def ${name}():`, '    s = 0', `    for i in range(${n}):`, '        s += i * i', '    return s', ''].join('\n');
  write('pkg/hot.py', `${o.comment ? `# ${o.comment}\n` : ''}${loop('work', o.hotWork)}`);
  write('pkg/cold.py', loop('work', 3000));
  write('benchmarks/__init__.py', '');
  const lines = ['import pkg', ''];
  for (let i = 0; i < o.hotBenchmarks; i++) lines.push(`def time_hot_${i}():`, '    pkg.hot.work()', '');
  for (let i = 0; i < o.coldBenchmarks; i++) lines.push(`def time_cold_${i}():`, '    pkg.cold.work()', '');
  write('benchmarks/bench_pkg.py', lines.join('\n'));
  for (const [rel, text] of Object.entries(o.extra ?? {})) write(rel, text);
  return root;
}
