/**
 * The catalog at scale: on a synthetic catalog (10^3 jobs, 10^5 segments), every query the
 * everyday operations run finds its rows through an index (EXPLAIN QUERY PLAN), and
 * migration 6 adds those indexes to an older catalog without losing a row. Speed itself is
 * measured by `plexus bench catalog`, not here.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuildRows } from '../../src/backup/rebuild.js';
import { planRestore } from '../../src/backup/restore.js';
import { buildSyntheticCatalog, fullScans, type PlannedQuery, recordQueries, type SyntheticCatalog, scanFromCatalog } from '../../src/bench/catalog-scale.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { schemaVersion } from '../../src/catalog/database.js';
import { MIGRATIONS } from '../../src/catalog/migrations.js';
import { scratchDir } from '../helpers/home.js';

let scratch: ReturnType<typeof scratchDir>;
let syn: SyntheticCatalog;
let catalog: Catalog;

beforeAll(() => {
  scratch = scratchDir();
  syn = buildSyntheticCatalog(path.join(scratch.dir, 'catalog.db'), { jobs: 1000, segments: 100_000, cartridges: 120 });
  catalog = Catalog.openFile(syn.file);
});
afterAll(() => {
  catalog.close();
  scratch.cleanup();
});

/** The plans of what `fn` runs on the catalog. */
const plans = (fn: () => unknown): PlannedQuery[] => recordQueries(catalog, fn).queries;
const uses = (qs: PlannedQuery[], index: string): boolean => qs.some((q) => q.plan.some((p) => p.includes(`INDEX ${index}`)));

/** Runs `fn` in a transaction that is rolled back. */
function rolledBack<T>(fn: () => T): T {
  catalog.db.exec('BEGIN IMMEDIATE');
  try {
    return fn();
  } finally {
    catalog.db.exec('ROLLBACK');
  }
}

describe('the catalog at scale: every everyday query uses an index', () => {
  it('has the shape it was asked for', () => {
    expect(catalog.db.prepare(`SELECT count(*) FROM segments`).pluck().get()).toBe(100_000);
    expect(catalog.db.prepare(`SELECT count(*) FROM jobs`).pluck().get()).toBe(1000);
    expect(catalog.db.prepare(`SELECT count(*) FROM media`).pluck().get()).toBe(120);
    expect(syn.libraries.slice(0, 3).map((l) => [l.name, l.cartridges])).toEqual([
      ['lib-1', 1],
      ['lib-10', 10],
      ['lib-100', 100],
    ]);
  });

  it('catalog jobs: all of them is the one scan (it returns every row); filtered, an index', () => {
    const all = plans(() => catalog.jobs());
    expect(fullScans(all).every((s) => s.startsWith('SCAN jobs'))).toBe(true);
    const byStatus = plans(() => catalog.jobs({ status: 'failed' }));
    expect(fullScans(byStatus)).toEqual([]);
    expect(uses(byStatus, 'jobs_by_status')).toBe(true);
    expect(fullScans(plans(() => catalog.jobs({ target: 'vol7' })))).toEqual([]);
    // The bytes shown come from the job row, not from summing its segments.
    expect(all.every((q) => !/segments/.test(q.sql))).toBe(true);
  });

  it('catalog show: the job, its location entries and its segments by index', () => {
    const qs = plans(() => {
      catalog.job(syn.typicalJob);
      catalog.locations(syn.typicalJob);
      return catalog.segments(syn.typicalJob);
    });
    expect(fullScans(qs)).toEqual([]);
  });

  it('range restore planning: only the segments around the range, through segments_by_offset', () => {
    const job = catalog.job(syn.largeJob);
    const offset = Math.floor(job.targetSize / 2 / syn.chunk) * syn.chunk + 4096;
    let plan: ReturnType<typeof planRestore> | undefined;
    const qs = plans(() => {
      plan = planRestore(catalog, syn.largeJob, { offset, length: 1 << 30 });
    });
    expect(fullScans(qs)).toEqual([]);
    expect(uses(qs, 'segments_by_offset')).toBe(true);
    // The plan is the one every segment of the job gives: contiguous, from the segment holding `offset`.
    const all = catalog.segments(syn.largeJob).filter((s) => s.sourceOffset + s.length > offset && s.sourceOffset < offset + (1 << 30));
    expect(plan!.segments.map((s) => s.id)).toEqual(all.map((s) => s.id));
    expect(plan!.segments[0]!.sourceOffset).toBeLessThanOrEqual(offset);
    // The start and the end of the job, and all of it.
    for (const [o, l] of [
      [0, 1],
      [job.targetSize - 1, 1],
      [0, job.targetSize],
    ] as const) {
      const p = planRestore(catalog, syn.largeJob, { offset: o, length: l });
      expect(p.segments.reduce((a, s) => a + s.length, 0)).toBe(l === 1 ? syn.chunk : job.targetSize);
    }
  });

  it('range restore planning still covers a copy whose segments overlap (falls back to every segment)', () => {
    rolledBack(() => {
      const id = catalog.startJob({ target: 'overlap', targetSize: 3000 });
      const loc = catalog.addLocation(id, { copy: 0, seq: 0, library: 'lib-1', stream: 0 });
      const seg = (seq: number, sourceOffset: number, length: number) => ({
        seq,
        barcode: 'S00000L9',
        fileNumber: 900_000 + seq,
        firstBlock: 0,
        sourceOffset,
        length,
        checksum: 'x',
        writtenAt: 'now',
      });
      // [0, 3000) whole, then a later, shorter rewrite of [100, 200) inside it.
      catalog.addSegments(id, loc, [seg(0, 0, 3000), seg(1, 100, 100)]);
      catalog.finishJob(id, 'done');
      const p = planRestore(catalog, id, { offset: 500, length: 100 });
      expect(p.segments.map((s) => [s.sourceOffset, s.length])).toEqual([[0, 3000]]);
    });
  });

  it('adding a job: no statement scans', () => {
    rolledBack(() => {
      const qs = plans(() => {
        const id = catalog.startJob({ target: 'new', targetSize: syn.chunk });
        const loc = catalog.addLocation(id, { copy: 0, seq: 0, library: 'lib-1', stream: 0 });
        catalog.addSegments(id, loc, [{ seq: 0, barcode: 'S00000L9', fileNumber: 999_999, firstBlock: 0, sourceOffset: 0, length: syn.chunk, checksum: 'x', writtenAt: 'now' }]);
        catalog.setLocationStatus(loc, 'done');
        catalog.finishJob(id, 'done');
      });
      expect(fullScans(qs)).toEqual([]);
    });
  });

  it('settling dead jobs and a dead run-due: jobs_by_status, jobs_by_schedule, schedule_by_status', () => {
    rolledBack(() => {
      catalog.db.exec(`UPDATE jobs SET status = 'running', pid = 999999999 WHERE id IN (3, 4, 5)`);
      catalog.db.exec(`UPDATE schedule SET status = 'running' WHERE id = 6`);
      let settled: number[] = [];
      const qs = plans(() => {
        settled = catalog.settleDeadJobs();
        catalog.settleDeadSchedule();
      });
      expect(settled).toEqual([3, 4, 5]);
      expect(catalog.job(4).status).toBe('incomplete');
      expect(catalog.db.prepare(`SELECT status FROM schedule WHERE id = 6`).pluck().get()).toBe('failed');
      expect(fullScans(qs)).toEqual([]);
      expect(uses(qs, 'jobs_by_status')).toBe(true);
      expect(uses(qs, 'jobs_by_schedule')).toBe(true);
      expect(uses(qs, 'schedule_by_status')).toBe(true);
    });
    expect(fullScans(plans(() => catalog.claimDue(new Date())))).toEqual([]);
  });

  it('a scoped rebuild replaces the rows of the cartridges it read, each found by index', () => {
    const scan = scanFromCatalog(catalog, 'lib-10');
    const before = catalog.db.prepare(`SELECT count(*) FROM segments s JOIN media m ON m.barcode = s.barcode WHERE m.library = 'lib-10'`).pluck().get();
    const statuses = catalog.db.prepare(`SELECT id, status, bytes FROM jobs ORDER BY id`).all();
    rolledBack(() => {
      const qs = plans(() => rebuildRows(catalog, scan, [], () => {}));
      expect(fullScans(qs)).toEqual([]);
      expect(uses(qs, 'locations_by_library')).toBe(true);
      expect(uses(qs, 'segments_by_barcode')).toBe(true);
      // What it read is what it put back: the same segments, the same jobs.
      expect(catalog.db.prepare(`SELECT count(*) FROM segments s JOIN media m ON m.barcode = s.barcode WHERE m.library = 'lib-10'`).pluck().get()).toBe(before);
      expect(catalog.db.prepare(`SELECT count(*) FROM segments`).pluck().get()).toBe(100_000);
      expect(catalog.db.prepare(`SELECT id, status, bytes FROM jobs ORDER BY id`).all()).toEqual(statuses);
    });
  });

  it('forgetting a library finds its rows by index', () => {
    rolledBack(() => {
      const qs = plans(() => {
        catalog.jobsOnLibrary('lib-1');
        catalog.forgetLibrary('lib-1');
      });
      // The jobs left with no location entry are looked for among all jobs, each by index.
      expect(fullScans(qs).filter((s) => !s.startsWith('SCAN jobs in: DELETE FROM jobs'))).toEqual([]);
      expect(catalog.db.prepare(`SELECT count(*) FROM media WHERE library = 'lib-1'`).pluck().get()).toBe(0);
    });
  });
});

describe('catalog migration 6 (indexes)', () => {
  it('adds the indexes to a version-5 catalog and keeps its rows', () => {
    const dir = scratchDir();
    try {
      const file = path.join(dir.dir, 'catalog.db');
      const v5 = new Database(file);
      for (const m of MIGRATIONS.filter((x) => x.version <= 5)) v5.exec(m.sql);
      v5.pragma('user_version = 5');
      v5.exec(`
        INSERT INTO libraries VALUES ('lib', '/x', 2, 1, 1048576, 'then');
        INSERT INTO media VALUES ('LIB001L9', 'lib', 0, 'filling', 1048576, 8192, 'then');
        INSERT INTO schedule (id, at, target, status, created_at) VALUES (1, 'then', 'db', 'done', 'then');
        INSERT INTO jobs (id, target, target_size, started_at, data_time, status, bytes, schedule_id) VALUES (1, 'db', 8192, 'then', 'then', 'done', 8192, 1);
        INSERT INTO locations (id, job_id, copy, seq, library, stream, status) VALUES (1, 1, 0, 0, 'lib', 0, 'done');
        INSERT INTO segments (location_id, seq, barcode, file_number, first_block, source_offset, length, checksum, written_at)
          VALUES (1, 0, 'LIB001L9', 0, 0, 0, 4096, 'a', 'then'), (1, 1, 'LIB001L9', 1, 0, 4096, 4096, 'b', 'then');
      `);
      v5.close();

      const c = Catalog.openFile(file);
      try {
        expect(schemaVersion(c.db)).toBe(MIGRATIONS.at(-1)!.version);
        const indexes = c.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name`).pluck().all();
        expect(indexes).toEqual(expect.arrayContaining(['jobs_by_schedule', 'jobs_by_status', 'locations_by_library', 'schedule_by_status', 'segments_by_offset']));
        expect(c.jobs().map((j) => [j.id, j.status, j.bytes, j.scheduleId])).toEqual([[1, 'done', 8192, 1]]);
        expect(c.segments(1).map((s) => [s.sourceOffset, s.checksum])).toEqual([
          [0, 'a'],
          [4096, 'b'],
        ]);
        expect(planRestore(c, 1, { offset: 5000, length: 100 }).segments.map((s) => s.checksum)).toEqual(['b']);
        expect(c.db.pragma('integrity_check', { simple: true })).toBe('ok');
      } finally {
        c.close();
      }
    } finally {
      dir.cleanup();
    }
  });
});
