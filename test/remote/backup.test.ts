/**
 * The remote backup coordinator (issue 12; MISSION B.4): freeze, sync-wait, split the
 * remote site's local mirror, thaw, back up the mirror to the remote site's library,
 * resync it, all while the remote pair stays in PAIR; the backup restored byte for byte.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expectFailure, ok, useScratch } from '../cli/cli-helpers.js';
import { plexus } from '../helpers/home.js';
import { fileDigest, makeSites, type Sites } from './sites.js';

const s = useScratch();
let sites: Sites | undefined;

afterEach(async () => {
  await sites?.cleanup();
  sites = undefined;
});

describe('remote backup', () => {
  it('backs up the remote copy from its split local mirror without suspending the remote pair', async () => {
    sites = makeSites(s.dir);
    const t = sites;
    ok(t.a, 'volume', 'create', 'v', '--size', '16M');
    ok(t.b, 'volume', 'create', 'v', '--size', '16M');
    ok(t.b, 'volume', 'create', 'm', '--size', '16M');
    ok(t.b, 'library', 'create', 'L', '--slots', '4', '--drives', '2', '--cartridge-size', '64M');
    await t.startB();
    await t.startA();
    ok(t.a, 'remote', 'pair', 'create', 'v', `${t.peer}/v`, '--group', 'g');
    // Without a local mirror at the remote there is nothing to split.
    expectFailure(plexus(t.a, 'remote', 'backup', '--group', 'g', '--library', 'L'), 'E_STATE', 'no local mirror');
    ok(t.b, 'pair', 'create', 'v', 'm');
    ok(t.a, 'volume', 'write', 'v', '--random', '12M', '--seed', '21');
    const frozen = path.join(s.dir, 'frozen');
    const thawed = path.join(s.dir, 'thawed');
    const r = JSON.parse(ok(t.a, 'remote', 'backup', '--group', 'g', '--library', 'L', '--freeze', `touch ${frozen}`, '--thaw', `touch ${thawed}`, '--json').stdout);
    expect(fs.existsSync(frozen) && fs.existsSync(thawed)).toBe(true);
    expect(r.freeze.status).toBe('ok');
    expect(r.thaw.status).toBe('ok');
    expect(r.frozenMs).toBeGreaterThanOrEqual(0);
    expect(r.remoteState).toBe('PAIR');
    expect(r.jobs).toHaveLength(1);
    expect(r.jobs[0].volume).toBe('m');
    // The remote pair never left PAIR; the local mirror at the remote is resynced.
    expect(JSON.parse(ok(t.a, 'remote', 'pair', 'display', '--json').stdout)[0].state).toBe('PAIR');
    const local = JSON.parse(ok(t.b, 'pair', 'display', 'v', '--json').stdout)[0];
    expect(local.state).toBe('PAIR');
    // The backup holds the primary as it was at the freeze.
    const out = path.join(s.dir, 'restored.img');
    ok(t.b, 'restore', String(r.jobs[0].job), '--to', out);
    expect(crypto.createHash('sha256').update(fs.readFileSync(out)).digest('hex')).toBe(fileDigest(t.a, 'v'));
    // Writes go on replicating afterwards.
    ok(t.a, 'volume', 'write', 'v', '--offset', '1M', '--random', '1M', '--seed', '22');
    expect(ok(t.a, 'sync-wait', '--group', 'g', '--timeout', '20').stdout).toMatch(/^DONE/);
    expect(fileDigest(t.b, 'v')).toBe(fileDigest(t.a, 'v'));
  });

  it('thaws the application and splits nothing when the sync-wait fails', async () => {
    sites = makeSites(s.dir);
    const t = sites;
    ok(t.a, 'volume', 'create', 'v', '--size', '8M');
    ok(t.b, 'volume', 'create', 'v', '--size', '8M');
    ok(t.b, 'volume', 'create', 'm', '--size', '8M');
    ok(t.b, 'library', 'create', 'L', '--slots', '4', '--drives', '1', '--cartridge-size', '64M');
    await t.startB();
    await t.startA();
    ok(t.a, 'remote', 'pair', 'create', 'v', `${t.peer}/v`, '--group', 'g');
    ok(t.b, 'pair', 'create', 'v', 'm');
    ok(t.a, 'pair', 'split', '--group', 'g');
    const thawed = path.join(s.dir, 'thawed');
    expectFailure(plexus(t.a, 'remote', 'backup', '--group', 'g', '--library', 'L', '--freeze', 'true', '--thaw', `touch ${thawed}`), 'E_STATE', 'BROKEN');
    expect(fs.existsSync(thawed)).toBe(true);
    expect(JSON.parse(ok(t.b, 'pair', 'display', 'v', '--json').stdout)[0].state).toBe('PAIR');
  });
});
