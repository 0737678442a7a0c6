/**
 * Benchmarks of the operator's operations (issue 14), whole CLI processes in a scratch
 * home, peers measured in the same run, median of per-round ratios:
 *
 * - `bench restore`: a job restored into a volume (`restore --to-volume`) against the
 *   same job restored to a file (`restore --to`); and, for the record, into a mirrored
 *   primary (every byte written twice, duplexed) — the goal is the plain volume's.
 * - `bench split`: the time the application stays frozen in `backup run --from-mirror`
 *   (from the start of the freeze command to the end of the thaw command, as the
 *   report gives it) for volumes of growing size: it must not grow with the size.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Home } from '../home/home.js';
import type { ProgressCallback } from '../progress.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { type CacheMode, type CachePolicy, loadAverage, median, pairedRatio, resolveCacheMode, roundRatios, runTool, settle } from './measure.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/plexus.js');
const ENV = { ...process.env, PLEXUS_HOME: '', PLEXUS_NO_AGENT: '1' };

function plexus(home: string, ...args: string[]): number {
  return runTool(process.execPath, [CLI, '--home', home, ...args], ENV);
}

/** Runs `plexus ARGS --json` and returns its parsed report. */
function plexusJson<T>(home: string, ...args: string[]): T {
  const r = spawnSync(process.execPath, [CLI, '--home', home, ...args, '--json'], { env: ENV, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`plexus ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** A scratch home inside `home`, removed after `f`. */
async function scratch<T>(home: Home, name: string, f: (h: string, dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(home.dir, `bench-${name}-`));
  try {
    const h = path.join(dir, 'home');
    Home.init(h);
    return await f(h, dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Options of `bench restore`. */
export interface RestoreBenchOptions {
  size: number;
  rounds?: number;
  cache?: CachePolicy;
  log?: (line: string) => void;
  onProgress?: ProgressCallback;
}

/** What `bench restore` measured. */
export interface RestoreBenchResult {
  benchmark: 'restore-volume';
  date: string;
  machine: MachineInfo;
  sizeBytes: number;
  rounds: number;
  cache: CacheMode;
  seconds: { toFile: number[]; toVolume: number[]; toMirroredPrimary: number[] };
  targets: Record<string, { target: string; measured: number; met: boolean; rounds: number[] }>;
  loadAverage: { start: number; end: number };
}

/** Restores one job of `size` bytes of random data to a file, into a volume, into a mirrored primary, round after round. */
export async function benchRestoreVolume(home: Home, opts: RestoreBenchOptions): Promise<RestoreBenchResult> {
  const log = opts.log ?? (() => undefined);
  const rounds = opts.rounds ?? 3;
  const cache = resolveCacheMode(opts.cache ?? 'auto');
  const load0 = loadAverage();
  return scratch(home, 'restore', async (h, dir) => {
    const size = String(opts.size);
    log(`preparing a ${opts.size}-byte volume of random data and its backup`);
    plexus(h, 'library', 'create', 'lib', '--slots', '4', '--drives', '1', '--cartridge-size', String(opts.size + (256 << 20)));
    plexus(h, 'volume', 'create', 'src', '--size', size);
    plexus(h, 'volume', 'write', 'src', '--random', size, '--seed', '7');
    plexus(h, 'backup', 'run', 'src');
    for (const v of ['dst', 'prim', 'sec']) plexus(h, 'volume', 'create', v, '--size', size);
    plexus(h, 'pair', 'create', 'prim', 'sec');
    const out = path.join(dir, 'out.raw');
    const seconds = { toFile: [] as number[], toVolume: [] as number[], toMirroredPrimary: [] as number[] };
    const steps = rounds * 3;
    let step = 0;
    const tick = (): void => opts.onProgress?.({ operation: 'bench restore', done: ++step, total: steps });
    const dirs = [h, dir];
    for (let r = 0; r < rounds; r++) {
      log(`round ${r + 1}/${rounds}`);
      settle(cache, dirs);
      seconds.toFile.push(plexus(h, 'restore', '1', '--to', out, '--force'));
      fs.rmSync(out);
      tick();
      settle(cache, dirs);
      seconds.toVolume.push(plexus(h, 'restore', '1', '--to-volume', 'dst'));
      tick();
      settle(cache, dirs);
      seconds.toMirroredPrimary.push(plexus(h, 'restore', '1', '--to-volume', 'prim'));
      tick();
    }
    // Speed is the inverse of time: restore-to-volume speed / restore-to-file speed.
    const speed = roundRatios(seconds.toFile, seconds.toVolume);
    const duplexed = roundRatios(seconds.toFile, seconds.toMirroredPrimary);
    return {
      benchmark: 'restore-volume',
      date: new Date().toISOString(),
      machine: describeMachine(),
      sizeBytes: opts.size,
      rounds,
      cache,
      seconds,
      targets: {
        'restore into a volume / restore to a file (speed)': { target: '>= 0.9', measured: median(speed), met: median(speed) >= 0.9, rounds: speed },
        'restore into a mirrored primary, duplexed / to a file (speed; writes twice, for the record)': {
          target: '-',
          measured: pairedRatio(seconds.toFile, seconds.toMirroredPrimary),
          met: true,
          rounds: duplexed,
        },
      },
      loadAverage: { start: load0, end: loadAverage() },
    };
  });
}

/** Options of `bench split`. */
export interface SplitBenchOptions {
  sizes: number[];
  rounds?: number;
  log?: (line: string) => void;
  onProgress?: ProgressCallback;
}

/** What `bench split` measured. */
export interface SplitBenchResult {
  benchmark: 'split-freeze';
  date: string;
  machine: MachineInfo;
  rounds: number;
  cases: Array<{ sizeBytes: number; frozenMs: number[]; medianFrozenMs: number; hookMs: number[] }>;
  targets: Record<string, { target: string; measured: number; met: boolean }>;
  loadAverage: { start: number; end: number };
}

/**
 * For each size: a thin primary (16 MiB of data, the rest holes) paired, then
 * `backup run --from-mirror` with freeze and thaw commands that only record their
 * time, `rounds` times; the application's frozen time is the report's `frozenMs`.
 */
export async function benchSplitFreeze(home: Home, opts: SplitBenchOptions): Promise<SplitBenchResult> {
  const log = opts.log ?? (() => undefined);
  const rounds = opts.rounds ?? 3;
  const load0 = loadAverage();
  const cases: SplitBenchResult['cases'] = [];
  let step = 0;
  for (const size of opts.sizes) {
    const c = await scratch(home, 'split', async (h) => {
      log(`a ${size}-byte primary, paired`);
      plexus(h, 'library', 'create', 'lib', '--slots', String(rounds + 2), '--drives', '1', '--cartridge-size', String(256 << 20));
      plexus(h, 'volume', 'create', 'p', '--size', String(size));
      plexus(h, 'volume', 'create', 's', '--size', String(size));
      plexus(h, 'volume', 'write', 'p', '--random', String(16 << 20), '--seed', '3');
      plexus(h, 'pair', 'create', 'p', 's');
      const frozenMs: number[] = [];
      const hookMs: number[] = [];
      for (let r = 0; r < rounds; r++) {
        // Writes land in the pair between rounds, so each split has dirty bits to clear.
        plexus(h, 'volume', 'write', 'p', '--offset', String((r * (1 << 20)) % size), '--random', String(1 << 20), '--seed', String(10 + r));
        const rep = plexusJson<{ frozenMs: number; freeze: { ms: number }; thaw: { ms: number } }>(h, 'backup', 'run', 'p', '--from-mirror', '--freeze', 'true', '--thaw', 'true');
        frozenMs.push(rep.frozenMs);
        hookMs.push(rep.freeze.ms + rep.thaw.ms);
        opts.onProgress?.({ operation: 'bench split', done: ++step, total: rounds * opts.sizes.length });
      }
      return { sizeBytes: size, frozenMs, medianFrozenMs: median(frozenMs), hookMs };
    });
    cases.push(c);
  }
  const worst = Math.max(...cases.map((c) => c.medianFrozenMs));
  const first = cases[0]!.medianFrozenMs;
  const last = cases.at(-1)!.medianFrozenMs;
  return {
    benchmark: 'split-freeze',
    date: new Date().toISOString(),
    machine: describeMachine(),
    rounds,
    cases,
    targets: {
      'frozen time of the split-backup flow, worst size (ms)': { target: '<= 100', measured: worst, met: worst <= 100 },
      'frozen time, largest / smallest volume': { target: '<= 2', measured: last / first, met: last / first <= 2 },
    },
    loadAverage: { start: load0, end: loadAverage() },
  };
}
