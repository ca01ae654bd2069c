import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Transaction } from 'kysely';
import type { HandlerContext, StageDefinition, StageResult, SubjectRow } from '../bus/stage.js';
import type { Database } from '../db/schema.js';
import type { LlmCall } from '../adapters/llm/client.js';
import { githubIssueFetcher } from '../adapters/github/issue-fetcher.js';
import { addCounts, anonymize, emptyCounts } from '../domain/anonymize.js';
import { countedSections, extractAnswer, promptSources, type Sections, type SourceDocument } from '../domain/extraction.js';
import { checkFidelity } from '../domain/fidelity.js';
import { maskIssueRefs, refLabel } from '../domain/issue-refs.js';
import { measureLeakage } from '../domain/leakage.js';
import { findLinkedIssues, type LinkedIssue, type LinkedIssuesResult } from '../domain/linked-issues.js';
import { parseProblemTemplate, renderProblem } from '../domain/problem-template.js';
import { hashText, render } from '../domain/prompt-template.js';
import { countTokens, truncateToTokens } from '../domain/tokens.js';
import { saveCandidate, type CandidateRecord } from '../store/candidate-prs.js';
import { loadPrompt, PROMPTS_DIR, recordPrompts } from './prompts.js';
import type { StageDeps } from './deps.js';

/** A document longer than this is cut before anything reads it (the prompt shows far less anyway). */
const MAX_DOCUMENT_CHARS = 40_000;
/** Each linked issue's body in the problem statement is cut to this many tokens. */
const ISSUE_EXCERPT_TOKENS = 400;

/**
 * Stage 5, render_problems: a PR whose environment can be installed gets its
 * problem statement. Linked issues are found breadth-first (issues only,
 * never linked PRs); the PR's text and the issues with their comments are
 * anonymized and sorted by the LLM into four sections; every sentence must be
 * supported by that text (fidelity); the problem is rendered from the
 * observations, the triage and the issues only, never from the solution
 * sections or the raw PR body, and rejected when it reproduces the patch's new
 * code. A PR that cannot be rendered gets `problem_rendered_at` and the reason
 * in `render_reason`, with `rendered_problem` NULL, and stops there.
 */
export function renderProblems(deps: StageDeps): StageDefinition {
  const { config } = deps;
  const dir = config.PERFMINE_PROMPTS_DIR ?? PROMPTS_DIR;
  const extractPrompt = loadPrompt('extract', dir);
  const problemTemplate = parseProblemTemplate(readFileSync(path.join(dir, 'problem.md'), 'utf8'));
  const promptHash = hashText(`extract:${extractPrompt.hash}\nproblem:${problemTemplate.hash}`);
  const limits = {
    maxDepth: config.PERFMINE_LINKED_ISSUES_DEPTH,
    maxIssues: config.PERFMINE_LINKED_ISSUES_MAX,
    maxLookups: config.PERFMINE_LINKED_ISSUES_LOOKUPS,
  };

  return {
    name: 'render_problems', ordinal: 5, subjectTable: 'pull_requests',
    description: 'linked issues, LLM extraction with a fidelity check, anonymized problem statement, leakage check',
    pending: 's.can_install AND s.problem_rendered_at IS NULL',
    done: 's.problem_rendered_at IS NOT NULL',
    wakeOn: ['pull_requests.can_install'],
    writes: ['rendered_problem', 'problem_description', 'render_reason', 'problem_rendered_at', 'updated_at'],
    outputs: ['problem_rendered_at'],
    concurrency: config.PERFMINE_RENDER_CONCURRENCY,
    leaseSeconds: 120,
    // One extraction asked up to MAX_TRIES times, plus the issue look-ups (each with its own timeout).
    deadlineSeconds: Math.ceil((config.PERFMINE_LLM_TIMEOUT_MS * config.PERFMINE_LLM_MAX_TRIES) / 1000) + 300,
    maxAttempts: 6, backoff: { baseMs: 15_000, maxMs: 3_600_000 },
    rateLimitGroups: ['llm', 'github'],

    async prepare(db) {
      await recordPrompts(db, [
        { name: 'extract', hash: extractPrompt.hash, template: extractPrompt.text },
        { name: 'problem', hash: problemTemplate.hash, template: problemTemplate.text },
        { name: 'render', hash: promptHash, template: '(extract + problem)' },
      ]);
    },

    async handle(pr: SubjectRow, ctx: HandlerContext): Promise<StageResult> {
      const repo = await ctx.db.selectFrom('repositories')
        .select(['owner', 'name', 'source', 'description', 'asv_config_path'])
        .where('id', '=', pr.repository_id).executeTakeFirstOrThrow();
      const sourceKind = repo.source === 'git' ? 'git' : 'github';
      const record: CandidateRecord = {
        pullRequestId: pr.id, sourceKind, linkedIssues: [], skippedRefs: [], extracted: null, sections: null,
        fidelity: null, promptHash: null, model: null, leakageScore: null, leakage: null, anonymized: null, outcome: '',
      };
      const finish = (problem: { rendered: string; description: string } | null, reason: string): StageResult => {
        const at = new Date().toISOString();
        const saved = { ...record, outcome: problem ? 'rendered' : reason };
        return {
          set: {
            rendered_problem: problem?.rendered ?? null, problem_description: problem?.description ?? null,
            render_reason: problem ? null : reason, problem_rendered_at: at, updated_at: at,
          },
          write: (trx: Transaction<Database>) => saveCandidate(trx, saved),
        };
      };

      const body = (pr.body ?? '').trim();
      if (!body) return finish(null, 'empty PR body: nothing to make a problem statement from');

      // 1. Linked issues (a git source has none: the PR's own text is then the only source).
      let linked: LinkedIssuesResult = { issues: [], skipped: [], lookups: 0 };
      if (sourceKind === 'github') {
        const fetcher = githubIssueFetcher(deps.github, ctx.signal, (n) => ctx.addCost({ api_calls: n }));
        linked = await findLinkedIssues(
          { owner: repo.owner, name: repo.name, number: pr.number, title: pr.title ?? '', body }, fetcher, limits, ctx.signal);
      }
      record.linkedIssues = linked.issues.map(({ owner, name, number, title, depth, found }) => ({ owner, name, number, title, depth, found }));
      record.skippedRefs = linked.skipped;
      if (config.PERFMINE_PROBLEM_REQUIRES_ISSUE && !linked.issues.length) {
        return finish(null, sourceKind === 'git'
          ? 'no linked issue: a git source has no issues (PERFMINE_PROBLEM_REQUIRES_ISSUE=false lets the PR\'s own text suffice)'
          : `no linked issue found (${linked.skipped.length} reference(s) skipped; PERFMINE_PROBLEM_REQUIRES_ISSUE=false lets the PR's own text suffice)`);
      }

      // 2. The texts, anonymized before anyone (the LLM included) reads them.
      let counts = emptyCounts();
      const clean = (text: string | null): string => {
        const a = anonymize((text ?? '').slice(0, MAX_DOCUMENT_CHARS));
        counts = addCounts(counts, a.counts);
        return a.text;
      };
      const title = clean(pr.title ?? '');
      const issues = linked.issues.map((i) => ({ ...i, title: clean(i.title), body: clean(i.body), comments: i.comments.map(clean) }));
      const docs = sourceDocuments(title, clean(body), issues);

      // 3. Extraction: one LLM call, its answer checked with zod (asked again when malformed).
      const sources = promptSources(docs, config.PERFMINE_EXTRACT_SOURCE_TOKENS, countTokens, (t, n) => truncateToTokens(t, n).text);
      const onCall = (call: LlmCall) => ctx.addCost({
        llm_calls: 1, llm_prompt_tokens: call.prompt_tokens, llm_completion_tokens: call.completion_tokens,
        llm_latency_ms: call.latency_ms, llm: [call],
      });
      const messages = render(extractPrompt, { repo: `${repo.owner}/${repo.name}`, title: title || '(no title)', sources: sources.text });
      // An LlmAnswerError leaves the row pending: the bus retries it with backoff.
      const answer: Sections = await deps.llm.json('extract', messages, extractAnswer, onCall, ctx.signal);
      record.extracted = answer;
      record.promptHash = promptHash;
      record.model = deps.llm.model('extract');

      // 4. Fidelity: only what the shown text supports survives.
      const counted = countedSections(answer);
      const checked = checkFidelity(counted, sources.shown.map((d) => `${d.heading}\n${d.text}`), config.PERFMINE_FIDELITY_MIN_RATIO);
      const sections = countedSections(checked.sections);
      record.sections = sections;
      record.fidelity = checked.record;
      if (!sections.initial_observations) {
        record.anonymized = counts;
        return finish(null, counted.initial_observations
          ? `no initial observation is supported by the source text (the fidelity check dropped ${checked.record.dropped.filter((d) => d.section === 'initial_observations').length})`
          : 'the extractor found no initial observations in the PR and its issues');
      }

      // 5. The problem: observations, triage and issues; never the solution sections, never the raw PR body.
      // Issue numbers and links lead only to the discussion of the fix: masked.
      const observations = maskIssueRefs(sections.initial_observations);
      const triage = maskIssueRefs(sections.triage_attempts);
      const issuesText = maskIssueRefs(issues.map(issueExcerpt).join('\n\n'));
      const description = [observations, triage].filter(Boolean).join('\n\n');
      const rendered = anonymize(renderProblem(problemTemplate, {
        repository: `${repo.owner}/${repo.name}`,
        repository_description: clean(repo.description ?? ''),
        asv_command: asvCommand(repo.asv_config_path),
        initial_observations: observations,
        triage,
        issues: issuesText,
      }));
      counts = addCounts(counts, rendered.counts);
      record.anonymized = counts;

      // 6. No leakage: the problem must not reproduce the patch's new code.
      if (pr.patch === null || pr.patch === undefined) return finish(null, 'no patch to check the problem against for leakage');
      const leak = measureLeakage(`${description}\n\n${issuesText}`, pr.patch);
      record.leakageScore = leak.score;
      record.leakage = leak;
      const limit = config.PERFMINE_PROBLEM_MAX_PATCH_OVERLAP;
      if (leak.score > limit) {
        return finish(null, `solution leak: the problem overlaps the patch's new code by ${leak.score} `
          + `(limit ${limit}, PERFMINE_PROBLEM_MAX_PATCH_OVERLAP); it quotes: ${leak.quoted_lines[0] ?? '(code runs)'}`.slice(0, 400));
      }
      return finish({ rendered: rendered.text, description: anonymize(description).text }, 'rendered');
    },
  };
}

/** The PR's own text first, then each (anonymized) issue with its comments in BFS order, as the extractor reads them. */
function sourceDocuments(title: string, body: string, issues: LinkedIssue[]): SourceDocument[] {
  const docs: SourceDocument[] = [{ kind: 'pull request', heading: `Pull request: ${title}`, text: body }];
  for (const issue of issues) {
    const label = refLabel(issue);
    docs.push({ kind: 'issue', heading: `Issue ${label}: ${issue.title}`, text: issue.body ?? '' });
    issue.comments.forEach((c, k) => docs.push({ kind: 'comment', heading: `Comment ${k + 1} on ${label}`, text: c }));
  }
  return docs;
}

/** An (anonymized) issue as the problem shows it: its title and the start of its body, no number or link that leads to the fix. */
function issueExcerpt(issue: LinkedIssue): string {
  const cut = truncateToTokens((issue.body ?? '').trim(), ISSUE_EXCERPT_TOKENS);
  const text = cut.truncated ? `${cut.text.trimEnd()}\n\n[...]` : cut.text;
  return `### ${issue.title.trim() || '(untitled issue)'}\n\n${text || '(no description)'}`;
}

function asvCommand(configPath: string | null): string {
  const config = configPath && configPath !== 'asv.conf.json' ? ` --config ${configPath}` : '';
  return `asv run${config} --python=same --bench <regex of the benchmarks to run>`;
}
