-- Build phase, stage 6 (synthesize_images): the spine columns it writes.
-- `container_name` (sql/001) holds the verified environment's reference
-- (an image@digest, or local:<env>#<checkout>), which stage 7 runs in.

ALTER TABLE pull_requests
  ADD COLUMN env_built_at timestamptz,          -- stage 6 decided (built and verified, or gave up)
  ADD COLUMN build_reason text,                 -- why there is no environment when it gave up
  ADD COLUMN environment_digest text,           -- the exact content verified (image id, or local hash)
  ADD COLUMN executor text,                     -- local | docker
  ADD COLUMN build_priority timestamptz;        -- set on neighbours of a success: claimed first

CREATE INDEX pull_requests_pending_build ON pull_requests (build_priority DESC NULLS LAST, id)
  WHERE rendered_problem IS NOT NULL AND env_built_at IS NULL
    AND NOT (failed_stages @> ARRAY['synthesize_images']::text[]);
