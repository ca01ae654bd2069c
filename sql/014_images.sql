-- Docker executor: every image layer it made or used (base, repository, PR),
-- known by content (the image id) on the engine that holds it, with the layer
-- below. Stage 6 stores the PR layer's id in pull_requests.environment_digest;
-- stage 7 runs that id and stage 8 pushes it, so what is measured and published
-- is what was verified. The images' labels (perfmine.*) say the same.

CREATE TABLE docker_images (
  id bigserial PRIMARY KEY,
  engine text NOT NULL,                     -- which Docker engine holds it (PERFMINE_HOST_ID, else the hostname; plus DOCKER_HOST when set)
  image_id text NOT NULL,                   -- sha256:... (the exact content)
  layer text NOT NULL CHECK (layer IN ('base', 'repository', 'pr')),
  name text NOT NULL,                       -- name:tag it carries (derived from its inputs)
  parent_image_id text,                     -- the layer below (NULL for base)
  python text NOT NULL,
  repository_id bigint REFERENCES repositories (id) ON DELETE SET NULL,
  commit_sha text,                          -- pr: the commit checked out (the PR's base commit)
  build_key text,                           -- pr: the build request's key
  labels jsonb NOT NULL DEFAULT '{}',
  size_bytes bigint,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz NOT NULL DEFAULT now(),
  discarded_at timestamptz,                 -- removed by the executor (failed verification, superseded)
  UNIQUE (engine, image_id)
);

CREATE INDEX docker_images_repository ON docker_images (repository_id, layer);
CREATE INDEX docker_images_parent ON docker_images (parent_image_id);
