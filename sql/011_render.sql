-- Stage 5 (render_problems): what each problem statement was made from and how
-- it was checked, one candidate_prs row per PR (rewritten when the PR is rendered
-- again). Existing columns, as this stage fills them:
--   linked_issues  [{owner, name, number, title, depth, found: {in, form, from}}]: the issues
--                  the problem may draw on, and how each was found (PR text or timeline,
--                  an issue's body, comment or timeline; URL, owner/repo#N or #N)
--   extracted      the extractor's four sections as it answered (before the fidelity check)
--   fidelity       {min_ratio, checked, kept, dropped: [{section, kind, text, best_ratio}]}
ALTER TABLE candidate_prs
  -- 'github' (issues followed) or 'git' (no issues: the PR's own text only)
  ADD COLUMN source_kind text,
  -- references not followed: linked pull requests, HTTP 404/410/451, the issue or look-up limit
  ADD COLUMN skipped_refs jsonb,
  -- the four sections after the fidelity check; the problem uses only the first two
  ADD COLUMN sections jsonb,
  -- hash of prompts/extract.md + prompts/problem.md (prompts.name = 'render'), and the model
  ADD COLUMN prompt_hash text,
  ADD COLUMN model text,
  -- overlap of the problem with the patch's new code (0..1), and what it quoted
  ADD COLUMN leakage_score double precision,
  ADD COLUMN leakage jsonb,
  -- replacements made, per kind (emails, mentions, user_urls, images, home_paths, ips, tokens)
  ADD COLUMN anonymized jsonb,
  -- 'rendered', or why not (the same text as pull_requests.render_reason)
  ADD COLUMN outcome text,
  ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- For the re-run after a prompt change (README): rows rendered with another prompt hash.
CREATE INDEX candidate_prs_prompt_hash ON candidate_prs (prompt_hash);
