/**
 * Thin volumes stay thin: a copy, a pair's initial copy and its resync skip the source's
 * holes and leave (or punch) holes in the destination; `volume show` reports allocated
 * bytes beside the size.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { MiB, ok, useScratch } from '../cli/cli-helpers.js';

const s = useScratch();
const allocated = (name: string): number => JSON.parse(ok(s.home, 'volume', 'show', name, '--json').stdout).allocatedBytes;
const digest = (name: string): string => ok(s.home, 'volume', 'checksum', name).stdout.trim();

describe('thin volumes', () => {
  it('copy and pair create keep a 1 GiB volume holding 8 MiB at about 8 MiB on disk, byte for byte', () => {
    ok(s.home, 'volume', 'create', 'a', '--size', '1G');
    ok(s.home, 'volume', 'write', 'a', '--random', '4M', '--seed', '3');
    ok(s.home, 'volume', 'write', 'a', '--random', '4M', '--seed', '4', '--offset', '700M');
    const shown = JSON.parse(ok(s.home, 'volume', 'show', 'a', '--json').stdout);
    expect(shown.size).toBe(1024 * MiB);
    expect(shown.allocatedBytes).toBeLessThan(9 * MiB);
    expect(ok(s.home, 'volume', 'list').stdout).toMatch(/ALLOCATED/);
    ok(s.home, 'copy', 'a', 'b');
    expect(digest('b')).toBe(digest('a'));
    expect(allocated('b')).toBeLessThan(9 * MiB);
    ok(s.home, 'volume', 'create', 'm', '--size', '1G');
    ok(s.home, 'pair', 'create', 'a', 'm');
    expect(digest('m')).toBe(digest('a'));
    expect(allocated('m')).toBeLessThan(9 * MiB);
  });

  it('a copy onto a written volume punches the source holes into it: same bytes, the space given back', () => {
    ok(s.home, 'volume', 'create', 'a', '--size', '256M');
    ok(s.home, 'volume', 'write', 'a', '--random', '1M', '--seed', '5', '--offset', '100M');
    ok(s.home, 'volume', 'create', 'b', '--size', '256M');
    ok(s.home, 'volume', 'write', 'b', '--pattern', '0xee', '--length', '256M');
    expect(allocated('b')).toBeGreaterThan(250 * MiB);
    ok(s.home, 'copy', 'a', 'b');
    expect(digest('b')).toBe(digest('a'));
    expect(allocated('b')).toBeLessThan(2 * MiB);
  });

  it('a full resync punches into the secondary what became a hole on the primary', () => {
    ok(s.home, 'volume', 'create', 'p', '--size', '64M');
    ok(s.home, 'volume', 'create', 's', '--size', '64M');
    ok(s.home, 'volume', 'write', 'p', '--pattern', '0x11', '--length', '64M');
    ok(s.home, 'pair', 'create', 'p', 's');
    expect(allocated('s')).toBeGreaterThan(60 * MiB);
    ok(s.home, 'pair', 'split', 'p');
    // Behind the pair, as a file system's discard would: the primary's first 32 MiB
    // become a hole. A full resync copies what the files hold, holes as holes.
    const file = JSON.parse(ok(s.home, 'volume', 'show', 'p', '--json').stdout).path as string;
    const r = spawnSync('fallocate', ['--punch-hole', '--offset', '0', '--length', String(32 * MiB), file]);
    expect(r.status, r.stderr?.toString()).toBe(0);
    ok(s.home, 'pair', 'resync', 'p', '--full');
    expect(digest('s')).toBe(digest('p'));
    expect(allocated('s')).toBeLessThan(34 * MiB);
    expect(allocated('s')).toBeGreaterThan(30 * MiB);
  });
});
