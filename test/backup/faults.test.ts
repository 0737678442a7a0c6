import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { createLibrary } from '../../src/backup/libraries.js';
import { restoreJob } from '../../src/backup/restore.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { PlexusError } from '../../src/errors.js';
import { Home, VolumeStore } from '../../src/index.js';
import { TapeDrive } from '../../src/tape/drive.js';
import { Library } from '../../src/tape/library.js';
import { CLI, scratchDir } from '../helpers/home.js';

const MiB = 1024 * 1024;

let scratch: ReturnType<typeof scratchDir>;
let home: Home;
let store: VolumeStore;
let mounted: string | undefined;

beforeEach(() => {
  scratch = scratchDir();
  home = Home.open(path.join(scratch.dir, 'home'));
  store = new VolumeStore(home);
});
afterEach(() => {
  vi.restoreAllMocks();
  if (mounted) execFileSync('umount', ['-l', mounted]);
  mounted = undefined;
  scratch.cleanup();
});

function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

describe('backup faults', () => {
  it('a full library directory (ENOSPC) fails the job cleanly: marked failed, drive released, cartridge reusable', async () => {
    // A real full file system: the libraries directory is a 6 MiB tmpfs (the tests run as root).
    const libs = Library.root(home);
    fs.mkdirSync(libs, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs', libs]);
    mounted = libs;
    const catalog = Catalog.open(home);
    createLibrary(home, catalog, 'lib', { slots: 2, drives: 1, cartridgeSize: 64 * MiB, blockSize: 256 * 1024 });
    catalog.close();
    const v = store.create('big', { size: 16 * MiB });
    await v.fill(0, 16 * MiB, { seed: 3 });
    const err = await runBackup(home, 'big').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_NOSPC' });
    expect((err as Error).message).toMatch(/big/);
    const c = Catalog.open(home);
    const job = c.jobs()[0]!;
    expect(job.status).toBe('failed');
    expect(job.error).toMatch(/E_NOSPC/);
    const media = c.media('lib');
    c.close();
    expect(
      Library.open(home, 'lib')
        .drives()
        .every((d) => !d.busy),
    ).toBe(true);
    // The cartridge holds nothing half-written: a smaller backup fits and restores.
    expect(media.every((m) => m.bytes === 0)).toBe(true);
    const small = store.create('small', { size: 2 * MiB });
    await small.fill(0, 2 * MiB, { seed: 4 });
    const ok = await runBackup(home, 'small');
    await restoreJob(home, ok.job, path.join(scratch.dir, 'small.out'));
    expect(sha256File(path.join(scratch.dir, 'small.out'))).toBe(await small.checksum());
  });

  it('a killed backup leaves the catalog consistent (incomplete on next start) and its cartridges reusable', async () => {
    const catalog = Catalog.open(home);
    // Room for a whole job after the killed one, even past cartridges it closed unrecorded.
    createLibrary(home, catalog, 'lib', { slots: 11, drives: 1, cartridgeSize: 64 * MiB, blockSize: 256 * 1024 });
    catalog.close();
    const size = 384 * MiB;
    const v = store.create('db', { size });
    await v.fill(0, size, { seed: 9 });
    const child = spawn(process.execPath, [CLI, '--home', home.dir, 'backup', 'run', 'db'], { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    // Kill it once at least one segment is in the catalog and more are being written.
    for (;;) {
      if (child.exitCode !== null) throw new Error('the backup finished before it could be killed');
      const c = Catalog.openFile(path.join(home.dir, 'catalog.db'));
      const job = c.jobs()[0];
      c.close();
      if (job && job.bytes > 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    await exited;
    expect(child.signalCode).toBe('SIGKILL');

    const c = Catalog.open(home);
    const killed = c.jobs()[0]!;
    expect(killed.status).toBe('incomplete');
    const segs = c.segments(killed.id);
    c.close();
    expect(segs.length).toBeGreaterThan(0);
    expect(
      Library.open(home, 'lib')
        .drives()
        .every((d) => !d.busy),
    ).toBe(true);
    // What the killed job recorded is restorable, byte for byte.
    const covered = segs.reduce((a, s) => a + s.length, 0);
    const part = await restoreJob(home, killed.id, path.join(scratch.dir, 'part'), { offset: 0, length: covered });
    expect(part.bytes).toBe(covered);
    expect(sha256File(path.join(scratch.dir, 'part'))).toBe(await v.checksum(0, covered));
    await expect(restoreJob(home, killed.id, path.join(scratch.dir, 'whole'))).rejects.toMatchObject({ code: 'E_STATE' });
    // The cartridge the killed job was writing takes the new job (its torn tail is
    // dropped). Up to two before it may have been closing in the background: those whose
    // close completed before the kill hold a segment the catalog never recorded, count
    // as full and are skipped.
    const lib = Library.open(home, 'lib');
    const last = lib.slotOf(segs.at(-1)!.barcode);
    const again = await runBackup(home, 'db');
    const first = lib.slotOf(again.cartridges[0]!);
    expect(first).toBeGreaterThan(last);
    expect(first).toBeLessThanOrEqual(last + 3);
    for (let slot = last + 1; slot < first; slot++) {
      const skipped = lib.config.cartridges.find((x) => x.slot === slot)!.barcode;
      const held = TapeDrive.peek(lib.cartridgeFile(skipped));
      expect(held.inEarlyWarning).toBe(true);
      expect(held.files).toBeGreaterThanOrEqual(1); // the segment; its catalog file unless killed in between
    }
    await restoreJob(home, again.job, path.join(scratch.dir, 'db.out'));
    expect(sha256File(path.join(scratch.dir, 'db.out'))).toBe(await v.checksum());
  });

  it('a background close that fails fails the job: marked failed, drive and cartridges released, earlier segments kept', async () => {
    const catalog = Catalog.open(home);
    createLibrary(home, catalog, 'lib', { slots: 6, drives: 1, cartridgeSize: 4 * MiB, blockSize: 64 * 1024 });
    catalog.close();
    const v = store.create('db', { size: 12 * MiB });
    await v.fill(0, 12 * MiB, { seed: 6 });
    // The second cartridge's close fails as close_segment does on a failed sync: its
    // open segment is dropped and the job is told.
    const real = TapeDrive.prototype.closeSegment;
    let closes = 0;
    vi.spyOn(TapeDrive.prototype, 'closeSegment').mockImplementation(async function (this: TapeDrive, index: Buffer | null) {
      if (++closes === 2) {
        this.abandon();
        throw new PlexusError('E_IO', `injected: fsync of ${this.barcode} failed`);
      }
      return real.call(this, index);
    });
    const err = await runBackup(home, 'db').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_IO' });
    expect((err as Error).message).toMatch(/backup job 1 of db failed: injected: fsync of LIB002L9 failed/);
    vi.restoreAllMocks();

    const c = Catalog.open(home);
    const job = c.jobs()[0]!;
    expect(job.status).toBe('failed');
    expect(job.error).toMatch(/^E_IO: injected/);
    // Only the segment whose close completed, before the failed one, is recorded.
    const segs = c.segments(job.id);
    expect(segs.map((s) => [s.seq, s.barcode, s.sourceOffset])).toEqual([[0, 'LIB001L9', 0]]);
    const media = new Map(c.media('lib').map((m) => [m.barcode, m.state]));
    c.close();
    expect(media.get('LIB001L9')).toBe('full');
    expect(media.get('LIB002L9')).toBe('scratch');
    const lib = Library.open(home, 'lib');
    expect(lib.drives().every((d) => !d.busy)).toBe(true);
    for (const { barcode } of lib.config.cartridges) {
      const lock = lib.tryClaimCartridge(barcode);
      expect(lock, `${barcode} is released`).toBeDefined();
      lock!.release();
    }
    // What was recorded restores; the next job fills the cartridges after it.
    await restoreJob(home, job.id, path.join(scratch.dir, 'part'), { offset: 0, length: segs[0]!.length });
    expect(sha256File(path.join(scratch.dir, 'part'))).toBe(await v.checksum(0, segs[0]!.length));
    const again = await runBackup(home, 'db');
    expect(again.cartridges[0]).toBe('LIB002L9');
    await restoreJob(home, again.job, path.join(scratch.dir, 'db.out'));
    expect(sha256File(path.join(scratch.dir, 'db.out'))).toBe(await v.checksum());
  });
});
