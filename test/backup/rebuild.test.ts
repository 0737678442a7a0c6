/**
 * Catalog rebuild scoped to one library (`catalog rebuild --library L`): it touches only
 * what it scanned. Jobs, copies and parts on other libraries keep their rows.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { decodeIndex, encodeIndex } from '../../src/backup/cartridge-index.js';
import { weakest } from '../../src/backup/consistency.js';
import { createLibrary } from '../../src/backup/libraries.js';
import { rebuildCatalog } from '../../src/backup/rebuild.js';
import { restoreJob } from '../../src/backup/restore.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { VolumeStore } from '../../src/index.js';
import { injectFault } from '../../src/resources/faults.js';
import { TapeDrive } from '../../src/tape/drive.js';
import { Library } from '../../src/tape/library.js';
import { sha256File } from '../../src/util/hash.js';
import { useHome } from '../resources/helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const h = useHome();

function library(name: string): void {
  const catalog = Catalog.open(h.home);
  try {
    createLibrary(h.home, catalog, name, { slots: 4, drives: 1, cartridgeSize: 32 * MiB, blockSize: 64 * KiB });
  } finally {
    catalog.close();
  }
}

async function volume(name: string, size: number, seed: number): Promise<string> {
  const v = new VolumeStore(h.home).create(name, { size });
  await v.fill(0, size, { seed });
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

/** Every job with its location entries and segments, row ids left out. */
function snapshot(): unknown {
  return withCatalog((c) =>
    c.jobs().map((j) => ({
      job: [j.id, j.target, j.status, j.bytes, j.targetSize, j.mode, j.startedAt, j.dataTime],
      locations: c.locations(j.id).map((l) => [l.copy, l.seq, l.library, l.stream, l.status]),
      segments: c.segments(j.id).map((s) => [s.copy, s.locationSeq, s.library, s.seq, s.barcode, s.fileNumber, s.firstBlock, s.sourceOffset, s.length, s.checksum]),
    })),
  );
}

describe('catalog rebuild of one library', () => {
  it('keeps the jobs, copies and parts of the other library', async () => {
    library('a');
    library('b');
    const x = await volume('x', 3 * MiB, 1);
    await volume('y', 2 * MiB, 2);
    const z = await volume('z', 8 * MiB, 3);
    const onA = await runBackup(h.home, 'x', { library: 'a' });
    const onB = await runBackup(h.home, 'y', { library: 'b' });
    // A chunked job whose copy device 0 (library a) fails part-way: its rest is on b.
    injectFault(h.home, 'xcopy0', { afterBytes: 3 * MiB });
    const both = await runBackup(h.home, 'z', { mode: 'chunked', chunk: MiB });
    // And a parallel job with one copy on each library.
    const copies = await runBackup(h.home, 'x', { mode: 'parallel', chunk: MiB });
    const shape = withCatalog((c) => ({
      both: [...new Set(c.locations(both.job).map((l) => l.library))],
      copies: c.locations(copies.job).map((l) => [l.copy, l.library]),
    }));
    expect(shape).toEqual({
      both: ['a', 'b'],
      copies: [
        [0, 'a'],
        [1, 'b'],
      ],
    });
    const before = snapshot();

    const ra = await rebuildCatalog(h.home, { library: 'a' });
    expect(ra).toMatchObject({ libraries: ['a'], problems: [] });
    expect(snapshot()).toEqual(before);
    expect(withCatalog((c) => c.job(onB.job).status)).toBe('done');

    // The catalog loses library a's rows; a scoped rebuild brings back exactly those.
    withCatalog((c) => c.transaction(() => c.dropLocationsOn(['a'])));
    expect(withCatalog((c) => c.segments(both.job).every((s) => s.library === 'b'))).toBe(true);
    await rebuildCatalog(h.home, { library: 'a' });
    expect(snapshot()).toEqual(before);
    await rebuildCatalog(h.home, { library: 'b' });
    expect(snapshot()).toEqual(before);

    const restored = async (job: number): Promise<string> => {
      const to = path.join(h.dir, `r${job}`);
      await restoreJob(h.home, job, to);
      return sha256File(to);
    };
    expect(await restored(both.job)).toBe(z);
    expect(await restored(onA.job)).toBe(x);
  });

  it('refuses while a backup job runs (E_BUSY); the catalog is unchanged', async () => {
    library('a');
    await volume('x', MiB, 1);
    await runBackup(h.home, 'x');
    const before = snapshot();
    const c = Catalog.open(h.home);
    try {
      const running = c.startJob({ target: 'x', targetSize: MiB });
      await expect(rebuildCatalog(h.home)).rejects.toMatchObject({ code: 'E_BUSY', message: expect.stringContaining(`job ${running} is running`) });
      await expect(rebuildCatalog(h.home, { library: 'a' })).rejects.toMatchObject({ code: 'E_BUSY' });
      c.finishJob(running, 'failed', 'test');
    } finally {
      c.close();
    }
    const after = snapshot() as Array<{ job: unknown[] }>;
    expect(after.slice(1)).toEqual(before);
  });

  it('a cartridge that is missing or unreadable keeps its rows: neither a scoped nor a full rebuild forgets its jobs', async () => {
    library('a');
    library('b');
    const x = await volume('x', 3 * MiB, 1);
    const onA = await runBackup(h.home, 'x', { library: 'a' });
    await runBackup(h.home, 'x', { library: 'b' });
    const before = snapshot();
    const lib = Library.open(h.home, 'a');
    const barcodes = withCatalog((c) => [...new Set(c.segments(onA.job).map((s) => s.barcode))]);
    expect(barcodes).toHaveLength(1);
    const file = lib.cartridgeFile(barcodes[0]!);
    const away = `${file}.away`;
    fs.renameSync(file, away);
    try {
      const scoped = await rebuildCatalog(h.home, { library: 'a' });
      expect(scoped.problems).toEqual([expect.stringContaining(`${barcodes[0]}: missing from library a`)]);
      expect(snapshot()).toEqual(before);
      const full = await rebuildCatalog(h.home);
      expect(full.problems).toEqual([expect.stringContaining(`${barcodes[0]}: missing from library a`)]);
      expect(snapshot()).toEqual(before);
      // Unreadable (not a cartridge at all): the same.
      fs.writeFileSync(file, 'not a cartridge');
      const bad = await rebuildCatalog(h.home, { library: 'a' });
      expect(bad.problems).toEqual([expect.stringContaining(barcodes[0]!)]);
      expect(snapshot()).toEqual(before);
    } finally {
      fs.renameSync(away, file);
    }
    // Back in the library, it is scanned again and the rows are the same.
    expect(await rebuildCatalog(h.home)).toMatchObject({ problems: [] });
    expect(snapshot()).toEqual(before);
    const to = path.join(h.dir, 'rx');
    await restoreJob(h.home, onA.job, to);
    expect(await sha256File(to)).toBe(x);
  });

  it('a malformed catalog entry on a cartridge is one problem, not an aborted rebuild', async () => {
    library('a');
    await volume('x', 2 * MiB, 1);
    const done = await runBackup(h.home, 'x');
    const before = snapshot();
    const lib = Library.open(h.home, 'a');
    const barcode = withCatalog((c) => c.segments(done.job)[0]!.barcode);
    // A second catalog file for the same segment, with fields missing or of the wrong kind.
    const tape = TapeDrive.load(lib.cartridgeFile(barcode), false);
    try {
      const index = tape.files().find((f) => f.content === 'catalog')!;
      const [e] = decodeIndex(tape.readFile(index.file), 'test');
      const { writtenAt: _w, ...segment } = e!.segment;
      tape.spaceToEod();
      tape.writeFile(encodeIndex({ ...e!, segment: segment as typeof e.segment, location: { ...e!.location, stream: 'x' as unknown as number } }));
    } finally {
      tape.unload();
    }
    for (const opts of [{}, { library: 'a' }]) {
      const r = await rebuildCatalog(h.home, opts);
      expect(r.problems).toEqual([expect.stringMatching(/does not describe a segment/)]);
      expect(snapshot()).toEqual(before);
    }
    // Each field the catalog stores is checked.
    const good = encodeIndex({
      format: 1,
      job: { id: 1, target: 'x', targetSize: 1, mode: 'single', startedAt: 't', dataTime: 't' },
      location: { copy: 0, seq: 0, library: 'a', stream: 0 },
      segment: { seq: 0, barcode: 'A', fileNumber: 0, firstBlock: 0, sourceOffset: 0, length: 1, checksum: 'c', writtenAt: 't' },
    });
    expect(decodeIndex(good, 'good')).toHaveLength(1);
    const spoil = (part: 'job' | 'location' | 'segment', field: string, value: unknown): Buffer => {
      const e = decodeIndex(good, 'good')[0]! as unknown as Record<string, Record<string, unknown>>;
      e[part]![field] = value;
      return encodeIndex(e as never);
    };
    for (const [part, field, value] of [
      ['job', 'targetSize', undefined],
      ['job', 'startedAt', 5],
      ['job', 'targetSize', -1],
      ['location', 'seq', null],
      ['location', 'stream', 1.5],
      ['segment', 'fileNumber', undefined],
      ['segment', 'firstBlock', 'x'],
      ['segment', 'checksum', undefined],
      ['segment', 'writtenAt', undefined],
    ] as const) {
      expect(() => decodeIndex(spoil(part, field, value), 'spoilt'), `${part}.${field}`).toThrow(/does not describe a segment/);
    }
  });

  it('consistency values a cartridge does not know count as unknown', () => {
    expect(weakest(['consistent', 'consistent'])).toBe('consistent');
    expect(weakest(['consistent', 'crash-consistent'])).toBe('crash-consistent');
    expect(weakest(['consistent', 'bogus' as never])).toBe('unknown');
    expect(weakest([42 as never])).toBe('unknown');
  });
});
