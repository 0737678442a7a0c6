/** The backup manager's log: one line per reservation, failure to secure, release. */
import fs from 'node:fs';
import path from 'node:path';
import type { Home } from '../home/home.js';

/** Where the log lives: HOME/logs/backup-manager.log. */
export function backupManagerLogFile(home: Home): string {
  return path.join(home.dir, 'logs', 'backup-manager.log');
}

/**
 * Appends `line` with a UTC timestamp. Best effort: a log that cannot be written (a
 * full disk) must not hide the failure being logged, so errors are swallowed.
 */
export function logBackupManager(home: Home, line: string): void {
  try {
    const file = backupManagerLogFile(home);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.appendFileSync(file, `${new Date().toISOString()} ${line.replace(/\n/g, ' ')}\n`);
  } catch {
    // See above: the caller's outcome matters more than its log line.
  }
}
