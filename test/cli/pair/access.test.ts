/**
 * Access to a secondary through the CLI: refused while it is mirrored, read-only and
 * host access lists once split (`--host` names the host asking).
 */
import { describe, expect, it } from 'vitest';
import { plexus } from '../../helpers/home.js';
import { checksum, expectFailure, ok, useScratch } from '../cli-helpers.js';
import { display, put, sum, volumes } from './pair-helpers.js';

const s = useScratch();

describe('secondary access', () => {
  it('the secondary of a pair in PAIR can be read but not written (E_STATE)', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    const before = sum(s.home, 's');
    expectFailure(plexus(s.home, 'volume', 'write', 's', '--pattern', '1', '--length', '4K'), 'E_STATE', 'volume s', 'PAIR');
    expect(sum(s.home, 's')).toBe(before);
    expect(checksum(s.home, 's')).toBe(before);
  });

  it('split --read-only: writes to the secondary fail with E_READONLY, reads work, the primary stays writable', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    ok(s.home, 'pair', 'split', 'p', '--read-only');
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUS', readOnly: true, allow: [] });
    const image = sum(s.home, 's');
    expectFailure(plexus(s.home, 'volume', 'write', 's', '--pattern', '1', '--length', '4K'), 'E_READONLY', 'volume s', 'read-only');
    expect(sum(s.home, 's')).toBe(image);
    expect(checksum(s.home, 's')).toBe(image);
    put(s.home, 'p', 0, 4096, 1);
    expect(sum(s.home, 'p')).not.toBe(image);

    // A resync clears the attribute; the next split without --read-only is writable.
    ok(s.home, 'pair', 'resync', 'p');
    ok(s.home, 'pair', 'split', 'p');
    put(s.home, 's', 0, 4096, 2);
  });

  it('split --allow hostA: other hosts get E_ACCESS naming volume and host; hostA reads and writes', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    ok(s.home, 'pair', 'split', 'p', '--allow', 'hostA');
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUS', readOnly: false, allow: ['hostA'] });
    const image = sum(s.home, 'p');

    expectFailure(plexus(s.home, '--host', 'hostB', 'volume', 'checksum', 's'), 'E_ACCESS', 'volume s', 'hostB');
    expectFailure(plexus(s.home, '--host', 'hostB', 'volume', 'read', 's', '--length', '16'), 'E_ACCESS', 'volume s', 'hostB');
    expectFailure(plexus(s.home, '--host', 'hostB', 'volume', 'write', 's', '--pattern', '1', '--length', '16'), 'E_ACCESS', 'volume s', 'hostB');
    expect(ok(s.home, '--host', 'hostA', 'volume', 'checksum', 's').stdout).toBe(`${image}\n`);
    put(s.home, 's', 0, 16, 3, '--host', 'hostA');
    expect(sum(s.home, 's')).not.toBe(image);
    // The list guards the secondary only: any host may use the primary.
    put(s.home, 'p', 0, 16, 4, '--host', 'hostB');
  });

  it('--read-only with --allow: the allowed host may read but not write', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    ok(s.home, 'pair', 'split', 'p', '--read-only', '--allow', 'backup1', 'backup2');
    expect(display(s.home, 'p')[0]).toMatchObject({ readOnly: true, allow: ['backup1', 'backup2'] });
    expect(ok(s.home, 'pair', 'display').stdout).toContain('ro allow=backup1,backup2');
    expectFailure(plexus(s.home, '--host', 'backup2', 'volume', 'write', 's', '--pattern', '1', '--length', '16'), 'E_READONLY', 'volume s', 'backup2');
    expectFailure(plexus(s.home, '--host', 'web', 'volume', 'checksum', 's'), 'E_ACCESS', 'volume s', 'host web');
    expect(ok(s.home, '--host', 'backup1', 'volume', 'checksum', 's').stdout).toBe(`${sum(s.home, 'p')}\n`);
  });

  it('the access list applies in every state: in PAIR no host reaches a listed secondary, the listed host only once it is split', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    ok(s.home, 'pair', 'split', 'p', '--allow', 'hostA');
    expect(ok(s.home, '--host', 'hostA', 'volume', 'checksum', 's').stdout).toBe(`${sum(s.home, 's')}\n`);
    // The resync takes the backup host's access away; the list stays with the pair.
    ok(s.home, 'pair', 'resync', 'p');
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PAIR', allow: ['hostA'], readOnly: false });
    expectFailure(plexus(s.home, '--host', 'hostB', 'volume', 'checksum', 's'), 'E_ACCESS', 'volume s', 'hostB', 'PAIR');
    expectFailure(plexus(s.home, '--host', 'hostB', 'volume', 'read', 's', '--length', '16'), 'E_ACCESS', 'volume s', 'hostB');
    expectFailure(plexus(s.home, 'volume', 'checksum', 's'), 'E_ACCESS', 'volume s');
    expectFailure(plexus(s.home, '--host', 'hostA', 'volume', 'checksum', 's'), 'E_ACCESS', 'host hostA', 'only while pair p → s is split', 'PAIR');
    expectFailure(plexus(s.home, '--host', 'hostA', 'volume', 'write', 's', '--pattern', '1', '--length', '16'), 'E_STATE', 'volume s');
    // The next split, without --allow, keeps the list: hostA again, hostB still not.
    ok(s.home, 'pair', 'split', 'p');
    expect(ok(s.home, '--host', 'hostA', 'volume', 'checksum', 's').stdout).toBe(`${sum(s.home, 's')}\n`);
    expectFailure(plexus(s.home, '--host', 'hostB', 'volume', 'checksum', 's'), 'E_ACCESS', 'volume s', 'hostB', 'PSUS');
    // --allow replaces it.
    ok(s.home, 'pair', 'resync', 'p');
    ok(s.home, 'pair', 'split', 'p', '--allow', 'hostB');
    expect(ok(s.home, '--host', 'hostB', 'volume', 'checksum', 's').stdout).toBe(`${sum(s.home, 's')}\n`);
    expectFailure(plexus(s.home, '--host', 'hostA', 'volume', 'checksum', 's'), 'E_ACCESS', 'hostA');
  });

  it('pair create --allow guards the secondary from the initial copy on', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's', '--allow', 'backup1');
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PAIR', allow: ['backup1'] });
    expectFailure(plexus(s.home, '--host', 'web', 'volume', 'checksum', 's'), 'E_ACCESS', 'host web');
    expectFailure(plexus(s.home, '--host', 'backup1', 'volume', 'checksum', 's'), 'E_ACCESS', 'host backup1', 'only while');
    ok(s.home, 'pair', 'split', 'p');
    expect(ok(s.home, '--host', 'backup1', 'volume', 'checksum', 's').stdout).toBe(`${sum(s.home, 'p')}\n`);
  });
});
