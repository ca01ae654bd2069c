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
