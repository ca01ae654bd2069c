/**
 * The published dataset's Parquet schema, written explicitly (hyparquet-writer
 * guesses types from data otherwise: an all-null column, or a speedup that
 * happens to be whole, would change the file's schema from month to month).
 * One row per published task (src/domain/publish-record.ts); the file's
 * key-value metadata names the schema version, dataset and month.
 */
import { parquetWriteBuffer, type ColumnSource, type SchemaElement } from 'hyparquet-writer';
import type { PublishedRecord } from './publish-record.js';

export const PARQUET_SCHEMA_VERSION = '1';

const string = (name: string, optional = false): SchemaElement =>
  ({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: optional ? 'OPTIONAL' : 'REQUIRED' });
const json = (name: string): SchemaElement => ({ name, type: 'BYTE_ARRAY', converted_type: 'JSON', repetition_type: 'REQUIRED' });
const double = (name: string, optional = false): SchemaElement => ({ name, type: 'DOUBLE', repetition_type: optional ? 'OPTIONAL' : 'REQUIRED' });

/** Top-level columns in file order, with their schema elements (a list is its group and its leaves). */
const COLUMNS: { name: keyof PublishedRecord; elements: SchemaElement[]; value?: (r: PublishedRecord) => unknown }[] = [
  { name: 'task_id', elements: [string('task_id')] },
  { name: 'owner', elements: [string('owner')] },
  { name: 'repo', elements: [string('repo')] },
  { name: 'number', elements: [{ name: 'number', type: 'INT32', repetition_type: 'REQUIRED' }] },
  { name: 'merge_commit_sha', elements: [string('merge_commit_sha')] },
  { name: 'base_commit_sha', elements: [string('base_commit_sha')] },
  {
    name: 'merged_at', value: (r) => new Date(r.merged_at),
    elements: [{ name: 'merged_at', type: 'INT64', converted_type: 'TIMESTAMP_MILLIS', repetition_type: 'REQUIRED' }],
  },
  { name: 'rendered_problem', elements: [string('rendered_problem')] },
  { name: 'classification', elements: [string('classification', true)] },
  { name: 'difficulty', elements: [string('difficulty', true)] },
  { name: 'patch', elements: [string('patch')] },
  { name: 'executor', elements: [string('executor')] },
  { name: 'environment_digest', elements: [string('environment_digest')] },
  { name: 'image_name', elements: [string('image_name', true)] },
  { name: 'image_digest', elements: [string('image_digest', true)] },
  { name: 'environment_lock', elements: [json('environment_lock')] },
  { name: 'environment_path', elements: [string('environment_path')] },
  { name: 'max_speedup', elements: [double('max_speedup')] },
  { name: 'max_speedup_lower_bound', elements: [double('max_speedup_lower_bound')] },
  {
    // LIST<STRUCT<name, params, speedup, speedup_lower_bound, p_value>> in Parquet's three-level list layout.
    name: 'benchmarks',
    elements: [
      { name: 'benchmarks', repetition_type: 'REQUIRED', converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', repetition_type: 'REQUIRED', num_children: 5 },
      string('name'), string('params', true), double('speedup'), double('speedup_lower_bound', true), double('p_value', true),
    ],
  },
  { name: 'machine', elements: [json('machine')] },
  { name: 'machine_fingerprint', elements: [string('machine_fingerprint', true)] },
  { name: 'perfmine_version', elements: [string('perfmine_version')] },
  {
    name: 'published_at', value: (r) => new Date(r.published_at),
    elements: [{ name: 'published_at', type: 'INT64', converted_type: 'TIMESTAMP_MILLIS', repetition_type: 'REQUIRED' }],
  },
];

/** The file's schema: the root, then every column's elements in order. */
export const PARQUET_SCHEMA: SchemaElement[] = [
  { name: 'root', num_children: COLUMNS.length },
  ...COLUMNS.flatMap((c) => c.elements),
];

/** Column names in file order. */
export const PARQUET_COLUMNS: string[] = COLUMNS.map((c) => c.name);

export interface MonthFileMeta {
  dataset: string;
  month: string;
  version: string;
}

/** A month file's bytes: these rows, in this order, with the explicit schema. */
export function encodeMonthFile(rows: readonly PublishedRecord[], meta: MonthFileMeta): Uint8Array {
  const columnData: ColumnSource[] = COLUMNS.map((c) => ({
    name: c.name,
    data: rows.map((r) => (c.value ? c.value(r) : r[c.name] ?? null)) as unknown[],
    nullable: c.elements[0].repetition_type === 'OPTIONAL',
  }));
  const buffer = parquetWriteBuffer({
    columnData,
    schema: PARQUET_SCHEMA,
    kvMetadata: [
      { key: 'perfmine.schema_version', value: PARQUET_SCHEMA_VERSION },
      { key: 'perfmine.dataset', value: meta.dataset },
      { key: 'perfmine.month', value: meta.month },
    ],
    createdBy: `perfmine ${meta.version}`,
  });
  return new Uint8Array(buffer);
}
