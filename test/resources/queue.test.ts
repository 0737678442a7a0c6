/**
 * The wait queue for streams (src/resources/queue.ts) and waiting for streams other
 * jobs hold (src/resources/stream-wait.ts): oldest first, never a partial set held
 * while waiting, a bounded wait that ends with E_RESOURCES and nothing held.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { lockFile } from '../../src/catalog/liveness.js';
import type { PlexusError } from '../../src/errors.js';
import { jobAlive } from '../../src/resources/alive.js';
import { backupManagerLogFile } from '../../src/resources/log.js';
import { headOf, type Waiter, WaitQueue } from '../../src/resources/queue.js';
import { type WaitedStreams, waitForStreams } from '../../src/resources/stream-wait.js';
import { releaseAll } from '../../src/resources/streams.js';
import type { DriveClaim } from '../../src/tape/library.js';
import { job, library, notAvailable, useHome } from './helpers.js';

const h = useHome();

const waiter = (ticket: number, jobId: number): Waiter => ({ ticket, jobId, pid: 1, enqueuedAt: '', streams: 2, mover: 'server', library: null });

function withQueue<T>(fn: (q: WaitQueue) => T): T {
  const q = WaitQueue.open(h.home);
  try {
    return fn(q);
  } finally {
    q.close();
  }
}

const queued = (): number[] => withQueue((q) => q.waiters().map((w) => w.jobId));
const log = (): string => (fs.existsSync(backupManagerLogFile(h.home)) ? fs.readFileSync(backupManagerLogFile(h.home), 'utf8') : '');

/** Resolves once `cond` holds, checking every 10 ms (the waits tested here are event-driven, not timed). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** The busy drives of library `lib`. */
const busyDrives = (lib: ReturnType<typeof library>): number[] =>
  lib
    .drives()
    .filter((d) => d.busy)
    .map((d) => d.drive);

/** A promise's state without waiting for it. */
function track<T>(p: Promise<T>): { readonly settled: boolean; readonly promise: Promise<T> } {
  let settled = false;
  const promise = p.finally(() => {
    settled = true;
  });
  return {
    get settled() {
      return settled;
    },
    promise,
  };
}

describe('the order rule', () => {
  it('the head is the live waiter with the smallest ticket; only the dead before it are pruned', () => {
    const ws = [waiter(5, 50), waiter(2, 20), waiter(9, 90), waiter(3, 30)];
    expect(headOf(ws, () => true)).toEqual({ head: waiter(2, 20), dead: [] });
    expect(headOf(ws, (w) => w.jobId !== 20)).toEqual({ head: waiter(3, 30), dead: [waiter(2, 20)] });
    // Job 90 is dead too, but behind the head: it is not looked at.
    expect(headOf(ws, (w) => w.jobId === 50)).toEqual({ head: waiter(5, 50), dead: [waiter(2, 20), waiter(3, 30)] });
    expect(headOf(ws, () => false)).toEqual({ head: undefined, dead: [waiter(2, 20), waiter(3, 30), waiter(5, 50), waiter(9, 90)] });
    expect(headOf([], () => true)).toEqual({ head: undefined, dead: [] });
  });

  it('jobs are queued in the order they join; a waiter whose job ended is pruned by the next look', () => {
    const [a, b, c] = [job(h.home, 1), job(h.home, 2), job(h.home, 3)];
    withQueue((q) => {
      for (const id of [b, a, c]) q.join({ jobId: id, streams: 2, mover: 'server', library: null });
      expect(q.waiters().map((w) => w.jobId)).toEqual([2, 1, 3]);
      expect(q.turn(a)).toMatchObject({ head: { jobId: 2 }, ahead: 1 });
      expect(q.turn(c)).toMatchObject({ head: { jobId: 2 }, ahead: 2 });
      expect(q.turn(b)).toMatchObject({ head: { jobId: 2 }, ahead: 0 });
      // Joining again goes to the back.
      q.join({ jobId: b, streams: 2, mover: 'server', library: null });
      expect(q.waiters().map((w) => w.jobId)).toEqual([1, 3, 2]);
      q.leave(a);
      expect(q.turn(c)).toMatchObject({ head: { jobId: 3 }, ahead: 0 });
    });
    // A waiter whose process died (here: whose job ended, releasing its lock).
    const cat = Catalog.open(h.home);
    const dead = cat.startJob({ target: 'x', targetSize: 0 });
    withQueue((q) => {
      q.leave(b);
      q.leave(c);
      q.join({ jobId: dead, streams: 1, mover: 'copy-device', library: 'lib' });
      q.join({ jobId: c, streams: 2, mover: 'server', library: null });
    });
    cat.finishJob(dead, 'failed', 'gone');
    cat.close();
    withQueue((q) => {
      expect(q.turn(c)).toEqual({ head: expect.objectContaining({ jobId: c }), ahead: 0 });
      expect(q.waiters().map((w) => w.jobId)).toEqual([c]);
    });
  });
});

describe('liveness of waiters', () => {
  it('a job is alive while its lock is held, by this process or another; not once it ended', () => {
    const id = job(h.home, 1);
    const file = withQueue((q) => q.catalog.file);
    expect(jobAlive(file, id)).toBe(true);
    const c = Catalog.open(h.home);
    const ended = c.startJob({ target: 'x', targetSize: 0 });
    expect(jobAlive(file, ended)).toBe(true);
    // A lock file left behind, unlocked: found free by trying it.
    const left = lockFile(file, 'job', ended);
    c.finishJob(ended, 'failed', 'gone');
    c.close();
    expect(jobAlive(file, ended)).toBe(false);
    fs.writeFileSync(left, '12345');
    expect(jobAlive(file, ended)).toBe(false);
    expect(jobAlive(file, 99)).toBe(false);
  });

  it('a waiter whose entry went missing takes its place again under its ticket', () => {
    const [a, b] = [job(h.home, 1), job(h.home, 2)];
    withQueue((q) => {
      const mine = q.join({ jobId: a, streams: 2, mover: 'server', library: null });
      q.join({ jobId: b, streams: 2, mover: 'server', library: null });
      q.catalog.db.prepare(`DELETE FROM stream_waiters WHERE job_id = ?`).run(a);
      expect(q.turn(b)).toMatchObject({ head: { jobId: b }, ahead: 0 });
      expect(q.turn(a, mine)).toMatchObject({ head: { jobId: a, ticket: mine.ticket }, ahead: 0 });
      expect(q.waiters().map((w) => w.jobId)).toEqual([a, b]);
    });
  });
});

describe('waiting for streams', () => {
  it('holds nothing while it waits, and secures every stream at once when the holder lets go', async () => {
    const lib = library(h.home, 'lib', 2);
    const held = await lib.claimDrive({ timeoutMs: 0 });
    const lines: string[] = [];
    const w = track(waitForStreams(h.home, { jobId: job(h.home, 1), count: 2, waitMs: 60_000, onWait: (l) => lines.push(l) }));
    await until(() => lines.length > 0, 'job 1 waits');
    expect(lines[0]).toMatch(/^job 1: waiting up to 60 s for 2 server streams \(first in the queue\): secured 1 of 2 streams: no free drive in library lib \(2 drives, 2 in use\)$/);
    expect(queued()).toEqual([1]);
    // Between attempts: only the other holder's drive is busy, no cartridge and no row is held.
    for (let i = 0; i < 5; i++) {
      expect(busyDrives(lib)).toEqual([0]);
      expect(notAvailable(h.home)).toEqual(['lib/drive0:in-use']);
      for (const c of lib.config.cartridges) {
        const lock = lib.tryClaimCartridge(c.barcode);
        if (lock) lock.release();
        else expect(w.settled, `cartridge ${c.barcode} held while waiting`).toBe(true);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(w.settled).toBe(false);
    held.release();
    const { streams, waitedMs } = await w.promise;
    try {
      expect(streams.map((s) => s.driveName)).toEqual(['lib/drive0', 'lib/drive1']);
      expect(waitedMs).toBeGreaterThan(0);
      expect(queued()).toEqual([]);
    } finally {
      releaseAll(streams);
    }
    expect(log()).toMatch(/job 1: secured 2 server streams after waiting [\d.]+ s\n/);
    expect(notAvailable(h.home)).toEqual([]);
  });

  it('two jobs each needing both drives, started at once: both secure them, one after the other', async () => {
    library(h.home, 'lib', 2);
    const [a, b] = [job(h.home, 1), job(h.home, 2)];
    // Each releases its streams as soon as it has them: the other's turn comes then.
    const run = async (id: number): Promise<WaitedStreams> => {
      const r = await waitForStreams(h.home, { jobId: id, count: 2, waitMs: 60_000 });
      releaseAll(r.streams);
      return r;
    };
    const [ra, rb] = await Promise.all([run(a), run(b)]);
    expect([ra.streams.length, rb.streams.length]).toEqual([2, 2]);
    expect(Math.max(ra.waitedMs, rb.waitedMs)).toBeGreaterThan(0);
    expect(queued()).toEqual([]);
    expect(notAvailable(h.home)).toEqual([]);
  });

  it('serves the oldest waiter first: a later job needing less does not take what the head waits for', async () => {
    const lib = library(h.home, 'lib', 2);
    const claims: DriveClaim[] = [await lib.claimDrive({ timeoutMs: 0 }), await lib.claimDrive({ timeoutMs: 0 })];
    const told: number[] = [];
    const first = track(waitForStreams(h.home, { jobId: job(h.home, 1), count: 2, waitMs: 60_000, onWait: () => told.push(1) }));
    await until(() => told.includes(1), 'job 1 waits');
    const second = track(waitForStreams(h.home, { jobId: job(h.home, 2), count: 1, waitMs: 60_000, onWait: () => told.push(2) }));
    await until(() => told.includes(2), 'job 2 waits');
    expect(queued()).toEqual([1, 2]);
    for (const c of claims) c.release();
    const one = await first.promise;
    // Job 1 holds both drives: job 2, behind it, never took one of them.
    expect(one.streams.map((s) => s.driveName)).toEqual(['lib/drive0', 'lib/drive1']);
    expect(second.settled).toBe(false);
    expect(queued()).toEqual([2]);
    releaseAll(one.streams);
    const two = await second.promise;
    expect(two.streams).toHaveLength(1);
    expect(two.waitedMs).toBeGreaterThan(0);
    releaseAll(two.streams);
    expect(queued()).toEqual([]);
  });

  it('a bounded wait expires with E_RESOURCES, logged, holding nothing, out of the queue', async () => {
    const lib = library(h.home, 'lib', 2);
    const held = await lib.claimDrive({ timeoutMs: 0 });
    try {
      const e = (await waitForStreams(h.home, { jobId: job(h.home, 4), count: 2, waitMs: 300 }).catch((x: unknown) => x)) as PlexusError;
      expect(e).toMatchObject({ code: 'E_RESOURCES' });
      expect(e.message).toMatch(/^secured 1 of 2 streams: no free drive in library lib \(2 drives, 2 in use\); gave up after waiting 0\.\d\d s \(the stream wait\)$/);
      expect(busyDrives(lib)).toEqual([0]);
      expect(notAvailable(h.home)).toEqual(['lib/drive0:in-use']);
      expect(queued()).toEqual([]);
      expect(log()).toMatch(/job 4: cannot secure 2 server streams: secured 1 of 2 streams: .*gave up after waiting .*; released everything taken\n/);
    } finally {
      held.release();
    }
  });

  it('waitMs 0 fails at once, as before; and does not jump the queue', async () => {
    const lib = library(h.home, 'lib', 2);
    const held = await lib.claimDrive({ timeoutMs: 0 });
    const e = await waitForStreams(h.home, { jobId: job(h.home, 1), count: 2 }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'E_RESOURCES', message: 'secured 1 of 2 streams: no free drive in library lib (2 drives, 2 in use)' });
    expect(queued()).toEqual([]);
    held.release();
    // Job 2 waits (its first try found the drives held); job 3 asks for one stream without waiting.
    const again = await lib.claimDrive({ timeoutMs: 0 });
    const told: string[] = [];
    const waiting = track(waitForStreams(h.home, { jobId: job(h.home, 2), count: 2, waitMs: 60_000, onWait: (l) => told.push(l) }));
    await until(() => told.length > 0, 'job 2 waits');
    const e3 = await waitForStreams(h.home, { jobId: job(h.home, 3), count: 1, waitMs: 0 }).catch((x: unknown) => x);
    expect(e3).toMatchObject({ code: 'E_RESOURCES', message: 'secured 0 of 1 stream: job 2 waits for streams ahead of it (no wait asked)' });
    again.release();
    releaseAll((await waiting.promise).streams);
  });

  it('does not wait for what could never be secured: too few drives in service fails at once', async () => {
    const lib = library(h.home, 'lib', 1);
    const e = (await waitForStreams(h.home, { jobId: job(h.home, 1), count: 2, waitMs: 600_000 }).catch((x: unknown) => x)) as PlexusError;
    expect(e).toMatchObject({ code: 'E_RESOURCES' });
    expect(e.message).toMatch(
      /^secured 1 of 2 streams: no free drive in library lib \(1 drive, 1 in use\) \(only 1 of 2 streams even with every drive and cartridge free \(lib: 1 drive, 3 cartridges with room\)\)$/,
    );
    expect(queued()).toEqual([]);
    expect(busyDrives(lib)).toEqual([]);
    // Movers count too: three server streams, two servers.
    library(h.home, 'big', 3);
    const e2 = (await waitForStreams(h.home, { jobId: job(h.home, 2), count: 3, library: 'big', waitMs: 600_000 }).catch((x: unknown) => x)) as PlexusError;
    expect(e2.message).toMatch(/even with every mover and switch free: no available server/);
    expect(notAvailable(h.home)).toEqual([]);
  });

  it('a cancelled wait ends with E_CANCELLED, out of the queue, holding nothing', async () => {
    const lib = library(h.home, 'lib', 2);
    const held = await lib.claimDrive({ timeoutMs: 0 });
    const ac = new AbortController();
    const told: string[] = [];
    const w = waitForStreams(h.home, { jobId: job(h.home, 1), count: 2, waitMs: 60_000, signal: ac.signal, onWait: (l) => told.push(l) }).catch((x: unknown) => x);
    await until(() => told.length > 0, 'job 1 waits');
    ac.abort();
    expect(await w).toMatchObject({ code: 'E_CANCELLED', message: 'cancelled while waiting for streams' });
    expect(queued()).toEqual([]);
    expect(busyDrives(lib)).toEqual([0]);
    held.release();
  });

  it('refuses a bad wait with E_INVALID', async () => {
    library(h.home, 'lib', 2);
    for (const waitMs of [-1, 1.5, Number.NaN, 2 ** 31]) {
      await expect(waitForStreams(h.home, { jobId: job(h.home, 1), waitMs })).rejects.toMatchObject({ code: 'E_INVALID' });
    }
  });
});
