/**
 * Where stage 8 publishes. Two kinds of adapter behind small interfaces:
 *  - dataset targets take files (the month's Parquet file, the environments'
 *    Dockerfiles and locks) at paths relative to the dataset's root: a local
 *    directory, a Hugging Face dataset repository;
 *  - an image registry takes the verified image of a docker environment.
 * Each throws when the change did not land (ServiceDownError when the whole
 * service is down or refuses the credential): the stage then leaves the PR
 * unpublished and retries it.
 */

export interface DatasetFile {
  /** Relative to the dataset's root, `/`-separated (e.g. `data/perfmine@2024-03.parquet`). */
  path: string;
  bytes: Uint8Array;
}

export interface DatasetChange {
  /** Written as given (a file already there is replaced). */
  files: DatasetFile[];
  /** Removed (a path that is not there is fine). */
  deletes: string[];
  /** One line: the commit title on the hub. */
  summary: string;
}

/** What a target says it did: where the files are, and its revision when it has one (the hub's commit). */
export interface TargetReceipt {
  target: string;
  location: string;
  revision: string | null;
}

export interface DatasetTarget {
  /** `local` or `hub`. */
  readonly name: string;
  /** Where it writes, for messages (no credentials). */
  readonly location: string;
  write(change: DatasetChange, signal: AbortSignal): Promise<TargetReceipt>;
}

/** An image pushed to a registry: `name` is `registry/repository:tag`, `digest` the manifest's (pull `name@digest`). */
export interface PushedImage {
  name: string;
  digest: string;
}

export interface ImageRegistry {
  /** `host[:port]/namespace`, for messages. */
  readonly location: string;
  /**
   * Pushes the image whose id is `imageId` (exactly that content) as
   * `<registry>/<repository>:<tag>`, and checks that the registry's manifest
   * names that image as its config.
   */
  push(imageId: string, repository: string, tag: string, signal: AbortSignal): Promise<PushedImage>;
}

/** The image to push is not on the engine any more (discarded since it was verified): no retry brings it back. */
export class ImageGoneError extends Error {
  constructor(readonly imageId: string, message: string) {
    super(message);
    this.name = 'ImageGoneError';
  }
}
