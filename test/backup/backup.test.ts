import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { createLibrary } from '../../src/backup/libraries.js';
import { rebuildCatalog } from '../../src/backup/rebuild.js';
import { restoreJob } from '../../src/backup/restore.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { Home, VolumeStore } from '../../src/index.js';
import { Inventory, markUnavailable } from '../../src/resources/inventory.js';
import { Library } from '../../src/tape/library.js';
import { scratchDir } from '../helpers/home.js';

const KiB = 1024;
const MiB = 1024 * 1024;

let scratch: ReturnType<typeof scratchDir>;
let home: Home;
let store: VolumeStore;

beforeEach(() => {
  scratch = scratchDir();
  home = Home.open(path.join(scratch.dir, 'home'));
  store = new VolumeStore(home);
});
afterEach(() => scratch.cleanup());

function library(name: string, slots: number, drives: number, cartridgeSize: number, blockSize = 64 * KiB): Library {
  const catalog = Catalog.open(home);
  try {
    return createLibrary(home, catalog, name, { slots, drives, cartridgeSize, blockSize });
  } finally {
    catalog.close();
  }
}

async function volume(name: string, size: number, seed: number): Promise<string> {
  const v = store.create(name, { size });
  await v.fill(0, size, { seed });
  return v.checksum();
}

function sha256File(file: string, offset = 0, length?: number): string {
  const all = fs.readFileSync(file);
  return crypto
    .createHash('sha256')
    .update(all.subarray(offset, length === undefined ? undefined : offset + length))
    .digest('hex');
}

function out(name: string): string {
  return path.join(scratch.dir, name);
}

describe('backup and restore across cartridges', () => {
  it('a job spanning four cartridges restores byte-identical, and the catalog says where each segment lies', async () => {
    library('lib', 6, 1, 4 * MiB);
    const sum = await volume('db', 12 * MiB, 5);
    const r = await runBackup(home, 'db');
    expect(r.bytes).toBe(12 * MiB);
    expect(r.cartridges.length).toBeGreaterThanOrEqual(4);
    const catalog = Catalog.open(home);
    const segs = catalog.segments(r.job);
    expect(catalog.job(r.job)).toMatchObject({ status: 'done', bytes: 12 * MiB, target: 'db' });
    catalog.close();
    // Segments tile the source in order, one or more per cartridge, in the order written.
    let at = 0;
    for (const s of segs) {
      expect(s.sourceOffset).toBe(at);
      at += s.length;
    }
    expect(at).toBe(12 * MiB);
    expect([...new Set(segs.map((s) => s.barcode))]).toEqual(r.cartridges);

    const rr = await restoreJob(home, r.job, out('db.restored'));
    expect(rr.loaded).toEqual(r.cartridges);
    expect(sha256File(out('db.restored'))).toBe(sum);
  });

  it('a range restore loads only the cartridges whose segments cover the range', async () => {
    library('lib', 6, 2, 4 * MiB);
    await volume('db', 12 * MiB, 6);
    const r = await runBackup(home, 'db');
    const catalog = Catalog.open(home);
    const segs = catalog.segments(r.job);
    catalog.close();
    const third = segs.find((s) => s.barcode === r.cartridges[2])!;
    const offset = third.sourceOffset + 100 * KiB;
    const length = 300 * KiB + 7;
    const rr = await restoreJob(home, r.job, out('range'), { offset, length });
    expect(rr.loaded).toEqual([third.barcode]);
    expect(fs.statSync(out('range')).size).toBe(length);
    expect(sha256File(out('range'))).toBe(sha256File(store.file('db'), offset, length));

    // A range across a cartridge boundary loads both cartridges, in order.
    const boundary = third.sourceOffset;
    const across = await restoreJob(home, r.job, out('across'), { offset: boundary - 10 * KiB, length: 20 * KiB });
    expect(across.loaded).toEqual([r.cartridges[1], r.cartridges[2]]);
    expect(sha256File(out('across'))).toBe(sha256File(store.file('db'), boundary - 10 * KiB, 20 * KiB));
  });

  it('the catalog is rebuilt from the cartridges alone and restores still work', async () => {
    library('lib', 8, 1, 4 * MiB);
    const a = await volume('a', 6 * MiB, 1);
    const b = await volume('b', 5 * MiB, 2);
    const ja = await runBackup(home, 'a');
    const jb = await runBackup(home, 'b');
    const before = Catalog.open(home);
    const segsBefore = [before.segments(ja.job), before.segments(jb.job)];
    const jobsBefore = before.jobs().map((j) => [j.id, j.target, j.status, j.bytes, j.dataTime]);
    before.close();
    for (const f of ['catalog.db', 'catalog.db-wal', 'catalog.db-shm']) fs.rmSync(path.join(home.dir, f), { force: true });

    // A fresh catalog refuses to write over backups it does not know.
    await expect(runBackup(home, 'a')).rejects.toMatchObject({ code: 'E_STATE' });
    const rb = await rebuildCatalog(home);
    expect(rb).toMatchObject({ jobs: 2, problems: [] });
    const after = Catalog.open(home);
    expect(after.jobs().map((j) => [j.id, j.target, j.status, j.bytes, j.dataTime])).toEqual(jobsBefore);
    const strip = (s: { id: number; locationId: number }[]) => s.map(({ id: _i, locationId: _l, ...rest }) => rest);
    expect(strip(after.segments(ja.job))).toEqual(strip(segsBefore[0]!));
    expect(strip(after.segments(jb.job))).toEqual(strip(segsBefore[1]!));
    after.close();
    await restoreJob(home, ja.job, out('a'));
    await restoreJob(home, jb.job, out('b'));
    expect(sha256File(out('a'))).toBe(a);
    expect(sha256File(out('b'))).toBe(b);
    // New jobs continue the numbering.
    expect((await runBackup(home, 'a')).job).toBe(jb.job + 1);
  });

  it('a corrupted block fails the restore with E_CORRUPT naming cartridge, file and block; nothing is written', async () => {
    library('lib', 4, 1, 8 * MiB);
    await volume('db', 2 * MiB, 3);
    const r = await runBackup(home, 'db');
    const lib = Library.open(home, 'lib');
    const cart = lib.cartridgeFile(r.cartridges[0]!);
    // Flip one byte about 1 MiB into the data (well inside block payloads).
    const fd = fs.openSync(cart, 'r+');
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, MiB + 12345);
    b[0] = b[0]! ^ 0xff;
    fs.writeSync(fd, b, 0, 1, MiB + 12345);
    fs.closeSync(fd);
    const err = await restoreJob(home, r.job, out('x')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_CORRUPT' });
    expect((err as Error).message).toContain(r.cartridges[0]);
    expect((err as Error).message).toMatch(/file 0/);
    expect((err as Error).message).toMatch(/block \d+/);
    expect(fs.existsSync(out('x'))).toBe(false);
    expect(fs.existsSync(`${out('x')}.plexus-partial`)).toBe(false);
  });

  it('does not overwrite an existing destination without force, and names a missing cartridge', async () => {
    library('lib', 4, 1, 8 * MiB);
    const sum = await volume('db', 1 * MiB, 4);
    const r = await runBackup(home, 'db');
    fs.writeFileSync(out('keep'), 'precious');
    await expect(restoreJob(home, r.job, out('keep'))).rejects.toMatchObject({ code: 'E_EXISTS' });
    expect(fs.readFileSync(out('keep'), 'utf8')).toBe('precious');
    await restoreJob(home, r.job, out('keep'), { force: true });
    expect(sha256File(out('keep'))).toBe(sum);

    const lib = Library.open(home, 'lib');
    fs.renameSync(lib.cartridgeFile(r.cartridges[0]!), `${lib.cartridgeFile(r.cartridges[0]!)}.away`);
    const err = await restoreJob(home, r.job, out('y')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_NOENT' });
    expect((err as Error).message).toContain(r.cartridges[0]);
  });

  it('concurrent jobs share fewer drives than jobs: they wait, and all succeed', async () => {
    library('lib', 12, 2, 4 * MiB);
    const sums = await Promise.all([0, 1, 2, 3].map((i) => volume(`v${i}`, 6 * MiB, 10 + i)));
    const reports = await Promise.all([0, 1, 2, 3].map((i) => runBackup(home, `v${i}`)));
    expect(reports.filter((r) => r.waitedForDrive).length).toBeGreaterThanOrEqual(2);
    // Jobs may append to one cartridge one after another, never into each other's files.
    const catalog = Catalog.open(home);
    const places = reports.flatMap((r) => catalog.segments(r.job).map((s) => `${s.barcode}/${s.fileNumber}`));
    catalog.close();
    expect(new Set(places).size).toBe(places.length);
    for (const [i, r] of reports.entries()) {
      await restoreJob(home, r.job, out(`v${i}`));
      expect(sha256File(out(`v${i}`))).toBe(sums[i]);
    }
    expect(
      Library.open(home, 'lib')
        .drives()
        .every((d) => !d.busy),
    ).toBe(true);
  });

  it('fails clearly when the library has no room left, marking the job failed and freeing the drive', async () => {
    library('lib', 1, 1, 2 * MiB);
    await volume('db', 4 * MiB, 7);
    const err = await runBackup(home, 'db').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_NOSPC' });
    const catalog = Catalog.open(home);
    expect(catalog.jobs()[0]).toMatchObject({ status: 'failed' });
    catalog.close();
    expect(
      Library.open(home, 'lib')
        .drives()
        .every((d) => !d.busy),
    ).toBe(true);
  });

  it('a single-stream job skips a drive the inventory marks unavailable, and fails with E_RESOURCES when every drive is', async () => {
    library('lib', 4, 2, 8 * MiB);
    const sum = await volume('db', 2 * MiB, 3);
    Inventory.open(home).close();
    // As a job that found a command stuck in drive 0 leaves it.
    expect(markUnavailable(home, ['lib/drive0'], 'test')).toEqual(['lib/drive0']);
    const r = await runBackup(home, 'db');
    expect(r.streams[0]?.drive).toBe('lib/drive1');
    await restoreJob(home, r.job, out('db.out'));
    expect(sha256File(out('db.out'))).toBe(sum);
    // Both out of service: nothing to wait for.
    markUnavailable(home, ['lib/drive1'], 'test');
    const err = await runBackup(home, 'db').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_RESOURCES' });
    expect((err as Error).message).toMatch(/every drive of library lib is marked unavailable/);
    const catalog = Catalog.open(home);
    expect(catalog.jobs().find((j) => j.id !== r.job)).toMatchObject({ status: 'failed' });
    catalog.close();
    expect(
      Library.open(home, 'lib')
        .drives()
        .every((d) => !d.busy),
    ).toBe(true);
  });
});
