/**
 * `plexus bench backup`: a volume backed up to cartridges and restored, against `dd
 * bs=4M` writing the same bytes to one file (and reading them back) and `tar -cf` of the
 * volume file, in one run, on the same disk. Everyone syncs what they write: Plexus at
 * each filemark and the restored file at the end, dd with conv=fsync, tar followed by
 * `sync FILE`. Checksums stay on (block CRC32C, segment XXH3-128).
 *
 * Trusted figures: every contender starts alike (`settle`: sync, then the page cache
 * dropped, or the benchmark's files dropped from it, then the source volume read back
 * in), so none pays for another's writeback or reads what another left cached; the
 * contenders run back to back in every round (the two backups in alternating order),
 * and each ratio is the median of the per-round ratios (`pairedRatio`), not a ratio of
 * bests. The load average is stored with the result. See docs/bench-backup.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runBackup } from '../backup/backup.js';
import { createLibrary } from '../backup/libraries.js';
import { restoreJob } from '../backup/restore.js';
import { Catalog } from '../catalog/catalog.js';
import { PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import type { ProgressCallback } from '../progress.js';
import { sha256File } from '../util/hash.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { benchHome, type CacheMode, type CachePolicy, loadAverage, now, pairedRatio, resolveCacheMode, roundRatios, runTool, settle, since, summarize, type Timing } from './measure.js';

/** Options of the backup benchmark. */
export interface BackupBenchOptions {
  size: number;
  rounds?: number;
  /** Cartridges the spanning job is spread over (default 8). */
  spanCartridges?: number;
  /** How each contender gets the same start (default auto: drop the page cache where allowed). */
  cache?: CachePolicy;
  log?: (line: string) => void;
  onProgress?: ProgressCallback;
}

/** Everything the backup benchmark measured. */
export interface BackupBenchResult {
  benchmark: 'backup';
  date: string;
  machine: MachineInfo;
  sizeBytes: number;
  rounds: number;
  spanCartridges: number;
  /** What every contender started from (see `CacheMode`). */
  cache: CacheMode;
  /** 1-minute load average before the first and after the last round. */
  loadAverage: { start: number; end: number };
  timings: Timing[];
  /** dd time / plexus time, backing up (>= 1: Plexus is faster); median of the per-round ratios, as every ratio here. */
  backupVsDd: number;
  /** dd time / plexus time, restoring. */
  restoreVsDd: number;
  /** Time over N cartridges / time on one. */
  spanningOverhead: number;
  /** Each round's ratio, in round order (the figures above are their medians). */
  roundRatios: { backupVsDd: number[]; restoreVsDd: number[]; spanningOverhead: number[] };
  targets: Record<string, { target: string; measured: number; met: boolean }>;
}

/** Runs the backup benchmark in a scratch home inside `home` and returns the figures. */
export async function benchBackup(home: Home, opts: BackupBenchOptions): Promise<BackupBenchResult> {
  const log = opts.log ?? (() => {});
  const rounds = opts.rounds ?? 5;
  const span = opts.spanCartridges ?? 8;
  const size = opts.size;
  const { dir, home: h, store, srcSum } = await benchHome(home, 'backup', size, 11, log);
  try {
    const srcFile = store.file('src');
    const out = (n: string): string => path.join(dir, n);
    const oneCart = Math.ceil((size * 1.05) / (1 << 20)) << 20;
    const spanCart = Math.ceil((size * 1.04) / span / (1 << 20)) << 20;

    const cache = resolveCacheMode(opts.cache ?? 'auto');
    log(`every contender starts from: ${cacheDescription(cache)}`);
    const loadStart = loadAverage();
    /** Times `f` from the same start as every other contender. */
    const timed = async (into: number[], f: () => unknown): Promise<void> => {
      settle(cache, [dir], [srcFile]);
      const start = now();
      await f();
      into.push(since(start));
    };

    const t = { plexusBackup: [] as number[], plexusRestore: [] as number[], spanBackup: [] as number[], ddWrite: [] as number[], ddRead: [] as number[], tar: [] as number[] };
    let lastCartridges = 0;
    for (let i = 0; i < rounds; i++) {
      log(`round ${i + 1}/${rounds}`);
      const catalog = Catalog.open(h);
      try {
        createLibrary(h, catalog, `one${i}`, { slots: 2, drives: 1, cartridgeSize: oneCart, prefix: `A${i}` });
        createLibrary(h, catalog, `span${i}`, { slots: span + 1, drives: 1, cartridgeSize: spanCart, prefix: `B${i}` });
      } finally {
        catalog.close();
      }
      let spanJob = 0;
      const backupOne = (): Promise<void> =>
        timed(t.plexusBackup, async () => {
          const one = await runBackup(h, 'src', { library: `one${i}`, onProgress: opts.onProgress });
          if (one.cartridges.length !== 1) throw new PlexusError('E_INVALID', `the one-cartridge job used ${one.cartridges.length} cartridges`);
        });
      const backupSpan = (): Promise<void> =>
        timed(t.spanBackup, async () => {
          const spanned = await runBackup(h, 'src', { library: `span${i}`, onProgress: opts.onProgress });
          spanJob = spanned.job;
          lastCartridges = spanned.cartridges.length;
        });
      // Alternate which backup goes first, so a drift within the round (the disk filling,
      // a neighbour starting) does not always fall on the same one.
      for (const f of i % 2 === 0 ? [backupOne, backupSpan] : [backupSpan, backupOne]) await f();

      fs.rmSync(out('restored'), { force: true });
      await timed(t.plexusRestore, () => restoreJob(h, spanJob, out('restored'), { onProgress: opts.onProgress }));
      if (i === 0 && sha256File(out('restored')) !== srcSum) throw new PlexusError('E_CORRUPT', 'the restored volume does not match its source');
      fs.rmSync(out('restored'), { force: true });

      fs.rmSync(out('dd.out'), { force: true });
      await timed(t.ddWrite, () => runTool('dd', [`if=${srcFile}`, `of=${out('dd.out')}`, 'bs=4M', 'conv=fsync', 'status=none']));
      fs.rmSync(out('dd.back'), { force: true });
      await timed(t.ddRead, () => runTool('dd', [`if=${out('dd.out')}`, `of=${out('dd.back')}`, 'bs=4M', 'conv=fsync', 'status=none']));
      fs.rmSync(out('dd.back'), { force: true });
      fs.rmSync(out('src.tar'), { force: true });
      await timed(t.tar, () => {
        runTool('tar', ['-cf', out('src.tar'), '-C', path.dirname(srcFile), path.basename(srcFile)]);
        runTool('sync', [out('src.tar')]);
      });

      // Each round writes fresh cartridges; drop the last round's to keep the disk use flat.
      for (const lib of [`one${i}`, `span${i}`]) fs.rmSync(path.join(dir, 'libraries', lib, 'cartridges'), { recursive: true, force: true });
      for (const f of ['dd.out', 'src.tar']) fs.rmSync(out(f), { force: true });
    }
    if (lastCartridges < span) throw new PlexusError('E_INVALID', `the spanning job used ${lastCartridges} cartridges, fewer than ${span}`);

    const timings = [
      summarize('plexus backup, 1 cartridge', t.plexusBackup, size),
      summarize(`plexus backup, ${span} cartridges`, t.spanBackup, size),
      summarize(`plexus restore, ${span} cartridges`, t.plexusRestore, size),
      summarize('dd bs=4M conv=fsync (write)', t.ddWrite, size),
      summarize('dd bs=4M conv=fsync (read back)', t.ddRead, size),
      summarize('tar -cf + sync', t.tar, size),
    ];
    const backupVsDd = pairedRatio(t.ddWrite, t.plexusBackup);
    const restoreVsDd = pairedRatio(t.ddRead, t.plexusRestore);
    const spanningOverhead = pairedRatio(t.spanBackup, t.plexusBackup);
    return {
      benchmark: 'backup',
      date: new Date().toISOString(),
      machine: describeMachine(),
      sizeBytes: size,
      rounds,
      spanCartridges: span,
      cache,
      loadAverage: { start: loadStart, end: loadAverage() },
      timings,
      backupVsDd,
      restoreVsDd,
      spanningOverhead,
      roundRatios: {
        backupVsDd: roundRatios(t.ddWrite, t.plexusBackup),
        restoreVsDd: roundRatios(t.ddRead, t.plexusRestore),
        spanningOverhead: roundRatios(t.spanBackup, t.plexusBackup),
      },
      targets: {
        'backup vs dd (dd time / plexus time)': { target: '>= 0.9', measured: backupVsDd, met: backupVsDd >= 0.9 },
        'restore vs dd (dd time / plexus time)': { target: '>= 0.9', measured: restoreVsDd, met: restoreVsDd >= 0.9 },
        [`spanning overhead (${span} cartridges / 1)`]: { target: '<= 1.1', measured: spanningOverhead, met: spanningOverhead <= 1.1 },
      },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** What `mode` gave every contender, in words (printed with the result). */
export function cacheDescription(mode: CacheMode): string {
  if (mode === 'drop') return 'sync, then the page cache dropped (/proc/sys/vm/drop_caches), then the source volume read into it';
  if (mode === 'fadvise') return "sync, then the benchmark's files dropped from the page cache (posix_fadvise DONTNEED), then the source volume read into it";
  return 'sync, then the source volume read into the page cache (nothing dropped)';
}
