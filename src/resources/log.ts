/**
 * The backup manager's log (HOME/logs/backup-manager.log): one line per reservation,
 * failure to secure, release, state change and fault.
 *
 * A line that records a change the backup manager is about to make is written with
 * `recordBackupManager`, inside the change's catalog transaction and before it commits:
 * if the line cannot be written the change does not happen, and the caller gets a
 * PlexusError naming the log file (E_NOENT, E_ACCESS, E_NOSPC, E_IO, ...). A line that
 * reports an outcome already settled (a failure being thrown, a release in a `finally`)
 * is written with `logBackupManager`, which never lets a log failure replace the outcome.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fromSystem } from '../errors.js';
import type { Home } from '../home/home.js';

/** Where the log lives: HOME/logs/backup-manager.log. */
export function backupManagerLogFile(home: Home): string {
  return path.join(home.dir, 'logs', 'backup-manager.log');
}

/** Appends `line` with a UTC timestamp; a failure is a PlexusError naming the log file. */
export function recordBackupManager(home: Home, line: string): void {
  const file = backupManagerLogFile(home);
  const text = `${new Date().toISOString()} ${line.replace(/\n/g, ' ')}\n`;
  try {
    try {
      fs.appendFileSync(file, text);
    } catch (e) {
      // The first line of a home: HOME/logs does not exist yet.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.appendFileSync(file, text);
    }
  } catch (e) {
    throw fromSystem(e, file);
  }
}

/**
 * Appends `line` as `recordBackupManager` does, for an outcome already settled: a log
 * that cannot be written (a full disk) must not hide the failure or undo the release
 * being logged, so its error is dropped.
 */
export function logBackupManager(home: Home, line: string): void {
  try {
    recordBackupManager(home, line);
  } catch {
    // See above: the caller's outcome matters more than its log line.
  }
}
