/**
 * The catalog: what was backed up, when, and where every byte of it lies (Fig. 9 of
 * JP 2001-095789, the backup data storage table), plus the libraries, their media and
 * the backup schedule (Fig. 2). One SQLite file in the storage home.
 */

import path from 'node:path';
import type Database from 'better-sqlite3';
import { PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { CATALOG_FILE, type Db, type OpenDatabaseOptions, openDatabase } from './database.js';
import { acquireLock, type HeldLock, type LockKind, lockHeld, releaseLock, removeStaleLock } from './liveness.js';

/** Where a job stands. `incomplete`: its process died before it ended. */
export type JobStatus = 'running' | 'done' | 'failed' | 'incomplete';

/** A job as listed: `expired` once retention expired it (a done job, never restored again). */
export type ListedJobStatus = JobStatus | 'expired';

/** One backup job. */
export interface JobRow {
  id: number;
  target: string;
  targetSize: number;
  mode: string;
  startedAt: string;
  endedAt: string | null;
  /** The time the backed-up data is as of (the split time of a split secondary). */
  dataTime: string;
  status: ListedJobStatus;
  pid: number | null;
  bytes: number;
  error: string | null;
  scheduleId: number | null;
  /** A consistent image, a crash-consistent copy of a live volume, or unknown (see src/backup/consistency.ts). */
  consistency: 'consistent' | 'crash-consistent' | 'unknown';
}

/** One location entry of a job: a run of segments written by one stream to one library. */
export interface LocationRow {
  id: number;
  jobId: number;
  /** Which copy of the data (parallel streams write several). */
  copy: number;
  /** Order within the copy (a copy continued elsewhere after a failover has several). */
  seq: number;
  library: string;
  stream: number;
  status: 'writing' | 'done' | 'failed';
}

/** One segment: a byte range of the source stored as one tape file. */
export interface SegmentRow {
  id: number;
  locationId: number;
  copy: number;
  locationSeq: number;
  library: string;
  seq: number;
  barcode: string;
  fileNumber: number;
  firstBlock: number;
  sourceOffset: number;
  length: number;
  /** Bytes of data on the cartridge: `length` less the holes recorded as hole records
   * (null for a segment written before version 7 of the catalog: as `length`). */
  dataBytes: number | null;
  checksum: string;
  writtenAt: string;
}

/** A cartridge as the catalog knows it. */
export interface MediaRow {
  barcode: string;
  library: string;
  slot: number;
  state: 'scratch' | 'filling' | 'full' | 'missing';
  capacity: number;
  bytes: number;
  updatedAt: string;
}

/** A library as registered in the catalog. */
export interface LibraryRow {
  name: string;
  dir: string;
  slots: number;
  drives: number;
  cartridgeSize: number;
  createdAt: string;
}

/** One line of the backup processing table (Fig. 2): number, date/time, target. */
export interface ScheduleRow {
  id: number;
  at: string;
  target: string;
  library: string | null;
  status: 'pending' | 'running' | 'done' | 'failed';
  createdAt: string;
  lastRunAt: string | null;
  outcome: string | null;
}

/** A backup policy (migration 8): recurring backups of a data set in a time window. */
export interface PolicyRow {
  name: string;
  /** The data set, in the order given. */
  volumes: string[];
  /** Seconds between two backups of a volume. */
  everyS: number;
  /** `HH:MM-HH:MM` local time (may cross midnight); null: at any time. */
  window: string | null;
  library: string;
  mode: 'single' | 'parallel' | 'chunked';
  /** Streams of a parallel or chunked backup (null: the default, 2). */
  streams: number | null;
  /** Complete jobs kept per volume (null: all). */
  keep: number | null;
  enabled: boolean;
  createdAt: string;
}

/** Where a policy run stands; `cancelled` runs (stopped, or their process died) do not count as the slot's run. */
export type PolicyRunStatus = 'running' | 'done' | 'failed' | 'cancelled';

/** One backup a policy started (or is running). Times are on the policy clock. */
export interface PolicyRunRow {
  id: number;
  policy: string;
  volume: string;
  /** The start of the interval slot the run belongs to. */
  slot: string;
  startedAt: string;
  endedAt: string | null;
  library: string;
  /** Drives it holds while it runs (a single stream: 1). */
  drives: number;
  status: PolicyRunStatus;
  jobId: number | null;
  pid: number | null;
  outcome: string | null;
}

/** A run to claim. */
export type NewPolicyRun = Pick<PolicyRunRow, 'policy' | 'volume' | 'slot' | 'library' | 'drives'>;

/** A cartridge holding only segments of expired jobs: retention may free it. */
export interface ExpiredCartridge {
  barcode: string;
  library: string;
  state: MediaRow['state'];
  /** Segments of expired jobs on it. */
  segments: number;
  /** The expired jobs they belong to. */
  jobs: number[];
}

/** A new segment, as a backup reports it. */
export type NewSegment = Omit<SegmentRow, 'id' | 'locationId' | 'copy' | 'locationSeq' | 'library' | 'dataBytes'> & { dataBytes?: number | null };

// An expired job lists as `expired` (migration 8 keeps its `done` beneath expired_at).
const JOB_COLUMNS = `id, target, target_size AS targetSize, mode, started_at AS startedAt, ended_at AS endedAt,
  data_time AS dataTime, CASE WHEN expired_at IS NULL THEN status ELSE 'expired' END AS status, pid, bytes, error,
  schedule_id AS scheduleId, consistency`;
/** The columns `jobs()` reads as arrays, in the order `jobOfList` takes them. */
const JOB_LIST_COLUMNS = 'id, target, target_size, mode, started_at, ended_at, data_time, status, expired_at, pid, bytes, error, schedule_id, consistency';

/** A job row from the array of JOB_LIST_COLUMNS. */
function jobOfList(r: unknown[]): JobRow {
  return {
    id: r[0] as number,
    target: r[1] as string,
    targetSize: r[2] as number,
    mode: r[3] as string,
    startedAt: r[4] as string,
    endedAt: r[5] as string | null,
    dataTime: r[6] as string,
    status: (r[8] === null ? r[7] : 'expired') as ListedJobStatus,
    pid: r[9] as number | null,
    bytes: r[10] as number,
    error: r[11] as string | null,
    scheduleId: r[12] as number | null,
    consistency: r[13] as JobRow['consistency'],
  };
}

const SEGMENT_COLUMNS = `s.id, s.location_id AS locationId, l.copy, l.seq AS locationSeq, l.library, s.seq, s.barcode,
  s.file_number AS fileNumber, s.first_block AS firstBlock, s.source_offset AS sourceOffset, s.length,
  s.data_bytes AS dataBytes, s.checksum, s.written_at AS writtenAt`;
const MEDIA_COLUMNS = `barcode, library, slot, state, capacity, bytes, updated_at AS updatedAt`;
const SCHEDULE_COLUMNS = `id, at, target, library, status, created_at AS createdAt, last_run_at AS lastRunAt, outcome`;
const POLICY_RUN_COLUMNS = `id, policy, volume, slot, started_at AS startedAt, ended_at AS endedAt, library, drives, status, job_id AS jobId, pid, outcome`;

/**
 * The liveness locks this process holds, by catalog file, kind and number: a job's from
 * startJob to finishJob, a claimed schedule entry's from claimDue to finishSchedule
 * (or releaseClaim). Process-wide, so another Catalog handle of the same file may end them.
 */
const held = new Map<string, HeldLock>();
const heldKey = (file: string, kind: LockKind, id: number): string => `${path.resolve(file)}\0${kind}\0${id}`;

function take(file: string, kind: LockKind, id: number): void {
  held.set(heldKey(file, kind, id), acquireLock(file, kind, id));
}

function drop(file: string, kind: LockKind, id: number): void {
  const key = heldKey(file, kind, id);
  const lock = held.get(key);
  if (!lock) return;
  held.delete(key);
  releaseLock(file, kind, id, lock);
}

/** Codes of a settlement that cannot be written now (a read-only or busy catalog): it waits for a later open. */
const UNWRITABLE = new Set(['E_ACCESS', 'E_BUSY', 'E_READONLY']);

/**
 * Whether a process with this pid is alive on this machine. Only a hint (pids are
 * reused): the liveness of jobs and schedule entries is their kernel lock (liveness.ts).
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The catalog of a storage home. */
export class Catalog {
  /** Prepared once: a backup inserts a row per chunk. */
  private insertSegment: Database.Statement<unknown[]> | undefined;

  private constructor(
    readonly file: string,
    readonly db: Db,
  ) {}

  /**
   * Opens the home's catalog; jobs left `running` by a process that no longer holds their
   * lock become `incomplete`, and schedule entries of a dead `run-due` are settled.
   */
  static open(home: Home, opts?: OpenDatabaseOptions): Catalog {
    return Catalog.openFile(path.join(home.dir, CATALOG_FILE), opts);
  }

  /** Opens a catalog file directly. */
  static openFile(file: string, opts?: OpenDatabaseOptions): Catalog {
    const c = new Catalog(file, openDatabase(file, opts));
    try {
      c.settleDeadJobs();
      c.settleDeadSchedule();
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  }

  /** Closes the database. */
  close(): void {
    if (this.db.open) this.db.close();
  }

  /** Runs `fn` in one write transaction. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  // ---- libraries and media ----

  /** Registers (or updates) a library. */
  putLibrary(l: LibraryRow): void {
    this.db
      .prepare(
        `INSERT INTO libraries (name, dir, slots, drives, cartridge_size, created_at) VALUES (@name, @dir, @slots, @drives, @cartridgeSize, @createdAt)
         ON CONFLICT (name) DO UPDATE SET dir = excluded.dir, slots = excluded.slots, drives = excluded.drives, cartridge_size = excluded.cartridge_size`,
      )
      .run(l);
  }

  /** Every registered library. */
  libraries(): LibraryRow[] {
    return this.db.prepare(`SELECT name, dir, slots, drives, cartridge_size AS cartridgeSize, created_at AS createdAt FROM libraries ORDER BY name`).all() as LibraryRow[];
  }

  /** Records a cartridge's place, state and fill. */
  putMedia(m: Omit<MediaRow, 'updatedAt'>): void {
    this.db
      .prepare(
        `INSERT INTO media (barcode, library, slot, state, capacity, bytes, updated_at) VALUES (@barcode, @library, @slot, @state, @capacity, @bytes, @now)
         ON CONFLICT (barcode) DO UPDATE SET library = excluded.library, slot = excluded.slot, state = excluded.state,
           capacity = excluded.capacity, bytes = excluded.bytes, updated_at = excluded.updated_at`,
      )
      .run({ ...m, now: new Date().toISOString() });
  }

  /** Updates a cartridge's state and bytes written. */
  setMedia(barcode: string, state: MediaRow['state'], bytes: number): void {
    this.db.prepare(`UPDATE media SET state = ?, bytes = ?, updated_at = ? WHERE barcode = ?`).run(state, bytes, new Date().toISOString(), barcode);
  }

  /** Cartridges, of one library or all, by library and slot. */
  media(library?: string): MediaRow[] {
    const sql = `SELECT ${MEDIA_COLUMNS} FROM media ${library ? 'WHERE library = ?' : ''} ORDER BY library, slot`;
    return (library ? this.db.prepare(sql).all(library) : this.db.prepare(sql).all()) as MediaRow[];
  }

  /** Jobs with at least one segment on a cartridge of `library`. */
  jobsOnLibrary(library: string): number[] {
    return (
      this.db
        .prepare(`SELECT DISTINCT l.job_id AS id FROM segments s JOIN locations l ON l.id = s.location_id JOIN media m ON m.barcode = s.barcode WHERE m.library = ? ORDER BY 1`)
        .all(library) as Array<{ id: number }>
    ).map((r) => r.id);
  }

  /**
   * Forgets a library: its media, the segments on them, location entries left empty and
   * jobs left with no location entry. Jobs with copies elsewhere keep those.
   */
  forgetLibrary(library: string): void {
    this.transaction(() => {
      this.db.prepare(`DELETE FROM segments WHERE barcode IN (SELECT barcode FROM media WHERE library = ?)`).run(library);
      this.db.prepare(`DELETE FROM locations WHERE library = ? AND id NOT IN (SELECT location_id FROM segments)`).run(library);
      this.db.prepare(`DELETE FROM jobs WHERE status != 'running' AND id NOT IN (SELECT job_id FROM locations)`).run();
      this.db.prepare(`DELETE FROM media WHERE library = ?`).run(library);
      this.db.prepare(`DELETE FROM libraries WHERE name = ?`).run(library);
    });
  }

  // ---- jobs, locations, segments ----

  /**
   * Starts a job owned by this process; returns its number. The job's lock is taken
   * before its row commits, so no other process ever sees it `running` and unlocked.
   */
  startJob(j: { target: string; targetSize: number; mode?: string; dataTime?: string; scheduleId?: number; consistency?: JobRow['consistency'] }): number {
    const now = new Date().toISOString();
    let id: number | undefined;
    try {
      return this.transaction(() => {
        const r = this.db
          .prepare(`INSERT INTO jobs (target, target_size, mode, started_at, data_time, status, pid, schedule_id, consistency) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)`)
          .run(j.target, j.targetSize, j.mode ?? 'single', now, j.dataTime ?? now, process.pid, j.scheduleId ?? null, j.consistency ?? 'unknown');
        id = Number(r.lastInsertRowid);
        take(this.file, 'job', id);
        return id;
      });
    } catch (e) {
      if (id !== undefined) drop(this.file, 'job', id);
      throw e;
    }
  }

  /** Whether this process runs job `id` (holds its lock). */
  runsJob(id: number): boolean {
    return held.has(heldKey(this.file, 'job', id));
  }

  /** Inserts a job as found on cartridges (catalog rebuild), keeping its number. */
  restoreJob(j: JobRow): void {
    this.db
      .prepare(
        `INSERT INTO jobs (id, target, target_size, mode, started_at, ended_at, data_time, status, pid, bytes, error, schedule_id, consistency)
         VALUES (@id, @target, @targetSize, @mode, @startedAt, @endedAt, @dataTime, @status, NULL, @bytes, @error, NULL, @consistency)`,
      )
      .run(j);
  }

  /** A job, or undefined. */
  findJob(id: number): JobRow | undefined {
    return this.db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`).get(id) as JobRow | undefined;
  }

  /** Deletes a job and its location entries and segments (catalog rebuild). */
  deleteJob(id: number): void {
    this.db.prepare(`DELETE FROM jobs WHERE id = ?`).run(id);
  }

  /** Sets what a rebuild derived for a job from its segments. */
  setRebuiltJob(id: number, j: { status: Exclude<JobStatus, 'running'>; bytes: number; error: string | null }): void {
    this.db.prepare(`UPDATE jobs SET status = ?, bytes = ?, error = ? WHERE id = ? AND status != 'running'`).run(j.status, j.bytes, j.error, id);
  }

  /** Jobs with a location entry on one of `libraries`. */
  jobsWithLocationsOn(libraries: readonly string[]): number[] {
    const marks = libraries.map(() => '?').join(', ');
    return (this.db.prepare(`SELECT DISTINCT job_id AS id FROM locations WHERE library IN (${marks}) ORDER BY 1`).all(...libraries) as Array<{ id: number }>).map((r) => r.id);
  }

  /** Deletes the location entries on `libraries` and their segments, and any other segment on their cartridges (a scoped rebuild). */
  dropLocationsOn(libraries: readonly string[]): void {
    const marks = libraries.map(() => '?').join(', ');
    this.db.prepare(`DELETE FROM segments WHERE barcode IN (SELECT barcode FROM media WHERE library IN (${marks}))`).run(...libraries);
    this.db.prepare(`DELETE FROM locations WHERE library IN (${marks})`).run(...libraries);
  }

  /** Deletes the segments on the cartridges `barcodes` (a rebuild that read them through). */
  dropSegmentsOn(barcodes: readonly string[]): void {
    const del = this.db.prepare(`DELETE FROM segments WHERE barcode = ?`);
    for (const b of barcodes) del.run(b);
  }

  /** Deletes the segments on any cartridge but `barcodes` (a full rebuild: cartridges no library holds). */
  dropSegmentsNotOn(barcodes: readonly string[]): void {
    const marks = barcodes.map(() => '?').join(', ');
    this.db.prepare(`DELETE FROM segments WHERE barcode NOT IN (${marks})`).run(...barcodes);
  }

  /** Deletes the location entries (on `libraries`, or anywhere) left with no segment. */
  dropEmptyLocations(libraries?: readonly string[]): void {
    const marks = (libraries ?? []).map(() => '?').join(', ');
    const where = libraries === undefined ? '' : `library IN (${marks}) AND `;
    this.db.prepare(`DELETE FROM locations WHERE ${where}id NOT IN (SELECT location_id FROM segments)`).run(...(libraries ?? []));
  }

  /** Whether the catalog has a segment in tape file `fileNumber` of cartridge `barcode`. */
  hasSegmentsIn(barcode: string, fileNumber: number): boolean {
    return this.db.prepare(`SELECT 1 FROM segments WHERE barcode = ? AND file_number = ? LIMIT 1`).get(barcode, fileNumber) !== undefined;
  }

  /** Records what a job's data is, once known (see src/backup/consistency.ts). */
  setJobConsistency(id: number, consistency: JobRow['consistency']): void {
    this.db.prepare(`UPDATE jobs SET consistency = ? WHERE id = ?`).run(consistency, id);
  }

  /** Ends a job. */
  /** Ends a job, then releases its lock (in that order: a settler never sees it unlocked and running). */
  finishJob(id: number, status: Exclude<JobStatus, 'running'>, error?: string): void {
    this.db.prepare(`UPDATE jobs SET status = ?, ended_at = ?, error = ?, pid = NULL WHERE id = ?`).run(status, new Date().toISOString(), error ?? null, id);
    drop(this.file, 'job', id);
  }

  /** Adds a location entry to a job. */
  addLocation(jobId: number, l: { copy: number; seq: number; library: string; stream: number; status?: LocationRow['status'] }): number {
    const r = this.db.prepare(`INSERT INTO locations (job_id, copy, seq, library, stream, status) VALUES (?, ?, ?, ?, ?, ?)`).run(jobId, l.copy, l.seq, l.library, l.stream, l.status ?? 'writing');
    return Number(r.lastInsertRowid);
  }

  /** Finds a location entry of a job (catalog rebuild), or undefined. */
  findLocation(jobId: number, copy: number, seq: number): LocationRow | undefined {
    return this.db.prepare(`SELECT id, job_id AS jobId, copy, seq, library, stream, status FROM locations WHERE job_id = ? AND copy = ? AND seq = ?`).get(jobId, copy, seq) as LocationRow | undefined;
  }

  /** Sets a location entry's status. */
  setLocationStatus(id: number, status: LocationRow['status']): void {
    this.db.prepare(`UPDATE locations SET status = ? WHERE id = ?`).run(status, id);
  }

  /** Location entries of a job, by copy and order. */
  locations(jobId: number): LocationRow[] {
    return this.db.prepare(`SELECT id, job_id AS jobId, copy, seq, library, stream, status FROM locations WHERE job_id = ? ORDER BY copy, seq`).all(jobId) as LocationRow[];
  }

  /** Records the segments of one cartridge file at once (one transaction) and, when
   * `count` (one copy of a job counts), adds their bytes to the job. */
  addSegments(jobId: number, locationId: number, rows: readonly NewSegment[], count = true): void {
    this.transaction(() => {
      for (const s of rows) this.putSegment(locationId, s);
      if (count)
        this.db.prepare(`UPDATE jobs SET bytes = bytes + ? WHERE id = ?`).run(
          rows.reduce((a, s) => a + s.length, 0),
          jobId,
        );
    });
  }

  /** Sets the bytes a job backed up (a parallel job: those of a copy that completed). */
  setJobBytes(id: number, bytes: number): void {
    this.db.prepare(`UPDATE jobs SET bytes = ? WHERE id = ?`).run(bytes, id);
  }

  /** Deletes a location entry and its segments (a parallel copy that failed). */
  dropLocation(id: number): void {
    this.db.prepare(`DELETE FROM locations WHERE id = ?`).run(id);
  }

  /** Inserts a segment row only (catalog rebuild sets the job's bytes itself). */
  putSegment(locationId: number, s: NewSegment): void {
    this.insertSegment ??= this.db.prepare(
      `INSERT INTO segments (location_id, seq, barcode, file_number, first_block, source_offset, length, data_bytes, checksum, written_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertSegment.run(locationId, s.seq, s.barcode, s.fileNumber, s.firstBlock, s.sourceOffset, s.length, s.dataBytes ?? null, s.checksum, s.writtenAt);
  }

  /** A job, or E_NOENT. */
  job(id: number): JobRow {
    const j = this.db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`).get(id) as JobRow | undefined;
    if (!j) throw new PlexusError('E_NOENT', `no backup job ${id} in the catalog`);
    return j;
  }

  /** Jobs, newest first; optionally of one target or status. */
  jobs(filter: { target?: string; status?: ListedJobStatus } = {}): JobRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.target) {
      where.push('target = ?');
      args.push(filter.target);
    }
    if (filter.status === 'expired') where.push('expired_at IS NOT NULL');
    else if (filter.status) {
      where.push('status = ? AND expired_at IS NULL');
      args.push(filter.status);
    }
    // Rows as arrays, made objects here: for a listing of 10^4 jobs that is half the time
    // of letting the driver build them (and of SQL's CASE for the status).
    const sql = `SELECT ${JOB_LIST_COLUMNS} FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC`;
    return (
      this.db
        .prepare(sql)
        .raw(true)
        .all(...args) as unknown[][]
    ).map(jobOfList);
  }

  /** Segments of a job, by copy, location order and segment order. */
  segments(jobId: number): SegmentRow[] {
    return this.db.prepare(`SELECT ${SEGMENT_COLUMNS} FROM segments s JOIN locations l ON l.id = s.location_id WHERE l.job_id = ? ORDER BY l.copy, l.seq, s.seq`).all(jobId) as SegmentRow[];
  }

  /**
   * The segments of a job that may overlap [from, to), by copy, location order and source
   * offset: per location entry, those starting before `to` and not before the last one
   * starting at or before `from` (segments_by_offset: two index seeks, whatever the size
   * of the job). Segments of one location entry that overlap one another may be missed:
   * a caller that finds a gap falls back to segments().
   */
  segmentsCovering(jobId: number, from: number, to: number): SegmentRow[] {
    return this.db
      .prepare(
        `SELECT ${SEGMENT_COLUMNS} FROM locations l JOIN segments s ON s.location_id = l.id
         WHERE l.job_id = @job AND s.source_offset < @to
           AND s.source_offset >= coalesce((SELECT x.source_offset FROM segments x WHERE x.location_id = l.id AND x.source_offset <= @from ORDER BY x.source_offset DESC LIMIT 1), 0)
         ORDER BY l.copy, l.seq, s.source_offset`,
      )
      .all({ job: jobId, from, to }) as SegmentRow[];
  }

  /**
   * Jobs left `running` whose lock no process holds become `incomplete`; their open
   * location entries fail. The recorded pid plays no part (it may have been reused).
   * Called on every open, so a killed backup is settled by the next start. The check is
   * repeated inside a write transaction: a job that ends meanwhile is never overwritten.
   * A catalog that cannot be written now (read-only, busy) is settled by a later open.
   */
  settleDeadJobs(): number[] {
    const stale = (): number[] => (this.db.prepare(`SELECT id FROM jobs WHERE status = 'running'`).all() as Array<{ id: number }>).map((j) => j.id).filter((id) => !lockHeld(this.file, 'job', id));
    if (stale().length === 0) return [];
    return this.settle(() => {
      const ids = stale();
      for (const id of ids) {
        this.db
          .prepare(
            `UPDATE jobs SET status = 'incomplete', pid = NULL, ended_at = coalesce(ended_at, ?), error = coalesce(error, 'the backup process died before the job ended') WHERE id = ? AND status = 'running'`,
          )
          .run(new Date().toISOString(), id);
        this.db.prepare(`UPDATE locations SET status = 'failed' WHERE job_id = ? AND status = 'writing'`).run(id);
        removeStaleLock(this.file, 'job', id);
      }
      return ids;
    });
  }

  /**
   * Schedule entries left `running` whose lock no process holds (their `run-due` died):
   * an entry whose backup job had started becomes `failed` (the job is settled
   * `incomplete`; what it wrote stays restorable, and it is not run again by itself); one
   * whose job had not started goes back to `pending`, due again for the next `run-due`.
   */
  settleDeadSchedule(): number[] {
    const stale = (): number[] =>
      (this.db.prepare(`SELECT id FROM schedule WHERE status = 'running'`).all() as Array<{ id: number }>).map((r) => r.id).filter((id) => !lockHeld(this.file, 'schedule', id));
    if (stale().length === 0) return [];
    return this.settle(() => {
      const ids = stale();
      for (const id of ids) {
        const job = this.db.prepare(`SELECT id, status FROM jobs WHERE schedule_id = ? ORDER BY id DESC LIMIT 1`).get(id) as { id: number; status: string } | undefined;
        if (job) {
          this.db.prepare(`UPDATE schedule SET status = 'failed', outcome = ? WHERE id = ? AND status = 'running'`).run(`the run-due process died during backup job ${job.id} (${job.status})`, id);
        } else {
          this.db.prepare(`UPDATE schedule SET status = 'pending', outcome = ? WHERE id = ? AND status = 'running'`).run('the run-due process died before starting it: due again', id);
        }
        removeStaleLock(this.file, 'schedule', id);
      }
      return ids;
    });
  }

  /** Runs a settlement in a write transaction, unless the catalog cannot be written now. */
  private settle(fn: () => number[]): number[] {
    try {
      return this.transaction(fn);
    } catch (e) {
      if (e instanceof PlexusError && UNWRITABLE.has(e.code)) return [];
      throw e;
    }
  }

  // ---- schedule ----

  /** Adds a scheduled backup; returns its number. */
  addSchedule(at: string, target: string, library?: string): number {
    const r = this.db.prepare(`INSERT INTO schedule (at, target, library, created_at) VALUES (?, ?, ?, ?)`).run(at, target, library ?? null, new Date().toISOString());
    return Number(r.lastInsertRowid);
  }

  /** The schedule, by time. */
  schedule(): ScheduleRow[] {
    return this.db.prepare(`SELECT ${SCHEDULE_COLUMNS} FROM schedule ORDER BY at, id`).all() as ScheduleRow[];
  }

  /**
   * Claims the pending entries due at `now` for this process: each moves to `running`
   * in one transaction, so two `run-due` at once never start the same entry twice. This
   * process holds each claimed entry's lock until finishSchedule (or releaseClaim); if it
   * dies, the next open settles the entry (settleDeadSchedule).
   */
  claimDue(now: Date): ScheduleRow[] {
    const taken: number[] = [];
    try {
      return this.transaction(() => {
        const due = this.db.prepare(`SELECT ${SCHEDULE_COLUMNS} FROM schedule WHERE status = 'pending' AND at <= ? ORDER BY at, id`).all(now.toISOString()) as ScheduleRow[];
        const at = new Date().toISOString();
        for (const d of due) {
          take(this.file, 'schedule', d.id);
          taken.push(d.id);
          this.db.prepare(`UPDATE schedule SET status = 'running', last_run_at = ? WHERE id = ?`).run(at, d.id);
        }
        return due.map((d) => ({ ...d, status: 'running' as const, lastRunAt: at }));
      });
    } catch (e) {
      for (const id of taken) drop(this.file, 'schedule', id);
      throw e;
    }
  }

  /** Records the outcome of a scheduled run and releases its lock. */
  finishSchedule(id: number, status: 'done' | 'failed', outcome: string): void {
    this.db.prepare(`UPDATE schedule SET status = ?, outcome = ? WHERE id = ?`).run(status, outcome, id);
    drop(this.file, 'schedule', id);
  }

  /** Gives up a claimed entry without an outcome: the next open puts it back to `pending` (or `failed`, if its job started). */
  releaseClaim(id: number): void {
    drop(this.file, 'schedule', id);
  }

  // ---- policies (migration 8; src/backup/policy*.ts) ----

  /** Adds a policy and its volumes; E_EXISTS if the name is taken. */
  addPolicy(p: Omit<PolicyRow, 'createdAt'>): void {
    this.transaction(() => {
      this.db
        .prepare(`INSERT INTO policies (name, every_s, window, library, mode, streams, keep, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(p.name, p.everyS, p.window, p.library, p.mode, p.streams, p.keep, p.enabled ? 1 : 0, new Date().toISOString());
      const add = this.db.prepare(`INSERT INTO policy_volumes (policy, volume, seq) VALUES (?, ?, ?)`);
      for (const [i, v] of p.volumes.entries()) add.run(p.name, v, i);
    });
  }

  /** Every policy, by name. */
  policies(): PolicyRow[] {
    const rows = this.db.prepare(`SELECT name, every_s AS everyS, window, library, mode, streams, keep, enabled, created_at AS createdAt FROM policies ORDER BY name`).all() as Array<
      Omit<PolicyRow, 'volumes' | 'enabled'> & { enabled: number }
    >;
    const vols = this.db.prepare(`SELECT volume FROM policy_volumes WHERE policy = ? ORDER BY seq`).pluck();
    return rows.map((r) => ({ ...r, enabled: r.enabled === 1, volumes: vols.all(r.name) as string[] }));
  }

  /** A policy, or E_NOENT. */
  policy(name: string): PolicyRow {
    const p = this.policies().find((x) => x.name === name);
    if (!p) throw noPolicy(name);
    return p;
  }

  /** Removes a policy and its runs (its jobs stay); E_NOENT if there is none. */
  removePolicy(name: string): void {
    if (this.db.prepare(`DELETE FROM policies WHERE name = ?`).run(name).changes === 0) throw noPolicy(name);
  }

  /** Turns a policy on or off; E_NOENT if there is none. */
  setPolicyEnabled(name: string, enabled: boolean): void {
    if (this.db.prepare(`UPDATE policies SET enabled = ? WHERE name = ?`).run(enabled ? 1 : 0, name).changes === 0) throw noPolicy(name);
  }

  /** Runs, newest first: of one policy (and volume), or in one status. */
  policyRuns(filter: { policy?: string; volume?: string; status?: PolicyRunStatus; limit?: number } = {}): PolicyRunRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    for (const [col, v] of [
      ['policy', filter.policy],
      ['volume', filter.volume],
      ['status', filter.status],
    ] as const) {
      if (v === undefined) continue;
      where.push(`${col} = ?`);
      args.push(v);
    }
    const limit = filter.limit === undefined ? '' : ` LIMIT ${Math.max(0, Math.floor(filter.limit))}`;
    return this.db
      .prepare(`SELECT ${POLICY_RUN_COLUMNS} FROM policy_runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC, id DESC${limit}`)
      .all(...args) as PolicyRunRow[];
  }

  /** The last run that counts (not cancelled) of each volume of each policy, keyed `policy/volume`. */
  lastPolicyRuns(policies: readonly PolicyRow[]): Map<string, PolicyRunRow> {
    const q = this.db.prepare(`SELECT ${POLICY_RUN_COLUMNS} FROM policy_runs WHERE policy = ? AND volume = ? AND status != 'cancelled' ORDER BY started_at DESC, id DESC LIMIT 1`);
    const out = new Map<string, PolicyRunRow>();
    for (const p of policies) {
      for (const v of p.volumes) {
        const r = q.get(p.name, v) as PolicyRunRow | undefined;
        if (r) out.set(`${p.name}/${v}`, r);
      }
    }
    return out;
  }

  /**
   * Drives of `library` held by running jobs that no running policy run accounts for (a
   * `backup run` by hand, a schedule entry): each stream with a location entry there
   * counts one. A policy run's drives are its row's, from its claim on.
   */
  drivesHeldByOtherJobs(library: string): number {
    return this.db
      .prepare(
        // From the running jobs (CROSS JOIN keeps that order; `+l.library` keeps the
        // library's every location entry out of it): a few rows, whatever the history.
        `SELECT count(*) FROM (SELECT DISTINCT l.job_id, l.stream FROM jobs j CROSS JOIN locations l ON l.job_id = j.id
         WHERE j.status = 'running' AND +l.library = ? AND j.id NOT IN (SELECT job_id FROM policy_runs WHERE status = 'running' AND job_id IS NOT NULL))`,
      )
      .pluck()
      .get(library) as number;
  }

  /**
   * Claims policy runs for this process in one write transaction: runs whose process died
   * are settled first, then `choose` is shown the runs still running and returns the runs
   * to start now (it may read the catalog: it runs inside the transaction, so two
   * processes claiming at once never see the same free drive). Each claimed run is
   * `running` under this process's lock until finishPolicyRun.
   */
  claimPolicyRuns(choose: (running: PolicyRunRow[]) => NewPolicyRun[], startedAt: string): PolicyRunRow[] {
    const taken: number[] = [];
    try {
      return this.transaction(() => {
        this.settleDeadPolicyRunsNow();
        const running = this.policyRuns({ status: 'running' });
        const insert = this.db.prepare(`INSERT INTO policy_runs (policy, volume, slot, started_at, library, drives, status, pid) VALUES (?, ?, ?, ?, ?, ?, 'running', ?)`);
        const out: PolicyRunRow[] = [];
        for (const c of choose(running)) {
          const id = Number(insert.run(c.policy, c.volume, c.slot, startedAt, c.library, c.drives, process.pid).lastInsertRowid);
          take(this.file, 'policy', id);
          taken.push(id);
          out.push({ ...c, id, startedAt, endedAt: null, status: 'running', jobId: null, pid: process.pid, outcome: null });
        }
        return out;
      });
    } catch (e) {
      for (const id of taken) drop(this.file, 'policy', id);
      throw e;
    }
  }

  /** Records the backup job a claimed run started. */
  setPolicyRunJob(id: number, jobId: number): void {
    this.db.prepare(`UPDATE policy_runs SET job_id = ? WHERE id = ?`).run(jobId, id);
  }

  /** Records how a claimed run ended, then releases its lock. */
  finishPolicyRun(id: number, status: Exclude<PolicyRunStatus, 'running'>, outcome: string, endedAt: string, jobId?: number): void {
    try {
      this.db.prepare(`UPDATE policy_runs SET status = ?, outcome = ?, ended_at = ?, job_id = coalesce(?, job_id), pid = NULL WHERE id = ?`).run(status, outcome, endedAt, jobId ?? null, id);
    } finally {
      drop(this.file, 'policy', id);
    }
  }

  /**
   * Policy runs left `running` whose lock no process holds (the runner died): `cancelled`,
   * so the volume is due again in its slot; a job it had started is settled `incomplete`
   * by settleDeadJobs. A catalog that cannot be written now is settled later.
   */
  settleDeadPolicyRuns(): number[] {
    return this.settle(() => this.settleDeadPolicyRunsNow());
  }

  private settleDeadPolicyRunsNow(): number[] {
    const ids = (this.db.prepare(`SELECT id FROM policy_runs WHERE status = 'running'`).pluck().all() as number[]).filter((id) => !lockHeld(this.file, 'policy', id));
    for (const id of ids) {
      const run = this.db.prepare(`SELECT job_id FROM policy_runs WHERE id = ?`).pluck().get(id) as number | null;
      const why = run === null ? 'the process running it died before its backup started: due again' : `the process running it died during backup job ${run}: due again`;
      this.db.prepare(`UPDATE policy_runs SET status = 'cancelled', outcome = ?, pid = NULL WHERE id = ? AND status = 'running'`).run(why, id);
      removeStaleLock(this.file, 'policy', id);
    }
    return ids;
  }

  /**
   * The newest `limit` done jobs with a first copy on `library`: the data bytes of that
   * copy (what went to the cartridges, holes aside) and the job's real start and end, for
   * the plan's measured throughput.
   */
  recentJobRates(library: string, limit: number): Array<{ id: number; dataBytes: number; startedAt: string; endedAt: string }> {
    return this.db
      .prepare(
        `SELECT j.id, j.started_at AS startedAt, j.ended_at AS endedAt,
           (SELECT coalesce(sum(coalesce(s.data_bytes, s.length)), 0) FROM locations l JOIN segments s ON s.location_id = l.id
            WHERE l.job_id = j.id AND l.copy = (SELECT min(copy) FROM locations WHERE job_id = j.id)) AS dataBytes
         FROM jobs j
         WHERE j.status = 'done' AND j.ended_at IS NOT NULL AND EXISTS (SELECT 1 FROM locations l WHERE l.job_id = j.id AND +l.library = ?)
         ORDER BY j.id DESC LIMIT ?`,
      )
      .all(library, limit) as Array<{ id: number; dataBytes: number; startedAt: string; endedAt: string }>;
  }

  // ---- retention (src/backup/retention.ts) ----

  /** The complete jobs (done, not expired) that runs of `policy` made of `volume`, newest first. */
  policyJobs(policy: string, volume: string): number[] {
    return this.db
      .prepare(
        `SELECT DISTINCT r.job_id FROM policy_runs r JOIN jobs j ON j.id = r.job_id
         WHERE r.policy = ? AND r.volume = ? AND r.status = 'done' AND j.status = 'done' AND j.expired_at IS NULL ORDER BY r.job_id DESC`,
      )
      .pluck()
      .all(policy, volume) as number[];
  }

  /** Marks a done job expired (restore refuses it from now on); false if it was not a done, live job. */
  expireJob(id: number, at: string): boolean {
    return this.db.prepare(`UPDATE jobs SET expired_at = ? WHERE id = ? AND status = 'done' AND expired_at IS NULL`).run(at, id).changes > 0;
  }

  /** Cartridges (of one, or every) holding segments of expired jobs and no segment of any other job. */
  expiredCartridges(barcode?: string): ExpiredCartridge[] {
    const rows = this.db
      .prepare(
        // The cartridges expired jobs still have segments on, gathered from the expired
        // jobs (jobs_expired; CROSS JOIN keeps that order) and grouped first, so the
        // check for a live job's segment runs once per cartridge, not once per segment.
        `WITH held AS (
           SELECT s.barcode, count(*) AS segments, group_concat(DISTINCT j.id) AS jobs
           FROM jobs j CROSS JOIN locations l ON l.job_id = j.id CROSS JOIN segments s ON s.location_id = l.id
           WHERE j.expired_at IS NOT NULL ${barcode === undefined ? '' : 'AND s.barcode = @barcode'}
           GROUP BY s.barcode)
         SELECT h.barcode, m.library, m.state, h.segments, h.jobs FROM held h JOIN media m ON m.barcode = h.barcode
         WHERE NOT EXISTS (SELECT 1 FROM segments x JOIN locations y ON y.id = x.location_id JOIN jobs z ON z.id = y.job_id
                           WHERE x.barcode = h.barcode AND z.expired_at IS NULL)
         ORDER BY m.library, m.slot`,
      )
      .all(barcode === undefined ? {} : { barcode }) as Array<Omit<ExpiredCartridge, 'jobs'> & { jobs: string }>;
    return rows.map((r) => ({
      ...r,
      jobs: r.jobs
        .split(',')
        .map(Number)
        .sort((a, b) => a - b),
    }));
  }

  /**
   * Forgets what a freed cartridge held, in one transaction: its segments (all of
   * expired jobs: checked again here), the location entries of expired jobs left empty,
   * and its fill (scratch, 0 bytes). E_STATE if a live job's segment is on it.
   */
  dropFreedCartridge(barcode: string): void {
    this.transaction(() => {
      if (this.expiredCartridges(barcode).length === 0) throw new PlexusError('E_STATE', `cartridge ${barcode} holds segments of a job that is not expired: it is not freed`);
      const locations = this.db.prepare(`SELECT DISTINCT location_id FROM segments WHERE barcode = ?`).pluck().all(barcode) as number[];
      this.db.prepare(`DELETE FROM segments WHERE barcode = ?`).run(barcode);
      const empty = this.db.prepare(`DELETE FROM locations WHERE id = ? AND NOT EXISTS (SELECT 1 FROM segments WHERE location_id = ?)`);
      for (const id of locations) empty.run(id, id);
      this.setMedia(barcode, 'scratch', 0);
    });
  }

  /** Deletes every job, location and segment (before a rebuild), keeping the schedule. */
  clearJobs(): void {
    this.transaction(() => {
      this.db.exec(`DELETE FROM segments; DELETE FROM locations; DELETE FROM jobs;`);
    });
  }
}

/** E_NOENT for a policy name the catalog does not have. */
function noPolicy(name: string): PlexusError {
  return new PlexusError('E_NOENT', `no backup policy ${name} (see plexus backup policy list)`);
}
