/** `pair wait` exit codes and `pair delete` back to SMPL. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { plexus } from '../../helpers/home.js';
import { expectFailure, listNames, ok, useScratch } from '../cli-helpers.js';
import { display, put, sum, volumes } from './pair-helpers.js';

const s = useScratch();

describe('plexus pair wait', () => {
  it('exits 0 once the state is reached, 3 on timeout, 1 (E_INVALID) for an unknown state', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    expect(ok(s.home, 'pair', 'wait', 'p', '--state', 'PAIR', '--timeout', '5').stdout).toBe('PAIR\n');

    const started = Date.now();
    const t = plexus(s.home, 'pair', 'wait', 'p', '--state', 'PSUS', '--timeout', '1');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect([t.code, t.stdout]).toEqual([3, '']);
    expect(t.stderr).toBe('plexus: timed out after 1 s waiting for PSUS (E_TIMEOUT)\n');

    expectFailure(plexus(s.home, 'pair', 'wait', 'p', '--state', 'SPLIT'), 'E_INVALID', "unknown state 'SPLIT'");
    expect(plexus(s.home, 'pair', 'wait', 'p').code).toBe(2); // --state is required: a usage error

    ok(s.home, 'pair', 'split', 'p');
    expect(ok(s.home, 'pair', 'wait', 'p', '--state', 'psus', '--timeout', '0').stdout).toBe('PSUS\n');
  });
});

describe('plexus pair delete', () => {
  it('dissolves the pair (SMPL): both volumes and their data stay; rm is refused while paired', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    expectFailure(plexus(s.home, 'volume', 'rm', 'p'), 'E_BUSY', 'volume p', 'p → s');
    expectFailure(plexus(s.home, 'volume', 'rm', 's'), 'E_BUSY', 'volume s', 'delete the pair first');
    const image = sum(s.home, 'p');

    expect(ok(s.home, 'pair', 'delete', 'p').stdout).toBe('deleted p → s\n');
    expect(display(s.home)).toEqual([]);
    expect(ok(s.home, 'pair', 'display').stdout).toBe('no pairs\n');
    expectFailure(plexus(s.home, 'pair', 'display', 'p'), 'E_NOENT', 'volume p');
    expect(listNames(s.home).sort()).toEqual(['p', 's']);
    expect(sum(s.home, 's')).toBe(image);
    // Nothing of the pair is left behind: no record, no bitmaps, no logs.
    const left = fs.readdirSync(path.join(s.home, 'pairs')).filter((f) => f.startsWith('s.'));
    expect(left).toEqual([]);

    // Simplex volumes: writes no longer mirror, the former secondary is writable, rm works.
    put(s.home, 'p', 0, 4096, 1);
    expect(sum(s.home, 's')).toBe(image);
    put(s.home, 's', 0, 4096, 2);
    ok(s.home, 'volume', 'rm', 's');
    expect(listNames(s.home)).toEqual(['p']);
  });
});
