/**
 * Who is alive: a job (or a claimed schedule entry or policy run) is `running` exactly
 * while the process running it holds a kernel lock (flock) on its lock file,
 * `HOME/locks/job-N.lock` (`schedule-N.lock`, `policy-N.lock`). The kernel drops the lock
 * when that process dies, however it dies, so liveness never depends on a pid that may
 * have been reused. docs/catalog.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { callNative, fromSystem } from '../errors.js';
// Loaded on first use (opening a catalog for reading alone never needs the addon).
import { native } from '../native/binding.js';

/** A held kernel lock, released by `release()` or when the process exits. */
export type HeldLock = InstanceType<typeof native.NativeOwnerLock>;

/** What a lock stands for: a job, a claimed schedule entry, a claimed policy run. */
export type LockKind = 'job' | 'schedule' | 'policy';

/** The directory of a catalog's liveness locks. */
function locksDir(catalogFile: string): string {
  return path.join(path.dirname(catalogFile), 'locks');
}

/** The lock file of job or schedule entry `id`. */
export function lockFile(catalogFile: string, kind: LockKind, id: number): string {
  return path.join(locksDir(catalogFile), `${kind}-${id}.lock`);
}

/** Takes the lock of `kind` `id` for this process; E_BUSY if a live process holds it. */
export function acquireLock(catalogFile: string, kind: LockKind, id: number): HeldLock {
  const file = lockFile(catalogFile, kind, id);
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
  } catch (e) {
    throw fromSystem(e, path.dirname(file));
  }
  const what = { job: 'backup job', schedule: 'schedule entry', policy: 'policy run' }[kind];
  return callNative(() => native.NativeOwnerLock.acquire(file, `${what} ${id}`));
}

/** Whether some live process holds the lock of `kind` `id`. */
export function lockHeld(catalogFile: string, kind: LockKind, id: number): boolean {
  const file = lockFile(catalogFile, kind, id);
  if (!fs.existsSync(file)) return false;
  return native.NativeOwnerLock.isHeld(file);
}

/**
 * Removes the lock file of a settled job or entry (its holder died). Only inside the
 * catalog's write transaction: nobody can take that lock meanwhile (locks are taken in
 * the transaction that makes a row `running`).
 */
export function removeStaleLock(catalogFile: string, kind: LockKind, id: number): void {
  try {
    fs.rmSync(lockFile(catalogFile, kind, id), { force: true });
  } catch {
    // Left behind, it is only an unlocked file: the next holder reuses it.
  }
}

/** Releases a lock this process holds and removes its file. */
export function releaseLock(catalogFile: string, kind: LockKind, id: number, lock: HeldLock): void {
  try {
    fs.rmSync(lockFile(catalogFile, kind, id), { force: true });
  } catch {
    // The file is only a name for the lock; releasing it is what matters.
  } finally {
    lock.release();
  }
}
