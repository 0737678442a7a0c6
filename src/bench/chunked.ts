/**
 * `plexus bench chunked`: the redundant-stream modes against the single-stream backup
 * of the tape issue, in one run, on the same disk and volume:
 *
 * - chunked (EXTENDED COPY, 10 MiB commands by default) vs single: the cost of cutting
 *   the volume into commands;
 * - chunked with copy device 0 failing half-way vs fault-free chunked: the switch-over
 *   must carry on from the failed command, not start again;
 * - parallel with two streams on two drives vs single: both copies written at once.
 *   Real streams end in independent tape drives; here every cartridge is a file, and
 *   on one disk two copies take twice the disk's time whatever the engine does. So the
 *   target is measured with the cartridges of both jobs in memory (tmpfs, the
 *   independent-drives case: what is left is the engine's own concurrency on the
 *   machine's cores), and the same-disk figure is reported beside it.
 *
 * Every job syncs what it writes (each cartridge's close). The fault run's restore is
 * verified against the source once. The contenders run back to back in every round and
 * each ratio is the median of the per-round ratios (`pairedRatio`); chunking is also
 * measured with the cartridges in memory, where the disk's noise does not hide it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type BackupOptions, DEFAULT_CHUNK, runBackup } from '../backup/backup.js';
import { createLibrary, removeLibrary } from '../backup/libraries.js';
import { restoreJob } from '../backup/restore.js';
import { Catalog } from '../catalog/catalog.js';
import { PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import type { ProgressCallback } from '../progress.js';
import { clearFaults, injectFault } from '../resources/faults.js';
import { sha256File } from '../util/hash.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { benchHome, now, pairedRatio, since, summarize, type Timing } from './measure.js';

/** Options of the chunked benchmark. */
export interface ChunkedBenchOptions {
  size: number;
  rounds?: number;
  /** Bytes per segment command (default 10 MiB). */
  chunk?: number;
  /** A tmpfs directory for the memory-backed cartridges (default /dev/shm; none: not measured). */
  memoryDir?: string | null;
  log?: (line: string) => void;
  onProgress?: ProgressCallback;
}

/** Everything the chunked benchmark measured. */
export interface ChunkedBenchResult {
  benchmark: 'chunked';
  date: string;
  machine: MachineInfo;
  sizeBytes: number;
  chunkBytes: number;
  rounds: number;
  timings: Timing[];
  /** chunked time / single time (median of the per-round ratios, as every ratio here). */
  chunkingOverhead: number;
  /** The same with the cartridges in memory: no disk noise, so the fixed cost of
   * securing two streams (~10-25 ms a job) and the per-command cost show (informational). */
  chunkingOverheadInMemory: number | null;
  /** chunked with device 0 failing half-way / chunked fault-free. */
  failoverRatio: number;
  /** parallel (2 streams, 2 drives) / single, cartridges in memory (independent drives). */
  parallelRatio: number | null;
  /** The same with every cartridge on the one disk (bound by that disk's bandwidth). */
  parallelSameDiskRatio: number;
  targets: Record<string, { target: string; measured: number; met: boolean }>;
}

/** Runs the chunked benchmark in a scratch home inside `home` and returns the figures. */
export async function benchChunked(home: Home, opts: ChunkedBenchOptions): Promise<ChunkedBenchResult> {
  const log = opts.log ?? (() => {});
  const rounds = opts.rounds ?? 3;
  const size = opts.size;
  const chunk = opts.chunk ?? DEFAULT_CHUNK;
  const { dir, home: h, srcSum } = await benchHome(home, 'chunked', size, 17, log);
  const memDirs: string[] = [];
  try {
    // One cartridge per stream holds the whole volume: cartridge changes are the tape benchmark's subject.
    const cart = Math.ceil((size * 1.05) / (1 << 20) + 1) << 20;
    const t = {
      single: [] as number[],
      chunked: [] as number[],
      failover: [] as number[],
      parallel: [] as number[],
      memSingle: [] as number[],
      memChunked: [] as number[],
      memParallel: [] as number[],
    };
    const memRoot = opts.memoryDir === undefined ? (fs.existsSync('/dev/shm') ? '/dev/shm' : null) : opts.memoryDir;

    let n = 0;
    /** Runs one job on a fresh library of two drives, timed; its cartridges are dropped after. */
    const job = async (opt: BackupOptions, into: number[], inMemory = false): Promise<number> => {
      const lib = `l${n++}`;
      if (inMemory && memRoot) {
        // The library's cartridges directory lives in tmpfs.
        const mem = fs.mkdtempSync(path.join(memRoot, 'plexus-bench-'));
        memDirs.push(mem);
        fs.mkdirSync(path.join(dir, 'libraries', lib), { recursive: true });
        fs.symlinkSync(mem, path.join(dir, 'libraries', lib, 'cartridges'));
      }
      const catalog = Catalog.open(h);
      try {
        createLibrary(h, catalog, lib, { slots: 3, drives: 2, cartridgeSize: cart, prefix: `C${n}` });
      } finally {
        catalog.close();
      }
      const start = now();
      const r = await runBackup(h, 'src', { ...opt, library: lib, chunk, onProgress: opts.onProgress });
      into.push(since(start));
      return r.job;
    };
    /** Removes the last job's library (and its cartridges), so every job starts in the same home. */
    const drop = (): void => {
      const catalog = Catalog.open(h);
      try {
        for (const l of fs.readdirSync(path.join(dir, 'libraries'))) removeLibrary(h, catalog, l, true);
      } finally {
        catalog.close();
      }
      for (const m of memDirs.splice(0)) fs.rmSync(m, { recursive: true, force: true });
    };

    for (let i = 0; i < rounds; i++) {
      log(`round ${i + 1}/${rounds}`);
      await job({ mode: 'single' }, t.single);
      drop();
      await job({ mode: 'chunked' }, t.chunked);
      drop();
      injectFault(h, 'xcopy0', { afterBytes: Math.floor(size / 2) });
      const failed = await job({ mode: 'chunked' }, t.failover);
      clearFaults(h);
      if (i === 0) {
        const to = path.join(dir, 'restored');
        await restoreJob(h, failed, to, { onProgress: opts.onProgress });
        if (sha256File(to) !== srcSum) throw new PlexusError('E_CORRUPT', 'the restore of the switched-over job does not match its source');
        fs.rmSync(to);
      }
      drop();
      await job({ mode: 'parallel', streams: 2 }, t.parallel);
      drop();
      if (memRoot) {
        await job({ mode: 'single' }, t.memSingle, true);
        drop();
        await job({ mode: 'chunked' }, t.memChunked, true);
        drop();
        await job({ mode: 'parallel', streams: 2 }, t.memParallel, true);
        drop();
      }
    }

    const timings = [
      summarize('single stream (tape issue)', t.single, size),
      summarize(`chunked, ${chunk >> 20} MiB commands`, t.chunked, size),
      summarize('chunked, device 0 fails half-way', t.failover, size),
      summarize('parallel, 2 streams, same disk', t.parallel, size),
      ...(memRoot
        ? [
            summarize('single stream, cartridges in memory', t.memSingle, size),
            summarize('parallel, 2 streams, cartridges in memory', t.memParallel, size),
            summarize(`chunked, ${chunk >> 20} MiB commands, cartridges in memory`, t.memChunked, size),
          ]
        : []),
    ];
    const chunkingOverhead = pairedRatio(t.chunked, t.single);
    const chunkingOverheadInMemory = memRoot ? pairedRatio(t.memChunked, t.memSingle) : null;
    const failoverRatio = pairedRatio(t.failover, t.chunked);
    const parallelSameDiskRatio = pairedRatio(t.parallel, t.single);
    const parallelRatio = memRoot ? pairedRatio(t.memParallel, t.memSingle) : null;
    return {
      benchmark: 'chunked',
      date: new Date().toISOString(),
      machine: describeMachine(),
      sizeBytes: size,
      chunkBytes: chunk,
      rounds,
      timings,
      chunkingOverhead,
      chunkingOverheadInMemory,
      failoverRatio,
      parallelRatio,
      parallelSameDiskRatio,
      targets: {
        'chunking overhead (chunked / single)': { target: '<= 1.05', measured: chunkingOverhead, met: chunkingOverhead <= 1.05 },

        'switch-over (device 0 failing half-way / fault-free)': { target: '<= 1.3', measured: failoverRatio, met: failoverRatio <= 1.3 },
        ...(parallelRatio === null ? {} : { 'parallel, 2 streams on independent drives (wall / one stream)': { target: '<= 1.3', measured: parallelRatio, met: parallelRatio <= 1.3 } }),
      },
    };
  } finally {
    for (const m of memDirs) fs.rmSync(m, { recursive: true, force: true });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
