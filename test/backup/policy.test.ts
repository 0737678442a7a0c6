/**
 * Backup policies on real volumes and a real library, on an injected clock: a policy
 * firing twice within a simulated day over 5 volumes and 2 drives (never more than 2
 * backups at once, all 5 in each firing, nothing before the interval or outside the
 * window), drives other jobs hold counted, a killed runner's run due again, and
 * retention expiring jobs and freeing their cartridges for the next backup.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BackupOptions, type BackupReport, runBackup } from '../../src/backup/backup.js';
import { createLibrary } from '../../src/backup/libraries.js';
import { addPolicy, removePolicy, showPolicy } from '../../src/backup/policy.js';
import { type PolicyOutcome, runDuePolicies } from '../../src/backup/policy-runner.js';
import { restoreJob } from '../../src/backup/restore.js';
import { expireJobs } from '../../src/backup/retention.js';
import { Catalog, type JobRow } from '../../src/catalog/catalog.js';
import { Home, VolumeStore } from '../../src/index.js';
import type { Library } from '../../src/tape/library.js';
import { scratchDir } from '../helpers/home.js';

const KiB = 1024;
const MiB = 1024 * 1024;

let scratch: ReturnType<typeof scratchDir>;
let home: Home;
let store: VolumeStore;

beforeEach(() => {
  scratch = scratchDir();
  home = Home.open(path.join(scratch.dir, 'home'));
  store = new VolumeStore(home);
});
afterEach(() => scratch.cleanup());

/** A local time on 10 January 2026 (`day` shifts it). */
const at = (h: number, m = 0, day = 0): Date => new Date(2026, 0, 10 + day, h, m);

function library(name: string, slots: number, drives: number, cartridgeSize: number): Library {
  const catalog = Catalog.open(home);
  try {
    return createLibrary(home, catalog, name, { slots, drives, cartridgeSize, blockSize: 64 * KiB });
  } finally {
    catalog.close();
  }
}

/** Fills volume `name` with seeded data; returns its checksum. */
async function fill(name: string, seed: number): Promise<string> {
  const v = store.open(name);
  await v.fill(0, v.size, { seed });
  return v.checksum();
}

/** A pass at the fixed time `now`, its backups counted as they run: the most at once is `max()`. */
function passAt(now: Date): { run: Promise<PolicyOutcome[]>; max: () => number } {
  let inFlight = 0;
  let max = 0;
  const launch = async (v: string, o: BackupOptions): Promise<BackupReport> => {
    max = Math.max(max, ++inFlight);
    try {
      return await runBackup(home, v, o);
    } finally {
      inFlight--;
    }
  };
  return { run: runDuePolicies(home, { clock: () => now, launch, recheckMs: 50 }), max: () => max };
}

function jobs(): JobRow[] {
  const c = Catalog.open(home);
  try {
    return c.jobs().reverse();
  } finally {
    c.close();
  }
}

/** The most jobs whose [start, end] overlap, by their real times in the catalog. */
function maxOverlap(rows: readonly JobRow[]): number {
  const events = rows.flatMap((j) => [
    { t: Date.parse(j.startedAt), d: 1 },
    { t: Date.parse(j.endedAt!), d: -1 },
  ]);
  // Ends before starts at the same instant: touching jobs do not overlap.
  events.sort((a, b) => a.t - b.t || a.d - b.d);
  let running = 0;
  let max = 0;
  for (const e of events) {
    running += e.d;
    max = Math.max(max, running);
  }
  return max;
}

describe('a policy over 5 volumes and 2 drives on a simulated day', () => {
  it('fires twice (01:00 and 03:00, every 2h in 01:00-05:00): all 5 each time, at most 2 at once, nothing in between or outside the window', async () => {
    library('lib', 24, 2, 4 * MiB);
    const names = ['v1', 'v2', 'v3', 'v4', 'v5'];
    for (const [i, n] of names.entries()) store.create(n, { size: (1 + i) * MiB });
    for (const [i, n] of names.entries()) await fill(n, i + 1);
    addPolicy(home, { name: 'nightly', volumes: names, every: '2h', window: '01:00-05:00', library: 'lib' });

    expect(await passAt(at(0, 59)).run).toEqual([]);
    const first = passAt(at(1));
    const fired = await first.run;
    expect(fired.map((o) => [o.volume, o.status]).sort()).toEqual(names.map((n) => [n, 'done']));
    expect(first.max()).toBe(2);
    expect(maxOverlap(jobs())).toBeLessThanOrEqual(2);
    // The largest volumes first: v5 and v4 start the night.
    const started = showPolicy(home, 'nightly', at(1, 30)).runs.sort((a, b) => a.id - b.id);
    expect(started.slice(0, 2).map((r) => r.volume)).toEqual(['v5', 'v4']);

    // Before the interval: nothing; in the next slot: all 5 again.
    expect(await passAt(at(2)).run).toEqual([]);
    expect(await passAt(at(2, 59)).run).toEqual([]);
    const second = passAt(at(3));
    expect((await second.run).map((o) => o.status)).toEqual(['done', 'done', 'done', 'done', 'done']);
    expect(second.max()).toBe(2);
    // 2 h 30 after the last start, but the window is closed.
    expect(await passAt(at(5, 30)).run).toEqual([]);

    const all = jobs();
    expect(all).toHaveLength(10);
    expect(all.every((j) => j.status === 'done')).toBe(true);
    expect(maxOverlap(all)).toBeLessThanOrEqual(2);
    const detail = showPolicy(home, 'nightly', at(5, 30));
    expect(detail.volumes.map((v) => [v.volume, v.last?.startedAt, v.nextDue])).toEqual(names.map((n) => [n, at(3).toISOString(), at(1, 0, 1).toISOString()]));
    expect(detail.runs).toHaveLength(10);
    expect(detail.runs.every((r) => r.status === 'done' && r.jobId !== null && r.outcome === `job ${r.jobId}`)).toBe(true);

    // The next night it fires again.
    expect(await passAt(at(1, 0, 1)).run).toHaveLength(5);
  });

  it('drives other jobs hold count: with one drive taken by a backup by hand, one policy backup at a time', async () => {
    library('lib', 8, 2, 4 * MiB);
    for (const n of ['a', 'b', 'c']) store.create(n, { size: MiB });
    addPolicy(home, { name: 'p', volumes: ['a', 'b', 'c'], every: '1d', library: 'lib' });
    // A job by hand holding a drive of lib: a running row with a location there.
    const c = Catalog.open(home);
    const other = c.startJob({ target: 'a', targetSize: MiB });
    c.addLocation(other, { copy: 0, seq: 0, library: 'lib', stream: 0 });
    try {
      const p = passAt(at(12));
      expect((await p.run).map((o) => o.status)).toEqual(['done', 'done', 'done']);
      expect(p.max()).toBe(1);
    } finally {
      c.finishJob(other, 'failed', 'test');
      c.close();
    }
  });

  it('a run whose process died is due again in its slot; a removed policy keeps its jobs', async () => {
    library('lib', 8, 1, 4 * MiB);
    store.create('a', { size: MiB });
    addPolicy(home, { name: 'p', volumes: ['a'], every: '1d', library: 'lib' });
    const c = Catalog.open(home);
    try {
      // A claim left running with no process holding its lock: as after kill -9.
      c.db
        .prepare(`INSERT INTO policy_runs (policy, volume, slot, started_at, library, drives, status, pid) VALUES ('p', 'a', ?, ?, 'lib', 1, 'running', 999999)`)
        .run(at(0).toISOString(), at(0, 5).toISOString());
    } finally {
      c.close();
    }
    const out = await passAt(at(9)).run;
    expect(out.map((o) => o.status)).toEqual(['done']);
    const runs = showPolicy(home, 'p', at(9)).runs;
    expect(runs.map((r) => r.status)).toEqual(['done', 'cancelled']);
    expect(runs[1]!.outcome).toBe('the process running it died before its backup started: due again');
    removePolicy(home, 'p');
    expect(jobs().map((j) => j.status)).toEqual(['done']);
  });
});

describe('retention', () => {
  it('keep 2, run 4 times: the 2 oldest expire, cartridges holding only them are scratch again and reused; the 2 newest restore byte for byte', async () => {
    const lib = library('lib', 16, 1, 4 * MiB);
    store.create('db', { size: 6 * MiB });
    addPolicy(home, { name: 'hourly', volumes: ['db'], every: '1h', library: 'lib', keep: 2 });
    const sums: string[] = [];
    const outcomes: PolicyOutcome[] = [];
    for (let h = 1; h <= 4; h++) {
      sums.push(await fill('db', 100 + h));
      outcomes.push(...(await passAt(at(h)).run));
    }
    expect(outcomes.map((o) => [o.status, o.job])).toEqual([
      ['done', 1],
      ['done', 2],
      ['done', 3],
      ['done', 4],
    ]);
    expect(outcomes.map((o) => o.expired)).toEqual([[], [], [1], [2]]);
    const [, , afterThird, afterFourth] = outcomes.map((o) => o.freed);
    const c = Catalog.open(home);
    try {
      expect(c.jobs().map((j) => [j.id, j.status])).toEqual([
        [4, 'done'],
        [3, 'done'],
        [2, 'expired'],
        [1, 'expired'],
      ]);
      // Freed after the third run (job 1 expired): reused by the fourth job at once.
      expect(afterThird!.length).toBeGreaterThan(0);
      const fourth = new Set(c.segments(4).map((s) => s.barcode));
      expect(afterThird!.filter((b) => fourth.has(b))).toEqual(afterThird);
      // Freed after the fourth (job 2 expired): scratch again, erased to a label.
      expect(afterFourth!.length).toBeGreaterThan(0);
      for (const b of afterFourth!) {
        expect(c.media('lib').find((m) => m.barcode === b)).toMatchObject({ state: 'scratch', bytes: 0 });
        expect(fs.statSync(lib.cartridgeFile(b)).size).toBeLessThan(64 * KiB);
      }
      // Expired jobs' segments stay only where a live job's share the cartridge.
      const live = new Set([...c.segments(3), ...c.segments(4)].map((s) => s.barcode));
      for (const s of [...c.segments(1), ...c.segments(2)]) expect(live.has(s.barcode)).toBe(true);
      expect(c.expiredCartridges()).toEqual([]);
    } finally {
      c.close();
    }
    await expect(restoreJob(home, 1, path.join(scratch.dir, 'r1'))).rejects.toMatchObject({ code: 'E_EXPIRED' });
    await expect(restoreJob(home, 2, path.join(scratch.dir, 'r2'))).rejects.toMatchObject({ code: 'E_EXPIRED' });
    for (const j of [3, 4]) {
      await restoreJob(home, j, path.join(scratch.dir, `r${j}`));
      expect(
        crypto
          .createHash('sha256')
          .update(fs.readFileSync(path.join(scratch.dir, `r${j}`)))
          .digest('hex'),
      ).toBe(sums[j - 1]);
    }

    // The next backup writes to a freed cartridge (after the one it fills first).
    sums.push(await fill('db', 105));
    const [fifth] = await passAt(at(5)).run;
    expect(fifth).toMatchObject({ status: 'done', job: 5, expired: [3] });
    const c2 = Catalog.open(home);
    try {
      expect(c2.segments(5).some((s) => afterFourth!.includes(s.barcode))).toBe(true);
    } finally {
      c2.close();
    }
    await restoreJob(home, 5, path.join(scratch.dir, 'r5'));
    expect(
      crypto
        .createHash('sha256')
        .update(fs.readFileSync(path.join(scratch.dir, 'r5')))
        .digest('hex'),
    ).toBe(sums[4]);
    // By hand: nothing more to expire (keep 2: jobs 4 and 5).
    expect(expireJobs(home, { dryRun: true }).expired).toEqual([]);
  });

  it('catalog expire --dry-run lists what would go and changes nothing; a real pass then does it', async () => {
    library('lib', 16, 1, 4 * MiB);
    store.create('db', { size: 5 * MiB });
    addPolicy(home, { name: 'p', volumes: ['db'], every: '1h', library: 'lib' });
    for (let h = 1; h <= 3; h++) {
      await fill('db', h);
      await passAt(at(h)).run;
    }
    // keep is set afterwards: nothing expired yet.
    const c = Catalog.open(home);
    c.db.prepare(`UPDATE policies SET keep = 1`).run();
    c.close();
    const dry = expireJobs(home, { dryRun: true });
    expect(dry.expired.map((e) => e.job)).toEqual([2, 1]);
    expect(dry.freed.length).toBeGreaterThan(0);
    expect(jobs().map((j) => j.status)).toEqual(['done', 'done', 'done']);
    const real = expireJobs(home);
    expect(real.expired.map((e) => e.job)).toEqual([2, 1]);
    expect(real.freed.map((f) => f.barcode)).toEqual(dry.freed.map((f) => f.barcode));
    expect(jobs().map((j) => j.status)).toEqual(['expired', 'expired', 'done']);
  });
});
