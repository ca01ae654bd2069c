/**
 * Where the docker executor records the layers it made or used
 * (`docker_images`, sql/014): by content (image id) and engine, with the
 * layer below, so stage 7 runs and stage 8 pushes exactly what stage 6
 * verified, and anyone can ask which images a repository's PRs left.
 * The images' own labels carry the same facts, for an engine without the
 * database.
 */
import { sql, type Kysely } from 'kysely';
import type { Layer } from './layers.js';

export interface LayerRecord extends Layer {
  python: string;
  repositoryId: number | null;
  commit: string | null;
  buildKey: string | null;
  sizeBytes: number | null;
}

export interface ImageRecorder {
  /** A layer was made or reused: insert it, or mark it used now. */
  used(layer: LayerRecord): Promise<void>;
  /** An image was removed (discard). */
  discarded(imageId: string): Promise<void>;
}

export class PgImageRecorder implements ImageRecorder {
  constructor(private readonly db: Kysely<any>, private readonly engine: string) {}

  async used(l: LayerRecord): Promise<void> {
    await sql`
      INSERT INTO docker_images (engine, image_id, layer, name, parent_image_id, python, repository_id, commit_sha, build_key, labels, size_bytes)
      VALUES (${this.engine}, ${l.id}, ${l.kind}, ${l.name}, ${l.parentId}, ${l.python}, ${l.repositoryId}, ${l.commit}, ${l.buildKey},
              ${JSON.stringify(l.labels)}::jsonb, ${l.sizeBytes})
      ON CONFLICT (engine, image_id) DO UPDATE
        SET name = EXCLUDED.name, last_used_at = now(), discarded_at = NULL,
            size_bytes = COALESCE(EXCLUDED.size_bytes, docker_images.size_bytes)`.execute(this.db);
  }

  async discarded(imageId: string): Promise<void> {
    await sql`UPDATE docker_images SET discarded_at = now() WHERE engine = ${this.engine} AND image_id = ${imageId} AND discarded_at IS NULL`.execute(this.db);
  }
}
