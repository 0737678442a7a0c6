/** Durable small-file writes: a crash leaves the old content or the new, whole. */
import fs from 'node:fs';
import path from 'node:path';

/**
 * Replaces `file` with `text` so that a crash leaves the old content or the new, whole:
 * writes `file.tmp`, fsyncs it, renames it over `file` and fsyncs the directory.
 */
export function writeFileDurably(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    const data = Buffer.from(text, 'utf8');
    for (let at = 0; at < data.length; ) at += fs.writeSync(fd, data, at, data.length - at);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dirFd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}
