/**
 * Several plexes of one primary through the CLI: detach one plex while the others stay
 * mirrored, promote a backup plex without copying, rotate backup generations, stage.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ResyncResult } from '../../../src/mirror/mirrors.js';
import type { PromoteReport, RotateReport, StageReport } from '../../../src/mirror/plexes.js';
import { plexus } from '../../helpers/home.js';
import { checksum, expectFailure, MiB, ok, useScratch, volumeFiles } from '../cli-helpers.js';
import { display, G, json, put, states, sum, volumes } from './pair-helpers.js';

const s = useScratch();

async function threeWay(): Promise<void> {
  await volumes(s.home, 8, 'p', 's1', 's2');
  ok(s.home, 'pair', 'create', 'p', 's1', '--granularity', '64K');
  ok(s.home, 'pair', 'create', 'p', 's2', '--granularity', '64K');
}

const ino = (name: string): number => fs.statSync(volumeFiles(s.home, name).img).ino;

describe('plexes', () => {
  it('three-way: split one plex, the other stays mirrored; resync --plex copies only what changed', async () => {
    await threeWay();
    const image = sum(s.home, 'p');
    ok(s.home, 'pair', 'split', 'p', '--plex', 's1');
    expect(states(s.home, 'p')).toEqual({ s1: 'PSUS', s2: 'PAIR' });
    put(s.home, 'p', 10 * G, 3 * G, 1); // granules 10-12
    put(s.home, 'p', 40 * G, 1, 2); // granule 40
    expect(sum(s.home, 's2')).toBe(sum(s.home, 'p'));
    expect(sum(s.home, 's1')).toBe(image);
    expect(display(s.home, 'p', '--plex', 's1')[0]!.dirtyBytes).toBe(4 * G);

    expectFailure(plexus(s.home, 'pair', 'resync', 'p', '--plex', 's2'), 'E_STATE', 'p → s2', 'already in PAIR');
    const results = json<ResyncResult[]>(ok(s.home, 'pair', 'resync', 'p', '--plex', 's1', '--json').stdout);
    expect(results).toEqual([expect.objectContaining({ secondary: 's1', bytesCopied: 4 * G })]);
    expect(states(s.home, 'p')).toEqual({ s1: 'PAIR', s2: 'PAIR' });
    expect(sum(s.home, 's1')).toBe(sum(s.home, 'p'));
  });

  it('promote: the backup plex becomes the live primary by exchanging the data files, without copying', async () => {
    await threeWay();
    ok(s.home, 'pair', 'split', 'p', '--plex', 's1');
    const backup = sum(s.home, 's1');
    put(s.home, 'p', 0, 2 * G, 3); // granules 0-1
    put(s.home, 'p', 50 * G, 1, 4); // granule 50
    const live = sum(s.home, 'p');
    const before = { p: ino('p'), s1: ino('s1'), s2: ino('s2') };
    const meta = (name: string): string => fs.readFileSync(volumeFiles(s.home, name).meta, 'hex');
    const ids = { p: meta('p'), s1: meta('s1') };

    const r = json<PromoteReport>(ok(s.home, 'pair', 'promote', 'p', '--plex', 's1', '--json').stdout);
    expect(r).toMatchObject({ primary: 'p', plex: 's1', differingBytes: 3 * G, suspended: ['s2'] });
    // The data files swapped places (one rename): nothing was copied.
    expect({ p: ino('p'), s1: ino('s1'), s2: ino('s2') }).toEqual({ p: before.s1, s1: before.p, s2: before.s2 });
    // Identities stay with the names.
    expect({ p: meta('p'), s1: meta('s1') }).toEqual(ids);
    expect(checksum(s.home, 'p')).toBe(backup);
    expect(sum(s.home, 's1')).toBe(live); // the old primary image is kept on the promoted plex
    expect(display(s.home, 'p').map((x) => [x.secondary, x.state, x.dirtyBytes])).toEqual([
      ['s1', 'PSUS', 3 * G],
      ['s2', 'PSUS', 3 * G],
    ]);

    // A differential resync spreads the restored image to every plex.
    const results = json<ResyncResult[]>(ok(s.home, 'pair', 'resync', 'p', '--json').stdout);
    expect(results.map((x) => [x.secondary, x.bytesCopied])).toEqual([
      ['s1', 3 * G],
      ['s2', 3 * G],
    ]);
    expect([sum(s.home, 'p'), sum(s.home, 's1'), sum(s.home, 's2')]).toEqual([backup, backup, backup]);
    expect(states(s.home, 'p')).toEqual({ s1: 'PAIR', s2: 'PAIR' });
    expectFailure(plexus(s.home, 'pair', 'promote', 'p', '--plex', 's1'), 'E_STATE', 's1', 'PSUS');
  });

  it('rotate: the oldest offline plex rejoins differentially, the mirrored one becomes the newest backup', async () => {
    await volumes(s.home, 8, 'p', 'a', 'b', 'c');
    for (const x of ['a', 'b', 'c']) ok(s.home, 'pair', 'create', 'p', x, '--granularity', '64K');
    ok(s.home, 'pair', 'split', 'p', '--plex', 'b');
    ok(s.home, 'pair', 'split', 'p', '--plex', 'c'); // b is the oldest backup, a is mirrored
    const gen0 = sum(s.home, 'p');
    const images: string[] = [];
    // Generation n writes 4 granules at its own place, then rotates.
    const rotate = (n: number): RotateReport => {
      put(s.home, 'p', n * 16 * G, 4 * G, n);
      images[n] = sum(s.home, 'p');
      return json<RotateReport>(ok(s.home, 'pair', 'rotate', 'p', '--plexes', 'a,b,c', '--json').stdout);
    };

    const r1 = rotate(1);
    expect([r1.detached, r1.rejoined, r1.resync.map((x) => x.bytesCopied)]).toEqual(['a', 'b', [4 * G]]);
    expect(states(s.home, 'p')).toEqual({ a: 'PSUS', b: 'PAIR', c: 'PSUS' });
    expect([sum(s.home, 'a'), sum(s.home, 'b'), sum(s.home, 'c')]).toEqual([images[1], images[1], gen0]);

    const r2 = rotate(2); // c, split before generation 1, rejoins: two generations of changes
    expect([r2.detached, r2.rejoined, r2.resync.map((x) => x.bytesCopied)]).toEqual(['b', 'c', [8 * G]]);
    expect(states(s.home, 'p')).toEqual({ a: 'PSUS', b: 'PSUS', c: 'PAIR' });
    expect([sum(s.home, 'a'), sum(s.home, 'b'), sum(s.home, 'c')]).toEqual([images[1], images[2], images[2]]);

    const r3 = rotate(3); // a (generation 1) rejoins; b keeps generation 2 offline
    expect([r3.detached, r3.rejoined, r3.resync.map((x) => x.bytesCopied)]).toEqual(['c', 'a', [8 * G]]);
    expect(states(s.home, 'p')).toEqual({ a: 'PAIR', b: 'PSUS', c: 'PSUS' });
    expect([sum(s.home, 'a'), sum(s.home, 'b'), sum(s.home, 'c')]).toEqual([images[3], images[2], images[3]]);
    expect(r3.split.splitAt > r2.split.splitAt).toBe(true);

    expectFailure(plexus(s.home, 'pair', 'rotate', 'p', '--plexes', 'a'), 'E_INVALID', 'two plexes');
    expectFailure(plexus(s.home, 'pair', 'rotate', 'p', '--plexes', 'b,c'), 'E_STATE', 'found 0');
  });

  it('stage --to: the third volume gets the split image and the pair is mirrored again', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    put(s.home, 'p', 3 * MiB, 4096, 7);
    const image = sum(s.home, 'p');
    const r = json<StageReport>(ok(s.home, 'pair', 'stage', 'p', '--plex', 's', '--to', 't', '--json').stdout);
    expect(r).toMatchObject({ stagingVolume: 't', copy: expect.objectContaining({ bytesCopied: 8 * MiB }), resync: [expect.objectContaining({ secondary: 's', bytesCopied: 0 })] });
    expect(r.split.pairs).toEqual(['p → s']);
    expect(r.splitWindowMs).toBeGreaterThanOrEqual(0);
    expect(sum(s.home, 't')).toBe(image);
    expect(display(s.home).map((x) => [x.secondary, x.state])).toEqual([['s', 'PAIR']]); // t is not paired
    // The staged copy is independent: the primary moves on (and the mirror with it), t does not.
    put(s.home, 'p', 0, 4096, 8);
    expect(sum(s.home, 't')).toBe(image);
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
    expectFailure(plexus(s.home, 'pair', 'stage', 'p', '--plex', 's', '--to', 's'), 'E_BUSY', 'staging volume s');
  });
});
