/**
 * An OpenAI-compatible LLM stand-in: a real HTTP server on 127.0.0.1 that
 * speaks the subset of the OpenAI API perfmine uses (chat completions and the
 * model list), so the real `openai` client can be exercised without the
 * network. Answers are deterministic functions of the prompt (see answers.ts);
 * usage is counted with cl100k_base like perfmine's own token limits, and
 * faults (429s, 5xx, bad answers, slowness, total outages) can be injected
 * (see faults.ts).
 */
import { closeNow, listenOnLoopback } from '../loopback.js';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { countTokens, truncateToTokens } from '../../domain/tokens.js';
import {
  answerFor,
  invalidLabelAnswerFor,
  MALFORMED_ANSWER,
  taskOf,
  type ChatMessage,
} from './answers.js';
import { errorReply, faultReply, LlmFaults, outageReply, type LlmFault, type OutageMode, type Reply } from './faults.js';

export { answerFor, categoryFor, difficultyFor, matchedKeywords, taskOf } from './answers.js';
export type { ChatMessage, LlmTask } from './answers.js';
export type { LlmFault, LlmFaultKind, OutageMode } from './faults.js';

export interface LlmStandinOptions {
  /** Default 0: any free port. */
  port?: number;
  /** If set, requests must carry `Authorization: Bearer <apiKey>`, else 401. */
  apiKey?: string;
  /** Added before every answer. */
  latencyMs?: number;
}

export interface LlmStats {
  /** Every HTTP request received, faulted and rejected ones included. */
  requests: number;
  /** Chat completions answered with 200 (including `malformed`/`invalid-label` answers). */
  completions: number;
  promptTokens: number;
  completionTokens: number;
  /** Answered completions per requested model. */
  byModel: Record<string, number>;
  /** Answered completions per task: `classify`, `categorize`, `extract`, `synthesize`, `other`. */
  byTask: Record<string, number>;
}

/** What GET /v1/models lists; requests may name any model. */
export const STANDIN_MODELS = ['standin-small', 'standin-large'];
/** A fixed "created" for the model list, so it is deterministic. */
const MODELS_CREATED = 1_700_000_000;
/** OpenAI's chat format overhead per message, as the brief's usage formula counts it. */
const TOKENS_PER_MESSAGE = 4;

const badRequest = (message: string, param: string | null = null, code: string | null = null): Reply =>
  errorReply(400, message, 'invalid_request_error', code, param);

function emptyStats(): LlmStats {
  return { requests: 0, completions: 0, promptTokens: 0, completionTokens: 0, byModel: {}, byTask: {} };
}

export class LlmStandin {
  /** What OpenAI's `baseURL` expects: `http://127.0.0.1:PORT/v1`. */
  readonly url: string;
  private readonly faults: LlmFaults;
  private counts: LlmStats = emptyStats();
  private completionSeq = 0;
  private requestSeq = 0;
  private closed = false;

  private constructor(
    private readonly server: http.Server,
    private readonly port: number,
    private readonly opts: LlmStandinOptions,
  ) {
    this.url = `http://127.0.0.1:${port}/v1`;
    this.faults = new LlmFaults({ stop: () => this.stopListening(), resume: () => this.listenAgain() });
  }

  static async start(opts: LlmStandinOptions = {}): Promise<LlmStandin> {
    const { server, port } = await listenOnLoopback(opts.port);
    const standin = new LlmStandin(server, port, opts);
    server.on('request', (req, res) => void standin.dispatch(req, res));
    return standin;
  }

  /** Queues a fault for the next chat completion request(s), after any already queued. */
  inject(fault: LlmFault): void {
    this.faults.inject(fault);
  }

  /** Drops queued faults (an outage goes on until endOutage()). */
  clearFaults(): void {
    this.faults.clear();
  }

  /**
   * A total outage until endOutage() or `durationMs`: `refuse` stops listening
   * (connections refused) and listens again on the same port afterwards;
   * `http-503` answers every request with a 503.
   */
  startOutage(mode: OutageMode, durationMs?: number): Promise<void> {
    return this.faults.startOutage(mode, durationMs);
  }

  endOutage(): Promise<void> {
    return this.faults.endOutage();
  }

  /** The outage in progress, if any. */
  get outage(): OutageMode | null {
    return this.faults.outage;
  }

  /** Requests hit per fault kind, outages started (`outage-<mode>`) and requests answered by an outage. */
  get faultStats(): Record<string, number> {
    return this.faults.hitsByKind();
  }

  get stats(): LlmStats {
    return { ...this.counts, byModel: { ...this.counts.byModel }, byTask: { ...this.counts.byTask } };
  }

  resetStats(): void {
    this.counts = emptyStats();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.faults.dispose();
    if (this.server.listening) await closeNow(this.server);
  }

  /** A `refuse` outage begins: no new connections, open ones reset. */
  private stopListening(): Promise<void> {
    return this.server.listening ? closeNow(this.server) : Promise.resolve();
  }

  /** A `refuse` outage ends: the same port again, so clients need no new URL. */
  private async listenAgain(): Promise<void> {
    if (this.closed || this.server.listening) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          this.server.once('error', reject);
          this.server.listen(this.port, '127.0.0.1', () => {
            this.server.off('error', reject);
            resolve();
          });
        });
        return;
      } catch (err) {
        // The port lingers for a moment after close on some systems.
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 50) throw err;
        await delay(100);
      }
    }
  }

  // ---------------------------------------------------------------- HTTP plumbing

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.counts.requests++;
    const requestId = `req_${++this.requestSeq}`;
    // Aborted when the client goes away before the answer, so waits end early and nothing is written.
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    try {
      const url = new URL(req.url ?? '/', this.url);
      const raw = await readBody(req);
      if (this.opts.latencyMs && !(await sleep(this.opts.latencyMs, gone.signal))) return;
      if (this.faults.outage === 'http-503') {
        this.faults.countOutageReply();
        send(res, outageReply(), requestId);
        return;
      }
      const reply = this.authorize(req) ?? (await this.route(req.method ?? 'GET', url.pathname, raw, gone.signal));
      if (reply) send(res, reply, requestId);
    } catch (err) {
      send(res, errorReply(500, `stand-in error: ${(err as Error).message}`, 'server_error'), requestId);
    }
  }

  /** A 401 reply when an API key is configured and the request does not carry it. */
  private authorize(req: IncomingMessage): Reply | null {
    if (this.opts.apiKey === undefined) return null;
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match) {
      return errorReply(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        'invalid_request_error',
      );
    }
    if (match[1].trim() !== this.opts.apiKey) {
      // Like OpenAI, show only a masked key.
      const shown = `${match[1].trim().slice(0, 4)}****`;
      return errorReply(401, `Incorrect API key provided: ${shown}.`, 'invalid_request_error', 'invalid_api_key');
    }
    return null;
  }

  /** The reply, or null when the client went away and nothing should be written. */
  private async route(method: string, pathname: string, raw: string, gone: AbortSignal): Promise<Reply | null> {
    const path = pathname.replace(/\/+$/, '');
    if (method === 'GET' && path === '/v1/models') {
      return { status: 200, body: { object: 'list', data: STANDIN_MODELS.map(modelObject) } };
    }
    const model = /^\/v1\/models\/([^/]+)$/.exec(path);
    if (method === 'GET' && model) {
      const id = decodeURIComponent(model[1]);
      return STANDIN_MODELS.includes(id)
        ? { status: 200, body: modelObject(id) }
        : errorReply(404, `The model '${id}' does not exist`, 'invalid_request_error', 'model_not_found', 'model');
    }
    if (method === 'POST' && path === '/v1/chat/completions') return this.chat(raw, gone);
    return errorReply(
      404,
      `Unknown request URL: ${method} ${pathname}. Please check the URL for typos.`,
      'invalid_request_error',
      'unknown_url',
    );
  }

  private async chat(raw: string, gone: AbortSignal): Promise<Reply | null> {
    const parsed = parseChatRequest(raw);
    if ('status' in parsed) return parsed;
    const { model, messages, maxTokens } = parsed;

    // Faults apply to well-formed requests only: they stand for what the service does to a valid call.
    const fault = this.faults.take();
    const failed = fault && faultReply(fault);
    if (failed) return failed;
    if (fault?.kind === 'slow' && !(await sleep(fault.delayMs, gone))) return null;

    let content =
      fault?.kind === 'malformed'
        ? MALFORMED_ANSWER
        : fault?.kind === 'invalid-label'
          ? invalidLabelAnswerFor(messages)
          : answerFor(messages);
    let finishReason = 'stop';
    let completionTokens = countTokens(content);
    if (maxTokens !== null && completionTokens > maxTokens) {
      // Like the real API: the answer is cut at the budget (so JSON may be left unterminated).
      const cut = truncateToTokens(content, maxTokens);
      content = cut.text;
      completionTokens = cut.tokens;
      finishReason = 'length';
    }
    const promptTokens = messages.reduce((sum, m) => sum + countTokens(m.content) + TOKENS_PER_MESSAGE, 0);

    const task = taskOf(messages);
    const c = this.counts;
    c.completions++;
    c.promptTokens += promptTokens;
    c.completionTokens += completionTokens;
    c.byModel[model] = (c.byModel[model] ?? 0) + 1;
    c.byTask[task] = (c.byTask[task] ?? 0) + 1;

    return {
      status: 200,
      body: {
        id: `chatcmpl-${++this.completionSeq}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content, refusal: null },
            logprobs: null,
            finish_reason: finishReason,
          },
        ],
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
        },
      },
    };
  }

}

// ---------------------------------------------------------------- helpers

interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  maxTokens: number | null;
}

/** The parts of a chat completion body the stand-in uses, or a 400 reply. */
function parseChatRequest(raw: string): ChatRequest | Reply {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return badRequest(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
    );
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return badRequest('The request body must be a JSON object.');
  }
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model === '') {
    return badRequest('you must provide a model parameter', 'model');
  }
  if (b.stream === true) {
    return badRequest('streaming not supported by the stand-in', 'stream');
  }
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    return badRequest("'messages' must be a non-empty array", 'messages');
  }
  const messages: ChatMessage[] = [];
  for (const [i, m] of (b.messages as unknown[]).entries()) {
    const role = (m as { role?: unknown } | null)?.role;
    const content = textOf((m as { content?: unknown } | null)?.content);
    if (typeof role !== 'string' || content === null) {
      return badRequest(`Invalid message at messages[${i}]: expected {role: string, content: string}`, `messages.[${i}]`);
    }
    messages.push({ role, content });
  }
  const limit = b.max_completion_tokens ?? b.max_tokens;
  if (limit !== undefined && limit !== null && !(Number.isInteger(limit) && (limit as number) >= 1)) {
    return badRequest('max_tokens must be a positive integer', 'max_tokens');
  }
  return { model: b.model, messages, maxTokens: typeof limit === 'number' ? limit : null };
}

/** A message's text: a string, the text parts of a content array, or '' for none; null if invalid. */
function textOf(content: unknown): string | null {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    const texts = content
      .filter((p): p is { type: 'text'; text: string } => p?.type === 'text' && typeof p.text === 'string')
      .map((p) => p.text);
    return texts.join('\n');
  }
  return null;
}

function modelObject(id: string) {
  return { id, object: 'model', created: MODELS_CREATED, owned_by: 'perfmine-standin' };
}

function send(res: ServerResponse, reply: Reply, requestId: string): void {
  // The client may have gone (timeout, close()); writing then would only raise errors.
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-request-id': requestId,
    ...reply.headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Waits `ms`; false if `signal` aborted first. */
async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await delay(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
