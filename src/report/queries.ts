/**
 * The report's queries: the funnel with reasons per gate, throughput per stage,
 * builds by commit year and strategy, published speedups, and costs. Read only.
 * `since` keeps PRs that entered the database on or after it, and the work
 * (stage runs, build attempts, benchmark runs) done on or after it.
 */
import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../db/connect.js';
import { groupReasons, judgeReasonKey, OTHER, reasonKey } from '../domain/report-reasons.js';
import type { FunnelGate, ReportData } from './data.js';

interface GateSql {
  key: string;
  label: string;
  stage: string | null;
  passed: string;
  pending: string;
  rejected: string;
  reason: string;
  group: (text: string | null) => string;
}

// Static SQL over pull_requests p (LEFT JOIN packages k); never built from input.
const GATES: GateSql[] = [
  {
    key: 'scraped', label: 'PRs scraped', stage: null,
    passed: 'true', pending: 'false', rejected: 'false', reason: 'NULL', group: reasonKey,
  },
  {
    key: 'symbolic', label: 'symbolic gate (stage 2)', stage: null,
    passed: 'p.is_performance_commit_symbolic', pending: 'p.is_performance_commit_symbolic IS NULL',
    rejected: 'p.is_performance_commit_symbolic = false',
    reason: `CASE
      WHEN p.symbolic_reason->>'sizeLimit' IS NOT NULL THEN 'too many ' || (p.symbolic_reason->>'sizeLimit') || ' changed'
      WHEN (p.symbolic_reason->>'nonCoreOnly')::boolean THEN 'only non-core files (tests, docs, benchmarks, CI)'
      WHEN jsonb_array_length(coalesce(p.symbolic_reason->'negative', '[]')) > 0 THEN 'title has words against performance'
      WHEN jsonb_array_length(coalesce(p.symbolic_reason->'positive', '[]')) = 0 THEN 'no performance words in the title'
      ELSE 'title not judged a performance change' END`,
    group: (t) => t ?? '(no reason recorded)',
  },
  {
    key: 'judged', label: 'judged a performance PR (stage 3)', stage: 'classify_prs',
    passed: 'p.is_performance_commit', pending: 'p.is_performance_commit_symbolic AND p.is_performance_commit IS NULL',
    rejected: 'p.is_performance_commit = false',
    // The LLM's own words are one group (judgeReasonKey); deciding that in SQL keeps the groups few.
    reason: `CASE WHEN p.judge_reason ~* '^\\s*(size gate|diff unavailable|no patch)' OR coalesce(p.judge_reason, '') = '' THEN p.judge_reason
                  ELSE 'judged by the LLM' END`,
    group: judgeReasonKey,
  },
  {
    key: 'installable', label: 'installable environment (stage 4)', stage: 'resolve_packages',
    passed: 'p.can_install', pending: 'p.is_performance_commit AND p.env_resolved_at IS NULL',
    rejected: 'p.can_install = false', reason: 'k.install_reason', group: reasonKey,
  },
  {
    key: 'rendered', label: 'problem statement (stage 5)', stage: 'render_problems',
    passed: 'p.rendered_problem IS NOT NULL', pending: 'p.can_install AND p.problem_rendered_at IS NULL',
    rejected: 'p.problem_rendered_at IS NOT NULL AND p.rendered_problem IS NULL', reason: 'p.render_reason', group: reasonKey,
  },
  {
    key: 'built', label: 'verified environment (stage 6)', stage: 'synthesize_images',
    passed: 'p.container_name IS NOT NULL', pending: 'p.rendered_problem IS NOT NULL AND p.env_built_at IS NULL AND p.container_name IS NULL',
    rejected: 'p.env_built_at IS NOT NULL AND p.container_name IS NULL', reason: 'p.build_reason', group: reasonKey,
  },
  {
    key: 'faster', label: 'measured faster (stage 7)', stage: 'benchmark',
    passed: `p.benchmark_decision = 'faster'`, pending: 'p.container_name IS NOT NULL AND p.benchmarked_at IS NULL AND p.benchmark_decision IS NULL',
    rejected: `p.benchmark_decision IS DISTINCT FROM 'faster' AND (p.benchmarked_at IS NOT NULL OR p.benchmark_decision IS NOT NULL)`,
    reason: `coalesce(p.benchmark_decision, 'undecided') || E'\\u001f' || coalesce(p.benchmark_reason, '')`,
    group: (t) => {
      const [decision, reason] = (t ?? '').split('\u001f');
      return reason?.trim() ? `${decision}: ${reasonKey(reason)}` : decision || '(no reason recorded)';
    },
  },
  {
    key: 'published', label: 'published (stage 8)', stage: 'publish',
    passed: 'p.published_at IS NOT NULL', pending: `p.benchmark_decision = 'faster' AND p.publish_decided_at IS NULL`,
    rejected: 'p.publish_decided_at IS NOT NULL AND p.published_at IS NULL', reason: 'p.publish_reason',
    group: (t) => reasonKey(t, { strip: /^not published:\s*/i }),
  },
];

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const raw = (s: string): RawBuilder<unknown> => sql.raw(s);

async function hasColumn(db: Db, table: string, column: string): Promise<boolean> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = ${table} AND column_name = ${column}`.execute(db);
  return rows[0].n > 0;
}

async function readFunnel(db: Db, since: Date | null): Promise<FunnelGate[]> {
  const prSince = since ? sql`p.created_at >= ${since}` : sql`true`;
  const failedOf = (stage: string | null) => (stage ? `p.failed_stages @> ARRAY['${stage}']::text[]` : 'false');
  // One scan for every gate's counts.
  const cols = GATES.map((g, i) => `
    count(*) FILTER (WHERE ${g.passed})::int AS passed_${i},
    count(*) FILTER (WHERE (${g.pending}) AND NOT ${failedOf(g.stage)})::int AS pending_${i},
    count(*) FILTER (WHERE (${g.pending}) AND ${failedOf(g.stage)})::int AS failed_${i},
    count(*) FILTER (WHERE ${g.rejected})::int AS rejected_${i}`).join(',');
  const counts = (await sql<Record<string, number>>`SELECT ${raw(cols)} FROM pull_requests p WHERE ${prSince}`.execute(db)).rows[0];
  // One more scan for every gate's reasons. Numbers and hashes become # in SQL already, so a
  // million rejected rows come back as a few groups; each gate's 2,000 largest are kept and
  // the rest counted as one group (totals stay exact).
  const rejectedIdx = GATES.map((g, i) => i).filter((i) => counts[`rejected_${i}`] > 0);
  const byGate = new Map<number, Array<{ key: string; count: number }>>();
  if (rejectedIdx.length) {
    const values = rejectedIdx.map((i) => `(${i}, CASE WHEN ${GATES[i].rejected} THEN coalesce(${GATES[i].reason}, '') END)`).join(', ');
    const { rows } = await sql<{ gate: number; reason: string; n: number }>`
      WITH exact AS (
        SELECT g.gate, left(split_part(g.reason, E'\\n', 1), 240) AS reason, count(*)::int AS n
        FROM pull_requests p LEFT JOIN packages k ON k.id = p.package_id
        CROSS JOIN LATERAL (VALUES ${raw(values)}) AS g (gate, reason)
        WHERE ${prSince} AND g.reason IS NOT NULL
        GROUP BY 1, 2
      ), normalized AS (
        SELECT gate, regexp_replace(reason, '\\m(?=[a-f]*[0-9])[0-9a-f]{7,64}\\M|[0-9]+', '#', 'gi') AS reason, sum(n)::int AS n
        FROM exact GROUP BY 1, 2
      )
      SELECT gate, reason, n FROM (
        SELECT gate, reason, n, row_number() OVER (PARTITION BY gate ORDER BY n DESC, reason) AS rank FROM normalized) ranked
      WHERE rank <= 2000`.execute(db);
    for (const r of rows) {
      if (!byGate.has(r.gate)) byGate.set(r.gate, []);
      byGate.get(r.gate)!.push({ key: GATES[r.gate].group(r.reason), count: r.n });
    }
  }
  const gates: FunnelGate[] = [];
  for (const [i, g] of GATES.entries()) {
    const keyed = byGate.get(i) ?? [];
    const rest = counts[`rejected_${i}`] - keyed.reduce((n, r) => n + r.count, 0);
    if (rest > 0) keyed.push({ key: OTHER, count: rest });
    gates.push({
      key: g.key, label: g.label, stage: g.stage,
      passed: counts[`passed_${i}`], pending: counts[`pending_${i}`], failed: counts[`failed_${i}`],
      rejected: counts[`rejected_${i}`], reasons: groupReasons(keyed),
    });
  }
  return gates;
}

async function readThroughput(db: Db, since: Date | null): Promise<ReportData['throughput']> {
  const runSince = since ? sql`r.finished_at >= ${since}` : sql`true`;
  const span = (await sql<{ lo: Date | null; hi: Date | null }>`
    SELECT min(r.finished_at) AS lo, max(r.finished_at) AS hi FROM stage_runs r
    WHERE r.outcome = 'succeeded' AND ${runSince}`.execute(db)).rows[0];
  if (!span.lo || !span.hi) return { bucket: 'day', labels: [], series: [] };
  const hours = (new Date(span.hi).getTime() - new Date(span.lo).getTime()) / 3_600_000;
  const bucket = hours <= 3 ? 'minute' : hours <= 24 * 7 ? 'hour' : hours <= 24 * 180 ? 'day' : 'week';
  const format = { minute: 'MM-DD HH24:MI', hour: 'YYYY-MM-DD HH24:00', day: 'YYYY-MM-DD', week: 'YYYY-MM-DD' }[bucket];
  const { rows } = await sql<{ stage: string; t: string; n: number }>`
    WITH b AS (
      SELECT generate_series(date_trunc(${bucket}, ${span.lo}::timestamptz, 'UTC'), date_trunc(${bucket}, ${span.hi}::timestamptz, 'UTC'),
                             ('1 ' || ${bucket})::interval) AS t
    ), s AS (
      SELECT r.stage, coalesce(st.ordinal, 999) AS ordinal FROM stage_runs r LEFT JOIN stages st ON st.name = r.stage
      WHERE r.outcome = 'succeeded' AND ${runSince} GROUP BY 1, 2
    ), c AS (
      SELECT r.stage, date_trunc(${bucket}, r.finished_at, 'UTC') AS t, count(*)::int AS n FROM stage_runs r
      WHERE r.outcome = 'succeeded' AND ${runSince} GROUP BY 1, 2
    )
    SELECT s.stage, to_char(b.t AT TIME ZONE 'UTC', ${format}) AS t, coalesce(c.n, 0)::int AS n
    FROM s CROSS JOIN b LEFT JOIN c ON c.stage = s.stage AND c.t = b.t
    ORDER BY s.ordinal, s.stage, b.t`.execute(db);
  const labels: string[] = [];
  const series = new Map<string, number[]>();
  for (const r of rows) {
    if (!series.has(r.stage)) series.set(r.stage, []);
    const list = series.get(r.stage)!;
    if (series.size === 1) labels.push(r.t);
    list.push(r.n);
  }
  return { bucket, labels, series: [...series].map(([stage, counts]) => ({ stage, counts })) };
}

async function readBuilds(db: Db, since: Date | null): Promise<ReportData['builds']> {
  const prSince = since ? sql`p.created_at >= ${since}` : sql`true`;
  const byYear = (await sql<{ year: number | null; built: number; gave_up: number }>`
    SELECT extract(year FROM coalesce(k.committed_at, p.merged_at) AT TIME ZONE 'UTC')::int AS year,
           count(*) FILTER (WHERE p.container_name IS NOT NULL)::int AS built,
           count(*) FILTER (WHERE p.container_name IS NULL)::int AS gave_up
    FROM pull_requests p LEFT JOIN packages k ON k.id = p.package_id
    WHERE p.env_built_at IS NOT NULL AND ${prSince}
    GROUP BY 1 ORDER BY 1 NULLS LAST`.execute(db)).rows;
  const attemptSince = since ? sql`c.created_at >= ${since}` : sql`true`;
  const byStrategy = (await sql<{ strategy: string; attempts: number; verified: number; prs: number; seconds: number }>`
    SELECT c.strategy, count(*)::int AS attempts, count(*) FILTER (WHERE c.succeeded)::int AS verified,
           count(DISTINCT c.pull_request_id)::int AS prs, coalesce(sum(c.duration_ms), 0)::float8 / 1000 AS seconds
    FROM candidate_containers c WHERE ${attemptSince}
    GROUP BY 1
    ORDER BY array_position(ARRAY['cache', 'similar', 'default', 'llm'], c.strategy) NULLS LAST, 1`.execute(db)).rows;
  return {
    byYear: byYear.map((r) => ({ year: r.year, built: r.built, gaveUp: r.gave_up })),
    byStrategy: byStrategy.map((r) => ({ ...r, seconds: num(r.seconds) })),
  };
}

async function readSpeedups(db: Db, since: Date | null): Promise<ReportData['speedups']> {
  const prSince = since ? sql`p.created_at >= ${since}` : sql`true`;
  const { rows } = await sql<{ repo: string; number: number; title: string; max_speedup: number | null; lower: number | null; published_at: Date }>`
    SELECT r.full_name AS repo, p.number, p.title, p.max_speedup, p.max_speedup_lower_bound AS lower, p.published_at
    FROM pull_requests p JOIN repositories r ON r.id = p.repository_id
    WHERE p.published_at IS NOT NULL AND ${prSince}
    ORDER BY p.max_speedup DESC NULLS LAST, r.full_name, p.number`.execute(db);
  return rows.map((r) => ({
    repo: r.repo, number: r.number, title: r.title, maxSpeedup: r.max_speedup, lowerBound: r.lower,
    publishedAt: new Date(r.published_at).toISOString(),
  }));
}

async function readCosts(db: Db, since: Date | null, published: number): Promise<ReportData['costs']> {
  const runSince = since ? sql`r.finished_at >= ${since}` : sql`true`;
  const perStage = (await sql<{ stage: string; attempts: number; api_calls: number; llm_calls: number; llm_tokens: number; seconds: number }>`
    SELECT r.stage, count(*)::int AS attempts,
           coalesce(sum((r.cost->>'api_calls')::numeric), 0)::float8 AS api_calls,
           coalesce(sum((r.cost->>'llm_calls')::numeric), 0)::float8 AS llm_calls,
           coalesce(sum(coalesce((r.cost->>'llm_prompt_tokens')::numeric, 0) + coalesce((r.cost->>'llm_completion_tokens')::numeric, 0)), 0)::float8 AS llm_tokens,
           coalesce(extract(epoch FROM sum(r.finished_at - r.started_at)), 0)::float8 AS seconds
    FROM stage_runs r LEFT JOIN stages st ON st.name = r.stage
    WHERE ${runSince}
    GROUP BY r.stage, st.ordinal ORDER BY st.ordinal NULLS LAST, r.stage`.execute(db)).rows
    .map((r) => ({ stage: r.stage, attempts: r.attempts, apiCalls: num(r.api_calls), llmCalls: num(r.llm_calls), llmTokens: num(r.llm_tokens), seconds: num(r.seconds) }));
  const attemptSince = since ? sql`c.created_at >= ${since}` : sql`true`;
  const build = (await sql<{ s: number }>`
    SELECT coalesce(sum(c.duration_ms), 0)::float8 / 1000 AS s FROM candidate_containers c WHERE ${attemptSince}`.execute(db)).rows[0];
  // Stage 7 records wall_seconds (sql/016); a run without it (older, or written by other tools) counts its start to finish.
  const wall = await hasColumn(db, 'benchmark_runs', 'wall_seconds');
  const benchSince = since ? sql`b.started_at >= ${since}` : sql`true`;
  const fromTimes = sql`extract(epoch FROM b.finished_at - b.started_at)`;
  const seconds = wall ? sql`coalesce(b.wall_seconds, ${fromTimes})` : fromTimes;
  const bench = (await sql<{ runs: number; s: number | null }>`
    SELECT count(*)::int AS runs, sum(${seconds})::float8 AS s FROM benchmark_runs b WHERE ${benchSince}`.execute(db)).rows[0];
  const sum = (k: 'apiCalls' | 'llmCalls' | 'llmTokens') => perStage.reduce((n, r) => n + r[k], 0);
  return {
    published, apiCalls: sum('apiCalls'), llmCalls: sum('llmCalls'), llmTokens: sum('llmTokens'),
    buildSeconds: num(build.s), benchmarkSeconds: bench.runs ? num(bench.s) : null,
    benchmarkSecondsSource: wall ? 'wall_seconds' : 'started_at..finished_at', perStage,
  };
}

/** Everything the report shows, from one database. */
export async function readReport(db: Db, opts: { since?: Date | null; database?: string } = {}): Promise<ReportData> {
  const since = opts.since ?? null;
  const funnel = await readFunnel(db, since);
  const published = funnel.find((g) => g.key === 'published')?.passed ?? 0;
  return {
    generatedAt: new Date().toISOString(),
    since: since ? since.toISOString() : null,
    database: opts.database ?? (await sql<{ d: string }>`SELECT current_database() AS d`.execute(db)).rows[0].d,
    funnel,
    throughput: await readThroughput(db, since),
    builds: await readBuilds(db, since),
    speedups: await readSpeedups(db, since),
    costs: await readCosts(db, since, published),
  };
}
