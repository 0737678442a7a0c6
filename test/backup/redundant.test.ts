/**
 * Redundant backup streams (JP 2001-095789): parallel copies down secured streams, and
 * chunked EXTENDED COPY moving to the next copy device on an error or a timeout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { defaultCommandTimeoutMs, runBackup } from '../../src/backup/backup.js';
import { createLibrary } from '../../src/backup/libraries.js';
import { rebuildCatalog } from '../../src/backup/rebuild.js';
import { restoreJob } from '../../src/backup/restore.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { PlexusError } from '../../src/errors.js';
import { VolumeStore } from '../../src/index.js';
import { injectFault } from '../../src/resources/faults.js';
import { backupManagerLogFile } from '../../src/resources/log.js';
import { TapeDrive } from '../../src/tape/drive.js';
import { sha256File } from '../../src/util/hash.js';
import { notAvailable, useHome } from '../resources/helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const h = useHome();

/** A library of `slots` cartridges of `size` bytes, 64 KiB blocks. */
function library(name: string, drives: number, slots = 4, size = 32 * MiB): void {
  const catalog = Catalog.open(h.home);
  try {
    createLibrary(h.home, catalog, name, { slots, drives, cartridgeSize: size, blockSize: 64 * KiB });
  } finally {
    catalog.close();
  }
}

/** A volume of random bytes; returns its sha256. */
async function volume(name: string, size: number): Promise<string> {
  const v = new VolumeStore(h.home).create(name, { size });
  await v.fill(0, size, { seed: 9 });
  return v.checksum();
}

function withCatalog<T>(fn: (c: Catalog) => T): T {
  const c = Catalog.open(h.home);
  try {
    return fn(c);
  } finally {
    c.close();
  }
}

async function restoredSum(job: number): Promise<{ sum: string; copy: number; loaded: string[] }> {
  const to = path.join(h.dir, `restore-${job}-${Math.random().toString(16).slice(2)}`);
  const r = await restoreJob(h.home, job, to);
  return { sum: sha256File(to), copy: r.copy, loaded: r.loaded };
}

const managerLog = (): string => fs.readFileSync(backupManagerLogFile(h.home), 'utf8');

describe('parallel mode', () => {
  it('writes the same data down two streams at once; with stream 0 failing mid-way the job succeeds with one copy', async () => {
    library('a', 1);
    library('b', 1);
    const sum = await volume('db', 12 * MiB);
    // Stream 0 moves its data through server0 (streams go to libraries a, b in order).
    injectFault(h.home, 'server0', { afterBytes: 5 * MiB });
    const r = await runBackup(h.home, 'db', { mode: 'parallel', chunk: MiB });
    expect(r.streams.map((s) => [s.stream, s.mover, s.library, s.status])).toEqual([
      [0, 'server0', 'a', 'failed'],
      [1, 'server1', 'b', 'done'],
    ]);
    expect(r.streams[0]!.error).toMatch(new RegExp(`^E_IO: segment command 5 failed: .*failed after ${5 * MiB} bytes`));
    expect(r.copies).toEqual([1]);
    expect(r.bytes).toBe(12 * MiB);
    withCatalog((c) => {
      expect(c.job(r.job)).toMatchObject({ status: 'done', mode: 'parallel', bytes: 12 * MiB });
      // Only the copy that completed is in the catalog.
      expect(c.locations(r.job).map((l) => [l.copy, l.library, l.stream, l.status])).toEqual([[1, 'b', 1, 'done']]);
      expect(new Set(c.segments(r.job).map((s) => s.copy))).toEqual(new Set([1]));
    });
    expect(managerLog()).toMatch(new RegExp(`job ${r.job}: stream 0 \\(server0, a/drive0\\) failed after \\d+ bytes: E_IO`));
    // The report counts the rows the catalog keeps: copy 1's twelve.
    expect(r.segments).toBe(12);
    const back = await restoredSum(r.job);
    expect(back.sum).toBe(sum);
    expect(back.copy).toBe(1);
    expect(notAvailable(h.home)).toEqual([]);
    // Stream 0's closed chunks are described on its cartridge: a rebuilt catalog lists
    // them as a failed (partial) copy beside the whole one, and restores from the whole one.
    expect((await rebuildCatalog(h.home)).problems).toEqual([]);
    withCatalog((c) =>
      expect(c.locations(r.job).map((l) => [l.copy, l.status])).toEqual([
        [0, 'failed'],
        [1, 'done'],
      ]),
    );
    expect(await restoredSum(r.job)).toMatchObject({ sum, copy: 1 });
  });

  it('keeps both copies when both streams complete; each restores on its own', async () => {
    library('lib', 2);
    const sum = await volume('db', 6 * MiB);
    const r = await runBackup(h.home, 'db', { mode: 'parallel', chunk: 2 * MiB });
    expect(r.copies).toEqual([0, 1]);
    expect(r.streams.every((s) => s.status === 'done')).toBe(true);
    // The two copies are on different cartridges of the same library.
    expect(new Set(r.cartridges).size).toBe(2);
    expect((await restoredSum(r.job)).sum).toBe(sum);
    // A rebuilt catalog finds both copies; the job's bytes are one copy's.
    expect((await rebuildCatalog(h.home)).problems).toEqual([]);
    withCatalog((c) => {
      expect(c.job(r.job)).toMatchObject({ status: 'done', bytes: 6 * MiB, mode: 'parallel' });
      expect(c.locations(r.job).map((l) => l.copy)).toEqual([0, 1]);
    });
    // Without copy 0's rows the restore reads copy 1.
    const first = withCatalog((c) => c.segments(r.job).find((s) => s.copy === 0)!.barcode);
    withCatalog((c) => c.db.prepare(`DELETE FROM segments WHERE barcode = ?`).run(first));
    const back = await restoredSum(r.job);
    expect(back).toMatchObject({ sum, copy: 1 });
  });

  it('fails when every stream fails, naming each, and releases everything', async () => {
    library('lib', 2);
    await volume('db', 4 * MiB);
    injectFault(h.home, 'fc0', { afterBytes: MiB });
    injectFault(h.home, 'fc1', { afterBytes: 2 * MiB });
    const err = await runBackup(h.home, 'db', { mode: 'parallel', chunk: MiB }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_IO' });
    expect((err as Error).message).toMatch(/every stream failed: stream 0 \(server0\): E_IO: .*; stream 1 \(server1\): E_IO/);
    withCatalog((c) => {
      const job = c.jobs()[0]!;
      expect(job.status).toBe('failed');
      expect(c.locations(job.id)).toEqual([]);
    });
    expect(notAvailable(h.home)).toEqual([]);
  });

  it('refuses to start with too few drives: E_RESOURCES, a failed job, every resource available again', async () => {
    library('lib', 1);
    await volume('db', MiB);
    const err = await runBackup(h.home, 'db', { mode: 'parallel' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_RESOURCES' });
    expect((err as Error).message).toMatch(/secured 1 of 2 streams: no free drive in library lib \(1 drive, 1 in use\)/);
    withCatalog((c) => expect(c.jobs()[0]).toMatchObject({ status: 'failed', error: expect.stringMatching(/^E_RESOURCES: /) }));
    expect(notAvailable(h.home)).toEqual([]);
    expect(managerLog()).toMatch(/cannot secure 2 server streams/);
  });
});

describe('chunked mode (EXTENDED COPY)', () => {
  it('with copy device 0 hanging, the command timeout fires and the chunks continue on device 1', async () => {
    library('a', 1);
    library('b', 1);
    const sum = await volume('db', 12 * MiB);
    injectFault(h.home, 'xcopy0', { hang: true, afterBytes: 4 * MiB + 100 * KiB });
    const started = Date.now();
    const seen: Array<{ done: number; total: number }> = [];
    const r = await runBackup(h.home, 'db', { mode: 'chunked', chunk: MiB, commandTimeoutMs: 400, onProgress: (e) => seen.push(e) });
    // Progress counts each byte once, across the switch-over.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((e) => e.done <= e.total && e.total === 12 * MiB)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(r.streams.map((s) => [s.mover, s.status])).toEqual([
      ['xcopy0', 'failed'],
      ['xcopy1', 'done'],
    ]);
    expect(r.streams[0]!.error).toMatch(/^E_TIMEOUT: segment command 4 did not complete within 400 ms/);
    expect(r.streams[0]!.bytes).toBe(4 * MiB);
    expect(r.streams[1]!.bytes).toBe(8 * MiB);
    withCatalog((c) => {
      expect(c.job(r.job)).toMatchObject({ status: 'done', mode: 'chunked', bytes: 12 * MiB });
      const locs = c.locations(r.job);
      expect(locs.map((l) => [l.copy, l.seq, l.library, l.stream, l.status])).toEqual([
        [0, 0, 'a', 0, 'done'],
        [0, 1, 'b', 1, 'done'],
      ]);
      const segs = c.segments(r.job);
      // One row per command, in source order; the failed command 4 is stream 1's first.
      expect(segs.map((s) => s.sourceOffset)).toEqual(Array.from({ length: 12 }, (_, i) => i * MiB));
      expect(segs.filter((s) => s.locationSeq === 0).map((s) => s.sourceOffset)).toEqual([0, 1, 2, 3].map((i) => i * MiB));
      // Chunks of a cartridge share its segment file, one after another.
      expect(segs.filter((s) => s.locationSeq === 1).map((s) => s.firstBlock)).toEqual(Array.from({ length: 8 }, (_, i) => i * 16));
    });
    expect(managerLog()).toMatch(
      new RegExp(`job ${r.job}: stream 0 \\(copy device xcopy0\\) stopped at command 4: E_TIMEOUT: .*moving 8 commands from byte ${4 * MiB} to stream 1 \\(copy device xcopy1\\)`),
    );
    const back = await restoredSum(r.job);
    expect(back.sum).toBe(sum);
    // The restore walked both location entries: a cartridge of each library.
    expect(back.loaded).toHaveLength(2);
    expect(notAvailable(h.home)).toEqual([]);
    // A byte range across the switch-over reads the chunks on both sides of it.
    const to = path.join(h.dir, 'range');
    const part = await restoreJob(h.home, r.job, to, { offset: 3 * MiB + 5, length: 2 * MiB });
    expect(part.loaded).toHaveLength(2);
    const whole = fs.readFileSync(new VolumeStore(h.home).file('db'));
    expect(fs.readFileSync(to).equals(whole.subarray(3 * MiB + 5, 5 * MiB + 5))).toBe(true);
  });

  it('a device failing after N bytes hands over its rest; chunks span cartridges; a rebuilt catalog restores the same', async () => {
    library('lib', 2, 6, 5 * MiB);
    const sum = await volume('db', 14 * MiB);
    injectFault(h.home, 'xcopy0', { afterBytes: 6 * MiB + 7 });
    const r = await runBackup(h.home, 'db', { mode: 'chunked', chunk: 2 * MiB });
    expect(r.streams.map((s) => s.status)).toEqual(['failed', 'done']);
    // 5 MiB cartridges hold a bit under 5 MiB: both streams changed cartridges.
    expect(r.cartridges.length).toBeGreaterThanOrEqual(4);
    const rows = withCatalog((c) => c.segments(r.job));
    expect(rows.reduce((a, s) => a + s.length, 0)).toBe(14 * MiB);
    expect((await restoredSum(r.job)).sum).toBe(sum);

    const rebuilt = await rebuildCatalog(h.home);
    expect(rebuilt.problems).toEqual([]);
    withCatalog((c) => {
      expect(c.job(r.job)).toMatchObject({ status: 'done', bytes: 14 * MiB });
      expect(c.segments(r.job).map((s) => [s.locationSeq, s.barcode, s.fileNumber, s.firstBlock, s.sourceOffset, s.length, s.checksum])).toEqual(
        rows.map((s) => [s.locationSeq, s.barcode, s.fileNumber, s.firstBlock, s.sourceOffset, s.length, s.checksum]),
      );
    });
    expect((await restoredSum(r.job)).sum).toBe(sum);
  });

  it('a failed background close hands the unrecorded chunks over once: no chunk is on tape twice', async () => {
    library('lib', 2, 8, 4 * MiB);
    const sum = await volume('db', 12 * MiB);
    const real = TapeDrive.prototype.closeSegment;
    let closes = 0;
    const spy = vi.spyOn(TapeDrive.prototype, 'closeSegment').mockImplementation(async function (this: TapeDrive, index: Buffer | null) {
      // Stream 0's second cartridge fails its close (as a failed fsync does).
      if (++closes === 2) {
        this.abandon();
        throw new PlexusError('E_IO', `injected: fsync of ${this.barcode} failed`);
      }
      return real.call(this, index);
    });
    let r: Awaited<ReturnType<typeof runBackup>>;
    try {
      r = await runBackup(h.home, 'db', { mode: 'chunked', chunk: MiB });
    } finally {
      spy.mockRestore();
    }
    expect(r.streams.map((x) => x.status)).toEqual(['failed', 'done']);
    expect(r.streams[0]!.error).toMatch(/injected: fsync of/);
    const rows = withCatalog((c) => c.segments(r.job));
    expect(rows.reduce((a, x) => a + x.length, 0)).toBe(12 * MiB);
    expect(r.segments).toBe(rows.length);
    expect((await restoredSum(r.job)).sum).toBe(sum);
    // The cartridges describe exactly what the catalog does: nothing closed behind the failure.
    expect((await rebuildCatalog(h.home)).problems).toEqual([]);
    withCatalog((c) => {
      const again = c.segments(r.job);
      expect(again.reduce((a, x) => a + x.length, 0)).toBe(12 * MiB);
      expect(c.job(r.job).bytes).toBe(12 * MiB);
    });
  });

  it('fails when the last device fails too, keeping what was written; everything is released', async () => {
    library('lib', 2);
    await volume('db', 6 * MiB);
    injectFault(h.home, 'xcopy0', { afterBytes: 2 * MiB });
    injectFault(h.home, 'xcopy1', { afterBytes: MiB });
    const err = await runBackup(h.home, 'db', { mode: 'chunked', chunk: MiB }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_IO' });
    expect((err as Error).message).toMatch(/every stream failed: stream 0 \(xcopy0\): E_IO: .*stream 1 \(xcopy1\): E_IO/);
    withCatalog((c) => {
      const job = c.jobs()[0]!;
      expect(job.status).toBe('failed');
      expect(c.segments(job.id).map((s) => s.sourceOffset)).toEqual([0, MiB, 2 * MiB]);
    });
    expect(notAvailable(h.home)).toEqual([]);
  });

  it('a cancelled job stops instead of moving to the next device, and releases everything', async () => {
    library('lib', 2);
    await volume('db', 8 * MiB);
    injectFault(h.home, 'xcopy0', { hang: true, afterBytes: 2 * MiB });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const err = await runBackup(h.home, 'db', { mode: 'chunked', chunk: MiB, commandTimeoutMs: 60_000, signal: ac.signal }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_CANCELLED' });
    withCatalog((c) => {
      const job = c.jobs()[0]!;
      expect(job.status).toBe('failed');
      // What completed before the cancel is kept, and nothing went to stream 1.
      expect(c.locations(job.id).map((l) => l.stream)).toEqual([0]);
      expect(c.segments(job.id).map((s) => s.sourceOffset)).toEqual([0, MiB]);
    });
    expect(notAvailable(h.home)).toEqual([]);
  });

  it('gives a command 10 s by default, a second per MiB of larger chunks', () => {
    expect([MiB, 10 * MiB, 64 * MiB, 1024 * MiB].map(defaultCommandTimeoutMs)).toEqual([10_000, 10_000, 64_000, 1_024_000]);
  });

  it('validates its options', async () => {
    library('lib', 2);
    await volume('db', MiB);
    await expect(runBackup(h.home, 'db', { mode: 'chunked', chunk: 100 })).rejects.toMatchObject({ code: 'E_INVALID' });
    await expect(runBackup(h.home, 'db', { mode: 'chunked', chunk: 32 * KiB })).rejects.toThrow(/at least 64 KiB/);
    await expect(runBackup(h.home, 'db', { mode: 'parallel', chunk: 100 * KiB })).rejects.toThrow(/multiple of the block size of library lib \(65536 bytes\)/);
    await expect(runBackup(h.home, 'db', { mode: 'nope' as never })).rejects.toMatchObject({ code: 'E_INVALID' });
    await expect(runBackup(h.home, 'db', { mode: 'chunked', commandTimeoutMs: 0 })).rejects.toMatchObject({ code: 'E_INVALID' });
  });
});
