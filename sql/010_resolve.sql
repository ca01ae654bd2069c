-- Stage 4 (resolve_packages): what decided each environment, and the memo of
-- resolutions that adjacent commits share.

ALTER TABLE packages
  ADD COLUMN python_version_rung   text,        -- requires-python | classifiers | asv-pythons | date
  ADD COLUMN resolver              text,        -- pip | uv
  ADD COLUMN resolver_version      text,        -- e.g. 23.0.1
  ADD COLUMN index_url             text,
  ADD COLUMN cutoff_used           boolean,     -- the pins are the index as of cutoff_at
  ADD COLUMN cutoff_at             timestamptz, -- start of the commit's UTC day
  ADD COLUMN cutoff_note           text,        -- why the cutoff was not used (impossible, or resolution failed at it)
  ADD COLUMN committed_at          timestamptz, -- the commit date the cutoff and the Python version come from
  ADD COLUMN packaging_root        text,        -- '' = repository root
  ADD COLUMN packaging_root_rule   text,        -- asv | single | name | shallowest
  ADD COLUMN declared_requirements jsonb,       -- [{requirement, source}] as declared
  ADD COLUMN dropped_requirements  jsonb,       -- [{requirement, source, reason}] left out, and why
  ADD COLUMN memo_key              text,
  ADD COLUMN memo_hit              boolean,     -- the resolution was reused from package_resolutions
  ADD COLUMN resolved_at           timestamptz,
  ADD COLUMN updated_at            timestamptz NOT NULL DEFAULT now();

-- One resolution per (requirements, Python version, cutoff day, index, resolver
-- and version); failures that are the input's (a conflict, a missing pin) too.
-- A resolution made at a cutoff also holds for every cutoff in
-- (valid_after, valid_until]: no file of a project the resolver read was
-- uploaded in between, so later commits with the same family_key (the key
-- without the cutoff) reuse it across days.
CREATE TABLE package_resolutions (
  memo_key                text PRIMARY KEY,
  family_key              text NOT NULL,
  valid_after             timestamptz,
  valid_until             timestamptz,
  requirements            jsonb NOT NULL,
  python_version          text NOT NULL,
  cutoff_day              date,
  index_url               text NOT NULL,
  resolver                text NOT NULL,
  resolver_version        text NOT NULL,
  can_install             boolean NOT NULL,
  install_reason          text,
  env_payload             jsonb,
  cutoff_used             boolean NOT NULL,
  cutoff_note             text,
  resolved_without_cutoff boolean NOT NULL DEFAULT false,
  seconds                 double precision,
  hits                    integer NOT NULL DEFAULT 0,
  created_at              timestamptz NOT NULL DEFAULT now(),
  last_hit_at             timestamptz
);

-- The resolver the daemons run now (recorded at start), so re-resolving what
-- an older one produced is one UPDATE (see README).
CREATE TABLE resolvers_in_use (
  stage            text PRIMARY KEY,
  resolver         text NOT NULL,
  resolver_version text NOT NULL,
  index_url        text NOT NULL,
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX package_resolutions_family ON package_resolutions (family_key) WHERE valid_until IS NOT NULL;
