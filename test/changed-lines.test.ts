import { describe, expect, it } from 'vitest';
import { baseLineRanges } from '../src/domain/changed-lines.js';

describe('the base lines a patch changes', () => {
  it('marks removed and replaced lines, and both sides of an insertion; leaves new files out', () => {
    const patch = [
      'diff --git a/pkg/slow.py b/pkg/slow.py',
      'index 1111111..2222222 100644',
      '--- a/pkg/slow.py',
      '+++ b/pkg/slow.py',
      '@@ -3,6 +3,5 @@ LIMIT = 10',
      ' def g(n):',
      '     s = 0',
      '-    for i in range(n):',
      '-        s += i',
      '+    s = n * (n - 1) // 2',
      '     return s',
      ' ',
      '@@ -20,2 +19,3 @@ def h(n):',
      ' def k():',
      '+    pass',
      '     return 1',
      'diff --git a/pkg/new.py b/pkg/new.py',
      'new file mode 100644',
      'index 0000000..3333333',
      '--- /dev/null',
      '+++ b/pkg/new.py',
      '@@ -0,0 +1 @@',
      '+x = 1',
      '',
    ].join('\n');
    expect(baseLineRanges(patch)).toEqual({ 'pkg/slow.py': [[5, 6], [20, 21]] });
  });
  it('an insertion at the top of a file (-0,0) marks its first line', () => {
    const patch = ['--- a/m.py', '+++ b/m.py', '@@ -0,0 +1,1 @@', '+import os', ''].join('\n');
    expect(baseLineRanges(patch)).toEqual({ 'm.py': [[1, 1]] });
  });
});
