/**
 * The per-job costs `plexus bench model` simulates with, measured on this machine with
 * the real engine: a small volume backed up to a virtual tape library (seconds per GiB
 * of drive throughput), a 1 MiB one (the fixed cost of a job: start-up, catalog,
 * cartridge load and close) and the small volume again spread over several cartridges
 * (the cost of a cartridge change). Or read from a file a user keeps.
 */
import fs from 'node:fs';
import path from 'node:path';
import { runBackup } from '../backup/backup.js';
import { createLibrary } from '../backup/libraries.js';
import { Catalog } from '../catalog/catalog.js';
import { PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import type { ProgressCallback } from '../progress.js';
import { benchHome, type CacheMode, type CachePolicy, loadAverage, median, now, resolveCacheMode, settle, since } from './measure.js';
import type { JobCosts } from './model.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
/** The tiny job's volume: small enough that its data time is noise beside its overhead. */
const TINY_BYTES = MiB;
/** Cartridges the change-cost job spans: fifteen changes a round, so their few milliseconds
 * each add up to more than a round's noise. */
const SPAN = 16;
/** The smallest sample: its cartridges, a sixteenth of it each, must hold 16 tape blocks of 256 KiB. */
export const MIN_SAMPLE_BYTES = 64 * MiB;

/** How the costs were measured, stored with the model's result. */
export interface CostMeasurement {
  sampleBytes: number;
  tinyBytes: number;
  rounds: number;
  spanCartridges: number;
  /** What every timed backup started from (see `settle` in ./measure.ts). */
  cache: CacheMode;
  /** Each round's seconds, in round order. */
  seconds: { tiny: number[]; sample: number[]; span: number[] };
  /** `difference`: the sample's time less the tiny job's, per GiB between them; `sample`: the
   * sample's whole time per GiB, where the sample was too small to show past the overhead. */
  perGiBFrom: 'difference' | 'sample';
  loadAverage: { start: number; end: number };
}

/** The costs the model ran with and where they came from. */
export interface ModelCosts extends JobCosts {
  /** measured: on this machine, now; file: `--costs`; flags: all three given on the command line. */
  source: 'measured' | 'file' | 'flags';
  file?: string;
  measurement?: CostMeasurement;
}

/** Options of the measurement. */
export interface MeasureCostsOptions {
  sampleBytes: number;
  rounds: number;
  cache?: CachePolicy;
  log?: (line: string) => void;
  onProgress?: ProgressCallback;
}

/**
 * Measures the three costs in a scratch home inside `home` (removed at the end). Each
 * round backs up the tiny volume, the sample to one cartridge and the sample over
 * `SPAN` cartridges, in an order that rotates from round to round, each from the same
 * start (`settle`); each figure is the median of its per-round values, so a round a
 * neighbour disturbed is outvoted.
 */
export async function measureCosts(home: Home, o: MeasureCostsOptions): Promise<ModelCosts> {
  if (!Number.isSafeInteger(o.sampleBytes) || o.sampleBytes < MIN_SAMPLE_BYTES) {
    throw new PlexusError('E_INVALID', `the sample size must be at least 64 MiB (its cartridges hold a sixteenth of it each, 16 tape blocks at least), not ${o.sampleBytes} bytes`);
  }
  const log = o.log ?? (() => {});
  const sample = o.sampleBytes;
  const { dir, home: h, store } = await benchHome(home, 'model', sample, 13, log);
  try {
    const tiny = store.create('tiny', { size: TINY_BYTES });
    await tiny.fill(0, TINY_BYTES, { seed: 14 });
    const files = { tiny: store.file('tiny'), sample: store.file('src') };
    const cache = resolveCacheMode(o.cache ?? 'auto');
    const loadStart = loadAverage();
    const mib = (n: number): number => Math.ceil(n / MiB) * MiB;
    const t = { tiny: [] as number[], sample: [] as number[], span: [] as number[] };
    const changes: number[] = [];
    for (let i = 0; i < o.rounds; i++) {
      log(`measuring costs: round ${i + 1}/${o.rounds}`);
      const catalog = Catalog.open(h);
      try {
        createLibrary(h, catalog, `tiny${i}`, { slots: 1, drives: 1, cartridgeSize: 8 * MiB, prefix: `T${i}` });
        createLibrary(h, catalog, `one${i}`, { slots: 1, drives: 1, cartridgeSize: mib(sample * 1.05), prefix: `A${i}` });
        createLibrary(h, catalog, `span${i}`, { slots: SPAN + 1, drives: 1, cartridgeSize: mib((sample * 1.04) / SPAN), prefix: `B${i}` });
      } finally {
        catalog.close();
      }
      /** Times one backup from the same start as the others. */
      const timed = async (into: number[], source: 'tiny' | 'src', library: string): Promise<number> => {
        settle(cache, [dir], [source === 'tiny' ? files.tiny : files.sample]);
        const start = now();
        const r = await runBackup(h, source, { library, onProgress: o.onProgress });
        into.push(since(start));
        return r.cartridges.length;
      };
      const steps = [
        () => timed(t.tiny, 'tiny', `tiny${i}`),
        () => timed(t.sample, 'src', `one${i}`),
        async () => {
          const used = await timed(t.span, 'src', `span${i}`);
          if (used < SPAN) throw new PlexusError('E_INVALID', `the spanning job used ${used} cartridges, fewer than ${SPAN}`);
          changes.push(used - 1);
        },
      ];
      // Rotate the order, so a drift within a round does not always fall on the same job.
      for (let k = 0; k < steps.length; k++) await steps[(k + i) % steps.length]!();
      for (const lib of [`tiny${i}`, `one${i}`, `span${i}`]) fs.rmSync(path.join(dir, 'libraries', lib, 'cartridges'), { recursive: true, force: true });
    }
    const dataGiB = (sample - TINY_BYTES) / GiB;
    const difference = median(t.sample.map((s, i) => (s - t.tiny[i]!) / dataGiB));
    const perGiBFrom = difference > 0 ? 'difference' : 'sample';
    const secondsPerGiB = difference > 0 ? difference : median(t.sample) / (sample / GiB);
    return {
      source: 'measured',
      secondsPerGiB,
      jobOverheadSeconds: Math.max(0, median(t.tiny) - (TINY_BYTES / GiB) * secondsPerGiB),
      cartridgeChangeSeconds: Math.max(0, median(t.span.map((s, i) => (s - t.sample[i]!) / changes[i]!))),
      measurement: { sampleBytes: sample, tinyBytes: TINY_BYTES, rounds: o.rounds, spanCartridges: SPAN, cache, seconds: t, perGiBFrom, loadAverage: { start: loadStart, end: loadAverage() } },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Reads costs from `file`: an object with `secondsPerGiB`, `jobOverheadSeconds` and
 * `cartridgeChangeSeconds`, or an earlier model result holding one as `costs` (so a
 * measurement can be reused). E_NOENT if it is missing, E_INVALID if it holds no costs.
 */
export function readCosts(file: string): ModelCosts {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new PlexusError('E_NOENT', `cannot read the costs file ${file}: ${(e as Error).message}`, { cause: e });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new PlexusError('E_INVALID', `the costs file ${file} is not JSON: ${(e as Error).message}`, { cause: e });
  }
  const obj = value as Record<string, unknown> | null;
  const c = (obj && typeof obj === 'object' && obj.costs && typeof obj.costs === 'object' ? obj.costs : obj) as Record<string, unknown> | null;
  const field = (k: keyof JobCosts): number => {
    const v = c?.[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new PlexusError('E_INVALID', `the costs file ${file} needs ${k} as a number >= 0`);
    return v;
  };
  const costs = { secondsPerGiB: field('secondsPerGiB'), jobOverheadSeconds: field('jobOverheadSeconds'), cartridgeChangeSeconds: field('cartridgeChangeSeconds') };
  if (costs.secondsPerGiB === 0) throw new PlexusError('E_INVALID', `the costs file ${file} needs secondsPerGiB above 0`);
  return { source: 'file', file: path.resolve(file), ...costs };
}
