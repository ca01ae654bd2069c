import { describe, expect, it } from 'vitest';
import { KeyedLock } from '../src/adapters/keyed-lock.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('KeyedLock', () => {
  it('runs work of one key one at a time, in order, past a failure; other keys run beside it; drained keys are forgotten', async () => {
    const lock = new KeyedLock();
    const events: string[] = [];
    let runningA = 0;
    let maxA = 0;
    const work = (key: string, name: string, fail = false) => lock.run(key, async () => {
      if (key === 'a') maxA = Math.max(maxA, ++runningA);
      events.push(`${name}+`);
      await tick();
      events.push(`${name}-`);
      if (key === 'a') runningA--;
      if (fail) throw new Error(`${name} failed`);
      return name;
    });
    const results = await Promise.allSettled([work('a', 'a1'), work('a', 'a2', true), work('b', 'b1'), work('a', 'a3')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(maxA).toBe(1);
    const a = events.filter((e) => e.startsWith('a'));
    expect(a).toEqual(['a1+', 'a1-', 'a2+', 'a2-', 'a3+', 'a3-']);
    // b started while a1 still ran
    expect(events.indexOf('b1+')).toBeLessThan(events.indexOf('a1-'));
    await tick();
    expect(lock.size).toBe(0);
  });
});
