/** Digests of plain files (volumes have their own, native `checksum`). */
import crypto from 'node:crypto';
import fs from 'node:fs';

/** SHA-256 hex of a whole file, read in 4 MiB pieces. */
export function sha256File(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(4 << 20);
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}
