/**
 * A cartridge switch only swaps handles: the stream loads the next cartridge (label and
 * header reads) while the current one is being written, and frees a prepared cartridge
 * it did not get to use, on every path.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { createLibrary } from '../../src/backup/libraries.js';
import { restoreJob } from '../../src/backup/restore.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { Home, VolumeStore } from '../../src/index.js';
import { TapeDrive } from '../../src/tape/drive.js';
import type { Library } from '../../src/tape/library.js';
import { scratchDir } from '../helpers/home.js';

const KiB = 1024;
const MiB = 1024 * 1024;

let scratch: ReturnType<typeof scratchDir>;
let home: Home;

beforeEach(() => {
  scratch = scratchDir();
  home = Home.open(path.join(scratch.dir, 'home'));
});
afterEach(() => {
  vi.restoreAllMocks();
  scratch.cleanup();
});

function library(slots: number, cartridgeSize: number): Library {
  const catalog = Catalog.open(home);
  try {
    return createLibrary(home, catalog, 'lib', { slots, drives: 1, cartridgeSize, blockSize: 64 * KiB });
  } finally {
    catalog.close();
  }
}

/** Counts the segment commands running, and notes for each writable load whether one ran. */
function watch(): { loads: Array<{ file: string; whileWriting: boolean }> } {
  let running = 0;
  const loads: Array<{ file: string; whileWriting: boolean }> = [];
  const load = TapeDrive.load.bind(TapeDrive);
  vi.spyOn(TapeDrive, 'load').mockImplementation((file: string, readOnly: boolean) => {
    if (!readOnly) loads.push({ file: path.basename(file), whileWriting: running > 0 });
    return load(file, readOnly);
  });
  const execute = TapeDrive.prototype.executeCommands;
  vi.spyOn(TapeDrive.prototype, 'executeCommands').mockImplementation(function (this: TapeDrive, ...args: Parameters<TapeDrive['executeCommands']>) {
    running++;
    return execute.apply(this, args).finally(() => running--);
  });
  return { loads };
}

/** Every cartridge of the library can be claimed, and no drive is busy. */
function allFree(lib: Library): void {
  for (const c of lib.config.cartridges) {
    const lock = lib.tryClaimCartridge(c.barcode);
    expect(lock, `cartridge ${c.barcode} still locked`).toBeDefined();
    lock?.release();
  }
  expect(lib.drives().every((d) => !d.busy)).toBe(true);
}

describe('the next cartridge is prepared while the current one is written', () => {
  it('every cartridge after the first is loaded while a command runs, and the job restores byte-identical', async () => {
    const lib = library(6, 4 * MiB);
    const v = new VolumeStore(home).create('db', { size: 12 * MiB });
    await v.fill(0, 12 * MiB, { seed: 9 });
    const sum = await v.checksum();
    const w = watch();
    const r = await runBackup(home, 'db');
    expect(r.cartridges.length).toBeGreaterThanOrEqual(4);
    const loads = w.loads.filter((l) => l.file.endsWith('.tape'));
    // The first is loaded before anything runs; every switch found its cartridge ready.
    expect(loads[0]?.whileWriting).toBe(false);
    expect(loads.slice(1).map((l) => l.whileWriting)).toEqual(loads.slice(1).map(() => true));
    expect(loads.map((l) => l.file)).toEqual(r.cartridges.map((b) => `${b}.tape`));
    vi.restoreAllMocks();
    const out = path.join(scratch.dir, 'db.out');
    await restoreJob(home, r.job, out);
    expect(crypto.createHash('sha256').update(fs.readFileSync(out)).digest('hex')).toBe(sum);
    allFree(lib);
  });

  it('a job cancelled while the next cartridge is prepared frees it: unlocked, still scratch, the drive free', async () => {
    const lib = library(6, 4 * MiB);
    const v = new VolumeStore(home).create('db', { size: 12 * MiB });
    await v.fill(0, 12 * MiB, { seed: 4 });
    const w = watch();
    const abort = new AbortController();
    const err = await runBackup(home, 'db', {
      signal: abort.signal,
      // Cancelled while the first cartridge is written (the second already prepared).
      onProgress: (p) => {
        if (p.done > 0) abort.abort();
      },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_CANCELLED' });
    const loads = w.loads.filter((l) => l.file.endsWith('.tape'));
    expect(loads.length).toBeGreaterThanOrEqual(2);
    expect(loads[1]?.whileWriting).toBe(true);
    allFree(lib);
    const catalog = Catalog.open(home);
    try {
      const prepared = loads[1]!.file.replace(/\.tape$/, '');
      expect(catalog.media('lib').find((m) => m.barcode === prepared)).toMatchObject({ state: 'scratch' });
      expect(catalog.jobs()[0]).toMatchObject({ status: 'failed' });
    } finally {
      catalog.close();
    }
  });
});
