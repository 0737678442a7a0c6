/** `--background` on pair create and resync: return at once, then `pair wait` for PAIR. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PairInfo } from '../../../src/mirror/mirrors.js';
import { PlexSet } from '../../../src/mirror/plexset.js';
import { PairRecords } from '../../../src/mirror/record.js';
import { plexusAsync } from '../../helpers/home.js';
import { ok, useScratch } from '../cli-helpers.js';
import { alive, display, json, put, sum, until, volumes, waitFor } from './pair-helpers.js';

const s = useScratch();
const children: number[] = [];

// A detached copy must not outlive its test (its home is about to be removed).
afterEach(async () => {
  for (const pid of children.splice(0)) {
    if (!(await until(() => !alive(pid), 10_000))) process.kill(pid, 'SIGKILL');
  }
});

describe('background copies', () => {
  it('create --background returns before the copy is done; pair wait --state PAIR sees it through', async () => {
    await volumes(s.home, 16, 'p', 's');
    // Paced to 16 MiB/s, the copy takes about a second: the command returns while it
    // runs (still COPY), once the detached process (`pid`) owns the pair.
    const info = json<PairInfo & { pid: number }>(ok(s.home, 'pair', 'create', 'p', 's', '--background', '--max-rate', '16M', '--json').stdout);
    children.push(info.pid);
    expect(info).toMatchObject({ primary: 'p', secondary: 's', state: 'COPY', busy: true, operation: expect.objectContaining({ kind: 'copy', total: 16 << 20 }) });
    expect(info.pid).toBeGreaterThan(0);
    expect(info.pid).not.toBe(process.pid);

    waitFor(s.home, 'p', 'PAIR', 30);
    // Not busy: the process that finished has let go of the pair when wait returns.
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PAIR', operation: null, busy: false, dirtyBytes: 0 });
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
    // The copy was the detached process's, not the waiter's.
    expect(fs.readFileSync(path.join(s.home, 'pairs', 's.log'), 'utf8')).toMatch(/^resumed and resynced p → s: copied 16\.0 MiB/);
  });

  it('resync --background prints its process and resyncs the split pair', async () => {
    await volumes(s.home, 16, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    ok(s.home, 'pair', 'split', 'p');
    ok(s.home, 'volume', 'write', 'p', '--random', '8M', '--seed', '3', '--offset', '4M');
    put(s.home, 's', 0, 4096, 1);
    const r = json<{ background: boolean; pid: number }>(ok(s.home, 'pair', 'resync', 'p', '--background', '--json').stdout);
    expect(r.background).toBe(true);
    children.push(r.pid);
    waitFor(s.home, 'p', 'PAIR', 30);
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
    // Not busy: the process that finished has let go of the pair when wait returns.
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PAIR', operation: null, busy: false, dirtyBytes: 0 });
    expect(fs.readFileSync(path.join(s.home, 'pairs', 'p.log'), 'utf8')).toMatch(/^resynced p → s: copied 8\.06 MiB/);
  });

  it('a killed background copy is resumed by pair wait; concurrent waiters all see PAIR', async () => {
    await volumes(s.home, 16, 'p', 's');
    const info = json<{ pid: number }>(ok(s.home, 'pair', 'create', 'p', 's', '--background', '--max-rate', '1M', '--json').stdout);
    children.push(info.pid);
    const records = new PairRecords(path.join(s.home, 'pairs'));
    expect(PlexSet.isOpenElsewhere(records, 'p')).toBe(true); // create returned once the copy owned the pair
    process.kill(info.pid, 'SIGKILL');
    expect(await until(() => !PlexSet.isOpenElsewhere(records, 'p'), 10_000)).toBe(true);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'COPY', operation: expect.objectContaining({ kind: 'copy', interrupted: true }) });

    // Each waiter finds the copy stalled and tries to resume it; one does, the others
    // must keep waiting rather than fail on the lock.
    const waits = await Promise.all([1, 2, 3].map(() => plexusAsync(s.home, 'pair', 'wait', 'p', '--state', 'PAIR', '--timeout', '30')));
    for (const w of waits) expect([w.code, w.stdout, w.stderr]).toEqual([0, 'PAIR\n', '']);
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
    // Not busy: the process that finished has let go of the pair when wait returns.
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PAIR', operation: null, busy: false, dirtyBytes: 0 });
  });
});
