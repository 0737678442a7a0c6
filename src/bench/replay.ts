/**
 * `plexus bench replay`: the sequenced applier of the core (crates/journal) replaying
 * records shuffled within a window (64 records of 4 KiB; 8 MiB, one shipped batch, of
 * 1 MiB records) — decode, checksum, reorder, apply into memory —
 * against an in-order memcpy of the same bytes measured in the same run (the limit).
 * Targets: at least 1 M records/s at 4 KiB, at least 50% of the limit at 1 MiB.
 */
import { native } from '../native/binding.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { loadAverage, median } from './measure.js';

/** One record size's figures. */
export interface ReplayCase {
  recordBytes: number;
  records: number;
  window: number;
  /** Per round. */
  recordsPerSecond: number[];
  bytesPerSecond: number[];
  memcpyBytesPerSecond: number[];
  /** Per-round applied/memcpy ratios. */
  ratios: number[];
  medianRecordsPerSecond: number;
  medianRatio: number;
}

/** What `bench replay` measured. */
export interface ReplayBenchResult {
  benchmark: 'replay';
  date: string;
  machine: MachineInfo;
  rounds: number;
  cases: ReplayCase[];
  targets: Record<string, { target: string; measured: number; met: boolean }>;
  loadAverage: { start: number; end: number };
}

/** Runs the replay benchmark. */
export async function benchReplay(opts: { rounds?: number; window?: number; windowBytes?: number; log?: (line: string) => void } = {}): Promise<ReplayBenchResult> {
  const rounds = opts.rounds ?? 5;
  const start = loadAverage();
  // Records arrive out of order only within what is in flight at once: a window of 64
  // small records, and of 8 MiB (one shipped batch) for large ones.
  const sizes: Array<[number, number, number]> = [
    [4096, 400_000, opts.window ?? 64],
    [1 << 20, 1500, Math.max(1, Math.floor((opts.windowBytes ?? 8 << 20) / (1 << 20)))],
  ];
  const cases: ReplayCase[] = [];
  for (const [recordBytes, records, window] of sizes) {
    const c: ReplayCase = { recordBytes, records, window, recordsPerSecond: [], bytesPerSecond: [], memcpyBytesPerSecond: [], ratios: [], medianRecordsPerSecond: 0, medianRatio: 0 };
    for (let r = 0; r < rounds; r++) {
      const f = await native.journalReplayBench(recordBytes, records, window, 7 + r);
      c.recordsPerSecond.push(f.recordsPerS);
      c.bytesPerSecond.push(f.bytesPerS);
      c.memcpyBytesPerSecond.push(f.memcpyBytesPerS);
      c.ratios.push(f.bytesPerS / f.memcpyBytesPerS);
      opts.log?.(
        `replay ${recordBytes} B records, round ${r + 1}: ${(f.recordsPerS / 1e6).toFixed(2)} M records/s, ${(f.bytesPerS / 1e9).toFixed(2)} GB/s (memcpy ${(f.memcpyBytesPerS / 1e9).toFixed(2)} GB/s)`,
      );
    }
    c.medianRecordsPerSecond = median(c.recordsPerSecond);
    c.medianRatio = median(c.ratios);
    cases.push(c);
  }
  const small = cases[0]!;
  const large = cases[1]!;
  return {
    benchmark: 'replay',
    date: new Date().toISOString(),
    machine: describeMachine(),
    rounds,
    cases,
    targets: {
      'records/s at 4 KiB': { target: '>= 1,000,000', measured: small.medianRecordsPerSecond, met: small.medianRecordsPerSecond >= 1e6 },
      'share of memcpy at 1 MiB': { target: '>= 0.5', measured: large.medianRatio, met: large.medianRatio >= 0.5 },
    },
    loadAverage: { start, end: loadAverage() },
  };
}
