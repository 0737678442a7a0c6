/**
 * `plexus bench scale` (issue 13, "costs that follow the data, not the size"): what a
 * pair's initial copy costs its bitmap sidecars, for sparse volumes of growing size that
 * hold the same data (default 64 MiB in 1 MiB pieces spread over 1 GiB, 16 GiB, 256 GiB
 * and 4 TiB): every granule is dirty and visited, holes are punched, and the copy
 * checkpoints its progress. Reported per case: bytes written to the sidecar files and
 * syncs, per GiB of data copied and per GiB of logical volume, and wall time. Target: the
 * cost per GiB copied stays flat (within 2x) from the smallest volume to the largest.
 * Also the group commit of durable marks: 8 concurrent writers against 1 (target >= 4x).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native } from '../native/binding.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { loadAverage, median } from './measure.js';

const GiB = 2 ** 30;

/** Options of the scale benchmark. */
export interface ScaleCostsOptions {
  /** Where the scratch volumes go (default: the OS temp dir); sparse files must work there. */
  dir?: string;
  /** Logical volume sizes, bytes (default 1 GiB, 16 GiB, 256 GiB, 4 TiB). */
  sizes?: number[];
  /** Data on each primary, bytes (default 64 MiB). */
  data?: number;
  /** Bitmap granularity (default 64 KiB). */
  granularity?: number;
  /** Copies per size (default 1; the byte and sync counts do not vary, the time does). */
  rounds?: number;
  /** Rounds of the durable-mark comparison (default 5; the ratio is the median of the rounds'). */
  markRounds?: number;
  /** Marks per writer (default 400). */
  marksPerWriter?: number;
  log?: (line: string) => void;
}

/** One volume size: what its initial copy cost. */
export interface CheckpointCase {
  sizeBytes: number;
  dataBytes: number;
  granules: number;
  /** Bytes written to sidecar files and syncs during the copy (the same every round). */
  sidecarBytes: number;
  sidecarSyncs: number;
  snapshots: number;
  records: number;
  /** Wall time of each round's copy, and their median. */
  seconds: number[];
  medianSeconds: number;
  perGiBCopied: { bytes: number; syncs: number };
  perGiBLogical: { bytes: number; syncs: number; seconds: number };
  /** What creating the pair (three empty sidecars, everything marked) cost before the copy. */
  setup: { bytes: number; syncs: number };
}

/** One writer count of the durable-mark comparison. */
export interface MarkRate {
  writers: number;
  marksPerSecond: number[];
  syncs: number[];
  medianMarksPerSecond: number;
  /** Marks made per log fdatasync, all rounds together (1 for one writer; what the group commit shares). */
  marksPerSync: number;
}

/** What `bench scale` measured. */
export interface ScaleCostsResult {
  benchmark: 'scale-costs';
  date: string;
  machine: MachineInfo;
  granularity: number;
  checkpoints: CheckpointCase[];
  marks: { one: MarkRate; eight: MarkRate; ratios: number[]; medianRatio: number };
  targets: Record<string, { target: string; measured: number; met: boolean }>;
  loadAverage: { start: number; end: number };
}

/** Runs one scratch directory's worth of work and removes the directory. */
async function inScratch<T>(parent: string, f: (dir: string) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(parent, 'plexus-bench-scale-'));
  try {
    return await f(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One writer and eight, round after round (so a slow spell of the disk hits both alike). */
async function markRates(parent: string, rounds: number, per: number): Promise<[MarkRate, MarkRate]> {
  const rates = [1, 8].map((writers): MarkRate => ({ writers, marksPerSecond: [], syncs: [], medianMarksPerSecond: 0, marksPerSync: 0 }));
  for (let i = 0; i < rounds; i++) {
    for (const r of rates) {
      const m = await inScratch(parent, (dir) => native.bitmapDurableMarks(dir, r.writers, per));
      r.marksPerSecond.push(m.marksPerS);
      r.syncs.push(m.syncs);
    }
  }
  for (const r of rates) {
    r.medianMarksPerSecond = median(r.marksPerSecond);
    r.marksPerSync = (r.writers * per * rounds) / r.syncs.reduce((a, b) => a + b, 0);
  }
  return [rates[0]!, rates[1]!];
}

/** Runs the benchmark; every scratch file is removed before it returns. */
export async function benchScaleCosts(opts: ScaleCostsOptions = {}): Promise<ScaleCostsResult> {
  const log = opts.log ?? (() => undefined);
  const parent = opts.dir ?? os.tmpdir();
  const sizes = opts.sizes ?? [GiB, 16 * GiB, 256 * GiB, 4096 * GiB];
  const data = opts.data ?? 64 * 2 ** 20;
  const granularity = opts.granularity ?? 65536;
  const rounds = Math.max(1, opts.rounds ?? 1);
  const start = loadAverage();
  const checkpoints: CheckpointCase[] = [];
  for (const size of sizes) {
    const seconds: number[] = [];
    let last: Awaited<ReturnType<typeof native.mirrorCheckpointCosts>> | undefined;
    for (let i = 0; i < rounds; i++) {
      last = await inScratch(parent, (dir) => native.mirrorCheckpointCosts(dir, size, data, granularity));
      seconds.push(last.seconds);
      log(`initial copy of ${size / GiB} GiB holding ${last.data} B: ${last.sidecarBytes} B to the sidecars, ${last.sidecarSyncs} syncs, ${last.seconds.toFixed(2)} s`);
    }
    const c = last!;
    const copied = c.data / GiB;
    const logical = c.size / GiB;
    const med = median(seconds);
    checkpoints.push({
      sizeBytes: c.size,
      dataBytes: c.data,
      granules: c.granules,
      sidecarBytes: c.sidecarBytes,
      sidecarSyncs: c.sidecarSyncs,
      snapshots: c.snapshots,
      records: c.records,
      seconds,
      medianSeconds: med,
      perGiBCopied: { bytes: c.sidecarBytes / copied, syncs: c.sidecarSyncs / copied },
      perGiBLogical: { bytes: c.sidecarBytes / logical, syncs: c.sidecarSyncs / logical, seconds: med / logical },
      setup: { bytes: c.setupBytes, syncs: c.setupSyncs },
    });
  }
  const markRounds = Math.max(1, opts.markRounds ?? 5);
  const per = opts.marksPerWriter ?? 400;
  const [one, eight] = await markRates(parent, markRounds, per);
  const ratios = eight.marksPerSecond.map((r, i) => r / one.marksPerSecond[i]!);
  const medianRatio = median(ratios);
  log(`durable marks: 1 writer ${one.medianMarksPerSecond.toFixed(0)}/s, 8 writers ${eight.medianMarksPerSecond.toFixed(0)}/s (${medianRatio.toFixed(2)}x)`);
  const spread = (f: (c: CheckpointCase) => number): number => {
    const xs = checkpoints.map(f);
    return Math.max(...xs) / Math.max(Math.min(...xs), Number.MIN_VALUE);
  };
  const bytesSpread = spread((c) => c.perGiBCopied.bytes);
  const syncsSpread = spread((c) => c.perGiBCopied.syncs);
  return {
    benchmark: 'scale-costs',
    date: new Date().toISOString(),
    machine: describeMachine(),
    granularity,
    checkpoints,
    marks: { one, eight, ratios, medianRatio },
    targets: {
      'sidecar bytes per GiB copied, largest / smallest over the sizes': { target: '<= 2', measured: bytesSpread, met: bytesSpread <= 2 },
      'sidecar syncs per GiB copied, largest / smallest over the sizes': { target: '<= 2', measured: syncsSpread, met: syncsSpread <= 2 },
      'durable marks per second, 8 writers / 1 writer': { target: '>= 4', measured: medianRatio, met: medianRatio >= 4 },
    },
    loadAverage: { start, end: loadAverage() },
  };
}
