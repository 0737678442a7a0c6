/**
 * `plexus pair create|split|resync` end to end: the initial copy, duplexed writes, and
 * differential, full and reverse resyncs, observed through checksums and JSON.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PairInfo, ResyncResult, SplitReport } from '../../../src/mirror/mirrors.js';
import { checksum, MiB, ok, useScratch } from '../cli-helpers.js';
import { display, G, json, put, sum, volumes } from './pair-helpers.js';

const s = useScratch();

describe('plexus pair create', () => {
  it('copies the primary, reaches PAIR with nothing dirty, then duplexes every write', async () => {
    await volumes(s.home, 16, 'p', 's');
    const zeros = sum(s.home, 's');
    const created = json<PairInfo>(ok(s.home, 'pair', 'create', 'p', 's', '--granularity', '64K', '--json').stdout);
    expect(created).toMatchObject({ primary: 'p', secondary: 's', state: 'PAIR', granularity: G, dirtyBytes: 0, busy: false, operation: null });
    expect(display(s.home, 'p')).toEqual([expect.objectContaining({ state: 'PAIR', dirtyBytes: 0, operation: null, splitAt: null, fillPending: false })]);
    const primary = sum(s.home, 'p');
    expect(primary).not.toBe(zeros);
    expect(checksum(s.home, 's')).toBe(primary);

    // Writes to the primary reach the secondary while the pair is in PAIR.
    ok(s.home, 'volume', 'write', 'p', '--random', '1M', '--seed', '99', '--offset', '3M');
    const file = path.join(s.dir, 'blob');
    fs.writeFileSync(file, Buffer.from('hello, mirror'));
    ok(s.home, 'volume', 'write', 'p', '--offset', String(15 * MiB + 3), '--from', file);
    const after = sum(s.home, 'p');
    expect(after).not.toBe(primary);
    expect(sum(s.home, 's')).toBe(after);
    // The secondary of a mirrored pair can still be read.
    expect(ok(s.home, 'volume', 'read', 's', '--offset', String(15 * MiB + 3), '--length', '13').stdout).toBe('hello, mirror');

    const table = ok(s.home, 'pair', 'display').stdout;
    expect(table).toMatch(/^PRIMARY\s+SECONDARY\s+STATE/);
    expect(table).toMatch(/\np\s+s\s+PAIR\s+-\s+0 B\s/);
  });
});

describe('plexus pair split and resync', () => {
  it('split freezes the image; resync copies exactly the union of the granules dirtied on either side', async () => {
    await volumes(s.home, 16, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's', '--granularity', '64K');
    const image = sum(s.home, 'p');
    const split = json<SplitReport>(ok(s.home, 'pair', 'split', 'p', '--json').stdout);
    expect(split.pairs).toEqual(['p → s']);

    // Primary: granule 0; granules 2 and 3 (a write straddling their border); 20-22.
    put(s.home, 'p', 0, 10, 1);
    put(s.home, 'p', 3 * G - 1, 2, 2);
    put(s.home, 'p', 20 * G + 100, 2 * G, 3);
    expect(sum(s.home, 's')).toBe(image); // the primary moved on, the split image did not
    // Secondary (writable: not --read-only): granule 3 again (union, not sum) and 9.
    put(s.home, 's', 3 * G + 7, 5, 4);
    put(s.home, 's', 9 * G, G, 5);
    expect(sum(s.home, 's')).not.toBe(image);

    const dirty = [0, 2, 3, 9, 20, 21, 22].length * G;
    expect(display(s.home, 'p')).toEqual([expect.objectContaining({ state: 'PSUS', splitAt: split.splitAt, dirtyBytes: dirty, readOnly: false, allow: [] })]);

    const results = json<ResyncResult[]>(ok(s.home, 'pair', 'resync', 'p', '--json').stdout);
    expect(results).toEqual([expect.objectContaining({ primary: 'p', secondary: 's', resumed: false, bytesCopied: dirty })]);
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
    expect(display(s.home, 'p')).toEqual([expect.objectContaining({ state: 'PAIR', dirtyBytes: 0, splitAt: null, operation: null })]);
  });

  it('resync --reverse restores the primary from the split image (dirty granules only); --full copies everything', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's', '--granularity', '64K');
    ok(s.home, 'pair', 'split', 'p');
    const image = sum(s.home, 's');
    put(s.home, 'p', 5 * G, 3 * G, 0xaa); // granules 5, 6, 7
    ok(s.home, 'volume', 'write', 'p', '--offset', String(100 * G), '--random', '1000', '--seed', '4'); // granule 100
    expect(sum(s.home, 'p')).not.toBe(image);

    const [r] = json<ResyncResult[]>(ok(s.home, 'pair', 'resync', 'p', '--reverse', '--json').stdout);
    expect(r).toMatchObject({ primary: 'p', secondary: 's', bytesCopied: 4 * G });
    expect(checksum(s.home, 'p')).toBe(image);
    expect(sum(s.home, 's')).toBe(image);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PAIR', dirtyBytes: 0 });

    // --full: one byte written, the whole volume copied.
    ok(s.home, 'pair', 'split', 'p');
    put(s.home, 'p', 4096, 1, 9);
    const [full] = json<ResyncResult[]>(ok(s.home, 'pair', 'resync', 'p', '--full', '--json').stdout);
    expect(full!.bytesCopied).toBe(8 * MiB);
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
    expect(sum(s.home, 'p')).not.toBe(image);
  });
});
