import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { schemaVersion } from '../../src/catalog/database.js';
import { MIGRATIONS } from '../../src/catalog/migrations.js';
import { scratchDir } from '../helpers/home.js';

let scratch: ReturnType<typeof scratchDir>;
let file: string;
let catalog: Catalog;

beforeEach(() => {
  scratch = scratchDir();
  file = path.join(scratch.dir, 'catalog.db');
  catalog = Catalog.openFile(file);
  catalog.putLibrary({ name: 'lib', dir: '/x', slots: 2, drives: 1, cartridgeSize: 1 << 20, createdAt: 'now' });
  catalog.putMedia({ barcode: 'LIB001L9', library: 'lib', slot: 0, state: 'scratch', capacity: 1 << 20, bytes: 0 });
});
afterEach(() => {
  catalog.close();
  scratch.cleanup();
});

describe('catalog database', () => {
  it('is SQLite in WAL mode with foreign keys, migrated to the newest version', () => {
    expect(catalog.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(catalog.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(schemaVersion(catalog.db)).toBe(MIGRATIONS.at(-1)!.version);
    // A segment on a cartridge the catalog does not know violates a foreign key.
    const job = catalog.startJob({ target: 'v', targetSize: 10 });
    const loc = catalog.addLocation(job, { copy: 0, seq: 0, library: 'lib', stream: 0 });
    expect(() => catalog.addSegments(job, loc, [{ seq: 0, barcode: 'NOPE00L9', fileNumber: 0, firstBlock: 0, sourceOffset: 0, length: 10, checksum: 'c', writtenAt: 'now' }])).toThrow(/FOREIGN KEY/);
    expect(catalog.job(job).bytes).toBe(0);
  });

  it('refuses a catalog from a newer Plexus', () => {
    catalog.close();
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    expect(() => Catalog.openFile(file)).toThrow(expect.objectContaining({ code: 'E_CORRUPT' }));
    catalog = Catalog.openFile(path.join(scratch.dir, 'other.db'));
  });

  it('can be queried with the sqlite3 shell schema it documents', () => {
    const job = catalog.startJob({ target: 'vol', targetSize: 100 });
    const loc = catalog.addLocation(job, { copy: 0, seq: 0, library: 'lib', stream: 0 });
    catalog.addSegments(job, loc, [{ seq: 0, barcode: 'LIB001L9', fileNumber: 0, firstBlock: 1, sourceOffset: 0, length: 100, checksum: 'abc', writtenAt: 'now' }]);
    catalog.finishJob(job, 'done');
    const rows = catalog.db.prepare(`SELECT j.target, s.barcode, s.file_number, s.length FROM jobs j JOIN locations l ON l.job_id = j.id JOIN segments s ON s.location_id = l.id`).all();
    expect(rows).toEqual([{ target: 'vol', barcode: 'LIB001L9', file_number: 0, length: 100 }]);
    expect(catalog.job(job)).toMatchObject({ status: 'done', bytes: 100, pid: null });
  });

  it('marks running jobs whose lock no process holds incomplete on the next open, whatever their pid', () => {
    const live = catalog.startJob({ target: 'a', targetSize: 1 });
    const loc = catalog.addLocation(live, { copy: 0, seq: 0, library: 'lib', stream: 0 });
    // A job row left by a process that is gone, whose pid now belongs to a live process
    // (this one): its lock is free, so it is settled. The pid decides nothing.
    const orphan = Number(
      catalog.db.prepare(`INSERT INTO jobs (target, target_size, started_at, data_time, status, pid) VALUES ('b', 1, 'then', 'then', 'running', ?)`).run(process.pid).lastInsertRowid,
    );
    const orphanLoc = catalog.addLocation(orphan, { copy: 0, seq: 0, library: 'lib', stream: 0 });
    const other = Catalog.openFile(file);
    try {
      expect(other.job(orphan)).toMatchObject({ status: 'incomplete', pid: null, error: 'the backup process died before the job ended' });
      expect(other.locations(orphan).map((l) => [l.id, l.status])).toEqual([[orphanLoc, 'failed']]);
      // The job this process runs (it holds the lock) stays running, and its location writing.
      expect(other.job(live).status).toBe('running');
      expect(other.locations(live).map((l) => [l.id, l.status])).toEqual([[loc, 'writing']]);
    } finally {
      other.close();
    }
    catalog.finishJob(live, 'done');
    const again = Catalog.openFile(file);
    expect(again.job(live).status).toBe('done');
    again.close();
  });

  it('claims due schedule entries once', () => {
    const past = catalog.addSchedule('2020-01-01T00:00:00.000Z', 'a');
    catalog.addSchedule('2999-01-01T00:00:00.000Z', 'b');
    expect(catalog.claimDue(new Date()).map((s) => s.id)).toEqual([past]);
    expect(catalog.claimDue(new Date())).toEqual([]);
    catalog.finishSchedule(past, 'done', 'job 1');
    expect(catalog.schedule().map((s) => [s.target, s.status])).toEqual([
      ['a', 'done'],
      ['b', 'pending'],
    ]);
  });

  it('settles schedule entries left running by a run-due that no longer holds them: due again, or failed if their job started', () => {
    const mine = catalog.addSchedule('2020-01-01T00:00:00.000Z', 'a');
    expect(catalog.claimDue(new Date()).map((s) => s.id)).toEqual([mine]);
    const early = catalog.addSchedule('2020-01-01T00:00:01.000Z', 'b');
    const late = catalog.addSchedule('2020-01-01T00:00:02.000Z', 'c');
    // Rows a dead run-due left: running, no lock held (whatever the pid of its job says).
    catalog.db.prepare(`UPDATE schedule SET status = 'running' WHERE id IN (?, ?)`).run(early, late);
    const job = Number(
      catalog.db.prepare(`INSERT INTO jobs (target, target_size, started_at, data_time, status, pid, schedule_id) VALUES ('c', 1, 'then', 'then', 'running', ?, ?)`).run(process.pid, late)
        .lastInsertRowid,
    );
    const other = Catalog.openFile(file);
    try {
      const rows = new Map(other.schedule().map((r) => [r.id, r]));
      expect(rows.get(mine)?.status).toBe('running');
      expect(rows.get(early)).toMatchObject({ status: 'pending', outcome: 'the run-due process died before starting it: due again' });
      expect(rows.get(late)).toMatchObject({ status: 'failed', outcome: `the run-due process died during backup job ${job} (incomplete)` });
      expect(other.job(job).status).toBe('incomplete');
      // The entry put back is due again, and claimed once.
      expect(other.claimDue(new Date()).map((s) => s.id)).toEqual([early]);
      other.finishSchedule(early, 'done', 'job 9');
    } finally {
      other.close();
    }
    catalog.finishSchedule(mine, 'done', 'job 1');
  });
});
