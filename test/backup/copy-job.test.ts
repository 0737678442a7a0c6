/**
 * `backup copy`: a second copy of a job in another library (disk, then tape), read
 * verified from the first copy's cartridges and recorded as another copy of the same
 * job, so a restore reads either (falling back to the one whose cartridges are there)
 * and a rebuild finds both.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { copyJob } from '../../src/backup/copy-job.js';
import { createDiskLibrary, createLibrary } from '../../src/backup/libraries.js';
import { rebuildCatalog } from '../../src/backup/rebuild.js';
import { restoreJob } from '../../src/backup/restore.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { VolumeStore } from '../../src/index.js';
import { TapeDrive } from '../../src/tape/drive.js';
import { Library } from '../../src/tape/library.js';
import { sha256File } from '../../src/util/hash.js';
import { expectCoded, thrown } from '../helpers/errors.js';
import { useHome } from '../resources/helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const h = useHome();

function withCatalog<T>(fn: (c: Catalog) => T): T {
  const c = Catalog.open(h.home);
  try {
    return fn(c);
  } finally {
    c.close();
  }
}

function libraries(): void {
  withCatalog((c) => {
    createDiskLibrary(h.home, c, 'disk', path.join(h.dir, 'staging'), { volumeSize: 8 * MiB, blockSize: 64 * KiB, drives: 1 });
    createLibrary(h.home, c, 'tape', { slots: 4, drives: 1, cartridgeSize: 12 * MiB, blockSize: 256 * KiB });
  });
}

/** A thin 24 MiB volume: 8 MiB of data, a 12 MiB hole, 4 MiB of data. */
async function thinVolume(): Promise<string> {
  const v = new VolumeStore(h.home).create('db', { size: 24 * MiB });
  await v.fill(0, 8 * MiB, { seed: 1 });
  await v.fill(20 * MiB, 4 * MiB, { seed: 2 });
  return v.checksum();
}

describe('backup copy', () => {
  it('copies a disk backup to tape; restore falls back to the tape copy when the disk is gone; a rebuild finds both copies', async () => {
    libraries();
    const sum = await thinVolume();
    const job = (await runBackup(h.home, 'db', { library: 'disk' })).job;
    const r = await copyJob(h.home, job, { library: 'tape' });
    expect(r).toMatchObject({ job, fromCopy: 0, fromLibraries: ['disk'], copy: 1, library: 'tape', bytes: 24 * MiB });
    expect(r.cartridges.length).toBeGreaterThanOrEqual(1);
    const segs = withCatalog((c) => c.segments(job));
    const tapeSegs = segs.filter((s) => s.copy === 1);
    expect(tapeSegs.every((s) => s.library === 'tape')).toBe(true);
    expect(tapeSegs.reduce((a, s) => a + s.length, 0)).toBe(24 * MiB);
    // The hole stayed a hole on tape: about the 12 MiB of data went on the cartridges.
    expect(tapeSegs.reduce((a, s) => a + (s.dataBytes ?? s.length), 0)).toBeLessThanOrEqual(13 * MiB);
    expect(withCatalog((c) => c.locations(job).map((l) => [l.copy, l.library, l.status]))).toEqual([
      [0, 'disk', 'done'],
      [1, 'tape', 'done'],
    ]);
    // The job counts its bytes once.
    expect(withCatalog((c) => c.job(job).bytes)).toBe(24 * MiB);

    // Rebuilt from the cartridges alone, the job has both copies.
    for (const f of fs.readdirSync(h.home.dir).filter((n) => n.startsWith('catalog.db'))) fs.rmSync(path.join(h.home.dir, f));
    const rebuilt = await rebuildCatalog(h.home);
    expect(rebuilt.problems).toEqual([]);
    expect(withCatalog((c) => c.locations(job).map((l) => [l.copy, l.library, l.status]))).toEqual([
      [0, 'disk', 'done'],
      [1, 'tape', 'done'],
    ]);
    expect(withCatalog((c) => c.job(job).status)).toBe('done');

    // The disk library's directory is lost: the restore reads the tape copy.
    fs.rmSync(Library.open(h.home, 'disk').cartridgeDir, { recursive: true });
    const out = path.join(h.dir, 'db.img');
    const whole = await restoreJob(h.home, job, out);
    expect(whole.copy).toBe(1);
    expect(sha256File(out)).toBe(sum);
    const part = path.join(h.dir, 'part.bin');
    const range = await restoreJob(h.home, job, part, { offset: 7 * MiB, length: 2 * MiB });
    expect(range.copy).toBe(1);
    expect(fs.readFileSync(part).equals(fs.readFileSync(out).subarray(7 * MiB, 9 * MiB))).toBe(true);
  });

  it('copies a job spread over several cartridges into a disk library that makes the cartridges it needs', async () => {
    libraries();
    const v = new VolumeStore(h.home).create('big', { size: 30 * MiB });
    await v.fill(0, 30 * MiB, { seed: 5 });
    const sum = await v.checksum();
    const job = (await runBackup(h.home, 'big', { library: 'tape', mode: 'chunked', streams: 1, chunk: 1 * MiB, streamWaitMs: 0 })).job;
    const r = await copyJob(h.home, job, { library: 'disk' });
    expect(r.sourceCartridges.length).toBeGreaterThanOrEqual(3);
    expect(r.cartridges.length).toBeGreaterThanOrEqual(4);
    // Restore the disk copy alone: the tape library's cartridges are taken away.
    const tape = Library.open(h.home, 'tape');
    for (const b of r.sourceCartridges) fs.renameSync(tape.cartridgeFile(b), `${tape.cartridgeFile(b)}.away`);
    const out = path.join(h.dir, 'big.img');
    expect((await restoreJob(h.home, job, out)).copy).toBe(1);
    expect(sha256File(out)).toBe(sum);
  });

  it('refuses what it cannot copy, and never copies data that does not verify', async () => {
    libraries();
    await thinVolume();
    const job = (await runBackup(h.home, 'db', { library: 'disk' })).job;
    expectCoded(await thrown(() => copyJob(h.home, 99, { library: 'tape' })), 'E_NOENT', '99');
    expectCoded(await thrown(() => copyJob(h.home, job, { library: 'nope' })), 'E_NOENT', 'nope');
    expectCoded(await thrown(() => copyJob(h.home, job, { library: 'disk' })), 'E_INVALID', 'another library');
    expectCoded(await thrown(() => copyJob(h.home, job, { library: 'tape', fromCopy: 3 })), 'E_STATE', 'copy 3');
    const failed = withCatalog((c) => {
      const id = c.startJob({ target: 'db', targetSize: 1 });
      c.finishJob(id, 'failed', 'test');
      return id;
    });
    expectCoded(await thrown(() => copyJob(h.home, failed, { library: 'tape' })), 'E_STATE', 'failed');

    // A block of the disk copy flipped on its cartridge: the copy fails E_CORRUPT.
    const seg = withCatalog((c) => c.segments(job))[0]!;
    const file = Library.open(h.home, 'disk').cartridgeFile(seg.barcode);
    const fd = fs.openSync(file, 'r+');
    try {
      const at = 64 * KiB + 4096;
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, at);
      b[0] = b[0]! ^ 0xff;
      fs.writeSync(fd, b, 0, 1, at);
    } finally {
      fs.closeSync(fd);
    }
    const e = await thrown(() => copyJob(h.home, job, { library: 'tape' }));
    expectCoded(e, 'E_CORRUPT', `job ${job}`);
    // The copy that failed stays recorded as failed (its number is not given out again);
    // nothing of it counts as a copy of the job.
    expect(withCatalog((c) => c.locations(job).map((l) => [l.copy, l.library, l.status]))).toEqual([
      [0, 'disk', 'done'],
      [1, 'tape', 'failed'],
    ]);
    // The tape cartridges hold only closed, whole files.
    for (const m of withCatalog((c) => c.media('tape'))) {
      const t = TapeDrive.load(Library.open(h.home, 'tape').cartridgeFile(m.barcode), true);
      t.unload();
    }
  });
});
