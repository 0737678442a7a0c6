/**
 * Catalog rebuild scoped to one library (`catalog rebuild --library L`): it touches only
 * what it scanned. Jobs, copies and parts on other libraries keep their rows.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { createLibrary } from '../../src/backup/libraries.js';
import { rebuildCatalog } from '../../src/backup/rebuild.js';
import { restoreJob } from '../../src/backup/restore.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { VolumeStore } from '../../src/index.js';
import { injectFault } from '../../src/resources/faults.js';
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
});
