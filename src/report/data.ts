/** What `perfmine report` reads from the database: plain data, rendered by render.ts. */

export interface ReasonCount {
  reason: string;
  count: number;
}

export interface FunnelGate {
  key: string;
  label: string;
  /** The stage that decides this gate (its failed rows are counted apart); null for the scrape itself. */
  stage: string | null;
  /** PRs that passed this gate (for the first step: every PR scraped). */
  passed: number;
  /** Reached the gate, not decided yet. */
  pending: number;
  /** The stage gave up on them after its retries (see the `failures` view). */
  failed: number;
  /** Decided against, grouped by reason. */
  rejected: number;
  reasons: ReasonCount[];
}

export interface ThroughputSeries {
  stage: string;
  counts: number[];
}

export interface ReportData {
  generatedAt: string;
  since: string | null;
  database: string;
  funnel: FunnelGate[];
  throughput: { bucket: 'minute' | 'hour' | 'day' | 'week'; labels: string[]; series: ThroughputSeries[] };
  builds: {
    byYear: Array<{ year: number | null; built: number; gaveUp: number }>;
    byStrategy: Array<{ strategy: string; attempts: number; verified: number; prs: number; seconds: number }>;
  };
  speedups: Array<{ repo: string; number: number; title: string; maxSpeedup: number | null; lowerBound: number | null; publishedAt: string }>;
  costs: {
    published: number;
    apiCalls: number;
    llmCalls: number;
    llmTokens: number;
    buildSeconds: number;
    /** null when nothing was benchmarked. */
    benchmarkSeconds: number | null;
    /** Where benchmark seconds come from: stage 7's wall_seconds, or the runs' start and finish times. */
    benchmarkSecondsSource: 'wall_seconds' | 'started_at..finished_at';
    perStage: Array<{ stage: string; attempts: number; apiCalls: number; llmCalls: number; llmTokens: number; seconds: number }>;
  };
}
