/**
 * `plexus bench disk`: a backup of a dense volume to a disk library in DIR against
 * `dd if=VOLUME of=DIR/file bs=1M conv=fsync` to the same directory, in one run. Both
 * write the same bytes to the same file system and sync them (Plexus at each filemark,
 * dd at the end); Plexus also checksums every block (CRC32C) and the segment (XXH3).
 *
 * As `bench backup` (docs/bench-backup.md): every contender starts alike (`settle`:
 * sync, the page cache dropped or the benchmark's files dropped from it, then the
 * source read back in, so both read a cached source and neither pays for the other's
 * writeback); the two run back to back in every round, in alternating order; the ratio
 * is the median of the per-round ratios; the load average is stored with the result.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBackup } from '../backup/backup.js';
import { createDiskLibrary, removeLibrary } from '../backup/libraries.js';
import { restoreJob } from '../backup/restore.js';
import { Catalog } from '../catalog/catalog.js';
import { fromSystem, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import type { ProgressCallback } from '../progress.js';
import { checkDiskDir } from '../tape/disk-library.js';
import { sha256File } from '../util/hash.js';
import { cacheDescription } from './backup.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { benchHome, type CacheMode, type CachePolicy, loadAverage, now, pairedRatio, resolveCacheMode, roundRatios, runTool, settle, since, summarize, type Timing } from './measure.js';

/** Options of the disk-target benchmark. */
export interface DiskBenchOptions {
  size: number;
  rounds?: number;
  /** Where the disk library and dd's file go (default: a directory under the system's temporary directory). */
  dir?: string;
  cache?: CachePolicy;
  log?: (line: string) => void;
  onProgress?: ProgressCallback;
}

/** Everything the disk-target benchmark measured. */
export interface DiskBenchResult {
  benchmark: 'disk';
  date: string;
  machine: MachineInfo;
  sizeBytes: number;
  rounds: number;
  /** The directory both wrote to, its file system type, and whether the source volume is on the same file system. */
  dir: string;
  fileSystem: string;
  sourceOnSameFileSystem: boolean;
  cache: CacheMode;
  /** Both contenders read the source from the page cache (settle reads it in). */
  sourceCached: true;
  loadAverage: { start: number; end: number };
  timings: Timing[];
  /** dd time / plexus time (>= 1: Plexus is faster); the median of the per-round ratios. */
  diskVsDd: number;
  roundRatios: { diskVsDd: number[] };
  targets: Record<string, { target: string; measured: number; met: boolean }>;
}

/** The file system type of `dir` (stat -f), or "unknown". */
function fileSystemType(dir: string): string {
  const r = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'unknown';
}

/** Runs the disk-target benchmark: a scratch home inside `home`, the writes under `opts.dir`. */
export async function benchDisk(home: Home, opts: DiskBenchOptions): Promise<DiskBenchResult> {
  const log = opts.log ?? (() => {});
  const rounds = opts.rounds ?? 3;
  const size = opts.size;
  // The rule of every disk library: outside the home.
  checkDiskDir(home.dir, opts.dir ?? os.tmpdir(), []);
  let base: string;
  try {
    fs.mkdirSync(opts.dir ?? os.tmpdir(), { recursive: true });
    base = fs.mkdtempSync(path.join(opts.dir ?? os.tmpdir(), 'plexus-bench-disk-'));
  } catch (e) {
    throw fromSystem(e, opts.dir ?? os.tmpdir());
  }
  try {
    const { dir, home: h, store, srcSum } = await benchHome(home, 'disk', size, 13, log);
    try {
      const srcFile = store.file('src');
      const ddOut = path.join(base, 'dd.out');
      const cache = resolveCacheMode(opts.cache ?? 'auto');
      log(`writing to ${base} (${fileSystemType(base)}); every contender starts from: ${cacheDescription(cache)}`);
      const loadStart = loadAverage();
      const timed = async (into: number[], f: () => unknown): Promise<void> => {
        settle(cache, [base, dir], [srcFile]);
        const start = now();
        await f();
        into.push(since(start));
      };
      const t = { plexus: [] as number[], dd: [] as number[] };
      for (let i = 0; i < rounds; i++) {
        log(`round ${i + 1}/${rounds}`);
        const name = `disk${i}`;
        const catalog = Catalog.open(h);
        try {
          // The default cartridge file size (64 GiB): one cartridge, as a disk library is used.
          createDiskLibrary(h, catalog, name, path.join(base, name), { drives: 1 });
        } finally {
          catalog.close();
        }
        let job = 0;
        const plexus = (): Promise<void> =>
          timed(t.plexus, async () => {
            job = (await runBackup(h, 'src', { library: name, onProgress: opts.onProgress })).job;
          });
        const dd = (): Promise<void> =>
          timed(t.dd, () => {
            fs.rmSync(ddOut, { force: true });
            runTool('dd', [`if=${srcFile}`, `of=${ddOut}`, 'bs=1M', 'conv=fsync', 'status=none']);
          });
        for (const f of i % 2 === 0 ? [plexus, dd] : [dd, plexus]) await f();
        // dd's copy goes first: the directory needs room for the backup and its restore only.
        fs.rmSync(ddOut, { force: true });
        if (i === 0) {
          const back = path.join(base, 'restored');
          await restoreJob(h, job, back);
          if (sha256File(back) !== srcSum) throw new PlexusError('E_CORRUPT', 'the volume restored from the disk library does not match its source');
          fs.rmSync(back, { force: true });
        }
        // Each round writes a fresh library; the last one's files go, to keep the disk use flat.
        const c = Catalog.open(h);
        try {
          removeLibrary(h, c, name, true);
        } finally {
          c.close();
        }
      }
      const diskVsDd = pairedRatio(t.dd, t.plexus);
      return {
        benchmark: 'disk',
        date: new Date().toISOString(),
        machine: describeMachine(),
        sizeBytes: size,
        rounds,
        dir: base,
        fileSystem: fileSystemType(base),
        sourceOnSameFileSystem: fs.statSync(base).dev === fs.statSync(srcFile).dev,
        cache,
        sourceCached: true,
        loadAverage: { start: loadStart, end: loadAverage() },
        timings: [summarize('plexus backup to a disk library', t.plexus, size), summarize('dd bs=1M conv=fsync', t.dd, size)],
        diskVsDd,
        roundRatios: { diskVsDd: roundRatios(t.dd, t.plexus) },
        targets: { 'disk-target backup vs dd conv=fsync (dd time / plexus time)': { target: '>= 0.9', measured: diskVsDd, met: diskVsDd >= 0.9 } },
      };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}
