import type { ColumnType, Generated } from 'kysely';

/** Kysely types for the tables the TypeScript side reads and writes. */
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json = ColumnType<unknown, string, string>;

export interface RepositoriesTable {
  id: Generated<number>;
  owner: string;
  name: string;
  full_name: ColumnType<string, never, never>;
  source: ColumnType<'github' | 'git', 'github' | 'git' | undefined, 'github' | 'git'>;
  git_path: string | null;
  /** Where a GitHub repository is cloned from (NULL: https://github.com/OWNER/NAME.git). */
  clone_url: string | null;
  stars: number | null;
  description: string | null;
  topics: string[] | null;
  default_branch: string | null;
  is_fork: boolean | null;
  is_archived: boolean | null;
  asv_config_path: string | null;
  benchmark_dir: string | null;
  /** GitHub's numeric repository id (unique; survives renames). */
  github_id: number | null;
  /** Set on a legacy row that spells another row's name differently (see sql/007). */
  spelling_of: number | null;
  metadata_fetched_at: Timestamp | null;
  ingest_enabled: ColumnType<boolean, boolean | undefined, boolean>;
  ingest_reason: string | null;
  scrape_since: Timestamp | null;
  scrape_cursor: Timestamp | null;
  last_scraped_at: Timestamp | null;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, Date | string>;
}

export interface StageSettingsTable {
  stage: string;
  paused: ColumnType<boolean, boolean | undefined, boolean>;
  concurrency: number | null;
  note: string | null;
  updated_at: ColumnType<Date, never, Date | string>;
}

export interface RateLimitPausesTable {
  group_name: string;
  until: Timestamp;
  reason: string | null;
  set_by: string | null;
  set_at: ColumnType<Date, never, Date | string>;
}

export interface FunnelRow {
  ordinal: number;
  stage: string;
  pending: number;
  running: number;
  retrying: number;
  failed: number;
  done: number;
  oldest_pending_age: unknown;
  paused: boolean;
  rate_limited_until: Date | null;
}

export interface Database {
  repositories: RepositoriesTable;
  stage_settings: StageSettingsTable;
  rate_limit_pauses: RateLimitPausesTable;
  funnel: FunnelRow;
  leases: {
    stage: string; subject_id: number; subject_table: string; run_id: number; worker_id: string | null;
    claimed_at: Date | null; expires_at: Date | null; lease_seconds: number; attempts: number;
    max_attempts: number; retry_at: Date | null; failed_at: Date | null; last_error: string | null;
  };
  stage_runs: {
    id: number; stage: string; subject_table: string; subject_id: number; attempt: number;
    worker_id: string; started_at: Date; finished_at: Date; outcome: string; error: string | null; cost: Json | null;
  };
  workers: {
    id: string; hostname: string | null; pid: number | null; stages: string[] | null;
    started_at: Generated<Date>; last_seen_at: Generated<Date>; stopped_at: Date | null;
  };
}
