/**
 * Durable replacement of small files: write a temporary file beside the target, fsync
 * it, rename it over the target, fsync the directory. A reader, a killed writer or a
 * power loss sees the old contents or the new, never a torn or empty file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fromSystem } from '../errors.js';

/** Fsyncs a directory, making the entries created or renamed in it durable. */
export function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw fromSystem(e, dir);
  }
}

/**
 * Replaces `file` with `data` atomically and durably (see above). With `sync: false` it
 * is atomic only (temporary file and rename, no fsync): for advisory records a kernel
 * lock makes the truth of, where a reader must never see a torn file but a crash may
 * lose the update.
 */
export function writeFileDurable(file: string, data: string | Uint8Array, opts: { sync?: boolean } = {}): void {
  const sync = opts.sync ?? true;
  const dir = path.dirname(file);
  // Unique per writer, so two processes replacing one file never share a temporary.
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Math.random().toString(16).slice(2)}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx');
    try {
      fs.writeFileSync(fd, data);
      if (sync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    if (sync) syncDir(dir);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw fromSystem(e, file);
  }
}
