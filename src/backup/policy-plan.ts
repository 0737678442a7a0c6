/**
 * Deciding, pure (no catalog, no clock of its own): which policy backups start now
 * (`duePolicyRuns`), and the plan of the coming windows (`planPolicies`) worked out
 * from each volume's data and each library's throughput, as the management host of
 * 001 English Fig. 19 makes out a schedule of backups "beginning and ending" for each
 * server from the amount of data it keeps, with as many at once as the library has
 * drives.
 *
 * Both take the volumes in one order: the oldest slot first, then the largest volume
 * first (the longest jobs first keep the last one from ending long after the others),
 * then by policy and the order of its volumes. A job waits for drives instead of
 * starting with fewer: when the first in line on a library does not fit, nothing after
 * it starts there, so a two-drive job is not starved by one-drive jobs. Backups are not
 * held back to a computed start time: a volume starts as soon as it is due and a drive
 * is free, which spreads a data set over the window by itself when it has more volumes
 * than the library has drives; the plan predicts exactly that.
 */
import { dueIn, formatLocal, nextDueSlot, type Slot, slotAt, type Window } from './policy-time.js';

/** A policy as the planners need it. */
export interface PolicySpec {
  name: string;
  volumes: readonly string[];
  everyS: number;
  window?: Window;
  library: string;
  /** Drives one of its backups holds (single: 1; parallel and chunked: their streams). */
  drivesPerJob: number;
  enabled: boolean;
}

/** The last run that counts of a volume under a policy. */
export interface LastRun {
  volume: string;
  startedAt: Date;
  running: boolean;
}

/** A backup to start now. */
export interface DueRun {
  policy: string;
  volume: string;
  library: string;
  slot: Date;
  drives: number;
}

/** `policy/volume`: the key of `lastRuns`. */
export const runKey = (policy: string, volume: string): string => `${policy}/${volume}`;

interface Candidate {
  policy: PolicySpec;
  volume: string;
  index: number;
  slot: Slot;
  bytes: number;
}

/** The planners' order: oldest slot, largest volume, policy name, volume order. */
function byTurn(a: Candidate, b: Candidate): number {
  return a.slot.start.getTime() - b.slot.start.getTime() || b.bytes - a.bytes || (a.policy.name < b.policy.name ? -1 : a.policy.name > b.policy.name ? 1 : 0) || a.index - b.index;
}

/**
 * The volume backups that start at `now`: those of enabled policies inside their window
 * whose last start lies before the current slot, none already running (under any
 * policy), in turn, while `freeDrives` (per library, free now) lasts. `bytes` (per
 * volume) orders them; unknown sizes count 0.
 */
export function duePolicyRuns(
  policies: readonly PolicySpec[],
  lastRuns: ReadonlyMap<string, LastRun>,
  now: Date,
  freeDrives: ReadonlyMap<string, number>,
  bytes: ReadonlyMap<string, number> = new Map(),
): DueRun[] {
  const busy = new Set([...lastRuns.values()].filter((r) => r.running).map((r) => r.volume));
  const candidates: Candidate[] = [];
  for (const policy of policies) {
    if (!policy.enabled) continue;
    const slot = slotAt(policy.everyS, policy.window, now);
    if (!slot) continue;
    policy.volumes.forEach((volume, index) => {
      const last = lastRuns.get(runKey(policy.name, volume));
      if (busy.has(volume) || !dueIn(slot, last?.startedAt)) return;
      candidates.push({ policy, volume, index, slot, bytes: bytes.get(volume) ?? 0 });
    });
  }
  const free = new Map(freeDrives);
  const blocked = new Set<string>();
  const out: DueRun[] = [];
  for (const c of candidates.sort(byTurn)) {
    const lib = c.policy.library;
    // One backup of a volume at a time, even when two policies hold it.
    if (blocked.has(lib) || busy.has(c.volume)) continue;
    const left = free.get(lib) ?? 0;
    if (c.policy.drivesPerJob > left) {
      blocked.add(lib);
      continue;
    }
    free.set(lib, left - c.policy.drivesPerJob);
    busy.add(c.volume);
    out.push({ policy: c.policy.name, volume: c.volume, library: lib, slot: c.slot.start, drives: c.policy.drivesPerJob });
  }
  return out;
}

/** What the plan knows of a library. */
export interface LibraryEstimate {
  /** Drives in service. */
  drives: number;
  bytesPerSecond: number;
}

/** One volume's backup in the plan. */
export interface PlannedRun {
  policy: string;
  volume: string;
  library: string;
  /** Bytes the backup is expected to move. */
  bytes: number;
  seconds: number;
  /** Running now (started at `start`), or planned. */
  running: boolean;
  /** The slot it is due in. */
  slot: Date;
  start: Date;
  end: Date;
  /** The drive lanes it takes (1-based; a lane is one drive's timeline, not a given drive). */
  lanes: number[];
  /** When its window's occurrence closes. */
  windowClose: Date;
  /** Whether it ends before then. */
  fits: boolean;
}

/** The plan, and what does not fit. */
export interface Plan {
  runs: PlannedRun[];
  warnings: string[];
}

/**
 * The plan from `now`: for every volume of every enabled policy, its next due slot and,
 * simulating the order `duePolicyRuns` starts them in over each library's drive lanes,
 * when it starts and ends at that library's throughput. A running backup holds its lanes
 * until its estimated end. Warns for every window occurrence the plan overruns, and for
 * a policy whose jobs need more drives than its library has in service.
 */
export function planPolicies(
  policies: readonly PolicySpec[],
  lastRuns: ReadonlyMap<string, LastRun>,
  now: Date,
  libraries: ReadonlyMap<string, LibraryEstimate>,
  bytes: ReadonlyMap<string, number>,
): Plan {
  const warnings: string[] = [];
  const lanes = new Map<string, number[]>();
  const laneOf = (lib: string): number[] => {
    const l = lanes.get(lib) ?? Array.from({ length: libraries.get(lib)?.drives ?? 0 }, () => now.getTime());
    lanes.set(lib, l);
    return l;
  };
  const seconds = (c: { policy: PolicySpec; bytes: number }): number => c.bytes / (libraries.get(c.policy.library)?.bytesPerSecond ?? 1);
  const runs: PlannedRun[] = [];
  const take = (c: Candidate, start: number, running: boolean): void => {
    const free = laneOf(c.policy.library);
    const picked = free
      .map((t, i) => ({ t, i }))
      .sort((a, b) => a.t - b.t || a.i - b.i)
      .slice(0, c.policy.drivesPerJob);
    const begin = running ? start : Math.max(start, ...picked.map((p) => p.t));
    const end = begin + seconds(c) * 1000;
    for (const p of picked) free[p.i] = Math.max(free[p.i]!, end);
    const close = c.slot.occurrence.close;
    runs.push({
      policy: c.policy.name,
      volume: c.volume,
      library: c.policy.library,
      bytes: c.bytes,
      seconds: seconds(c),
      running,
      slot: c.slot.start,
      start: new Date(begin),
      end: new Date(end),
      lanes: picked.map((p) => p.i + 1).sort((a, b) => a - b),
      windowClose: close,
      fits: end <= close.getTime(),
    });
  };
  const planned: Candidate[] = [];
  for (const policy of policies) {
    if (!policy.enabled) continue;
    const have = libraries.get(policy.library)?.drives ?? 0;
    if (policy.drivesPerJob > have) {
      warnings.push(`policy ${policy.name}: a backup needs ${policy.drivesPerJob} drives and library ${policy.library} has ${have} in service: its backups wait`);
      continue;
    }
    policy.volumes.forEach((volume, index) => {
      const last = lastRuns.get(runKey(policy.name, volume));
      const b = bytes.get(volume) ?? 0;
      if (last?.running) {
        const slot = slotAt(policy.everyS, policy.window, last.startedAt) ?? nextDueSlot(policy.everyS, policy.window, last.startedAt, undefined);
        take({ policy, volume, index, slot, bytes: b }, last.startedAt.getTime(), true);
        return;
      }
      planned.push({ policy, volume, index, slot: nextDueSlot(policy.everyS, policy.window, now, last?.startedAt), bytes: b });
    });
  }
  for (const c of planned.sort(byTurn)) take(c, Math.max(now.getTime(), c.slot.start.getTime()), false);
  runs.sort((a, b) => a.start.getTime() - b.start.getTime() || a.library.localeCompare(b.library) || a.lanes[0]! - b.lanes[0]!);
  // One warning per policy and window occurrence that the plan overruns.
  const late = new Map<string, PlannedRun[]>();
  for (const r of runs.filter((x) => !x.fits)) {
    const k = `${r.policy}\0${r.windowClose.toISOString()}`;
    late.set(k, [...(late.get(k) ?? []), r]);
  }
  for (const rs of late.values()) {
    const last = rs.reduce((a, r) => (r.end > a.end ? r : a));
    const over = Math.ceil((last.end.getTime() - last.windowClose.getTime()) / 60_000);
    warnings.push(
      `policy ${last.policy}: the window is too short: ${rs.length} backup${rs.length === 1 ? '' : 's'} would end after it closes at ${formatLocal(last.windowClose)}, the last (${last.volume}) ${over} min late; widen the window, add drives or split the data set`,
    );
  }
  return { runs, warnings };
}
