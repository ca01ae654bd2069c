-- Repository identity: one row per GitHub repository, however it is spelled.
-- GitHub owner and repository names are case-insensitive (PyData/XArray is
-- pydata/xarray), and a repository keeps its numeric id through a rename,
-- while GitHub redirects the former name. Both used to make a second row that
-- scraped and judged the same PRs again.

-- GitHub's repository id, filled by scrape_repos (and by discovery from the
-- search hit). A row whose id another row already holds is disabled by
-- scrape_repos with a reason naming that row.
ALTER TABLE repositories ADD COLUMN github_id bigint;
ALTER TABLE repositories ADD CONSTRAINT repositories_github_id_key UNIQUE (github_id);

-- Rows made before names were case-insensitive that spell an older row's name
-- differently: kept for their data, disabled, never scraped again, and left
-- out of the name's uniqueness (the oldest row of each name is the one kept).
ALTER TABLE repositories ADD COLUMN spelling_of bigint REFERENCES repositories (id) ON DELETE SET NULL;

UPDATE repositories r
SET spelling_of = k.id,
    ingest_enabled = false,
    ingest_reason = format('another spelling of %s (row %s), the row that is scraped', k.full_name, k.id),
    updated_at = now()
FROM (SELECT lower(owner) AS owner, lower(name) AS name, min(id) AS id
      FROM repositories GROUP BY 1, 2 HAVING count(*) > 1) g
JOIN repositories k ON k.id = g.id
WHERE lower(r.owner) = g.owner AND lower(r.name) = g.name AND r.id <> g.id;

ALTER TABLE repositories DROP CONSTRAINT repositories_owner_name_key;
CREATE UNIQUE INDEX repositories_name_key ON repositories (lower(owner), lower(name)) WHERE spelling_of IS NULL;
