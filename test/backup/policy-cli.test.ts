/**
 * The policy commands through the CLI (spawned): `backup policy add|list|show|enable|
 * disable|remove`, `backup plan`, `backup schedule run-due --now` firing policies,
 * `catalog expire`, and the agent firing a policy on its timer (and cancelling its
 * backups when it stops: due again). TZ=UTC so the windows' local times are the ISO
 * times written here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Home } from '../../src/home/home.js';
import { Library } from '../../src/tape/library.js';
import { startAgent, stopAgent } from '../agent/agent-helpers.js';
import { expectFailure, ok, useScratch } from '../cli/cli-helpers.js';
import { plexus } from '../helpers/home.js';

process.env.TZ = 'UTC';
const s = useScratch();

function setUp(): void {
  ok(s.home, 'init');
  for (const v of ['a', 'b', 'c']) {
    ok(s.home, 'volume', 'create', v, '--size', '1M');
    ok(s.home, 'volume', 'write', v, '--random', '1M', '--seed', String(v.charCodeAt(0)));
  }
  ok(s.home, 'library', 'create', 'lib', '--slots', '8', '--drives', '2', '--cartridge-size', '4M');
}

const json = <T>(...args: string[]): T => JSON.parse(ok(s.home, ...args, '--json').stdout) as T;

interface Outcome {
  policy?: string;
  volume?: string;
  status: string;
  job?: number;
  expired?: number[];
}

describe('backup policy through the CLI', () => {
  it('add, list, plan, fire with run-due --now, retention, show, disable, remove', () => {
    setUp();
    expect(ok(s.home, 'backup', 'policy', 'add', 'nightly', '--volumes', 'a', 'b', 'c', '--every', '1d', '--window', '01:00-05:00', '--library', 'lib', '--keep', '1').stdout).toBe(
      'policy nightly: a, b, c every 1d in 01:00-05:00 to lib (single), keeping 1 jobs per volume\n',
    );
    expect(json<Array<{ name: string; volumes: string[]; everyS: number; window: string; keep: number; enabled: boolean }>>('backup', 'policy', 'list')).toEqual([
      expect.objectContaining({ name: 'nightly', volumes: ['a', 'b', 'c'], everyS: 86_400, window: '01:00-05:00', keep: 1, enabled: true }),
    ]);

    // Tonight's plan at 00:30: the three start at the opening, two drives, then the third.
    const plan = json<{
      runs: Array<{ volume: string; start: string; lanes: number[]; bytes: number; fits: boolean; bytesSource: string }>;
      warnings: string[];
      libraries: Array<{ source: string; drives: number }>;
    }>('backup', 'plan', '--now', '2026-01-10T00:30Z');
    expect(plan.runs.map((r) => [r.volume, r.lanes, r.fits, r.bytesSource])).toEqual([
      ['a', [1], true, 'allocated'],
      ['b', [2], true, 'allocated'],
      ['c', [1], true, 'allocated'],
    ]);
    expect(plan.runs[0]!.start).toBe('2026-01-10T01:00:00.000Z');
    expect(plan.runs.every((r) => r.bytes === 1 << 20)).toBe(true);
    expect(plan.libraries).toEqual([expect.objectContaining({ source: 'default', drives: 2 })]);
    expect(plan.warnings).toEqual(['library lib has no finished job to measure: its throughput is assumed to be 100 MiB/s']);
    const text = ok(s.home, 'backup', 'plan', '--now', '2026-01-10T00:30Z').stdout;
    expect(text).toMatch(/^START +END +POLICY +VOLUME +LIBRARY +DRIVE +DATA +CHANGED +TIME +IN WINDOW\n2026-01-10 01:00 /);
    expect(text).toContain('3 backups, 3.00 MiB');
    expect(text).toContain('warning: library lib has no finished job to measure');

    expect(ok(s.home, 'backup', 'schedule', 'run-due', '--now', '2026-01-10T00:30Z').stdout).toBe('nothing due\n');
    const fired = json<Outcome[]>('backup', 'schedule', 'run-due', '--now', '2026-01-10T01:00Z');
    expect(fired.map((o) => [o.policy, o.volume, o.status]).sort()).toEqual([
      ['nightly', 'a', 'done'],
      ['nightly', 'b', 'done'],
      ['nightly', 'c', 'done'],
    ]);
    expect(ok(s.home, 'backup', 'schedule', 'run-due', '--now', '2026-01-10T04:00Z').stdout).toBe('nothing due\n');
    const later = json<{ runs: Array<{ start: string }>; libraries: Array<{ source: string }> }>('backup', 'plan', '--now', '2026-01-10T04:00Z');
    expect(later.runs.map((r) => r.start.slice(0, 16))).toEqual(['2026-01-11T01:00', '2026-01-11T01:00', '2026-01-11T01:00']);
    expect(later.libraries[0]!.source).toBe('measured');

    // The next night: backed up again, and keep 1 expires the first night's jobs.
    const again = ok(s.home, 'backup', 'schedule', 'run-due', '--now', '2026-01-11T01:10Z').stdout.trim().split('\n').sort();
    expect(again).toHaveLength(3);
    for (const line of again) expect(line).toMatch(/^policy nightly: backup of [abc]: done, job [456]; expired job [123]/);
    const expired = json<Array<{ id: number; target: string }>>('catalog', 'jobs', '--status', 'expired');
    expect(expired.map((j) => j.id).sort()).toEqual([1, 2, 3]);
    expectFailure(plexus(s.home, 'restore', '1', '--to', path.join(s.dir, 'r1')), 'E_EXPIRED', 'job 1');
    ok(s.home, 'restore', '4', '--to', path.join(s.dir, 'r4'));
    expect(fs.statSync(path.join(s.dir, 'r4')).size).toBe(1 << 20);
    expect(ok(s.home, 'catalog', 'expire', '--dry-run').stdout).toBe('nothing to expire\n');

    const shown = json<{ volumes: Array<{ volume: string; last: { status: string; jobId: number }; nextDue: string }>; runs: unknown[] }>('backup', 'policy', 'show', 'nightly');
    expect(shown.volumes.map((v) => v.last.status)).toEqual(['done', 'done', 'done']);
    expect(shown.runs).toHaveLength(6);
    expect(ok(s.home, 'backup', 'policy', 'show', 'nightly').stdout).toMatch(/^policy: +nightly\n/);

    ok(s.home, 'backup', 'policy', 'disable', 'nightly');
    expect(ok(s.home, 'backup', 'plan').stdout).toBe('nothing planned: no enabled backup policy (disabled: nightly)\n');
    expect(ok(s.home, 'backup', 'schedule', 'run-due', '--now', '2026-01-12T01:00Z').stdout).toBe('nothing due\n');
    ok(s.home, 'backup', 'policy', 'enable', 'nightly');
    expect(ok(s.home, 'backup', 'policy', 'remove', 'nightly').stdout).toBe('removed policy nightly\n');
    expect(ok(s.home, 'backup', 'policy', 'list').stdout).toBe('no backup policies\n');
    expect(json<unknown[]>('catalog', 'jobs')).toHaveLength(6);
  });

  it('the plan shows what changed since the checkpoint where a bitmap records it, and says so where none does', () => {
    setUp();
    ok(s.home, 'volume', 'create', 'a2', '--size', '1M');
    ok(s.home, 'pair', 'create', 'a', 'a2');
    ok(s.home, 'pair', 'checkpoint', 'a');
    ok(s.home, 'volume', 'write', 'a', '--pattern', '0x11', '--length', '64K', '--offset', '128K');
    ok(s.home, 'backup', 'policy', 'add', 'p', '--volumes', 'a', 'b', '--every', '6h', '--library', 'lib');
    const plan = json<{ runs: Array<{ volume: string; changed: { bytes: number; since: string } | null }> }>('backup', 'plan', '--now', '2026-01-10T07:00Z');
    expect(plan.runs.map((r) => [r.volume, r.changed])).toEqual([
      ['a', { bytes: 64 << 10, since: 'checkpoint 1' }],
      ['b', null],
    ]);
    expect(ok(s.home, 'backup', 'plan', '--now', '2026-01-10T07:00Z').stdout).toMatch(/64.0 KiB since checkpoint 1[\s\S]*no bitmap/);
  });

  it('bad input: names, intervals, windows, volumes, targets, modes', () => {
    setUp();
    const add = (...args: string[]) => plexus(s.home, 'backup', 'policy', 'add', ...args);
    ok(s.home, 'backup', 'policy', 'add', 'p', '--volumes', 'a', '--every', '6h', '--library', 'lib');
    expectFailure(add('p', '--volumes', 'a', '--every', '6h', '--library', 'lib'), 'E_EXISTS', 'p');
    expectFailure(add('q', '--volumes', 'a', '--every', '7h', '--library', 'lib'), 'E_INVALID', '7h');
    expectFailure(add('q', '--volumes', 'a', '--every', '1d', '--window', '05:00-05:00', '--library', 'lib'), 'E_INVALID', '05:00-05:00');
    expectFailure(add('q', '--volumes', 'ghost', '--every', '1d', '--library', 'lib'), 'E_NOENT', 'ghost');
    expectFailure(add('q', '--volumes', 'a', 'a', '--every', '1d', '--library', 'lib'), 'E_INVALID', 'twice');
    expectFailure(add('q', '--volumes', 'a', '--every', '1d', '--library', 'nolib'), 'E_NOENT', 'nolib');
    expectFailure(add('q', '--volumes', 'a', '--every', '1d'), 'E_INVALID', '--library NAME or --disk DIR');
    expectFailure(add('q', '--volumes', 'a', '--every', '1d', '--library', 'lib', '--disk', s.dir), 'E_INVALID', 'one target');
    expectFailure(add('q', '--volumes', 'a', '--every', '1d', '--disk', path.join(s.dir, 'nowhere')), 'E_NOENT', 'library create NAME --disk');
    // A tape library's directory is not a disk library's.
    expectFailure(add('q', '--volumes', 'a', '--every', '1d', '--disk', path.join(s.home, 'libraries', 'lib')), 'E_NOENT', 'no disk library');
    expectFailure(add('q', '--volumes', 'a', '--every', '1d', '--library', 'lib', '--mode', 'parallel', '--streams', '3'), 'E_INVALID', '3 drives');
    expectFailure(add('q', '--volumes', 'a', '--every', '1d', '--library', 'lib', '--streams', '2'), 'E_INVALID', '--streams');
    expectFailure(add('q', '--volumes', 'a', '--every', '1d', '--library', 'lib', '--keep', '0'), 'E_INVALID', '--keep');
    expectFailure(add('_x', '--volumes', 'a', '--every', '1d', '--library', 'lib'), 'E_INVALID');
    expectFailure(plexus(s.home, 'backup', 'policy', 'show', 'nope'), 'E_NOENT', 'nope');
    expectFailure(plexus(s.home, 'backup', 'policy', 'remove', 'nope'), 'E_NOENT', 'nope');
    expectFailure(plexus(s.home, 'backup', 'plan', '--now', 'soonish'), 'E_INVALID', 'soonish');
    expectFailure(plexus(s.home, 'catalog', 'expire', '--policy', 'nope'), 'E_NOENT', 'nope');
  });

  it('the agent fires a due policy on its timer: its backups are agent jobs, recorded as the runs', async () => {
    setUp();
    ok(s.home, 'backup', 'policy', 'add', 'nightly', '--volumes', 'a', 'b', 'c', '--every', '1d', '--window', '01:00-05:00', '--library', 'lib');
    const saved = { now: process.env.PLEXUS_NOW, tick: process.env.PLEXUS_POLICY_TICK_MS };
    process.env.PLEXUS_NOW = '2026-01-10T01:00:00Z';
    process.env.PLEXUS_POLICY_TICK_MS = '200';
    const agent = await startAgent(s.home);
    try {
      let runs: Array<{ status: string }> = [];
      for (let i = 0; i < 150 && !(runs.length === 3 && runs.every((r) => r.status === 'done')); i++) {
        await new Promise((r) => setTimeout(r, 200));
        runs = json<{ runs: Array<{ status: string }> }>('backup', 'policy', 'show', 'nightly').runs;
      }
      expect(runs.map((r) => r.status)).toEqual(['done', 'done', 'done']);
      const jobs = json<Array<{ kind: string; target: string; state: string }>>('jobs');
      expect(
        jobs
          .filter((j) => j.kind === 'policy-backup')
          .map((j) => [j.target, j.state])
          .sort(),
      ).toEqual([
        ['a', 'done'],
        ['b', 'done'],
        ['c', 'done'],
      ]);
      // Fired once in the slot, however many ticks pass.
      await new Promise((r) => setTimeout(r, 600));
      expect(json<{ runs: unknown[] }>('backup', 'policy', 'show', 'nightly').runs).toHaveLength(3);
    } finally {
      process.env.PLEXUS_NOW = saved.now;
      process.env.PLEXUS_POLICY_TICK_MS = saved.tick;
      if (saved.now === undefined) delete process.env.PLEXUS_NOW;
      if (saved.tick === undefined) delete process.env.PLEXUS_POLICY_TICK_MS;
      expect(await stopAgent(agent)).toBe(0);
    }
    expect(agent.log().some((l) => l.event === 'policy-pass')).toBe(true);
  });

  it('stopping the agent cancels its policy backups (here waiting for drives held elsewhere): recorded cancelled, due again, run by run-due', async () => {
    setUp();
    ok(s.home, 'backup', 'policy', 'add', 'nightly', '--volumes', 'a', 'b', '--every', '1d', '--window', '01:00-05:00', '--library', 'lib');
    // Both drives held by this process: the agent's backups wait for one.
    const lib = Library.open(Home.open(s.home, { create: false }), 'lib');
    const held = [await lib.claimDrive(), await lib.claimDrive()];
    const saved = { now: process.env.PLEXUS_NOW, tick: process.env.PLEXUS_POLICY_TICK_MS };
    process.env.PLEXUS_NOW = '2026-01-10T01:00:00Z';
    process.env.PLEXUS_POLICY_TICK_MS = '200';
    let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
    try {
      agent = await startAgent(s.home);
      let running: Array<{ kind: string; state: string }> = [];
      for (let i = 0; i < 150 && running.filter((j) => j.kind === 'policy-backup' && j.state === 'running').length < 2; i++) {
        await new Promise((r) => setTimeout(r, 100));
        running = json<Array<{ kind: string; state: string }>>('jobs');
      }
      expect(running.filter((j) => j.kind === 'policy-backup' && j.state === 'running')).toHaveLength(2);
      expect(await stopAgent(agent)).toBe(0);
      agent = undefined;
    } finally {
      process.env.PLEXUS_NOW = saved.now;
      process.env.PLEXUS_POLICY_TICK_MS = saved.tick;
      if (saved.now === undefined) delete process.env.PLEXUS_NOW;
      if (saved.tick === undefined) delete process.env.PLEXUS_POLICY_TICK_MS;
      if (agent) await stopAgent(agent);
      for (const d of held) d.release();
    }
    const runs = json<{ runs: Array<{ status: string; outcome: string }> }>('backup', 'policy', 'show', 'nightly').runs;
    expect(runs.map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
    expect(runs.every((r) => r.outcome.startsWith('E_CANCELLED: ') && r.outcome.endsWith('(due again)'))).toBe(true);
    const fired = json<Outcome[]>('backup', 'schedule', 'run-due', '--now', '2026-01-10T01:30Z');
    expect(fired.map((o) => [o.volume, o.status]).sort()).toEqual([
      ['a', 'done'],
      ['b', 'done'],
    ]);
  });
});
