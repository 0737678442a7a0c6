/**
 * Disk libraries (docs/disk-library.md): cartridge files in a directory of their own,
 * outside the home, made as jobs need them; everything a tape library does works on
 * them (backup in every mode, restore whole and by range, rebuild), and a lost home
 * gets them back with an import.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { importDiskLibrary } from '../../src/backup/disk-import.js';
import { createDiskLibrary, createLibrary, removeLibrary } from '../../src/backup/libraries.js';
import { rebuildCatalog } from '../../src/backup/rebuild.js';
import { restoreJob } from '../../src/backup/restore.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { Home } from '../../src/home/home.js';
import { VolumeStore } from '../../src/index.js';
import { DISK_MARKER } from '../../src/tape/disk-library.js';
import { Library } from '../../src/tape/library.js';
import { sha256File } from '../../src/util/hash.js';
import { expectCoded, thrown } from '../helpers/errors.js';
import { useHome } from '../resources/helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const h = useHome();

/** `fn` fails with `code`. */
async function expectCode(fn: () => unknown, code: string, ...names: string[]): Promise<void> {
  expectCoded(await thrown(fn), code, ...names);
}

function withCatalog<T>(fn: (c: Catalog) => T, home = h.home): T {
  const c = Catalog.open(home);
  try {
    return fn(c);
  } finally {
    c.close();
  }
}

/** A disk library `name` in `dir` (default: beside the home, outside it). */
function disk(name: string, opts: { dir?: string; volumeSize?: number; drives?: number; home?: Home } = {}): Library {
  const home = opts.home ?? h.home;
  const dir = opts.dir ?? path.join(h.dir, `${name}-dir`);
  return withCatalog((c) => createDiskLibrary(home, c, name, dir, { volumeSize: opts.volumeSize ?? 8 * MiB, blockSize: 64 * KiB, drives: opts.drives ?? 2 }), home);
}

async function volume(name: string, size: number, seed: number): Promise<string> {
  const v = new VolumeStore(h.home).create(name, { size });
  await v.fill(0, size, { seed });
  return v.checksum();
}

function slice(file: string, offset: number, length: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    fs.readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

describe('disk libraries', () => {
  it('keep their cartridges in their own directory, grow past the first cartridge, and restore byte for byte and by range', async () => {
    const lib = disk('nightly', { volumeSize: 8 * MiB });
    expect(lib.kind).toBe('disk');
    expect(lib.cartridgeDir).toBe(path.join(fs.realpathSync(h.dir), 'nightly-dir'));
    expect(fs.existsSync(path.join(lib.cartridgeDir, DISK_MARKER))).toBe(true);
    expect(lib.config.cartridges.map((c) => c.barcode)).toEqual(['NIG000001']);
    const sum = await volume('db', 20 * MiB, 3);

    const r = await runBackup(h.home, 'db', { library: 'nightly' });
    // 20 MiB on cartridges of 8 MiB: the library made the cartridges it needed.
    expect(r.cartridges).toEqual(['NIG000001', 'NIG000002', 'NIG000003']);
    const files = fs.readdirSync(lib.cartridgeDir).sort();
    expect(files).toEqual(['NIG000001.tape', 'NIG000002.tape', 'NIG000003.tape', DISK_MARKER]);
    // Nothing of the library's data is in the home: only its description and locks.
    expect(fs.readdirSync(path.join(h.home.dir, 'libraries', 'nightly', 'cartridges')).filter((f) => f.endsWith('.tape'))).toEqual([]);
    const reopened = Library.open(h.home, 'nightly');
    expect(reopened.config.cartridges.map((c) => [c.slot, c.barcode])).toEqual([
      [0, 'NIG000001'],
      [1, 'NIG000002'],
      [2, 'NIG000003'],
    ]);
    expect(withCatalog((c) => c.media('nightly').map((m) => m.state))).toEqual(['full', 'full', 'filling']);

    const out = path.join(h.dir, 'db.img');
    await restoreJob(h.home, r.job, out);
    expect(sha256File(out)).toBe(sum);
    const part = path.join(h.dir, 'part.bin');
    const range = await restoreJob(h.home, r.job, part, { offset: 7 * MiB + 5, length: 2 * MiB });
    expect(range.loaded).toEqual(['NIG000001', 'NIG000002']);
    expect(fs.readFileSync(part).equals(slice(new VolumeStore(h.home).file('db'), 7 * MiB + 5, 2 * MiB))).toBe(true);
  });

  it('run parallel and chunked backups: streams get the cartridges they secure', async () => {
    disk('d', { volumeSize: 8 * MiB, drives: 2 });
    const sum = await volume('db', 6 * MiB, 5);
    const par = await runBackup(h.home, 'db', { library: 'd', mode: 'parallel', streams: 2, chunk: 1 * MiB, streamWaitMs: 0 });
    expect(par.copies).toEqual([0, 1]);
    const chunked = await runBackup(h.home, 'db', { library: 'd', mode: 'chunked', streams: 2, chunk: 1 * MiB, streamWaitMs: 0 });
    expect(chunked.locations).toBe(1);
    for (const job of [par.job, chunked.job]) {
      const out = path.join(h.dir, `r${job}.img`);
      await restoreJob(h.home, job, out);
      expect(sha256File(out)).toBe(sum);
    }
    // Two streams at once held two cartridges at once: both were made for them.
    expect(Library.open(h.home, 'd').config.cartridges.length).toBeGreaterThanOrEqual(2);
  });

  it("let two jobs at once make cartridges without taking one another's", async () => {
    disk('shared', { volumeSize: 4 * MiB, drives: 2 });
    const sums = await Promise.all([volume('a', 10 * MiB, 1), volume('b', 10 * MiB, 2)]);
    const jobs = await Promise.all(['a', 'b'].map((v) => runBackup(h.home, v, { library: 'shared' })));
    const [ca, cb] = jobs.map((j) => j.cartridges);
    expect(ca!.filter((c) => cb!.includes(c))).toEqual([]);
    expect(Library.open(h.home, 'shared').config.cartridges.length).toBeGreaterThanOrEqual(ca!.length + cb!.length);
    for (const [i, j] of jobs.entries()) {
      const out = path.join(h.dir, `${j.job}.img`);
      await restoreJob(h.home, j.job, out);
      expect(sha256File(out)).toBe(sums[i]);
    }
  });

  it('come back from their cartridges: a deleted catalog is rebuilt, and a new home imports the directory', async () => {
    const lib = disk('vault', { volumeSize: 8 * MiB });
    const sum = await volume('db', 12 * MiB, 7);
    const job = (await runBackup(h.home, 'db', { library: 'vault' })).job;
    for (const f of fs.readdirSync(h.home.dir).filter((n) => n.startsWith('catalog.db'))) fs.rmSync(path.join(h.home.dir, f));
    const rebuilt = await rebuildCatalog(h.home);
    expect(rebuilt).toMatchObject({ libraries: ['vault'], jobs: 1, problems: [] });
    const out = path.join(h.dir, 'a.img');
    await restoreJob(h.home, job, out);
    expect(sha256File(out)).toBe(sum);

    // The home is lost: a fresh one attaches the directory and reads the jobs back.
    const fresh = Home.open(path.join(h.dir, 'home2'));
    const imported = await importDiskLibrary(fresh, 'found', lib.cartridgeDir);
    expect(imported.library.config).toMatchObject({ kind: 'disk', prefix: 'VAU', cartridgeSize: 8 * MiB, blockSize: 64 * KiB });
    expect(imported.rebuild).toMatchObject({ jobs: 1, problems: [] });
    const jobs = withCatalog((c) => c.jobs(), fresh);
    expect(jobs.map((j) => [j.id, j.target, j.status])).toEqual([[job, 'db', 'done']]);
    const out2 = path.join(h.dir, 'b.img');
    await restoreJob(fresh, job, out2);
    expect(sha256File(out2)).toBe(sum);
    // The imported library goes on making cartridges after the ones it has.
    await new VolumeStore(fresh).create('more', { size: 10 * MiB }).fill(0, 10 * MiB, { seed: 9 });
    const more = await runBackup(fresh, 'more', { library: 'found' });
    expect(more.cartridges.at(-1)).toBe('VAU000003');
    // Without its marker (an older directory), the geometry comes from a cartridge label.
    fs.rmSync(path.join(lib.cartridgeDir, DISK_MARKER));
    const third = Home.open(path.join(h.dir, 'home3'));
    const again = await importDiskLibrary(third, 'again', lib.cartridgeDir, { rebuild: false });
    expect(again.library.config).toMatchObject({ prefix: 'VAU', cartridgeSize: 8 * MiB, blockSize: 64 * KiB });
    expect(fs.existsSync(path.join(lib.cartridgeDir, DISK_MARKER))).toBe(true);
  });

  it('refuse a directory in the home or another library, and a directory that is not theirs any more', async () => {
    const inHome = (dir: string) => expectCode(() => disk('x', { dir }), 'E_INVALID');
    await inHome(path.join(h.home.dir, 'volumes', 'backups'));
    await inHome(path.join(h.home.dir, 'libraries', 'x'));
    await inHome(h.home.dir);
    await inHome(path.join(h.home.dir, 'elsewhere'));
    const a = disk('a');
    await expectCode(() => disk('b', { dir: path.join(a.cartridgeDir, 'inner') }), 'E_INVALID');
    await expectCode(() => disk('c', { dir: path.dirname(a.cartridgeDir) }), 'E_INVALID');
    await expectCode(() => disk('a', { dir: path.join(h.dir, 'other') }), 'E_EXISTS');
    // A directory that already holds a disk library is imported, not created over.
    fs.rmSync(path.join(h.home.dir, 'libraries', 'a'), { recursive: true });
    await expectCode(() => disk('a2', { dir: a.cartridgeDir }), 'E_EXISTS');
    await expectCode(() => Library.open(h.home, 'nope'), 'E_NOENT');
    await expectCode(() => withCatalog((c) => createDiskLibrary(h.home, c, 'bad', path.join(h.dir, 'bad'), { volumeSize: 1 * KiB })), 'E_INVALID');
    // Unmounted (its marker gone): the library makes no cartridge there.
    const b = disk('b', { volumeSize: 4 * MiB });
    await volume('db', 6 * MiB, 1);
    fs.rmSync(path.join(b.cartridgeDir, DISK_MARKER));
    const err = await runBackup(h.home, 'db', { library: 'b' }).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err?.code).toBe('E_NOENT');
    expect(err?.message).toContain(DISK_MARKER);
    expect(fs.readdirSync(b.cartridgeDir)).toEqual(['BXX000001.tape']);
  });

  it('read an old library.json without a kind as a tape library, and remove their files with them', async () => {
    const tape = withCatalog((c) => createLibrary(h.home, c, 'old', { slots: 1, drives: 1, cartridgeSize: 4 * MiB, blockSize: 64 * KiB }));
    const file = path.join(tape.dir, 'library.json');
    const { kind: _, ...before } = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(file, JSON.stringify(before));
    const old = Library.open(h.home, 'old');
    expect(old.kind).toBe('tape');
    expect(old.cartridgeFile('OLD001L9')).toBe(path.join(tape.dir, 'cartridges', 'OLD001L9.tape'));
    fs.writeFileSync(file, JSON.stringify({ ...before, kind: 'floppy' }));
    await expectCode(() => Library.open(h.home, 'old'), 'E_CORRUPT');
    fs.writeFileSync(file, JSON.stringify(before));

    const d = disk('gone');
    fs.writeFileSync(path.join(d.cartridgeDir, 'notes.txt'), 'mine');
    withCatalog((c) => removeLibrary(h.home, c, 'gone'));
    expect(fs.readdirSync(d.cartridgeDir)).toEqual(['notes.txt']);
    expect(fs.existsSync(d.dir)).toBe(false);
  });
});
