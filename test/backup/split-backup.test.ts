/**
 * `plexus backup run PRIMARY --from-mirror` (JP 2002-041345, Fig. 2): freeze, split,
 * thaw, back up the split image, resync, in one command; a failure injected at each
 * step leaves the application thawed and the pair whole (resynced, or split and
 * resyncable); staging; hooks around a plain backup.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checksum, expectFailure, ok, sha256, useScratch } from '../cli/cli-helpers.js';
import { plexus } from '../helpers/home.js';

const s = useScratch();

afterEach(() => {
  delete process.env.PLEXUS_FAILPOINTS;
});

interface FlowReport {
  primary: string;
  plex: string;
  source: string;
  frozenMs: number;
  backup: { job: number; bytes: number; consistency: string };
  resync: Array<{ bytesCopied: number }>;
  steps: Array<{ step: string; ok: boolean }>;
}

/** A library and a pair p → s in PAIR holding 8 MiB of seeded data; returns the hook log's path. */
function setup(): string {
  ok(s.home, 'library', 'create', 'lib', '--slots', '4', '--drives', '1', '--cartridge-size', '64M', '--block-size', '64K');
  ok(s.home, 'volume', 'create', 'p', '--size', '8M');
  ok(s.home, 'volume', 'create', 's', '--size', '8M');
  ok(s.home, 'volume', 'write', 'p', '--random', '8M', '--seed', '3');
  ok(s.home, 'pair', 'create', 'p', 's');
  return path.join(s.dir, 'hooks.log');
}

const hooks = (log: string, freeze = `echo freeze >> ${log}`): string[] => ['--freeze', freeze, '--thaw', `echo thaw >> ${log}`];
const hookLog = (log: string): string[] => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : []);
const pairState = (): { state: string; dirtyBytes: number } => (JSON.parse(ok(s.home, 'pair', 'display', 'p', '--json').stdout) as Array<{ state: string; dirtyBytes: number }>)[0]!;
const jobs = (): Array<{ id: number; status: string; target: string }> => JSON.parse(ok(s.home, 'catalog', 'jobs', '--json').stdout);

describe('backup run --from-mirror', () => {
  it('freezes, splits, thaws, backs up the split image and resyncs, in one command', () => {
    const log = setup();
    const image = checksum(s.home, 'p');
    const r = JSON.parse(ok(s.home, 'backup', 'run', 'p', '--from-mirror', ...hooks(log), '--json').stdout) as FlowReport;
    expect(r.steps.map((x) => [x.step, x.ok])).toEqual([
      ['freeze', true],
      ['split', true],
      ['thaw', true],
      ['backup', true],
      ['resync', true],
    ]);
    expect([r.primary, r.plex, r.source]).toEqual(['p', 's', 's']);
    expect(r.frozenMs).toBeGreaterThan(0);
    expect(r.backup).toMatchObject({ bytes: 8 << 20, consistency: 'consistent' });
    expect(hookLog(log)).toEqual(['freeze', 'thaw']);
    expect(pairState()).toEqual(expect.objectContaining({ state: 'PAIR', dirtyBytes: 0 }));
    // The job restores the image as of the split.
    const out = path.join(s.dir, 'image');
    ok(s.home, 'restore', String(r.backup.job), '--to', out);
    expect(sha256(fs.readFileSync(out))).toBe(image);
    // The text report says what happened.
    ok(s.home, 'volume', 'write', 'p', '--random', '1M', '--seed', '4');
    expect(ok(s.home, 'backup', 'run', 'p', '--from-mirror').stdout).toMatch(/^split backup of p: s split at \S+, job 2 backed up 8\.00 MiB of s to \S+, pair resynced \(0 B copied\)\n$/);
  });

  it('a failure at each step leaves the application thawed and the pair whole', () => {
    const log = setup();
    // The freeze fails: nothing was frozen, so nothing is split and no thaw runs.
    expectFailure(plexus(s.home, 'backup', 'run', 'p', '--from-mirror', ...hooks(log, 'exit 3')), 'E_HOOK', 'freeze', 'not split');
    expect(hookLog(log)).toEqual([]);
    expect(pairState().state).toBe('PAIR');

    // The split fails after the freeze: the thaw runs, the pair stays in PAIR.
    process.env.PLEXUS_FAILPOINTS = 'pair-split';
    expectFailure(plexus(s.home, 'backup', 'run', 'p', '--from-mirror', ...hooks(log)), 'E_INJECTED', 'not split');
    expect(hookLog(log)).toEqual(['freeze', 'thaw']);
    expect(pairState().state).toBe('PAIR');

    // The backup fails: thawed long before, and the pair is resynced.
    process.env.PLEXUS_FAILPOINTS = 'split-backup.backup';
    ok(s.home, 'volume', 'write', 'p', '--random', '1M', '--seed', '5');
    expectFailure(plexus(s.home, 'backup', 'run', 'p', '--from-mirror', ...hooks(log)), 'E_INJECTED', 'thawed', 'resynced');
    expect(hookLog(log)).toEqual(['freeze', 'thaw', 'freeze', 'thaw']);
    expect(pairState()).toEqual(expect.objectContaining({ state: 'PAIR', dirtyBytes: 0 }));
    expect(checksum(s.home, 's')).toBe(checksum(s.home, 'p'));
    expect(jobs()).toEqual([]);

    // The resync fails: the job is kept, the pair stays split and resyncs on request.
    process.env.PLEXUS_FAILPOINTS = 'split-backup.resync';
    ok(s.home, 'volume', 'write', 'p', '--random', '1M', '--seed', '6');
    // (--json: the backup's own log lines stay off stderr, which then holds the error alone.)
    expectFailure(plexus(s.home, 'backup', 'run', 'p', '--from-mirror', ...hooks(log), '--json'), 'E_INJECTED', 'resyncable', 'pair resync p');
    expect(hookLog(log).slice(-2)).toEqual(['freeze', 'thaw']);
    expect(jobs()).toEqual([expect.objectContaining({ status: 'done', target: 's' })]);
    expect(pairState().state).toBe('PSUS');
    delete process.env.PLEXUS_FAILPOINTS;
    ok(s.home, 'volume', 'write', 'p', '--random', '1M', '--seed', '7');
    ok(s.home, 'pair', 'resync', 'p');
    expect(pairState()).toEqual(expect.objectContaining({ state: 'PAIR', dirtyBytes: 0 }));
    expect(checksum(s.home, 's')).toBe(checksum(s.home, 'p'));
  });

  it('refuses what it cannot do with one clear message', () => {
    setup();
    ok(s.home, 'volume', 'create', 'lone', '--size', '8M');
    expectFailure(plexus(s.home, 'backup', 'run', 'lone', '--from-mirror'), 'E_NOENT', 'no pair');
    expectFailure(plexus(s.home, 'backup', 'run', 'p', '--from-mirror', '--plex', 'x'), 'E_NOENT', 'p → x');
    ok(s.home, 'pair', 'split', 'p');
    expectFailure(plexus(s.home, 'backup', 'run', 'p', '--from-mirror'), 'E_STATE', 'PSUS');
    expectFailure(plexus(s.home, 'backup', 'run', 'lone', '--stage', 't'), 'E_INVALID', '--from-mirror');
  });

  it('with --stage: copies the split image, resyncs at once, backs up the copy', () => {
    setup();
    const image = checksum(s.home, 'p');
    const r = JSON.parse(ok(s.home, 'backup', 'run', 'p', '--from-mirror', '--stage', 'staged', '--json').stdout) as FlowReport;
    expect(r.steps.map((x) => x.step)).toEqual(['split', 'stage', 'backup']);
    expect(r.source).toBe('staged');
    expect(r.backup.consistency).toBe('consistent');
    expect(checksum(s.home, 'staged')).toBe(image);
    expect(pairState().state).toBe('PAIR');
    expect(jobs()[0]).toMatchObject({ target: 'staged', status: 'done' });
  });

  it("backs up only the primary's size of a larger secondary", () => {
    ok(s.home, 'library', 'create', 'lib', '--slots', '4', '--drives', '1', '--cartridge-size', '64M', '--block-size', '64K');
    ok(s.home, 'volume', 'create', 'p', '--size', '8M');
    ok(s.home, 'volume', 'create', 'big', '--size', '12M');
    ok(s.home, 'volume', 'write', 'p', '--random', '8M', '--seed', '3');
    ok(s.home, 'pair', 'create', 'p', 'big');
    const image = checksum(s.home, 'p');
    const r = JSON.parse(ok(s.home, 'backup', 'run', 'p', '--from-mirror', '--json').stdout) as FlowReport;
    expect(r.backup.bytes).toBe(8 << 20);
    // So the job restores straight back into the primary.
    ok(s.home, 'volume', 'write', 'p', '--random', '1M', '--seed', '9');
    ok(s.home, 'pair', 'split', 'p');
    ok(s.home, 'restore', String(r.backup.job), '--to-volume', 'p');
    expect(checksum(s.home, 'p')).toBe(image);
    ok(s.home, 'pair', 'resync', 'p');
    expect(checksum(s.home, 'big', '--length', '8M')).toBe(checksum(s.home, 'p'));
  });

  it('borrows a free volume from a pool when the primary has no pair, and gives it back however it ends', () => {
    ok(s.home, 'library', 'create', 'lib', '--slots', '4', '--drives', '1', '--cartridge-size', '64M', '--block-size', '64K');
    ok(s.home, 'volume', 'create', 'p', '--size', '8M');
    ok(s.home, 'volume', 'write', 'p', '--random', '8M', '--seed', '3');
    ok(s.home, 'volume', 'create', 'tiny', '--size', '4M');
    ok(s.home, 'volume', 'create', 'spare', '--size', '8M');
    const image = checksum(s.home, 'p');
    const pairs = (): unknown[] => JSON.parse(ok(s.home, 'pair', 'display', '--json').stdout) as unknown[];
    const r = JSON.parse(ok(s.home, 'backup', 'run', 'p', '--from-mirror', '--pool', 'tiny,spare', '--json').stdout) as FlowReport;
    expect(r.steps.map((x) => x.step)).toEqual(['pair', 'split', 'backup', 'return']);
    expect([r.plex, r.source, r.backup.consistency]).toEqual(['spare', 'spare', 'consistent']);
    expect(pairs()).toEqual([]);
    const out = path.join(s.dir, 'pooled');
    ok(s.home, 'restore', String(r.backup.job), '--to', out);
    expect(sha256(fs.readFileSync(out))).toBe(image);

    // A failed backup still gives the volume back.
    process.env.PLEXUS_FAILPOINTS = 'split-backup.backup';
    expectFailure(plexus(s.home, 'backup', 'run', 'p', '--from-mirror', '--pool', 'spare'), 'E_INJECTED', 'back to the pool');
    delete process.env.PLEXUS_FAILPOINTS;
    expect(pairs()).toEqual([]);
    // Nothing free and large enough.
    expectFailure(plexus(s.home, 'backup', 'run', 'p', '--from-mirror', '--pool', 'tiny,ghost'), 'E_RESOURCES', 'tiny is smaller', 'ghost does not exist');
  });

  it('runs hooks around a plain backup too, and thaws when the backup fails', () => {
    const log = setup();
    ok(s.home, 'volume', 'create', 'v', '--size', '4M');
    const r = JSON.parse(ok(s.home, 'backup', 'run', 'v', ...hooks(log), '--json').stdout) as { job: number; frozenMs: number };
    expect(r.frozenMs).toBeGreaterThan(0);
    expect(hookLog(log)).toEqual(['freeze', 'thaw']);
    expectFailure(plexus(s.home, 'backup', 'run', 'v', '--library', 'nolib', ...hooks(log)), 'E_NOENT', 'nolib', 'thaw ran');
    expect(hookLog(log)).toEqual(['freeze', 'thaw', 'freeze', 'thaw']);
  });
});
