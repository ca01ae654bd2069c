import OpenAI from 'openai';
import type { z } from 'zod';
import { RateLimitedError } from '../../bus/stage.js';
import { ServiceHealth } from '../service-health.js';
import type { Logger } from '../../log.js';

export type LlmTask = 'classify' | 'categorize' | 'extract' | 'synthesize';

export interface LlmOptions {
  baseUrl: string;
  /** Optional: local servers (vLLM, Ollama) need none. */
  apiKey?: string;
  models: Record<LlmTask, string>;
  timeoutMs: number;
  /** How many times a malformed or invalid answer is asked again before giving up. */
  maxTries: number;
  /** Pause when the provider says the quota is used up and gives no retry time. */
  quotaPauseSeconds: number;
  log: Logger;
}

export interface ChatMessage { role: 'system' | 'user'; content: string }

/** One request to the model, as recorded in stage_runs.cost.llm. */
export interface LlmCall {
  task: LlmTask; model: string; prompt_tokens: number; completion_tokens: number; latency_ms: number; ok: boolean;
}

/** The model never gave a valid answer: the verdict stays NULL and the bus retries the row. */
export class LlmAnswerError extends Error {}

/**
 * An OpenAI-compatible endpoint through the official client. Answers are
 * JSON validated with zod; a malformed or invalid answer is asked again up to
 * `maxTries` times, then LlmAnswerError (the caller leaves its verdict NULL).
 * 429s become RateLimitedError for the `llm` group, with the provider's
 * retry time. Every request is reported to `onCall`, failed ones too.
 */
export class LlmClient {
  private client: OpenAI;
  private health = new ServiceHealth('llm');

  constructor(private opts: LlmOptions) {
    this.client = new OpenAI({
      baseURL: opts.baseUrl,
      apiKey: opts.apiKey ?? 'not-needed',
      timeout: opts.timeoutMs,
      // No hidden retries: a 429 must reach the bus at once (it pauses every LLM stage), and
      // timeouts and 5xx are retried by the bus with backoff, visibly in stage_runs.
      maxRetries: 0,
    });
  }

  model(task: LlmTask): string {
    return this.opts.models[task];
  }

  async json<S extends z.ZodTypeAny>(
    task: LlmTask, messages: ChatMessage[], schema: S, onCall: (call: LlmCall) => void, signal?: AbortSignal,
  ): Promise<z.infer<S>> {
    const model = this.opts.models[task];
    let problem = '';
    for (let attempt = 1; attempt <= this.opts.maxTries; attempt++) {
      const began = performance.now();
      let completion: OpenAI.Chat.Completions.ChatCompletion;
      try {
        completion = await this.client.chat.completions.create({ model, messages, temperature: 0 }, { signal });
      } catch (err) {
        onCall({ task, model, prompt_tokens: 0, completion_tokens: 0, latency_ms: Math.round(performance.now() - began), ok: false });
        throw this.translate(err, signal);
      }
      this.health.ok();
      const content = completion.choices[0]?.message?.content ?? '';
      const call: LlmCall = {
        task, model: completion.model || model,
        prompt_tokens: completion.usage?.prompt_tokens ?? 0, completion_tokens: completion.usage?.completion_tokens ?? 0,
        latency_ms: Math.round(performance.now() - began), ok: true,
      };
      onCall(call);
      const parsed = schema.safeParse(extractJson(content));
      if (parsed.success) return parsed.data;
      problem = parsed.error.issues.map((i) => `${i.path.join('.') || 'answer'}: ${i.message}`).join('; ');
      this.opts.log.warn({ task, model, attempt, problem, answer: content.slice(0, 200) }, 'LLM answer malformed or invalid; asking again');
    }
    throw new LlmAnswerError(`${task}: no valid answer after ${this.opts.maxTries} tries (${problem})`);
  }

  /**
   * Whether the endpoint answers and accepts our key (GET /models). A server
   * without that route still answered, so it counts as reachable.
   */
  async checkCredentials(signal?: AbortSignal): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      await this.client.models.list({ signal });
      return { ok: true };
    } catch (err) {
      if (err instanceof OpenAI.AuthenticationError || err instanceof OpenAI.PermissionDeniedError) {
        return { ok: false, reason: `LLM endpoint ${this.opts.baseUrl} refused the API key (HTTP ${err.status})` };
      }
      if (err instanceof OpenAI.APIConnectionError) {
        return { ok: false, reason: `LLM endpoint ${this.opts.baseUrl} unreachable: ${causeOf(err)}` };
      }
      return { ok: true };
    }
  }

  /**
   * Rate limits pause the bus. A failure of the whole service (refused
   * connection, rejected key, unknown model, a run of 5xx or timeouts) opens
   * the `llm` breaker; anything else stays an ordinary (retried) error of the row.
   */
  private translate(err: unknown, signal?: AbortSignal): unknown {
    if (signal?.aborted) return err;
    if (err instanceof OpenAI.RateLimitError) {
      const body = err.error as { code?: string; type?: string } | undefined;
      const quota = body?.code === 'insufficient_quota' || body?.type === 'insufficient_quota';
      const after = retryAfterSeconds(err.headers) ?? (quota ? this.opts.quotaPauseSeconds : 30);
      return new RateLimitedError(new Date(Date.now() + after * 1000),
        quota ? 'LLM quota exhausted' : `LLM rate limit (retry after ${after}s)`, 'llm');
    }
    if (err instanceof OpenAI.AuthenticationError || err instanceof OpenAI.PermissionDeniedError) {
      return this.health.failed(err, 'fatal', `LLM endpoint refused the API key (HTTP ${err.status})`);
    }
    if (err instanceof OpenAI.NotFoundError) {
      return this.health.failed(err, 'fatal', `LLM endpoint does not know the model or route (HTTP 404): ${err.message}`);
    }
    if (err instanceof OpenAI.APIConnectionTimeoutError) {
      return this.health.failed(new Error(`LLM request timed out after ${this.opts.timeoutMs} ms`), 'transient', 'LLM requests time out');
    }
    if (err instanceof OpenAI.APIConnectionError) {
      return this.health.failed(err, 'fatal', `LLM endpoint ${this.opts.baseUrl} unreachable: ${causeOf(err)}`);
    }
    if (err instanceof OpenAI.InternalServerError) {
      return this.health.failed(new Error(`LLM request failed: ${err.status} ${err.message}`), 'transient', `LLM endpoint answers ${err.status}`);
    }
    if (err instanceof OpenAI.APIError) {
      return this.health.failed(new Error(`LLM request failed: ${err.status ?? ''} ${err.message}`.trim()), 'row', '');
    }
    return err;
  }
}

function retryAfterSeconds(headers: Headers | Record<string, string> | undefined): number | undefined {
  if (!headers) return undefined;
  const get = (k: string) => (headers instanceof Headers ? headers.get(k) : (headers as Record<string, string>)[k]) ?? null;
  const ms = Number(get('retry-after-ms'));
  if (Number.isFinite(ms) && ms > 0) return ms / 1000;
  const s = Number(get('retry-after'));
  return Number.isFinite(s) && s > 0 ? s : undefined;
}

/** The first JSON object in a model's answer (models like to wrap JSON in prose or code fences). */
export function extractJson(text: string): unknown {
  const start = text.indexOf('{');
  if (start < 0) return undefined;
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      try {
        return JSON.parse(text.slice(start, i + 1));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** The innermost cause's message (the openai client wraps "fetch failed" around ECONNREFUSED). */
function causeOf(err: unknown): string {
  let e: any = err;
  while (e?.cause) e = e.cause;
  return String(e?.code ?? e?.message ?? err);
}
