/**
 * `plexus bench copy`: a full copy of one volume by Plexus against `dd bs=4M
 * conv=notrunc` on the same files in the same run, plus the machine's memcpy
 * bandwidth and the dirty-bitmap kernels. Warm page cache, no fsync on either side.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { callNative, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { native } from '../native/binding.js';
import type { ProgressCallback } from '../progress.js';
import { copyVolume } from '../volumes/copy.js';
import { VolumeStore } from '../volumes/store.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { runTool, summarize, type Timing } from './measure.js';

/** Options of the copy benchmark. */
export interface CopyBenchOptions {
  size: number;
  rounds?: number;
  threads?: number;
  log?: (line: string) => void;
  onProgress?: ProgressCallback;
}

/** Everything the copy benchmark measured. */
export interface CopyBenchResult {
  benchmark: 'copy';
  date: string;
  machine: MachineInfo;
  sizeBytes: number;
  rounds: number;
  timings: Timing[];
  memcpyRate: number;
  /** dd time / plexus time (in-process library call): >= 1 means Plexus is faster. */
  ratioVsDd: number;
  /** dd time / plexus time for a whole `plexus copy` process. */
  ratioVsDdWholeProcess: number;
  /** plexus rate / memcpy rate. */
  fractionOfMemcpy: number;
  bitmapSetNs: number;
  bitmapRuns16MiBitsMs: number;
  bitmapRunsFound: number;
  targets: Record<string, { target: string; measured: number; met: boolean }>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(here, '../../bin/plexus.js');

/** Runs the copy benchmark in a scratch area of `home` and returns the figures. */
export async function benchCopy(home: Home, opts: CopyBenchOptions): Promise<CopyBenchResult> {
  const log = opts.log ?? (() => {});
  const rounds = opts.rounds ?? 3;
  const size = opts.size;
  const store = new VolumeStore(home);
  const names = ['bench-src', 'bench-dst', 'bench-dd'];
  for (const n of names) if (store.exists(n)) store.remove(n);
  try {
    log(`preparing ${names[0]} (${size} bytes of seeded random data)`);
    const src = store.create('bench-src', { size, blockSize: 4096 });
    await src.fill(0, size, { seed: 7 });
    const dst = store.create('bench-dst', { size, blockSize: 4096 });
    store.create('bench-dd', { size, blockSize: 4096 });
    const ddOut = store.file('bench-dd');
    // Warm the page cache and allocate every destination block once, so each
    // contender overwrites allocated, cached blocks.
    await src.checksum();
    await copyVolume(src, dst, { sync: false });
    runTool('dd', [`if=${store.file('bench-src')}`, `of=${ddOut}`, 'bs=4M', 'conv=notrunc', 'status=none']);

    const plexus: number[] = [];
    const whole: number[] = [];
    const dd: number[] = [];
    for (let i = 0; i < rounds; i++) {
      log(`round ${i + 1}/${rounds}`);
      const r = await copyVolume(src, dst, { sync: false, threads: opts.threads, onProgress: opts.onProgress });
      plexus.push(r.elapsedMs / 1000);
      dd.push(runTool('dd', [`if=${store.file('bench-src')}`, `of=${ddOut}`, 'bs=4M', 'conv=notrunc', 'status=none']));
      const args = [CLI, '--home', home.dir, 'copy', 'bench-src', 'bench-dst', '--no-sync'];
      if (opts.threads) args.push('--threads', String(opts.threads));
      whole.push(runTool(process.execPath, args));
    }
    const srcSum = await src.checksum();
    if ((await dst.checksum()) !== srcSum) throw new PlexusError('E_CORRUPT', 'benchmark copy does not match its source');

    log('memcpy bandwidth and bitmap kernels');
    const memcpyRate = callNative(() => native.memcpyBandwidth(256 << 20, 5));
    const bitmapSetNs = callNative(() => native.bitmapSetNs(16 * 2 ** 20, 50_000_000));
    const runsTiming = callNative(() => native.bitmapRunsMs(16 * 2 ** 20, 0.01));

    const timings = [summarize('plexus copy (library)', plexus, size), summarize('plexus copy (whole process)', whole, size), summarize('dd bs=4M conv=notrunc', dd, size)];
    const [p, w, d] = timings as [Timing, Timing, Timing];
    const ratioVsDd = d.bestSeconds / p.bestSeconds;
    const ratioVsDdWholeProcess = d.bestSeconds / w.bestSeconds;
    const fractionOfMemcpy = p.rate / memcpyRate;
    return {
      benchmark: 'copy',
      date: new Date().toISOString(),
      machine: describeMachine(),
      sizeBytes: size,
      rounds,
      timings,
      memcpyRate,
      ratioVsDd,
      ratioVsDdWholeProcess,
      fractionOfMemcpy,
      bitmapSetNs,
      bitmapRuns16MiBitsMs: runsTiming.ms,
      bitmapRunsFound: runsTiming.runs,
      targets: {
        'copy vs dd (ratio)': { target: '>= 1.0', measured: ratioVsDd, met: ratioVsDd >= 1.0 },
        'copy vs memcpy (fraction)': { target: '>= 0.5', measured: fractionOfMemcpy, met: fractionOfMemcpy >= 0.5 },
        'bitmap set (ns/call)': { target: '<= 10', measured: bitmapSetNs, met: bitmapSetNs <= 10 },
        'bitmap runs, 16 Mi bits 1% (ms)': { target: '<= 5', measured: runsTiming.ms, met: runsTiming.ms <= 5 },
      },
    };
  } finally {
    for (const n of names) if (store.exists(n)) store.remove(n);
  }
}
