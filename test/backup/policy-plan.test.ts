/**
 * The policy planners, pure: intervals and windows, the slot a volume is due in, which
 * backups start now under a drive limit, and the plan of a window worked out from the
 * data and the throughput. Local times throughout (windows are local).
 */
import { describe, expect, it } from 'vitest';
import { duePolicyRuns, type LastRun, type PolicySpec, planPolicies, runKey } from '../../src/backup/policy-plan.js';
import { nextDueSlot, parseInterval, parseWindow, slotAt } from '../../src/backup/policy-time.js';

const GiB = 1 << 30;
const MiB = 1 << 20;
/** A local time on 10 January 2026 (`day` shifts it). */
const at = (h: number, m = 0, day = 0): Date => new Date(2026, 0, 10 + day, h, m);

function spec(over: Partial<PolicySpec> = {}): PolicySpec {
  return { name: 'nightly', volumes: ['v1', 'v2', 'v3', 'v4', 'v5'], everyS: 86_400, window: parseWindow('01:00-05:00'), library: 'lib', drivesPerJob: 1, enabled: true, ...over };
}

describe('intervals and windows', () => {
  it('accepts intervals that repeat at the same times every day, refuses the others', () => {
    expect(['15m', '30m', '90m', '1h', '6h', '12h', '24h', '1d', '7d'].map(parseInterval)).toEqual([900, 1800, 5400, 3600, 21_600, 43_200, 86_400, 86_400, 604_800]);
    for (const bad of ['7h', '25h', '0h', '0d', '45', '1w', '-1h', '1.5h', '367d']) expect(() => parseInterval(bad), bad).toThrow(expect.objectContaining({ code: 'E_INVALID' }));
  });

  it('accepts HH:MM-HH:MM windows, also across midnight; refuses equal ends and bad times', () => {
    expect(parseWindow('01:00-05:00')).toEqual({ open: 60, close: 300 });
    expect(parseWindow('22:30-06:00')).toEqual({ open: 1350, close: 360 });
    expect(parseWindow('00:00-24:00')).toEqual({ open: 0, close: 1440 });
    for (const bad of ['05:00-05:00', '25:00-01:00', '01:60-02:00', '1-2', '01:00', '']) expect(() => parseWindow(bad), bad).toThrow(expect.objectContaining({ code: 'E_INVALID' }));
  });

  it('slots are anchored at the opening: every 2h in 01:00-05:00 gives 01:00 and 03:00, nothing outside', () => {
    const w = parseWindow('01:00-05:00');
    expect(slotAt(7200, w, at(0, 59))).toBeUndefined();
    expect(slotAt(7200, w, at(1, 10))?.start).toEqual(at(1));
    expect(slotAt(7200, w, at(2, 59))?.start).toEqual(at(1));
    expect(slotAt(7200, w, at(3, 0))?.start).toEqual(at(3));
    expect(slotAt(7200, w, at(4, 59))?.start).toEqual(at(3));
    expect(slotAt(7200, w, at(5, 0))).toBeUndefined();
  });

  it('a window across midnight belongs to the night it opened; without a window slots start at midnight', () => {
    const w = parseWindow('22:00-06:00');
    expect(slotAt(14_400, w, at(3))?.start).toEqual(at(2));
    expect(slotAt(14_400, w, at(23))?.start).toEqual(at(22));
    expect(slotAt(86_400, w, at(3))?.occurrence).toEqual({ open: at(22, 0, -1), close: at(6) });
    expect(slotAt(86_400, w, at(12))).toBeUndefined();
    expect(slotAt(21_600, undefined, at(13, 30))?.start).toEqual(at(12));
  });

  it('the next due slot: later in the window, the next night, every Nth night', () => {
    const w = parseWindow('01:00-05:00');
    expect(nextDueSlot(7200, w, at(0, 30), undefined).start).toEqual(at(1));
    expect(nextDueSlot(7200, w, at(1, 30), at(1, 2)).start).toEqual(at(3));
    expect(nextDueSlot(7200, w, at(3, 30), at(3, 1)).start).toEqual(at(1, 0, 1));
    expect(nextDueSlot(86_400, w, at(1, 30), at(1, 5)).start).toEqual(at(1, 0, 1));
    // Started at 01:05 yesterday: due at tonight's opening, not at 01:05.
    expect(nextDueSlot(86_400, w, at(0, 30), at(1, 5, -1)).start).toEqual(at(1));
    expect(nextDueSlot(3 * 86_400, w, at(6), at(1, 5)).start).toEqual(at(1, 0, 3));
  });
});

describe('duePolicyRuns', () => {
  const sizes = new Map([
    ['v1', 1 * GiB],
    ['v2', 5 * GiB],
    ['v3', 3 * GiB],
    ['v4', 4 * GiB],
    ['v5', 2 * GiB],
  ]);

  it('starts no more backups than free drives, the largest volumes first, only inside the window', () => {
    const free = new Map([['lib', 2]]);
    expect(duePolicyRuns([spec()], new Map(), at(0, 59), free, sizes)).toEqual([]);
    const due = duePolicyRuns([spec()], new Map(), at(1), free, sizes);
    expect(due).toEqual([
      { policy: 'nightly', volume: 'v2', library: 'lib', slot: at(1), drives: 1 },
      { policy: 'nightly', volume: 'v4', library: 'lib', slot: at(1), drives: 1 },
    ]);
    expect(duePolicyRuns([spec()], new Map(), at(5), free, sizes)).toEqual([]);
    expect(duePolicyRuns([spec({ enabled: false })], new Map(), at(1), free, sizes)).toEqual([]);
  });

  it('a volume started in this slot is not due again; one running is not started twice, under any policy', () => {
    const last = new Map<string, LastRun>([
      [runKey('nightly', 'v2'), { volume: 'v2', startedAt: at(1), running: false }],
      [runKey('nightly', 'v4'), { volume: 'v4', startedAt: at(1), running: true }],
      // Yesterday's run does not count tonight.
      [runKey('nightly', 'v3'), { volume: 'v3', startedAt: at(1, 30, -1), running: false }],
    ]);
    const other = spec({ name: 'hourly', volumes: ['v4'], everyS: 3600, window: undefined });
    const due = duePolicyRuns([spec(), other], last, at(2), new Map([['lib', 5]]), sizes);
    expect(due.map((d) => `${d.policy}/${d.volume}`)).toEqual(['nightly/v3', 'nightly/v5', 'nightly/v1']);
  });

  it('a two-drive job first in line is waited for: nothing smaller overtakes it on that library', () => {
    const wide = spec({ name: 'a-wide', volumes: ['v2'], drivesPerJob: 2 });
    const narrow = spec({ name: 'b-narrow', volumes: ['v1', 'v3'] });
    expect(duePolicyRuns([wide, narrow], new Map(), at(1), new Map([['lib', 1]]), sizes)).toEqual([]);
    expect(duePolicyRuns([wide, narrow], new Map(), at(1), new Map([['lib', 3]]), sizes).map((d) => d.volume)).toEqual(['v2', 'v3']);
  });
});

describe('planPolicies', () => {
  const libs = new Map([['lib', { drives: 2, bytesPerSecond: 100 * MiB }]]);
  const sizes = new Map(['v1', 'v2', 'v3', 'v4', 'v5'].map((v) => [v, 100 * GiB]));

  it('spreads a data set over the drives from the opening: 5 volumes of 1024 s on 2 drives end after 3 rounds', () => {
    const p = planPolicies([spec()], new Map(), at(0), libs, sizes);
    expect(p.warnings).toEqual([]);
    expect(p.runs.map((r) => [r.volume, r.lanes, (r.start.getTime() - at(1).getTime()) / 1000, r.seconds, r.fits])).toEqual([
      ['v1', [1], 0, 1024, true],
      ['v2', [2], 0, 1024, true],
      ['v3', [1], 1024, 1024, true],
      ['v4', [2], 1024, 1024, true],
      ['v5', [1], 2048, 1024, true],
    ]);
  });

  it('warns when the window is too short for the data at the measured throughput', () => {
    const p = planPolicies([spec({ window: parseWindow('01:00-01:30') })], new Map(), at(0), libs, sizes);
    expect(p.runs.filter((r) => !r.fits).map((r) => r.volume)).toEqual(['v3', 'v4', 'v5']);
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]).toMatch(/^policy nightly: the window is too short: 3 backups would end after it closes at 2026-01-10 01:30, the last \(v5\) 22 min late/);
  });

  it('a backup running now holds its drive; a policy needing more drives than the library has is named', () => {
    const last = new Map<string, LastRun>([[runKey('nightly', 'v1'), { volume: 'v1', startedAt: at(1), running: true }]]);
    const p = planPolicies([spec(), spec({ name: 'wide', volumes: ['w'], drivesPerJob: 3 })], last, at(1, 5), libs, sizes);
    expect(p.runs[0]).toMatchObject({ volume: 'v1', running: true, lanes: [1] });
    expect(p.runs.find((r) => r.volume === 'v2')).toMatchObject({ lanes: [2], start: at(1, 5) });
    expect(p.runs.find((r) => r.volume === 'v3')!.start.getTime()).toBe(at(1).getTime() + 1024_000);
    expect(p.warnings).toEqual(['policy wide: a backup needs 3 drives and library lib has 2 in service: its backups wait']);
  });
});
