-- Operations at scale: the funnel counts each PR stage's done rows. Without
-- these partial indexes every count is a sequential scan of pull_requests
-- (about 250 ms each at a million PRs); with them it is an index-only scan of
-- the done rows alone. Found with EXPLAIN (`npm run bench -- status --explain`).
CREATE INDEX pull_requests_done_classify ON pull_requests (id) WHERE is_performance_commit IS NOT NULL;
CREATE INDEX pull_requests_done_resolve ON pull_requests (id) WHERE env_resolved_at IS NOT NULL;
CREATE INDEX pull_requests_done_render ON pull_requests (id) WHERE problem_rendered_at IS NOT NULL;
CREATE INDEX pull_requests_done_build ON pull_requests (id) WHERE env_built_at IS NOT NULL;
CREATE INDEX pull_requests_done_benchmark ON pull_requests (id) WHERE benchmarked_at IS NOT NULL;
CREATE INDEX pull_requests_done_publish ON pull_requests (id) WHERE publish_decided_at IS NOT NULL;

-- The pending counts read the row's "since" column for the oldest pending
-- age: carried in the pending indexes, the counts are index-only scans.
DROP INDEX IF EXISTS pull_requests_pending_classify;
CREATE INDEX pull_requests_pending_classify ON pull_requests (id) INCLUDE (created_at)
  WHERE is_performance_commit_symbolic AND is_performance_commit IS NULL AND NOT (failed_stages @> ARRAY['classify_prs']::text[]);
DROP INDEX IF EXISTS pull_requests_pending_resolve;
CREATE INDEX pull_requests_pending_resolve ON pull_requests (id) INCLUDE (judged_at, created_at)
  WHERE is_performance_commit AND env_resolved_at IS NULL AND NOT (failed_stages @> ARRAY['resolve_packages']::text[]);
DROP INDEX IF EXISTS pull_requests_pending_render;
CREATE INDEX pull_requests_pending_render ON pull_requests (id) INCLUDE (created_at)
  WHERE can_install AND problem_rendered_at IS NULL AND NOT (failed_stages @> ARRAY['render_problems']::text[]);
DROP INDEX IF EXISTS pull_requests_pending_build;
CREATE INDEX pull_requests_pending_build ON pull_requests (build_priority DESC NULLS LAST, id) INCLUDE (problem_rendered_at, created_at)
  WHERE rendered_problem IS NOT NULL AND env_built_at IS NULL AND NOT (failed_stages @> ARRAY['synthesize_images']::text[]);
DROP INDEX IF EXISTS pull_requests_pending_publish;
CREATE INDEX pull_requests_pending_publish ON pull_requests (id) INCLUDE (benchmarked_at, created_at)
  WHERE benchmark_decision = 'faster' AND publish_decided_at IS NULL AND NOT (failed_stages @> ARRAY['publish']::text[]);
