/** Consistency groups through the CLI: `--group` on create, split, resync, display and wait. */
import { describe, expect, it } from 'vitest';
import type { ResyncResult, SplitReport } from '../../../src/mirror/mirrors.js';
import { plexus } from '../../helpers/home.js';
import { expectFailure, ok, useScratch } from '../cli-helpers.js';
import { display, G, json, put, states, sum, volumes } from './pair-helpers.js';

const s = useScratch();

async function group(): Promise<void> {
  await volumes(s.home, 8, 'p1', 's1');
  await volumes(s.home, 8, 'p2', 's2');
  ok(s.home, 'pair', 'create', 'p1', 's1', '--group', 'g');
  ok(s.home, 'pair', 'create', 'p2', 's2', '--group', 'g');
}

describe('consistency groups', () => {
  it('split --group splits every pair at one instant; resync --group brings them all back', async () => {
    await group();
    put(s.home, 'p1', 0, G, 1);
    put(s.home, 'p2', G, G, 2);
    const split = json<SplitReport>(ok(s.home, 'pair', 'split', '--group', 'g', '--json').stdout);
    expect(split.pairs).toEqual(['p1 → s1', 'p2 → s2']);
    const pairs = display(s.home, '--group', 'g');
    expect(pairs.map((p) => [p.primary, p.secondary, p.group, p.state, p.splitAt])).toEqual([
      ['p1', 's1', 'g', 'PSUS', split.splitAt],
      ['p2', 's2', 'g', 'PSUS', split.splitAt],
    ]);
    // Both images are as of the split, including the writes made just before it.
    const image1 = sum(s.home, 'p1');
    const image2 = sum(s.home, 'p2');
    expect(sum(s.home, 's1')).toBe(image1);
    expect(sum(s.home, 's2')).toBe(image2);
    expect(ok(s.home, 'pair', 'wait', '--group', 'g', '--state', 'PSUS', '--timeout', '0').stdout).toBe('PSUS\n');

    // Later writes stay on the primaries.
    put(s.home, 'p1', 4 * G, 2 * G, 3); // granules 4, 5
    put(s.home, 'p2', 7 * G + 1, 1, 4); // granule 7
    expect(sum(s.home, 's1')).toBe(image1);
    expect(sum(s.home, 's2')).toBe(image2);
    expect(sum(s.home, 'p1')).not.toBe(image1);
    expect(sum(s.home, 'p2')).not.toBe(image2);

    const results = json<ResyncResult[]>(ok(s.home, 'pair', 'resync', '--group', 'g', '--json').stdout);
    expect(results.map((r) => [r.primary, r.secondary, r.bytesCopied])).toEqual([
      ['p1', 's1', 2 * G],
      ['p2', 's2', G],
    ]);
    expect(states(s.home, '--group', 'g')).toEqual({ s1: 'PAIR', s2: 'PAIR' });
    expect(sum(s.home, 's1')).toBe(sum(s.home, 'p1'));
    expect(sum(s.home, 's2')).toBe(sum(s.home, 'p2'));
  });

  it('a group split is all or nothing: one member not in PAIR refuses it (E_STATE)', async () => {
    await group();
    ok(s.home, 'pair', 'split', 'p1');
    expectFailure(plexus(s.home, 'pair', 'split', '--group', 'g'), 'E_STATE', 'p1 → s1', 'PSUS');
    expect(states(s.home)).toEqual({ s1: 'PSUS', s2: 'PAIR' });
    expectFailure(plexus(s.home, 'pair', 'split', '--group', 'nope'), 'E_NOENT', 'group nope');
  });
});
