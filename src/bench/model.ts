/**
 * `plexus bench model`: a simulation, not I/O. A fleet of volumes is backed up every
 * night, each job carrying the volume's dirty regions, onto a number of tape drives;
 * the model says how long the night's backups take (the window they need) and how busy
 * the drives are, as the dirty fraction and the drive count change. The costs of a job
 * (seconds per GiB, a fixed overhead, a cartridge change) come from measurements of the
 * real engine (./model-costs.ts) or from the user; everything here is pure and
 * deterministic for a given seed, so it is unit-tested by hand-checkable cases.
 */
import { PlexusError } from '../errors.js';
import { seededRandom } from './random.js';

const GiB = 2 ** 30;

/** What one job costs a drive. */
export interface JobCosts {
  /** Seconds a drive takes per GiB written (its streaming rate, inverted). */
  secondsPerGiB: number;
  /** Seconds every job costs whatever its size: start-up, catalog, cartridge load and close. */
  jobOverheadSeconds: number;
  /** Seconds to close a full cartridge and load the next one. */
  cartridgeChangeSeconds: number;
}

/** The volumes of the model: sizes drawn log-uniformly between two bounds. */
export interface FleetOptions {
  volumes: number;
  minBytes: number;
  maxBytes: number;
  /** Fraction of each volume's size that holds data (a full backup copies that much). */
  allocatedFraction: number;
  seed: number;
}

const rng = seededRandom;

/**
 * The allocated bytes of each volume of the fleet, in volume order. Log-uniform sizes:
 * as many volumes of 16-32 GiB as of 1-2 TiB, which is how a site's VM disks and
 * databases spread (many small, a few large ones that dominate the bytes).
 */
export function fleetAllocated(o: FleetOptions): number[] {
  checkFleet(o);
  const next = rng(o.seed);
  const lo = Math.log(o.minBytes);
  const hi = Math.log(o.maxBytes);
  return Array.from({ length: o.volumes }, () => Math.round(Math.exp(lo + next() * (hi - lo)) * o.allocatedFraction));
}

function checkFleet(o: FleetOptions): void {
  if (!Number.isSafeInteger(o.volumes) || o.volumes < 1) throw new PlexusError('E_INVALID', `the model needs at least one volume, not ${o.volumes}`);
  if (!(o.minBytes > 0 && o.maxBytes >= o.minBytes)) throw new PlexusError('E_INVALID', `volume sizes must satisfy 0 < min (${o.minBytes}) <= max (${o.maxBytes})`);
  if (!(o.allocatedFraction > 0 && o.allocatedFraction <= 1)) throw new PlexusError('E_INVALID', `the allocated fraction must be in (0, 1], not ${o.allocatedFraction}`);
}

/** One night on one drive count: what the schedule came to. */
export interface NightResult {
  drives: number;
  jobs: number;
  bytes: number;
  /** When the last drive finishes: the backup window the night needs. */
  makespanSeconds: number;
  /** Sum over jobs of the time a drive was held (overhead, data and cartridge changes). */
  busySeconds: number;
  /** The part of `busySeconds` spent moving data. */
  streamingSeconds: number;
  /** busy / (drives × makespan): 1 when no drive ever waits for the last one. */
  utilisation: number;
  /** streaming / (drives × makespan). */
  streamingUtilisation: number;
  cartridgeChanges: number;
  /** The longest single job: no number of drives makes the night shorter than this. */
  longestJobSeconds: number;
}

/** Cartridges a drive has touched after writing `written` bytes (the first is loaded before any byte). */
const cartridgesUsed = (written: number, capacity: number): number => Math.max(1, Math.ceil(written / capacity));

/** A binary min-heap of drives keyed by the time each is free (ties: lower drive number). */
class FreeDrives {
  private readonly heap: number[];
  constructor(
    count: number,
    private readonly freeAt: Float64Array,
  ) {
    this.heap = Array.from({ length: count }, (_, i) => i);
  }
  private less(a: number, b: number): boolean {
    const x = this.freeAt[a]!;
    const y = this.freeAt[b]!;
    return x < y || (x === y && a < b);
  }
  /** The drive free first. */
  peek(): number {
    return this.heap[0]!;
  }
  /** Restores the order after the first drive's free time grew. */
  siftDownTop(): void {
    const h = this.heap;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

/**
 * Schedules one night's jobs (bytes each) onto `drives` drives: longest job first, each
 * to the drive free first (list scheduling, a discrete-event run in which a drive takes
 * the next job the moment it is free). A drive keeps its cartridge from job to job, as
 * the engine fills a partly used cartridge before a scratch one, and pays a cartridge
 * change each time its writes cross a cartridge's capacity.
 */
export function scheduleNight(jobBytes: readonly number[], drives: number, costs: JobCosts, cartridgeBytes: number): NightResult {
  checkCosts(costs);
  if (!Number.isSafeInteger(drives) || drives < 1) throw new PlexusError('E_INVALID', `the model needs at least one drive, not ${drives}`);
  if (!(cartridgeBytes > 0)) throw new PlexusError('E_INVALID', `the cartridge capacity must be positive, not ${cartridgeBytes}`);
  for (const b of jobBytes) if (!(b >= 0 && Number.isFinite(b))) throw new PlexusError('E_INVALID', `a job's bytes must be a finite number >= 0, not ${b}`);
  // Longest first; equal jobs in input order, so a run is reproducible.
  const order = jobBytes.map((b, i) => [b, i] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
  const freeAt = new Float64Array(drives);
  const written = new Float64Array(drives);
  const free = new FreeDrives(drives, freeAt);
  let busy = 0;
  let streaming = 0;
  let changes = 0;
  let longest = 0;
  let bytes = 0;
  for (const [b] of order) {
    const d = free.peek();
    const crossed = cartridgesUsed(written[d]! + b, cartridgeBytes) - cartridgesUsed(written[d]!, cartridgeBytes);
    const data = (b / GiB) * costs.secondsPerGiB;
    const took = costs.jobOverheadSeconds + data + crossed * costs.cartridgeChangeSeconds;
    freeAt[d] = freeAt[d]! + took;
    written[d] = written[d]! + b;
    free.siftDownTop();
    busy += took;
    streaming += data;
    changes += crossed;
    longest = Math.max(longest, took);
    bytes += b;
  }
  const makespan = freeAt.reduce((m, t) => Math.max(m, t), 0);
  const capacity = drives * makespan;
  return {
    drives,
    jobs: jobBytes.length,
    bytes,
    makespanSeconds: makespan,
    busySeconds: busy,
    streamingSeconds: streaming,
    utilisation: capacity > 0 ? busy / capacity : 0,
    streamingUtilisation: capacity > 0 ? streaming / capacity : 0,
    cartridgeChanges: changes,
    longestJobSeconds: longest,
  };
}

function checkCosts(c: JobCosts): void {
  for (const k of ['secondsPerGiB', 'jobOverheadSeconds', 'cartridgeChangeSeconds'] as const) {
    const v = c[k];
    if (!(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw new PlexusError('E_INVALID', `the cost ${k} must be a finite number >= 0, not ${String(v)}`);
  }
  if (c.secondsPerGiB === 0) throw new PlexusError('E_INVALID', 'seconds per GiB must be positive, not 0');
}

/** Everything the model sweeps. */
export interface ModelOptions extends FleetOptions {
  /** Dirty fractions of a night, each in (0, 1] (1: a full backup of what is allocated). */
  fractions: number[];
  driveCounts: number[];
  cartridgeBytes: number;
  /** The backup window the nights must fit in. */
  windowSeconds: number;
  costs: JobCosts;
}

/** One cell of the sweep: a dirty fraction on a drive count. */
export interface ModelCell extends NightResult {
  dirtyFraction: number;
  /** Whether the night fits in the window. */
  fits: boolean;
}

/** The sweep: the fleet and one cell per (dirty fraction, drive count). */
export interface ModelSweep {
  fleet: { volumes: number; minBytes: number; maxBytes: number; allocatedFraction: number; seed: number; allocatedBytes: number; largestAllocatedBytes: number };
  fractions: number[];
  driveCounts: number[];
  cartridgeBytes: number;
  windowSeconds: number;
  /** Row by row: every drive count of the first fraction, then of the next. */
  cells: ModelCell[];
}

/**
 * Runs every night of the sweep. A volume's job carries its dirty fraction of what is
 * allocated: the incremental backup of the regions written since the last night.
 */
export function runModel(o: ModelOptions): ModelSweep {
  if (o.fractions.length === 0 || o.driveCounts.length === 0) throw new PlexusError('E_INVALID', 'the model needs at least one dirty fraction and one drive count');
  for (const f of o.fractions) if (!(f > 0 && f <= 1)) throw new PlexusError('E_INVALID', `a dirty fraction must be in (0, 1], not ${f}`);
  if (!(o.windowSeconds > 0)) throw new PlexusError('E_INVALID', `the backup window must be positive, not ${o.windowSeconds} s`);
  const allocated = fleetAllocated(o);
  const cells: ModelCell[] = [];
  for (const f of o.fractions) {
    const jobs = allocated.map((a) => Math.round(a * f));
    for (const d of o.driveCounts) {
      const night = scheduleNight(jobs, d, o.costs, o.cartridgeBytes);
      cells.push({ dirtyFraction: f, ...night, fits: night.makespanSeconds <= o.windowSeconds });
    }
  }
  return {
    fleet: {
      volumes: o.volumes,
      minBytes: o.minBytes,
      maxBytes: o.maxBytes,
      allocatedFraction: o.allocatedFraction,
      seed: o.seed,
      allocatedBytes: allocated.reduce((s, a) => s + a, 0),
      largestAllocatedBytes: Math.max(...allocated),
    },
    fractions: [...o.fractions],
    driveCounts: [...o.driveCounts],
    cartridgeBytes: o.cartridgeBytes,
    windowSeconds: o.windowSeconds,
    cells,
  };
}

/** Seconds as h:mm, rounded up to the minute (a window is planned in whole minutes). */
export function hoursMinutes(seconds: number): string {
  const m = Math.ceil(seconds / 60 - 1e-9);
  return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}`;
}
