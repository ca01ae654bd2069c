-- Build phase, stages 4 and 5: the spine columns they write (their own tables
-- and details come in later migrations).

-- Where a repository's history is cloned from (NULL: https://github.com/OWNER/NAME.git);
-- tests and mirrors point it at a local bare repository.
ALTER TABLE repositories ADD COLUMN clone_url text;

-- Stage 4 (resolve_packages): the PR's environment, shared by every PR with the
-- same (repository, merge commit); can_install copied here so stage 5's pending
-- set is a plain predicate on the spine.
ALTER TABLE pull_requests
  ADD COLUMN package_id bigint REFERENCES packages (id) ON DELETE SET NULL,
  ADD COLUMN can_install boolean,
  ADD COLUMN env_resolved_at timestamptz;

-- Stage 5 (render_problems): when the problem statement was decided, and why
-- there is none when it was rejected (rendered_problem stays NULL then).
ALTER TABLE pull_requests
  ADD COLUMN problem_rendered_at timestamptz,
  ADD COLUMN render_reason text;

CREATE INDEX pull_requests_pending_resolve ON pull_requests (id)
  WHERE is_performance_commit AND env_resolved_at IS NULL
    AND NOT (failed_stages @> ARRAY['resolve_packages']::text[]);
CREATE INDEX pull_requests_pending_render ON pull_requests (id)
  WHERE can_install AND problem_rendered_at IS NULL
    AND NOT (failed_stages @> ARRAY['render_problems']::text[]);
CREATE INDEX pull_requests_package ON pull_requests (package_id);
