-- Stage 6 (synthesize_images): one candidate_containers row per build attempt
-- of the cascade (cache -> similar -> default -> llm). Existing columns, as
-- this stage fills them:
--   strategy      cache | similar | default | llm
--   build_script  the bash script that ran (or, for a cheat, that was refused)
--   image_name    docker: the image tag; local: NULL
--   succeeded     built AND verified
--   reason        why not (the build's reason, the failed check, the cheat rule)
--   build_log     the tail of the install and build output
ALTER TABLE candidate_containers
  ADD COLUMN repository_id    bigint REFERENCES repositories (id) ON DELETE CASCADE,
  ADD COLUMN commit_sha       text,          -- the base commit the environment is built at
  ADD COLUMN attempt_no       integer,       -- 1, 2, ... within one run of the cascade for the PR
  ADD COLUMN outcome          text,          -- verified | build_failed | verification_failed | cheat | duplicate | llm_failed
  ADD COLUMN script_hash      text,
  ADD COLUMN source_pull_request_id bigint,  -- similar: the PR whose verified script was reused; cache: whose environment
  ADD COLUMN duration_ms      integer,
  ADD COLUMN llm_prompt_tokens     integer,
  ADD COLUMN llm_completion_tokens integer,
  ADD COLUMN prompt_hash      text,          -- llm: hash of prompts/synthesize.md
  ADD COLUMN model            text,
  ADD COLUMN verification     jsonb,         -- every check's facts and verdict (imports, benchmarks, patch, drift, secrets, tests)
  ADD COLUMN executor         text,          -- local | docker
  ADD COLUMN python_version   text,
  ADD COLUMN env_key          text,          -- hash of (python version, pinned requirements): environments are shared within it
  ADD COLUMN env_ref          text,          -- what stage 7 runs in (pull_requests.container_name), when verified
  ADD COLUMN env_digest       text,
  ADD COLUMN environment      jsonb,         -- the executor's EnvironmentRef {executor, ref, digest, python, workdir}: what stage 7 execs in
  -- A verified environment other PRs of the same commit may reuse (CHECK_CACHE); false once discarded.
  ADD COLUMN reusable         boolean NOT NULL DEFAULT false;

-- CHECK_CACHE: a verified environment of the same repository and commit.
CREATE INDEX candidate_containers_cache ON candidate_containers (repository_id, commit_sha)
  WHERE succeeded AND reusable;
-- SIMILAR (verified scripts of the repository) and the default-failure streak.
CREATE INDEX candidate_containers_repo_strategy ON candidate_containers (repository_id, strategy, created_at);
