/** The backup-window model of `plexus bench model`: pure scheduling cases that can be checked by hand, and the sweep's invariants. */
import { describe, expect, it } from 'vitest';
import { fleetAllocated, hoursMinutes, type JobCosts, runModel, scheduleNight } from '../../src/bench/model.js';

const GiB = 2 ** 30;
const TiB = 2 ** 40;
/** 10 s per GiB and nothing else: a job's time is its GiB × 10. */
const plain: JobCosts = { secondsPerGiB: 10, jobOverheadSeconds: 0, cartridgeChangeSeconds: 0 };
const huge = 2 ** 60;

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe('scheduleNight', () => {
  it('puts 4 equal jobs on 2 drives two by two: the night is two jobs long, the drives never idle', () => {
    const n = scheduleNight([GiB, GiB, GiB, GiB], 2, plain, huge);
    expect(n).toMatchObject({ drives: 2, jobs: 4, bytes: 4 * GiB, makespanSeconds: 20, busySeconds: 40, streamingSeconds: 40, utilisation: 1, cartridgeChanges: 0 });
  });

  it('adds the fixed overhead to every job, counted as busy but not as streaming', () => {
    const n = scheduleNight([GiB, GiB, GiB, GiB], 2, { ...plain, jobOverheadSeconds: 1 }, huge);
    expect(n.makespanSeconds).toBe(22);
    expect(n.busySeconds).toBe(44);
    expect(n.utilisation).toBe(1);
    expect(n.streamingUtilisation).toBeCloseTo(40 / 44, 12);
  });

  it('lets one huge job set the night however many drives there are', () => {
    const n = scheduleNight([100 * GiB, GiB, GiB, GiB], 4, plain, huge);
    expect(n.makespanSeconds).toBe(1000);
    expect(n.longestJobSeconds).toBe(1000);
    expect(n.utilisation).toBeCloseTo(1030 / 4000, 12);
    expect(scheduleNight([100 * GiB, GiB, GiB, GiB], 400, plain, huge).makespanSeconds).toBe(1000);
  });

  it('schedules longest first: 3,3,2,2,2 GiB on 2 drives take 7 jobs-of-a-GiB (3+2+2 and 3+2)', () => {
    const n = scheduleNight(
      [2, 3, 2, 3, 2].map((g) => g * GiB),
      2,
      { ...plain, secondsPerGiB: 1 },
      huge,
    );
    expect(n.makespanSeconds).toBe(7);
    expect(n.utilisation).toBeCloseTo(12 / 14, 12);
  });

  it('leaves drives idle when there are fewer jobs than drives', () => {
    const n = scheduleNight([GiB, GiB], 8, plain, huge);
    expect(n.makespanSeconds).toBe(10);
    expect(n.utilisation).toBe(0.25);
  });

  it('charges a cartridge change each time a drive writes past a cartridge, its cartridge kept from job to job', () => {
    const change = { ...plain, cartridgeChangeSeconds: 100 };
    // 1.5 GiB crosses from the first cartridge into the second; the next GiB fills the second and starts a third.
    const one = scheduleNight([1.5 * GiB, GiB], 1, change, GiB);
    expect(one.cartridgeChanges).toBe(2);
    expect(one.makespanSeconds).toBe(25 + 200);
    // A job that exactly fills its cartridge changes nothing; the next job starts on a fresh one.
    const exact = scheduleNight([GiB, GiB], 1, change, GiB);
    expect(exact.cartridgeChanges).toBe(1);
    expect(exact.makespanSeconds).toBe(20 + 100);
    // Two drives: each job fits on its drive's own cartridge.
    expect(scheduleNight([GiB, GiB], 2, change, GiB).cartridgeChanges).toBe(0);
  });

  it('counts an empty night as zero-length and zero-busy', () => {
    expect(scheduleNight([], 3, plain, huge)).toMatchObject({ jobs: 0, bytes: 0, makespanSeconds: 0, utilisation: 0 });
  });

  it('refuses no drives, a negative or missing cost, a zero rate and a bad job with E_INVALID', () => {
    expect(code(() => scheduleNight([GiB], 0, plain, huge))).toBe('E_INVALID');
    expect(code(() => scheduleNight([GiB], 1.5, plain, huge))).toBe('E_INVALID');
    expect(code(() => scheduleNight([GiB], 1, { ...plain, jobOverheadSeconds: -1 }, huge))).toBe('E_INVALID');
    expect(code(() => scheduleNight([GiB], 1, { secondsPerGiB: 1 } as JobCosts, huge))).toBe('E_INVALID');
    expect(code(() => scheduleNight([GiB], 1, { ...plain, secondsPerGiB: 0 }, huge))).toBe('E_INVALID');
    expect(code(() => scheduleNight([Number.NaN], 1, plain, huge))).toBe('E_INVALID');
    expect(code(() => scheduleNight([GiB], 1, plain, 0))).toBe('E_INVALID');
  });
});

describe('fleetAllocated', () => {
  const fleet = { volumes: 1000, minBytes: 16 * GiB, maxBytes: 2 * TiB, allocatedFraction: 0.6, seed: 7 };

  it('draws the same fleet from the same seed and another from another seed, within the bounds', () => {
    const a = fleetAllocated(fleet);
    expect(a).toHaveLength(1000);
    expect(fleetAllocated(fleet)).toEqual(a);
    expect(fleetAllocated({ ...fleet, seed: 8 })).not.toEqual(a);
    for (const x of a) {
      expect(x).toBeGreaterThanOrEqual(Math.floor(16 * GiB * 0.6));
      expect(x).toBeLessThanOrEqual(Math.ceil(2 * TiB * 0.6));
    }
  });

  it('is log-uniform: about as many volumes below the geometric middle (181 GiB) as above it', () => {
    const mid = Math.sqrt(16 * 2048) * GiB * 0.6;
    const below = fleetAllocated(fleet).filter((x) => x < mid).length;
    expect(below).toBeGreaterThan(430);
    expect(below).toBeLessThan(570);
  });

  it('refuses an empty fleet, inverted bounds and an allocated fraction outside (0, 1]', () => {
    expect(code(() => fleetAllocated({ ...fleet, volumes: 0 }))).toBe('E_INVALID');
    expect(code(() => fleetAllocated({ ...fleet, minBytes: 4 * TiB }))).toBe('E_INVALID');
    expect(code(() => fleetAllocated({ ...fleet, allocatedFraction: 1.5 }))).toBe('E_INVALID');
  });
});

describe('runModel', () => {
  const costs: JobCosts = { secondsPerGiB: 2.7, jobOverheadSeconds: 30, cartridgeChangeSeconds: 90 };
  const base = {
    volumes: 1000,
    minBytes: 16 * GiB,
    maxBytes: 2 * TiB,
    allocatedFraction: 0.6,
    seed: 7,
    fractions: [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1],
    driveCounts: [25, 50, 100, 200],
    cartridgeBytes: 2.5 * TiB,
    windowSeconds: 8 * 3600,
    costs,
  };

  it('has a cell per dirty fraction and drive count, carrying that fraction of what is allocated', () => {
    const m = runModel(base);
    expect(m.cells).toHaveLength(28);
    expect(m.cells.map((c) => [c.dirtyFraction, c.drives])).toEqual(base.fractions.flatMap((f) => base.driveCounts.map((d) => [f, d])));
    const full = m.cells.filter((c) => c.dirtyFraction === 1);
    for (const c of full) expect(c.bytes).toBe(m.fleet.allocatedBytes);
    for (const c of m.cells) {
      expect(c.jobs).toBe(1000);
      expect(Math.abs(c.bytes - m.fleet.allocatedBytes * c.dirtyFraction)).toBeLessThanOrEqual(1000);
      expect(c.fits).toBe(c.makespanSeconds <= base.windowSeconds);
    }
  });

  it('never needs a longer window with more drives or a shorter one with more dirty data', () => {
    const m = runModel({ ...base, driveCounts: [1, 2, 3, 5, 8, 13, 25, 50, 100, 200, 400, 1000, 2000] });
    for (const f of m.fractions) {
      const row = m.cells.filter((c) => c.dirtyFraction === f).map((c) => c.makespanSeconds);
      for (let i = 1; i < row.length; i++) expect(row[i]!).toBeLessThanOrEqual(row[i - 1]!);
    }
    for (const d of m.driveCounts) {
      const column = m.cells.filter((c) => c.drives === d).map((c) => c.makespanSeconds);
      for (let i = 1; i < column.length; i++) expect(column[i]!).toBeGreaterThanOrEqual(column[i - 1]!);
    }
  });

  it('keeps every night between its lower bounds and the list-scheduling bound, utilisation in (0, 1]', () => {
    for (const seed of [1, 2, 3]) {
      for (const c of runModel({ ...base, seed, volumes: 300 }).cells) {
        expect(c.utilisation).toBeGreaterThan(0);
        expect(c.utilisation).toBeLessThanOrEqual(1 + 1e-12);
        expect(c.streamingUtilisation).toBeLessThanOrEqual(c.utilisation);
        expect(c.makespanSeconds).toBeGreaterThanOrEqual(c.longestJobSeconds);
        expect(c.makespanSeconds).toBeGreaterThanOrEqual(c.busySeconds / c.drives - 1e-6);
        // Greedy list scheduling: the last job started when no drive was free, so before busy / drives.
        expect(c.makespanSeconds).toBeLessThanOrEqual(c.busySeconds / c.drives + c.longestJobSeconds + 1e-6);
      }
    }
  });

  it('flags the nights that do not fit the window', () => {
    const m = runModel({ ...base, fractions: [1], driveCounts: [1, 1000], windowSeconds: 8 * 3600 });
    expect(m.cells.map((c) => c.fits)).toEqual([false, true]);
  });

  it('refuses a dirty fraction outside (0, 1], no drive counts and a zero window with E_INVALID', () => {
    expect(code(() => runModel({ ...base, fractions: [0] }))).toBe('E_INVALID');
    expect(code(() => runModel({ ...base, fractions: [1.01] }))).toBe('E_INVALID');
    expect(code(() => runModel({ ...base, driveCounts: [] }))).toBe('E_INVALID');
    expect(code(() => runModel({ ...base, windowSeconds: 0 }))).toBe('E_INVALID');
  });
});

describe('hoursMinutes', () => {
  it('writes h:mm rounded up to the minute', () => {
    expect(hoursMinutes(0)).toBe('0:00');
    expect(hoursMinutes(60)).toBe('0:01');
    expect(hoursMinutes(61)).toBe('0:02');
    expect(hoursMinutes(8 * 3600)).toBe('8:00');
    expect(hoursMinutes(25 * 3600 + 59 * 60 + 1)).toBe('26:00');
  });
});
