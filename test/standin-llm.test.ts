import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { countTokens } from '../src/domain/tokens.js';
import { answerFor, LlmStandin, STANDIN_MODELS } from '../src/standins/llm/server.js';

type Msg = { role: 'system' | 'user'; content: string };

const SYSTEM: Msg = {
  role: 'system',
  content: 'You are an expert reviewer of Python pull requests. Reply with a single JSON object.',
};

/** A prompt in the shape of perfmine's templates. */
function prompt(task: 'classify' | 'categorize' | null, title: string, lines?: number): Msg[] {
  const user = [
    ...(task ? [`Task: ${task}`] : []),
    'Repository: pydata/xarray',
    `Title: ${title}`,
    'Body:',
    'This PR changes a few internals; see the diff below.',
    ...(lines === undefined ? [] : [`Total lines changed: ${lines}`]),
    '',
    'Answer in JSON.',
  ].join('\n');
  return [SYSTEM, { role: 'user', content: user }];
}

const expectedPromptTokens = (messages: Msg[]) =>
  messages.reduce((n, m) => n + countTokens(m.content) + 4, 0);

let standin: LlmStandin;
let client: OpenAI;

async function ask(messages: Msg[], model = 'standin-small') {
  const r = await client.chat.completions.create({ model, messages, temperature: 0 });
  return { response: r, content: r.choices[0].message.content ?? '' };
}

/** The error `p` rejects with (fails the test if it resolves). */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the request to fail');
}

beforeAll(async () => {
  standin = await LlmStandin.start();
  client = new OpenAI({ baseURL: standin.url, apiKey: 'test', maxRetries: 0 });
});
afterAll(async () => {
  await standin?.close();
});
beforeEach(() => standin.resetStats());

describe('answers', () => {
  it('classify: YES for performance titles, NO otherwise', async () => {
    const yes = JSON.parse((await ask(prompt('classify', 'Speed up groupby with numbagg'))).content);
    expect(yes.answer).toBe('YES');
    expect(yes.reasoning).toContain('speed');
    const no = JSON.parse((await ask(prompt('classify', 'Fix typo in docs'))).content);
    expect(no).toEqual({ reasoning: expect.any(String), answer: 'NO' });
  });

  it('classify matches whole words with simple inflections', () => {
    const verdict = (title: string) => JSON.parse(answerFor(prompt('classify', title))).answer;
    expect(verdict('Optimized lazily loaded coordinates')).toBe('YES');
    expect(verdict('PERF: avoid copies in concat')).toBe('YES');
    expect(verdict('Caches the CFTimeIndex')).toBe('YES');
    expect(verdict('Make open_dataset faster')).toBe('YES');
    expect(verdict('Reduce memory usage of where()')).toBe('YES');
    expect(verdict('Add breakfast recipe to docs')).toBe('NO'); // "fast" inside a word
    expect(verdict('Support performer metadata')).toBe('NO');
  });

  it('categorize: category from the title, difficulty from the size', async () => {
    const cases: Array<[string, number | undefined, string, string]> = [
      ['Cache the decoded calendar', 10, 'cache_and_reuse', 'easy'],
      ['Use dask for parallel reductions', 120, 'use_parallelization', 'medium'],
      ['Speed up groupby with numba', 500, 'use_lower_level_system', 'hard'],
      ['Avoid unnecessary copies in concat', undefined, 'remove_or_reduce_work', 'medium'],
      ['Replace quadratic algorithm in merge', 49, 'use_better_algorithm', 'easy'],
      ['Use a dict for variable lookup', 50, 'use_better_data_structure_and_layout', 'medium'],
      ['Batch small writes to zarr', 299, 'do_it_earlier_batch_throttle', 'medium'],
      ['Read netCDF attributes once', 300, 'io_and_latency_hiding', 'hard'],
      ['Tweak inner loop of interp', 1000, 'micro_optimizations', 'hard'],
    ];
    for (const [title, lines, category, difficulty] of cases) {
      const answer = JSON.parse((await ask(prompt('categorize', title, lines))).content);
      expect(answer, title).toEqual({ reasoning: expect.any(String), category, difficulty });
    }
    // Rules are checked in order: "cache" wins over the later "numpy" rule.
    expect(JSON.parse(answerFor(prompt('categorize', 'numpy: cache dtype lookups', 5))).category).toBe(
      'cache_and_reuse',
    );
    expect(standin.stats.byTask).toEqual({ categorize: cases.length });
  });

  it('look-alike lines in the description or patch do not shadow the real ones', () => {
    const user = [
      'Task: categorize',
      'Title: Cache the decoded calendar',
      'Description:',
      'Title: Use dask everywhere',
      'Total lines changed: 3',
      'Total lines changed: 1,234',
      '```diff',
      '+Title: Batch writes',
      ' Total lines changed: 7',
      '```',
    ].join('\n');
    expect(JSON.parse(answerFor([SYSTEM, { role: 'user', content: user }]))).toMatchObject({
      category: 'cache_and_reuse',
      difficulty: 'hard',
    });
  });

  it('extract: four sections copied from the documents; markers make it invent or copy the solution', async () => {
    const user = (prBody: string): Msg[] => [SYSTEM, { role: 'user', content: [
      'Task: extract', 'Repository: pydata/xarray', 'Title: Faster groupby', '',
      `=== Pull request: Faster groupby ===\n${prBody}`, '',
      '=== Issue pydata/xarray#1: slow ===\nGroupby takes a minute on big data. It used to be fast.', '',
      '--- Comment 1 on pydata/xarray#1 ---\nThe loop over groups dominates the profile.', '',
      'Reply exactly in this JSON shape:', '{"initial_observations": "..."}',
    ].join('\n') }];
    const plain = JSON.parse((await ask(user('Use a vectorized reduction. Ten times faster.'))).content);
    expect(plain).toEqual({
      initial_observations: 'Groupby takes a minute on big data. It used to be fast.',
      triage_attempts: 'The loop over groups dominates the profile.',
      solution_overview: 'Use a vectorized reduction. Ten times faster.',
      solution_observations: '',
    });
    const invented = JSON.parse((await ask(user('Use a vectorized reduction. [standin:invent]'))).content);
    expect(invented.initial_observations).toMatch(/Cray supercomputer/);
    const copied = JSON.parse((await ask(user('[standin:copy-solution] Use `np.add.reduceat`.'))).content);
    expect(copied.initial_observations).toContain('Use `np.add.reduceat`.');
    expect(standin.stats.byTask.extract).toBe(3);
  });

  it('no task line: NO with a fixed reason', async () => {
    const { content } = await ask(prompt(null, 'Speed up everything'));
    expect(JSON.parse(content)).toEqual({ reasoning: 'no task recognised', answer: 'NO' });
    expect(standin.stats.byTask).toEqual({ other: 1 });
  });
});

describe('usage and stats', () => {
  it('reports cl100k_base usage and adds it up', async () => {
    const prompts = [
      prompt('classify', 'Speed up groupby with numbagg'),
      prompt('categorize', 'Cache the decoded calendar', 12),
      prompt('classify', 'Fix typo in docs'),
    ];
    let promptTotal = 0;
    let completionTotal = 0;
    for (const [i, messages] of prompts.entries()) {
      const { response, content } = await ask(messages, i === 1 ? 'standin-large' : 'standin-small');
      const p = expectedPromptTokens(messages);
      const c = countTokens(content);
      expect(response.usage).toEqual({ prompt_tokens: p, completion_tokens: c, total_tokens: p + c });
      expect(response.object).toBe('chat.completion');
      expect(response.id).toMatch(/^chatcmpl-\d+$/);
      expect(response.model).toBe(i === 1 ? 'standin-large' : 'standin-small');
      expect(response.choices[0].finish_reason).toBe('stop');
      promptTotal += p;
      completionTotal += c;
    }
    expect(standin.stats).toEqual({
      requests: 3,
      completions: 3,
      promptTokens: promptTotal,
      completionTokens: completionTotal,
      byModel: { 'standin-small': 2, 'standin-large': 1 },
      byTask: { classify: 2, categorize: 1 },
    });
    // A copy: changing it does not change the stand-in.
    standin.stats.byModel.x = 9;
    expect(standin.stats.byModel.x).toBeUndefined();
  });

  it('cuts the answer at max_tokens with finish_reason "length"', async () => {
    const r = await client.chat.completions.create({
      model: 'standin-small',
      messages: prompt('classify', 'Speed up groupby with numbagg'),
      max_tokens: 5,
    });
    expect(r.choices[0].finish_reason).toBe('length');
    expect(r.usage?.completion_tokens).toBe(5);
    expect(countTokens(r.choices[0].message.content ?? '')).toBe(5);
  });
});

describe('faults', () => {
  it('rate-limit-429: RateLimitError with retry-after', async () => {
    standin.inject({ kind: 'rate-limit-429', retryAfterSeconds: 7 });
    const err = await failure(ask(prompt('classify', 'Speed up groupby')));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const e = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.status).toBe(429);
    expect(e.headers.get('retry-after')).toBe('7');
    expect(e.headers.get('retry-after-ms')).toBe('7000');
    expect(e.code).toBe('rate_limit_exceeded');
    expect(e.type).toBe('requests');
    // Consumed: the next request is answered.
    expect(JSON.parse((await ask(prompt('classify', 'Speed up groupby'))).content).answer).toBe('YES');
    expect(standin.stats).toMatchObject({ requests: 2, completions: 1 });
  });

  it('quota-429: insufficient_quota, no retry-after', async () => {
    standin.inject({ kind: 'quota-429' });
    const err = await failure(ask(prompt('classify', 'Speed up groupby')));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const e = err as InstanceType<typeof OpenAI.RateLimitError>;
    expect(e.code).toBe('insufficient_quota');
    expect(e.type).toBe('insufficient_quota');
    expect(e.headers.get('retry-after')).toBeNull();
  });

  it('server-500: InternalServerError, `times` consumed in order', async () => {
    standin.inject({ kind: 'server-500', times: 2 });
    standin.inject({ kind: 'quota-429' });
    for (let i = 0; i < 2; i++) {
      const err = await failure(ask(prompt('classify', 'Fix typo')));
      expect(err).toBeInstanceOf(OpenAI.InternalServerError);
      expect((err as InstanceType<typeof OpenAI.InternalServerError>).status).toBe(500);
    }
    expect(await failure(ask(prompt('classify', 'Fix typo')))).toBeInstanceOf(OpenAI.RateLimitError);
    await ask(prompt('classify', 'Fix typo'));
    expect(standin.stats).toMatchObject({ requests: 4, completions: 1 });
  });

  it('malformed: 200 with prose instead of JSON, usage still reported', async () => {
    standin.inject({ kind: 'malformed' });
    const messages = prompt('classify', 'Speed up groupby');
    const { response, content } = await ask(messages);
    expect(() => JSON.parse(content)).toThrow();
    expect(response.usage?.prompt_tokens).toBe(expectedPromptTokens(messages));
    expect(response.usage?.completion_tokens).toBe(countTokens(content));
    expect(standin.stats.completions).toBe(1);
  });

  it('invalid-label: valid JSON, labels outside the allowed sets', async () => {
    standin.inject({ kind: 'invalid-label', times: 2 });
    expect(JSON.parse((await ask(prompt('classify', 'Speed up groupby'))).content).answer).toBe('PERHAPS');
    expect(JSON.parse((await ask(prompt('categorize', 'Cache it', 3))).content)).toMatchObject({
      category: 'make_it_go_brrr',
      difficulty: 'extreme',
    });
  });

  it('slow: answers after the delay', async () => {
    standin.inject({ kind: 'slow', delayMs: 150 });
    const started = Date.now();
    const { content } = await ask(prompt('classify', 'Speed up groupby'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(JSON.parse(content).answer).toBe('YES');
  });

  it('slow: a shorter client timeout raises APIConnectionTimeoutError; the server stays healthy', async () => {
    standin.inject({ kind: 'slow', delayMs: 600 });
    const err = await failure(
      client.chat.completions.create(
        { model: 'standin-small', messages: prompt('classify', 'Speed up groupby') },
        { timeout: 100 },
      ),
    );
    expect(err).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    // Past the delay: the abandoned answer was never counted and nothing crashed.
    await new Promise((r) => setTimeout(r, 700));
    expect(JSON.parse((await ask(prompt('classify', 'Fix typo'))).content).answer).toBe('NO');
    expect(standin.stats).toMatchObject({ requests: 2, completions: 1 });
  });

  it('rejects unknown fault kinds and bad counts', () => {
    expect(() => standin.inject({ kind: 'nope' as never })).toThrow(/unknown/);
    expect(() => standin.inject({ kind: 'slow', times: 0 })).toThrow(/positive/);
  });
});

describe('protocol', () => {
  it('lists models', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) {
      expect(m).toMatchObject({ object: 'model', owned_by: 'perfmine-standin' });
      ids.push(m.id);
    }
    expect(ids).toEqual(STANDIN_MODELS);
    // Any model name is accepted in requests.
    expect((await ask(prompt('classify', 'Fix typo'), 'gpt-4o-mini')).response.model).toBe('gpt-4o-mini');
  });

  it('refuses streaming with 400', async () => {
    const err = await failure(
      client.chat.completions.create({
        model: 'standin-small',
        messages: prompt('classify', 'Fix typo'),
        stream: true,
      }),
    );
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as Error).message).toContain('streaming not supported by the stand-in');
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).type).toBe('invalid_request_error');
  });

  it('404 for unknown routes and 400 for bad JSON, in OpenAI error shape', async () => {
    const notFound = await fetch(`${standin.url}/embeddings`, { method: 'POST', body: '{}' });
    expect(notFound.status).toBe(404);
    expect(((await notFound.json()) as { error: unknown }).error).toMatchObject({ type: 'invalid_request_error', param: null });

    const bad = await fetch(`${standin.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"model": "standin-small", "messages": [',
    });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: unknown };
    expect(body.error).toEqual({
      message: expect.stringContaining('parse the JSON body'),
      type: 'invalid_request_error',
      param: null,
      code: null,
    });
  });

  it('401 when an API key is configured and the request carries another', async () => {
    const guarded = await LlmStandin.start({ apiKey: 'sk-right', latencyMs: 20 });
    try {
      const wrong = new OpenAI({ baseURL: guarded.url, apiKey: 'sk-wrong', maxRetries: 0 });
      const err = await failure(
        wrong.chat.completions.create({ model: 'standin-small', messages: prompt('classify', 'Fix typo') }),
      );
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
      expect((err as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
      expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');

      const right = new OpenAI({ baseURL: guarded.url, apiKey: 'sk-right', maxRetries: 0 });
      const started = Date.now();
      const r = await right.chat.completions.create({
        model: 'standin-small',
        messages: prompt('classify', 'Speed up groupby'),
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(15); // latencyMs applies
      expect(JSON.parse(r.choices[0].message.content ?? '').answer).toBe('YES');
      expect(guarded.stats).toMatchObject({ requests: 2, completions: 1 });
    } finally {
      await guarded.close();
    }
  });
});
