/** What every benchmark measures with: a clock, peer programs timed as processes,
 * best/median summaries and the JSON result file. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PlexusError } from '../errors.js';
import { Home } from '../home/home.js';
import { VolumeStore } from '../volumes/store.js';

/** One measured contender: best and median seconds over the rounds. */
export interface Timing {
  name: string;
  bestSeconds: number;
  medianSeconds: number;
  /** Bytes per second at the best time. */
  rate: number;
  /** Every round's time, in order (paired ratios are computed from these). */
  seconds: number[];
}

/** A point in time for `since`. */
export const now = (): bigint => process.hrtime.bigint();

/** Seconds since `t`. */
export const since = (t: bigint): number => Number(process.hrtime.bigint() - t) / 1e9;

/** Runs a peer program to its end and returns its wall time in seconds; E_NOTOOL if it
 * is not installed, E_IO if it fails. */
export function runTool(cmd: string, args: string[], env?: NodeJS.ProcessEnv): number {
  const t = now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: env ?? process.env });
  if (r.error) throw new PlexusError('E_NOTOOL', `cannot run ${cmd}: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0) throw new PlexusError('E_IO', `${cmd} ${args.join(' ')} failed: ${r.stderr.toString().trim()}`);
  return since(t);
}

/** Best and median of `secs`, with the rate of `size` bytes at the best time. */
export function summarize(name: string, secs: number[], size: number): Timing {
  const sorted = [...secs].sort((a, b) => a - b);
  const best = sorted[0]!;
  return { name, bestSeconds: best, medianSeconds: sorted[Math.floor(sorted.length / 2)]!, rate: size / best, seconds: [...secs] };
}

/**
 * The median of the per-round ratios `a[i] / b[i]`: contenders measured back to back in
 * each round are compared round by round, so a disturbance that slows one round (a
 * noisy disk, a neighbour's burst) cancels out instead of deciding the ratio of bests.
 */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  return median(roundRatios(a, b));
}

/** The median of `xs` (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The per-round ratios `a[i] / b[i]` that `pairedRatio` takes the median of, in round order. */
export const roundRatios = (a: readonly number[], b: readonly number[]): number[] => a.map((x, i) => x / b[i]!);

/**
 * How each contender is given the same start. `drop`: everything dirty is synced and the
 * whole page cache dropped (`/proc/sys/vm/drop_caches`, root only); `fadvise`: synced, then
 * the files of the benchmark are dropped from the cache one by one (posix_fadvise
 * DONTNEED, through `dd iflag=nocache count=0`); `none`: synced only.
 */
export type CacheMode = 'drop' | 'fadvise' | 'none';

/** Wanted cache handling: a mode, or `auto` (drop where the machine allows it, else fadvise). */
export type CachePolicy = CacheMode | 'auto';

const DROP_CACHES = '/proc/sys/vm/drop_caches';

/** The mode `policy` gets on this machine: `auto` tries dropping the cache once (the same
 * write `settle` makes) and falls back to fadvise where that is refused. */
export function resolveCacheMode(policy: CachePolicy): CacheMode {
  if (policy !== 'auto') return policy;
  try {
    fs.writeFileSync(DROP_CACHES, '3');
    return 'drop';
  } catch {
    return 'fadvise';
  }
}

/** Regular files under `dir`, recursively (symlinked directories followed, as a cartridge
 * directory in memory is). */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    const st = e.isSymbolicLink() ? fs.statSync(p, { throwIfNoEntry: false }) : e;
    if (!st) continue;
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

/**
 * Gives the next contender the start every other one had: nothing of an earlier
 * contender left to write back (sync), and nothing it read or wrote still cached (per
 * `mode`, for the files under `dirs`), so no contender pays for another's writeback or
 * profits from another's reads. Then the files in `warm` are read into the cache: a
 * volume's pages stay cached while an open Volume maps them (neither drop_caches nor
 * fadvise evicts mapped pages, and a Volume is unmapped when it is collected), so a
 * source left to chance would be cached for one contender and read from disk by the
 * next; read in, it is the same for all. Not timed.
 */
export function settle(mode: CacheMode, dirs: readonly string[], warm: readonly string[] = []): void {
  runTool('sync', []);
  if (mode === 'drop') fs.writeFileSync(DROP_CACHES, '3');
  else if (mode === 'fadvise') for (const d of dirs) for (const f of filesUnder(d)) runTool('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
  for (const f of warm) runTool('dd', [`if=${f}`, 'of=/dev/null', 'bs=4M', 'status=none']);
}

/** The 1-minute load average, to be stored with a result (a busy machine shows there). */
export const loadAverage = (): number => os.loadavg()[0]!;

/** A benchmark's scratch home and its source volume. */
export interface BenchHome {
  /** Remove it when the benchmark ends. */
  dir: string;
  home: Home;
  store: VolumeStore;
  /** sha256 of the volume `src`. */
  srcSum: string;
}

/**
 * A home of its own inside `home` (so a benchmark's libraries, jobs and faults never mix
 * with the user's), holding a volume `src` of `size` seeded random bytes.
 */
export async function benchHome(home: Home, name: string, size: number, seed: number, log: (line: string) => void): Promise<BenchHome> {
  const dir = fs.mkdtempSync(path.join(home.dir, `bench-${name}-`));
  try {
    const h = Home.open(dir);
    const store = new VolumeStore(h);
    log(`preparing a ${size}-byte volume of seeded random data`);
    const src = store.create('src', { size });
    await src.fill(0, size, { seed });
    return { dir, home: h, store, srcSum: await src.checksum() };
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

/** Writes a result as JSON under `dir`, named by benchmark and date; returns the path. */
export function saveResult(dir: string, result: { benchmark: string; date: string }): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${result.benchmark}-${result.date.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}
