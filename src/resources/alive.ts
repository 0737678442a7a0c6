/**
 * Whether a job or a drive is still held, for the decisions that take something away
 * from its holder: releasing its reservations, pruning it from the wait queue.
 *
 * `NativeOwnerLock.isHeld` reads the kernel's lock table (/proc/locks) so as never to
 * take a lock itself. That table is read in pieces, and when other locks come and go
 * meanwhile (SQLite takes and drops byte-range locks on the catalog's -shm file all the
 * time, one more set per process) a lock held throughout can be missed: about one read
 * in 500 with a few processes churning locks. A "held" is therefore believed at once;
 * a "not held" only once it is confirmed — for a job, by trying its lock (a job's lock
 * is never taken again once free, job numbers are not reused, so the try takes nothing
 * from anyone); for a drive, whose lock the next job may be about to take, by reading
 * the table again.
 */
import fs from 'node:fs';
import { acquireLock, lockFile, lockHeld } from '../catalog/liveness.js';
import type { PlexusError } from '../errors.js';

/** Extra reads of the lock table before a drive counts as free. */
const REREADS = 3;

/** Whether job `id` of the catalog at `catalogFile` runs: some live process holds its lock. */
export function jobAlive(catalogFile: string, id: number): boolean {
  if (lockHeld(catalogFile, 'job', id)) return true;
  // Removed when the job ended or was settled: nobody holds it.
  if (!fs.existsSync(lockFile(catalogFile, 'job', id))) return false;
  try {
    acquireLock(catalogFile, 'job', id).release();
    return false;
  } catch (e) {
    if ((e as PlexusError).code === 'E_BUSY') return true;
    throw e;
  }
}

/** Whether `isHeld` (a read of the lock table) says held, confirming a "no" by reading again. */
export function confirmedHeld(isHeld: () => boolean): boolean {
  for (let i = 0; i <= REREADS; i++) if (isHeld()) return true;
  return false;
}
