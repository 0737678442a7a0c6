/**
 * `plexus bench resync`: the differential resync of a split pair after 0.1% to 100% of
 * its regions were dirtied at random, at several granularities, against a full resync
 * of the same pair and against `rsync --inplace --no-whole-file` over the same two
 * files, in one run; and the write path (plain volume, split primary, PAIR) measured
 * natively. Warm page cache; every case is verified by checksum.
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { awaitNative, callNative, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { Mirrors } from '../mirror/mirrors.js';
import { native } from '../native/binding.js';
import type { ProgressCallback } from '../progress.js';
import { formatBytes } from '../util/size.js';
import { copyVolume } from '../volumes/copy.js';
import { DEFAULT_FRACTIONS, DEFAULT_GRANULARITIES } from './defaults.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { now, runTool, since } from './measure.js';
import { seededRandom } from './random.js';

export { DEFAULT_FRACTIONS, DEFAULT_GRANULARITIES };

/** The granularity and fraction the targets are stated for. */
const TARGET_GRANULARITY = 65536;
const TARGET_FRACTION = 0.01;

/** Options of the resync benchmark. */
export interface ResyncBenchOptions {
  size: number;
  /** Repetitions of every case with fresh random regions (best and median reported). */
  rounds?: number;
  /** Bytes per bitmap bit of the pairs measured (default 4 KiB, 64 KiB, 1 MiB). */
  granularities?: number[];
  /** Fractions of the regions dirtied, in (0, 1] (default 0.001, 0.01, 0.1, 1). */
  fractions?: number[];
  /** Compare with rsync (default true); without rsync installed the run fails with E_NOTOOL. */
  rsync?: boolean;
  /** Writes per case of the native write-path kernel (default 50,000; 0 skips it). */
  writes?: number;
  threads?: number;
  seed?: number;
  log?: (line: string) => void;
  onProgress?: ProgressCallback;
}

/** Best and median seconds over the rounds. */
export interface Seconds {
  bestSeconds: number;
  medianSeconds: number;
}

/** One differential resync case. */
export interface ResyncCase extends Seconds {
  granularity: number;
  fraction: number;
  /** Regions dirtied on the primary (per round). */
  regions: number;
  /** What the resync copied: always the dirtied regions times the granularity (checked). */
  bytesCopied: number;
  /** Best time of the copy engine alone, without opening and closing the pair. */
  engineSeconds: number;
  /** bytesCopied / bestSeconds. */
  rate: number;
}

/** A full resync of the pair (`pair resync --full`): the whole volume copied. */
export interface FullResync extends Seconds {
  granularity: number;
  bytesCopied: number;
  engineSeconds: number;
  rate: number;
}

/** `rsync --inplace --no-whole-file` from the primary's data file onto a plain copy
 * that differs in the same regions. */
export interface RsyncTiming extends Seconds {
  granularity: number;
  fraction: number;
  regions: number;
}

/** Nanoseconds per 4 KiB write of one path: the mean, and the median over turns of 250
 * writes (robust to stalls other processes cause on a shared machine). */
export interface WriteCost {
  meanNs: number;
  medianNs: number;
}

/** What a 4 KiB random write costs on each path, measured natively (crates/mirror/src/bench.rs). */
export interface WritePath {
  plain: WriteCost;
  /** Split primary without write intent. */
  split: WriteCost;
  /** Split primary with write intent, region already marked: the steady path. */
  splitIntent: WriteCost;
  /** Split primary with write intent, each write dirtying a new region (one fdatasync each). */
  splitIntentNew: WriteCost;
  /** PAIR (two copies) with write intent, region already marked. */
  pair: WriteCost;
  /** PAIR with write intent, each write dirtying a new region. */
  pairNew: WriteCost;
  writes: number;
  newRegionWrites: number;
  granularity: number;
}

/** Everything the resync benchmark measured. */
export interface ResyncBenchResult {
  benchmark: 'resync';
  date: string;
  machine: MachineInfo;
  sizeBytes: number;
  rounds: number;
  granularities: number[];
  fractions: number[];
  cases: ResyncCase[];
  fullResync: FullResync[];
  /** The copy engine copying the primary onto a plain volume, no fsync (like `bench copy`). */
  plainCopy: Seconds & { rate: number };
  /** Null with --no-rsync. */
  rsync: RsyncTiming[] | null;
  /** A whole `plexus pair resync` process for the target case (start-up included). */
  wholeProcess: (Seconds & { granularity: number; fraction: number; regions: number }) | null;
  writePath: WritePath | null;
  /** One-minute load averages at the start and at the end of the run: above the core
   * count, other processes competed for the CPUs and the disk, and fsync-bound figures
   * (small resyncs) suffer most. */
  loadAverage: { start: number; end: number };
  targets: Record<string, { target: string; measured: number; met: boolean }>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(here, '../../bin/plexus.js');
const P = 'bench-resync-p';
const S = 'bench-resync-s';
const R = 'bench-resync-r';
/** Largest single write when dirtying adjacent regions. */
const MAX_WRITE = 4 << 20;

const rng = seededRandom;

/** `k` distinct region numbers out of `n`, sorted (a partial Fisher-Yates shuffle). */
export function pickRegions(n: number, k: number, random: () => number): Uint32Array {
  const all = new Uint32Array(n);
  for (let i = 0; i < n; i++) all[i] = i;
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(random() * (n - i));
    const t = all[i]!;
    all[i] = all[j]!;
    all[j] = t;
  }
  return all.slice(0, k).sort();
}

/** Bytes of the given regions, the last one clipped to the volume. */
function regionBytes(regions: Uint32Array, g: number, size: number): number {
  let total = 0;
  for (const r of regions) total += Math.min(g, size - r * g);
  return total;
}

function timings(secs: number[]): Seconds {
  const sorted = [...secs].sort((a, b) => a - b);
  return { bestSeconds: sorted[0]!, medianSeconds: sorted[Math.floor(sorted.length / 2)]! };
}

const pct = (f: number): string => `${Number((f * 100).toPrecision(3))}%`;

/** Fails with E_NOTOOL unless `rsync` runs. */
export function requireRsync(): void {
  const r = spawnSync('rsync', ['--version'], { stdio: 'ignore' });
  if (r.error || r.status !== 0) {
    throw new PlexusError('E_NOTOOL', 'rsync is not installed: bench resync compares against it (install it, e.g. with `node scripts/ensure-tools.mjs` as root, or pass --no-rsync)', {
      cause: r.error,
    });
  }
}

function checkOptions(opts: ResyncBenchOptions, granularities: number[], fractions: number[]): void {
  if (granularities.length === 0 || fractions.length === 0) throw new PlexusError('E_INVALID', 'give at least one granularity and one fraction');
  for (const g of granularities) {
    if (!Number.isInteger(g) || g < 512 || g > 64 << 20 || (g & (g - 1)) !== 0) {
      throw new PlexusError('E_INVALID', `granularity ${g} must be a power of two from 512 B to 64 MiB`);
    }
    if (g > opts.size) throw new PlexusError('E_INVALID', `granularity ${formatBytes(g)} is larger than the volume size ${formatBytes(opts.size)}`);
  }
  for (const f of fractions) {
    if (!(f > 0 && f <= 1)) throw new PlexusError('E_INVALID', `fraction ${f} must be greater than 0 and at most 1`);
  }
  if (opts.size < TARGET_GRANULARITY) throw new PlexusError('E_INVALID', `volume size ${formatBytes(opts.size)} is below the minimum of 64 KiB`);
  if (opts.size % 4096 !== 0) throw new PlexusError('E_SIZE', `volume size ${opts.size} is not a multiple of 4096`);
}

/** Removes the benchmark's pairs and volumes (left over from an interrupted run, too). */
function removeScratch(mirrors: Mirrors, pairsDirExisted: boolean): void {
  for (const r of mirrors.records.all()) if (r.primary === P) mirrors.records.remove(r.secondary);
  // Closing a deleted pair flushes its bitmaps once more, which can leave a file behind.
  mirrors.records.remove(S);
  for (const f of [`${P}.open`, `${P}.lock`]) fs.rmSync(path.join(mirrors.records.dir, f), { force: true });
  for (const n of [P, S, R]) if (mirrors.store.exists(n)) mirrors.store.remove(n);
  if (!pairsDirExisted && fs.existsSync(mirrors.records.dir) && fs.readdirSync(mirrors.records.dir).length === 0) fs.rmdirSync(mirrors.records.dir);
}

/**
 * Writes new random data over `regions` of the primary through its pairs (the host
 * write path, which marks the dirty bitmap). Adjacent regions go in one write of up to
 * 4 MiB; each region starts with a unique stamp, so it differs from what it held.
 */
async function dirty(mirrors: Mirrors, regions: Uint32Array, g: number, size: number, random: () => number, stamp: number): Promise<void> {
  const pool = crypto.randomBytes(2 * MAX_WRITE + 2 * g);
  const io = await mirrors.openIo(P, { write: true });
  try {
    let i = 0;
    while (i < regions.length) {
      let j = i + 1;
      while (j < regions.length && regions[j] === regions[j - 1]! + 1 && (j - i + 1) * g <= Math.max(MAX_WRITE, g)) j++;
      const offset = regions[i]! * g;
      const length = Math.min((j - i) * g, size - offset);
      const start = Math.floor(random() * (pool.length - length)) & ~7;
      const data = Buffer.from(pool.subarray(start, start + length));
      for (let k = i; k < j; k++) data.writeDoubleLE(stamp + k, (k - i) * g);
      io.write(offset, data);
      i = j;
    }
  } finally {
    io.close();
  }
}

/** Checksums of two volumes (hashed in parallel); E_CORRUPT naming the case if they differ. */
async function verifySame(mirrors: Mirrors, a: string, b: string, what: string): Promise<void> {
  const [x, y] = await Promise.all([a, b].map((n) => mirrors.store.open(n, { readOnly: true }).checksum()));
  if (x !== y) throw new PlexusError('E_CORRUPT', `${what}: ${b} does not match ${a} afterwards (SHA-256 ${y} vs ${x})`);
}

/**
 * Makes the scratch volumes' data durable before a timed operation, so that none of
 * them pays for writeback left over from the set-up or an earlier contender (an fsync
 * in ext4's ordered mode waits for every file's newly allocated dirty data).
 */
function settle(store: Mirrors['store']): void {
  for (const n of [P, S, R]) {
    if (!store.exists(n)) continue;
    const fd = fs.openSync(store.file(n), 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/**
 * `rsync --inplace --no-whole-file` from the primary's data file onto the plain copy.
 * The copy's mtime is set back first: rsync's quick check skips a file whose size and
 * mtime (in whole seconds) match, and a case can dirty the primary within the second
 * of the previous rsync. Returns the seconds rsync took.
 */
function rsyncOnto(src: string, dst: string): number {
  fs.utimesSync(dst, 0, 0);
  return runTool('rsync', ['--inplace', '--no-whole-file', src, dst]);
}

/** Runs the resync benchmark in scratch volumes of `home` and returns the figures. */
export async function benchResync(home: Home, opts: ResyncBenchOptions): Promise<ResyncBenchResult> {
  const log = opts.log ?? (() => {});
  const rounds = opts.rounds ?? 3;
  const size = opts.size;
  const granularities = [...new Set(opts.granularities ?? DEFAULT_GRANULARITIES)];
  const fractions = [...new Set(opts.fractions ?? DEFAULT_FRACTIONS)].sort((a, b) => a - b);
  const useRsync = opts.rsync ?? true;
  const seed = opts.seed ?? 7;
  checkOptions(opts, granularities, fractions);
  if (useRsync) requireRsync();
  const loadStart = os.loadavg()[0]!;

  // rsync runs at one granularity (its work does not depend on ours), and that one goes
  // first: the plain copy then differs from the primary in exactly the case's regions.
  const refG = granularities.includes(TARGET_GRANULARITY) ? TARGET_GRANULARITY : granularities[0]!;
  const order = [refG, ...granularities.filter((g) => g !== refG)];
  // The write path first, while the machine is quiet (no writeback of the resync cases).
  const writes = opts.writes ?? 50_000;
  let writePath: WritePath | null = null;
  if (writes > 0) {
    log(`write path: ${writes} random 4 KiB writes per case (plain, split primary, PAIR), natively`);
    const dir = fs.mkdtempSync(path.join(home.dir, 'bench-resync-wp-'));
    try {
      const r = await awaitNative(callNative(() => native.mirrorWritePathNs(dir, size, writes, seed, TARGET_GRANULARITY)));
      writePath = { ...r, granularity: TARGET_GRANULARITY };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  const random = rng(seed);
  const mirrors = new Mirrors(home);
  const store = mirrors.store;
  const pairsDirExisted = fs.existsSync(mirrors.records.dir);
  removeScratch(mirrors, true);

  const cases: ResyncCase[] = [];
  const fullResync: FullResync[] = [];
  const rsync: RsyncTiming[] = [];
  let wholeProcess: ResyncBenchResult['wholeProcess'] = null;
  let plainCopy: ResyncBenchResult['plainCopy'];
  let stamp = 1;
  try {
    log(`preparing ${P} (${formatBytes(size)} of seeded random data) and a plain copy for rsync`);
    const primary = store.create(P, { size, blockSize: 4096 });
    await primary.fill(0, size, { seed });
    store.create(S, { size, blockSize: 4096 });
    const plain = store.create(R, { size, blockSize: 4096 });
    await copyVolume(primary, plain, { sync: false, threads: opts.threads });
    const copies: number[] = [];
    for (let i = 0; i < rounds; i++) {
      settle(store);
      copies.push((await copyVolume(primary, plain, { sync: false, threads: opts.threads })).elapsedMs / 1000);
    }
    plainCopy = { ...timings(copies), rate: size / Math.min(...copies) };

    const resync = async (full: boolean): Promise<{ secs: number; engine: number; bytes: number }> => {
      settle(store);
      const t = now();
      const [r] = await mirrors.resync({ primary: P }, { full, threads: opts.threads, onProgress: opts.onProgress });
      return { secs: since(t), engine: r!.elapsedMs / 1000, bytes: r!.bytesCopied };
    };

    for (const g of order) {
      const nregions = Math.ceil(size / g);
      log(`pairing ${P} with ${S} at granularity ${formatBytes(g)} (initial copy)`);
      // No write intent: dirtying 262,144 regions of 4 KiB would otherwise take as many
      // fsyncs. The resync path is the same with or without it.
      await mirrors.create(P, S, { granularity: g, writeIntent: false, threads: opts.threads, onProgress: opts.onProgress });
      for (const f of fractions) {
        const k = Math.max(1, Math.round(f * nregions));
        const secs: number[] = [];
        const engine: number[] = [];
        const rs: number[] = [];
        let bytes = 0;
        for (let round = 0; round < rounds; round++) {
          log(`${formatBytes(g)} granularity, ${pct(f)} dirty: ${k} regions, round ${round + 1}/${rounds}`);
          await mirrors.split({ primary: P });
          const regions = pickRegions(nregions, k, random);
          await dirty(mirrors, regions, g, size, random, stamp);
          stamp += regions.length;
          const expected = regionBytes(regions, g, size);
          const r = await resync(false);
          if (r.bytes !== expected) {
            throw new PlexusError('E_CORRUPT', `resync at ${formatBytes(g)} granularity, ${pct(f)} dirty copied ${r.bytes} bytes; ${k} dirtied regions are ${expected} bytes`);
          }
          secs.push(r.secs);
          engine.push(r.engine);
          bytes = r.bytes;
          // rsync before any checksum: hashing on the thread pool would compete with it.
          if (useRsync && g === refG) {
            settle(store);
            rs.push(rsyncOnto(store.file(P), store.file(R)));
          }
          const checks = [verifySame(mirrors, P, S, `resync at ${formatBytes(g)}, ${pct(f)} dirty`)];
          if (useRsync && g === refG) checks.push(verifySame(mirrors, P, R, `rsync at ${pct(f)} dirty`));
          await Promise.all(checks);
        }
        const best = timings(secs);
        cases.push({ granularity: g, fraction: f, regions: k, bytesCopied: bytes, ...best, engineSeconds: Math.min(...engine), rate: bytes / best.bestSeconds });
        if (rs.length > 0) rsync.push({ granularity: g, fraction: f, regions: k, ...timings(rs) });

        if (g === refG && f === TARGET_FRACTION) {
          // The same case through a whole CLI process, as a user would run it.
          const whole: number[] = [];
          for (let round = 0; round < rounds; round++) {
            log(`${formatBytes(g)} granularity, ${pct(f)} dirty: whole \`plexus pair resync\` process, round ${round + 1}/${rounds}`);
            await mirrors.split({ primary: P });
            const regions = pickRegions(nregions, k, random);
            await dirty(mirrors, regions, g, size, random, stamp);
            stamp += regions.length;
            settle(store);
            whole.push(runTool(process.execPath, [CLI, '--home', home.dir, 'pair', 'resync', P]));
            await verifySame(mirrors, P, S, `whole-process resync at ${formatBytes(g)}, ${pct(f)} dirty`);
            if (useRsync) rsyncOnto(store.file(P), store.file(R));
          }
          wholeProcess = { granularity: g, fraction: f, regions: k, ...timings(whole) };
        }
      }

      const full: number[] = [];
      const fullEngine: number[] = [];
      for (let round = 0; round < rounds; round++) {
        log(`${formatBytes(g)} granularity: full resync, round ${round + 1}/${rounds}`);
        await mirrors.split({ primary: P });
        const r = await resync(true);
        if (r.bytes !== size) throw new PlexusError('E_CORRUPT', `full resync copied ${r.bytes} of ${size} bytes`);
        full.push(r.secs);
        fullEngine.push(r.engine);
      }
      await verifySame(mirrors, P, S, `full resync at ${formatBytes(g)}`);
      const best = timings(full);
      fullResync.push({ granularity: g, bytesCopied: size, ...best, engineSeconds: Math.min(...fullEngine), rate: size / best.bestSeconds });
      mirrors.delete(P);
    }
  } finally {
    removeScratch(mirrors, pairsDirExisted);
  }

  cases.sort((a, b) => a.granularity - b.granularity || a.fraction - b.fraction);
  fullResync.sort((a, b) => a.granularity - b.granularity);
  return {
    benchmark: 'resync',
    date: new Date().toISOString(),
    machine: describeMachine(),
    sizeBytes: size,
    rounds,
    granularities: [...granularities].sort((a, b) => a - b),
    fractions,
    cases,
    fullResync,
    plainCopy: plainCopy!,
    rsync: useRsync ? rsync : null,
    wholeProcess,
    writePath,
    loadAverage: { start: loadStart, end: os.loadavg()[0]! },
    targets: targets(cases, fullResync, useRsync ? rsync : null, writePath),
  };
}

/** The targets, for the cases this run measured. */
function targets(cases: ResyncCase[], full: FullResync[], rsync: RsyncTiming[] | null, wp: WritePath | null): ResyncBenchResult['targets'] {
  const out: ResyncBenchResult['targets'] = {};
  const c = cases.find((x) => x.granularity === TARGET_GRANULARITY && x.fraction === TARGET_FRACTION);
  const fr = full.find((x) => x.granularity === TARGET_GRANULARITY);
  const rs = rsync?.find((x) => x.granularity === TARGET_GRANULARITY && x.fraction === TARGET_FRACTION);
  if (c && fr) {
    const m = fr.bestSeconds / c.bestSeconds;
    out['resync 1% @64K vs full resync (x faster)'] = { target: '>= 30', measured: m, met: m >= 30 };
  }
  if (c && rs) {
    const m = rs.bestSeconds / c.bestSeconds;
    out['resync 1% @64K vs rsync (x faster)'] = { target: '>= 20', measured: m, met: m >= 20 };
  }
  if (wp) {
    // The steady paths (region already marked), by the medians: see WriteCost.
    const split = wp.splitIntent.medianNs / wp.plain.medianNs;
    const pair = wp.pair.medianNs / wp.plain.medianNs;
    out['4K write, split primary / plain'] = { target: '<= 1.1', measured: split, met: split <= 1.1 };
    out['4K write, PAIR (two copies) / plain'] = { target: '<= 2.2', measured: pair, met: pair <= 2.2 };
  }
  return out;
}
