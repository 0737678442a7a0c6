/**
 * The wait queue of jobs waiting for streams (docs/backup-manager.md, "Waiting for
 * streams"): a job that cannot secure its streams because other jobs hold them joins
 * the queue, and only the oldest live waiter tries to secure; the others wait their
 * turn. So jobs are served oldest first, and the free resources are never split
 * between two waiters that each need more than half of them.
 *
 * The queue is the catalog table `stream_waiters`, created here (CREATE TABLE IF NOT
 * EXISTS) rather than by a migration: it holds only live state, an empty table is its
 * whole initial state, and a catalog opened by a Plexus without this module just
 * ignores it. SQLite hands out the tickets (AUTOINCREMENT under its write lock), so
 * the order is total even for jobs joining in the same millisecond, and the entry is
 * dropped in the very transaction that reserves the job's streams.
 *
 * A waiter is live while its job's kernel lock is held (src/catalog/liveness.ts, a
 * "not held" confirmed as ./alive.ts does): a waiter whose process died, however it
 * died, is pruned by the next job that looks, whatever pid its row records. A waiter
 * that finds its own entry gone takes its place again, under its ticket.
 */
import { Catalog } from '../catalog/catalog.js';
import { guarded } from '../errors.js';
import type { Home } from '../home/home.js';
import { jobAlive } from './alive.js';
import type { MoverKind } from './inventory.js';

/** One job waiting for streams. */
export interface Waiter {
  /** Its place: smaller tickets joined earlier. */
  ticket: number;
  jobId: number;
  pid: number;
  enqueuedAt: string;
  /** What it waits for. */
  streams: number;
  mover: MoverKind;
  library: string | null;
}

/** Whose turn it is, as seen by one job. */
export interface Turn {
  /** The oldest live waiter (undefined: nobody waits). */
  head: Waiter | undefined;
  /** Live or unchecked waiters ahead of the job asking (all of them if it is not queued). */
  ahead: number;
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS stream_waiters (
  ticket INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER NOT NULL UNIQUE,
  pid INTEGER NOT NULL,
  enqueued_at TEXT NOT NULL,
  streams INTEGER NOT NULL,
  mover TEXT NOT NULL,
  library TEXT
)`;

const COLUMNS = `ticket, job_id AS jobId, pid, enqueued_at AS enqueuedAt, streams, mover, library`;

/**
 * The queue's order rule: the head is the first live waiter by ticket; the dead ones
 * before it are returned to be pruned (those after it are not looked at: liveness is
 * checked only as far as it decides the turn).
 */
export function headOf(waiters: readonly Waiter[], alive: (w: Waiter) => boolean): { head: Waiter | undefined; dead: Waiter[] } {
  const dead: Waiter[] = [];
  for (const w of [...waiters].sort((a, b) => a.ticket - b.ticket)) {
    if (alive(w)) return { head: w, dead };
    dead.push(w);
  }
  return { head: undefined, dead };
}

/** The wait queue of a home, over its own catalog handle (kept open while a job waits). */
export class WaitQueue {
  private constructor(
    readonly home: Home,
    readonly catalog: Catalog,
  ) {}

  /** Opens the home's catalog and makes sure the queue's table exists. */
  static open(home: Home): WaitQueue {
    return guarded(() => {
      const catalog = Catalog.open(home);
      try {
        ensureQueue(catalog);
        return new WaitQueue(home, catalog);
      } catch (e) {
        catalog.close();
        throw e;
      }
    });
  }

  close(): void {
    this.catalog.close();
  }

  /** Every entry, oldest first, live or not. */
  waiters(): Waiter[] {
    return guarded(() => this.catalog.db.prepare(`SELECT ${COLUMNS} FROM stream_waiters ORDER BY ticket`).all() as Waiter[]);
  }

  /** Puts job `w.jobId` at the back of the queue (a job already queued goes to the back again). */
  join(w: Omit<Waiter, 'ticket' | 'enqueuedAt' | 'pid'>): Waiter {
    return guarded(() =>
      this.catalog.transaction(() => {
        const db = this.catalog.db;
        db.prepare(`DELETE FROM stream_waiters WHERE job_id = ?`).run(w.jobId);
        const enqueuedAt = new Date().toISOString();
        const r = db
          .prepare(`INSERT INTO stream_waiters (job_id, pid, enqueued_at, streams, mover, library) VALUES (?, ?, ?, ?, ?, ?)`)
          .run(w.jobId, process.pid, enqueuedAt, w.streams, w.mover, w.library);
        return { ...w, ticket: Number(r.lastInsertRowid), pid: process.pid, enqueuedAt };
      }),
    );
  }

  /** Takes job `jobId` out of the queue (nothing if it is not in it). */
  leave(jobId: number): void {
    guarded(() => leaveQueue(this.catalog, jobId));
  }

  /**
   * Whose turn it is, for job `jobId`: the oldest waiter whose job's lock is held.
   * Dead waiters ahead of it are pruned (in a write transaction, only when there are).
   * `mine`, the job's entry from `join`, is put back under its ticket if it is gone.
   */
  turn(jobId: number, mine?: Waiter): Turn {
    return guarded(() => {
      let all = this.waiters();
      if (mine && !all.some((w) => w.ticket === mine.ticket)) {
        // Pruned by a look that missed its lock (see ./alive.ts), or deleted by hand.
        this.catalog.db
          .prepare(`INSERT OR IGNORE INTO stream_waiters (ticket, job_id, pid, enqueued_at, streams, mover, library) VALUES (?, ?, ?, ?, ?, ?, ?)`)
          .run(mine.ticket, mine.jobId, mine.pid, mine.enqueuedAt, mine.streams, mine.mover, mine.library);
        all = this.waiters();
      }
      const { head, dead } = headOf(all, (w) => w.jobId === jobId || jobAlive(this.catalog.file, w.jobId));
      if (dead.length > 0) {
        // A job's lock is never taken again once it is free (job numbers are not
        // reused), so a waiter found dead stays dead: no second look is needed.
        this.catalog.transaction(() => {
          const del = this.catalog.db.prepare(`DELETE FROM stream_waiters WHERE ticket = ?`);
          for (const w of dead) del.run(w.ticket);
        });
      }
      const me = all.find((w) => w.jobId === jobId);
      const ahead = all.filter((w) => !dead.includes(w) && w.jobId !== jobId && (me === undefined || w.ticket < me.ticket)).length;
      return { head, ahead };
    });
  }
}

/** Creates the queue's table if the catalog does not have it yet. */
export function ensureQueue(catalog: Catalog): void {
  catalog.db.exec(SCHEMA);
}

/** Drops job `jobId`'s entry; inside a transaction it commits with it (see streams.ts `reserved`). */
export function leaveQueue(catalog: Catalog, jobId: number): void {
  catalog.db.prepare(`DELETE FROM stream_waiters WHERE job_id = ?`).run(jobId);
}
