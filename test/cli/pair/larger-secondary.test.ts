/**
 * A secondary equal to or larger than its primary (JP 2002-041345, Fig. 4): only the
 * primary's size is mirrored; the rest of the secondary is left as it was.
 */
import { describe, expect, it } from 'vitest';
import { plexus } from '../../helpers/home.js';
import { checksum, expectFailure, ok, useScratch } from '../cli-helpers.js';

const s = useScratch();

describe('a larger secondary', () => {
  it('mirrors the primary into its first bytes, through copy, writes, split and resync, and leaves its tail alone', () => {
    ok(s.home, 'volume', 'create', 'p', '--size', '8M');
    ok(s.home, 'volume', 'create', 'big', '--size', '12M');
    ok(s.home, 'volume', 'create', 'small', '--size', '4M');
    ok(s.home, 'volume', 'write', 'p', '--random', '8M', '--seed', '1');
    ok(s.home, 'volume', 'write', 'big', '--offset', '8M', '--random', '4M', '--seed', '7');
    const tail = checksum(s.home, 'big', '--offset', '8M');
    const head = (): string => checksum(s.home, 'big', '--length', '8M');

    expectFailure(plexus(s.home, 'pair', 'create', 'p', 'small'), 'E_SIZE', 'small');
    ok(s.home, 'pair', 'create', 'p', 'big', '--granularity', '64K');
    expect(head()).toBe(checksum(s.home, 'p'));
    expect(checksum(s.home, 'big', '--offset', '8M')).toBe(tail);

    // Duplexed writes, up to the primary's last byte; past it the primary refuses.
    ok(s.home, 'volume', 'write', 'p', '--offset', String((8 << 20) - 4096), '--random', '4096', '--seed', '2');
    expect(head()).toBe(checksum(s.home, 'p'));
    expectFailure(plexus(s.home, 'volume', 'write', 'p', '--offset', '8M', '--random', '1', '--seed', '2'), 'E_RANGE');

    // Split, change the primary, resync: the secondary's head follows, its tail stays.
    ok(s.home, 'pair', 'split', 'p');
    ok(s.home, 'volume', 'write', 'p', '--offset', '1M', '--random', '1M', '--seed', '3');
    expect(head()).not.toBe(checksum(s.home, 'p'));
    const r = JSON.parse(ok(s.home, 'pair', 'resync', 'p', '--json').stdout) as Array<{ bytesCopied: number }>;
    expect(r[0]!.bytesCopied).toBe(1 << 20);
    expect(head()).toBe(checksum(s.home, 'p'));
    expect(checksum(s.home, 'big', '--offset', '8M')).toBe(tail);

    // Promotion exchanges the files, which would change the primary's size: refused.
    ok(s.home, 'pair', 'split', 'p');
    expectFailure(plexus(s.home, 'pair', 'promote', 'p', '--plex', 'big'), 'E_SIZE', 'resync --reverse');
    ok(s.home, 'volume', 'write', 'big', '--offset', '2M', '--random', '64K', '--seed', '4');
    ok(s.home, 'pair', 'resync', 'p', '--reverse');
    expect(head()).toBe(checksum(s.home, 'p'));
  });
});
