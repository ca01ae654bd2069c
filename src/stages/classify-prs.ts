import PQueue from 'p-queue';
import type { HandlerContext, StageDefinition, SubjectRow } from '../bus/stage.js';
import type { LlmCall } from '../adapters/llm/client.js';
import { classifyAnswer, categorizeAnswer, CATEGORIES } from '../domain/judge.js';
import { cleanText } from '../domain/pr.js';
import { fileTable, render } from '../domain/prompt-template.js';
import { patchTokenGate } from '../domain/symbolic.js';
import { countTokens, truncateToTokens } from '../domain/tokens.js';
import { combinedHash, loadPrompt, recordPrompts } from './prompts.js';
import type { StageDeps } from './deps.js';

/**
 * Stage 3, classify_prs: every PR flagged by the symbolic filter and not yet
 * judged gets its diff (REST, paced), passes the size gate, and is judged by
 * the LLM: YES/NO, then for YES the category and difficulty. A diff GitHub
 * will not give (404/406/410/451) and a patch outside the token gate are
 * decided "not perf" with the reason. An answer that stays malformed leaves
 * the verdict NULL: the row is retried later, never guessed.
 */
export function classifyPrs(deps: StageDeps): StageDefinition {
  const { config } = deps;
  const dir = config.PERFMINE_PROMPTS_DIR;
  const classifyPrompt = loadPrompt('classify', dir);
  const categorizePrompt = loadPrompt('categorize', dir);
  const promptHash = combinedHash([classifyPrompt, categorizePrompt]);
  // Diff requests start at most one per interval across all handlers of this stage (GitHub
  // frowns on bursts); with no interval set they are limited only by the stage's concurrency.
  const pace = config.PERFMINE_DIFF_MIN_INTERVAL_MS;
  const diffs = new PQueue(pace > 0
    ? { concurrency: config.PERFMINE_CLASSIFY_CONCURRENCY, interval: pace, intervalCap: 1 }
    : { concurrency: config.PERFMINE_CLASSIFY_CONCURRENCY });
  const gateLimits = { minTokens: config.PERFMINE_PATCH_MIN_TOKENS, maxTokens: config.PERFMINE_PATCH_MAX_TOKENS };

  return {
    name: 'classify_prs', ordinal: 3, subjectTable: 'pull_requests',
    description: 'diff, size gate, LLM perf verdict, category and difficulty',
    pending: 's.is_performance_commit_symbolic AND s.is_performance_commit IS NULL',
    done: 's.is_performance_commit IS NOT NULL',
    wakeOn: ['pull_requests', 'pull_requests.is_performance_commit_symbolic'],
    writes: ['patch', 'patch_tokens', 'is_performance_commit', 'judge_reason', 'classification', 'difficulty',
      'judge_prompt_hash', 'judge_model', 'judged_at', 'updated_at'],
    outputs: ['is_performance_commit'],
    concurrency: config.PERFMINE_CLASSIFY_CONCURRENCY,
    leaseSeconds: 120,
    // Two LLM judgements, each asked up to MAX_TRIES times, plus the diff.
    deadlineSeconds: Math.ceil((config.PERFMINE_LLM_TIMEOUT_MS * config.PERFMINE_LLM_MAX_TRIES * 2) / 1000) + 60,
    maxAttempts: 6, backoff: { baseMs: 15_000, maxMs: 3_600_000 },
    rateLimitGroups: ['llm', 'github'],

    async prepare(db) {
      await recordPrompts(db, [
        { name: 'classify', hash: classifyPrompt.hash, template: classifyPrompt.text },
        { name: 'categorize', hash: categorizePrompt.hash, template: categorizePrompt.text },
        { name: 'judge', hash: promptHash, template: '(classify + categorize)' },
      ]);
    },

    async handle(pr: SubjectRow, ctx: HandlerContext) {
      const repo = await ctx.db.selectFrom('repositories').select(['owner', 'name', 'source'])
        .where('id', '=', pr.repository_id).executeTakeFirstOrThrow();
      const judged = { judge_prompt_hash: promptHash, judged_at: new Date().toISOString(), updated_at: new Date().toISOString() };
      const decideNo = (reason: string, extra: Record<string, unknown> = {}) => ({
        set: { ...judged, is_performance_commit: false, judge_reason: reason, classification: null, difficulty: null, judge_model: null, ...extra },
      });

      let patch: string | null = pr.patch;
      if (patch === null) {
        if (repo.source === 'git') return decideNo('no patch: the git source could not provide one (too large)');
        const diff = await diffs.add(() => deps.github.pullDiff(repo.owner, repo.name, pr.number, ctx.signal), { signal: ctx.signal });
        ctx.addCost({ api_calls: 1 });
        if (!diff || diff.diff === null) return decideNo(`diff unavailable (HTTP ${diff?.status ?? 'none'})`);
        patch = cleanText(diff.diff);
      }
      // Counting megabytes of tokens is slow; a patch this long is over any sane limit anyway.
      const tokens = patch.length > gateLimits.maxTokens * 16 ? Math.ceil(patch.length / 4) : countTokens(patch);
      const gate = patchTokenGate(tokens, gateLimits);
      if (gate) return decideNo(`size gate: ${gate} (${tokens} tokens)`, { patch_tokens: tokens });

      const onCall = (call: LlmCall) => ctx.addCost({
        llm_calls: 1, llm_prompt_tokens: call.prompt_tokens, llm_completion_tokens: call.completion_tokens,
        llm_latency_ms: call.latency_ms, llm: [call],
      });
      // Token counting is the costly part of a judgement here: encode the patch again only if it must be cut.
      const shown = tokens <= config.PERFMINE_CLASSIFY_PATCH_TOKENS
        ? { text: patch, truncated: false }
        : truncateToTokens(patch, config.PERFMINE_CLASSIFY_PATCH_TOKENS);
      const values = {
        repo: `${repo.owner}/${repo.name}`,
        title: pr.title || '(no title)',
        body: truncateToTokens(pr.body?.trim() || '(no description)', 1500).text,
        file_table: fileTable(pr.files ?? []),
        total_lines: String((pr.additions ?? 0) + (pr.deletions ?? 0) || sumLines(pr.files)),
        patch: shown.text,
        patch_note: shown.truncated ? ` (first ${config.PERFMINE_CLASSIFY_PATCH_TOKENS} of ${tokens} tokens)` : '',
        categories: CATEGORIES.map((c) => `- ${c}`).join('\n'),
      };
      const stored = { patch, patch_tokens: tokens };
      // An LlmAnswerError leaves the verdict NULL: the bus retries the row with backoff.
      const verdict = await deps.llm.json('classify', render(classifyPrompt, values), classifyAnswer, onCall, ctx.signal);
      if (verdict.answer === 'NO') {
        return decideNo(verdict.reasoning || 'classifier: NO', { ...stored, judge_model: deps.llm.model('classify') });
      }
      const kind = await deps.llm.json('categorize', render(categorizePrompt, values), categorizeAnswer, onCall, ctx.signal);
      return {
        set: {
          ...judged, ...stored, is_performance_commit: true, judge_reason: verdict.reasoning || 'classifier: YES',
          classification: kind.category, difficulty: kind.difficulty, judge_model: deps.llm.model('classify'),
        },
      };
    },
  };
}

function sumLines(files: Array<{ additions: number | null; deletions: number | null }> | null): number {
  return (files ?? []).reduce((n, f) => n + (f.additions ?? 0) + (f.deletions ?? 0), 0);
}
