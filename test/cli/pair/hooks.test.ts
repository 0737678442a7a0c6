/** `plexus pair split --freeze/--thaw`: quiesce hooks around the split, their failures and timeouts. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PairInfo, SplitReport } from '../../../src/mirror/mirrors.js';
import { CLI, plexus } from '../../helpers/home.js';
import { expectFailure, ok, useScratch, volumeFiles } from '../cli-helpers.js';
import { display, json, sum, volumes } from './pair-helpers.js';

const s = useScratch();

/** A shell word for `text`. */
const q = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

describe('split hooks', () => {
  it('runs freeze before the split and thaw after it, and reports the frozen time', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    const log = path.join(s.dir, 'hooks.log');
    // Each hook records when it ran and what state the pair was in at that moment.
    const snap = (name: string): string => `echo ${name} >> ${q(log)} && ${q(process.execPath)} ${q(CLI)} --home ${q(s.home)} pair display p --json > ${q(path.join(s.dir, `${name}.json`))}`;
    const r = ok(s.home, 'pair', 'split', 'p', '--freeze', `${snap('freeze')} && sleep 0.2`, '--thaw', snap('thaw'), '--json');
    const report = json<SplitReport>(r.stdout);

    expect(fs.readFileSync(log, 'utf8')).toBe('freeze\nthaw\n');
    const during = (name: string): PairInfo => json<PairInfo[]>(fs.readFileSync(path.join(s.dir, `${name}.json`), 'utf8'))[0]!;
    expect(during('freeze').state).toBe('PAIR');
    expect(during('thaw')).toMatchObject({ state: 'PSUS', splitAt: report.splitAt });

    expect(report.freeze?.command).toContain('echo freeze');
    expect(report.thaw?.command).toContain('echo thaw');
    expect(report.frozenMs).toBeGreaterThanOrEqual(200 + report.thaw!.ms);
    expect(report.frozenMs).toBeGreaterThanOrEqual(report.freeze!.ms);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUS', frozenMs: report.frozenMs, splitAt: report.splitAt });

    ok(s.home, 'pair', 'resync', 'p');
    const plain = ok(s.home, 'pair', 'split', 'p', '--freeze', 'true', '--thaw', 'true');
    expect(plain.stdout).toMatch(/^split p → s at \S+; freeze ok in \d+ ms, thaw ok in \d+ ms; frozen for \d+ ms\n$/);
    expect(report.freeze).toMatchObject({ status: 'ok', exitCode: 0, signal: null });
    expect(report.thaw).toMatchObject({ status: 'ok', exitCode: 0, signal: null });
  });

  it('a failing freeze command aborts the split (E_HOOK); the pair stays in PAIR', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    expectFailure(plexus(s.home, 'pair', 'split', 'p', '--freeze', 'exit 1'), 'E_HOOK', 'freeze', 'exit 1');
    expectFailure(plexus(s.home, 'pair', 'split', 'p', '--freeze', 'echo db busy >&2; exit 4'), 'E_HOOK', 'exit 4', 'db busy');
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PAIR', splitAt: null });
    // Still mirrored: a write reaches the secondary.
    ok(s.home, 'volume', 'write', 'p', '--pattern', '5', '--length', '4K');
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
  });

  it('a freeze that outlives --hook-timeout fails with E_TIMEOUT promptly; the pair stays in PAIR', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    const started = Date.now();
    const r = plexus(s.home, 'pair', 'split', 'p', '--freeze', 'sleep 8; echo late', '--hook-timeout', '1');
    const elapsed = Date.now() - started;
    expectFailure(r, 'E_TIMEOUT', 'freeze', '1000 ms');
    // The command returns at the timeout, not when the hook's children end; they are killed.
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(5000);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PAIR', splitAt: null });
  });

  it('a failing thaw reports E_HOOK but the split has happened', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    expectFailure(plexus(s.home, 'pair', 'split', 'p', '--thaw', 'exit 3'), 'E_HOOK', 'the pairs were split', 'thaw');
    expect(display(s.home, 'p')[0]!.state).toBe('PSUS');
  });

  it('a freeze killed by a signal settles: E_HOOK naming the hook and the signal, no thaw, no marker left, still in PAIR', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    const thawed = path.join(s.dir, 'thawed');
    const r = plexus(s.home, 'pair', 'split', 'p', '--freeze', 'kill -9 $$', '--thaw', `touch ${q(thawed)}`);
    expectFailure(r, 'E_HOOK', 'freeze command was killed by signal SIGKILL', 'kill -9', 'not split', 'thaw was not run');
    expect(r.code).toBe(1);
    expect(fs.existsSync(thawed)).toBe(false);
    expect(fs.readdirSync(path.join(s.home, 'pairs')).filter((f) => f.endsWith('.open'))).toEqual([]);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PAIR', splitAt: null });
    ok(s.home, 'volume', 'write', 'p', '--pattern', '6', '--length', '4K');
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
  });

  it('a thaw killed by a signal settles: E_HOOK after the split, and the marker is gone', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    const r = plexus(s.home, 'pair', 'split', 'p', '--freeze', 'true', '--thaw', 'kill -TERM $$');
    expectFailure(r, 'E_HOOK', 'the pairs were split', 'thaw command was killed by signal SIGTERM');
    expect(fs.readdirSync(path.join(s.home, 'pairs')).filter((f) => f.endsWith('.open'))).toEqual([]);
    expect(display(s.home, 'p')[0]!.state).toBe('PSUS');
  });

  it('once the freeze succeeded the thaw runs even when the split fails', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    const thawed = path.join(s.dir, 'thawed');
    // The freeze makes the pair record impossible to replace (a directory where it
    // goes; the record itself is kept aside), so the split fails after the freeze succeeded.
    const blocker = path.join(s.home, 'pairs', 's.pair.json');
    const kept = `${blocker}.kept`;
    const r = plexus(s.home, 'pair', 'split', 'p', '--freeze', `mv ${q(blocker)} ${q(kept)} && mkdir ${q(blocker)}`, '--thaw', `touch ${q(thawed)}`);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain('the pairs were not split');
    expect(r.stderr).toContain('the thaw ran');
    expect(fs.existsSync(thawed)).toBe(true);
    fs.rmdirSync(blocker);
    fs.renameSync(kept, blocker);
    expect(fs.readdirSync(path.join(s.home, 'pairs')).filter((f) => f.endsWith('.open'))).toEqual([]);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PAIR', splitAt: null });
    // Still mirrored, and splittable.
    ok(s.home, 'volume', 'write', 'p', '--pattern', '7', '--length', '4K');
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
    ok(s.home, 'pair', 'split', 'p');
  });

  it('a split that fails after the freeze (a secondary gone) still runs the thaw, or freezes nothing', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    const img = volumeFiles(s.home, 's').img;
    fs.renameSync(img, `${img}.away`);
    const frozen = path.join(s.dir, 'frozen');
    const thawed = path.join(s.dir, 'thawed');
    const r = plexus(s.home, 'pair', 'split', 'p', '--freeze', `touch ${q(frozen)}`, '--thaw', `touch ${q(thawed)}`);
    expect(r.code, r.stderr).toBe(1);
    // Either nothing was frozen, or what was frozen was thawed: never frozen and left so.
    expect(fs.existsSync(frozen) && !fs.existsSync(thawed), r.stderr).toBe(false);
    expect(fs.readdirSync(path.join(s.home, 'pairs')).filter((f) => f.endsWith('.open'))).toEqual([]);
    fs.renameSync(`${img}.away`, img);
  });

  it('a hook that leaves a background child does not keep the command alive', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    const started = Date.now();
    const r = plexus(s.home, 'pair', 'split', 'p', '--freeze', 'sleep 6 & exit 0', '--thaw', 'sleep 6 & true');
    const elapsed = Date.now() - started;
    expect(r.code, r.stderr).toBe(0);
    expect(elapsed).toBeLessThan(4000);
    expect(display(s.home, 'p')[0]!.state).toBe('PSUS');
  });

  it('a hook whose tool is missing fails with E_HOOK (exit 127)', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    expectFailure(plexus(s.home, 'pair', 'split', 'p', '--freeze', 'exec /nonexistent/freeze-tool'), 'E_HOOK', 'freeze command failed with exit 127');
    expect(display(s.home, 'p')[0]!.state).toBe('PAIR');
  });
});
