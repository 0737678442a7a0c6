/** `plexus bench disk` on a small volume: both contenders run in every round, the ratio and the run's conditions are stored (not a timed test). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectFailure, ok, useScratch } from '../cli/cli-helpers.js';
import { plexus } from '../helpers/home.js';

const s = useScratch();

describe('plexus bench disk', () => {
  it('backs up to a disk library in --dir and runs dd to the same directory, round by round, and stores the result', () => {
    const results = path.join(s.dir, 'results');
    const dir = path.join(s.dir, 'target');
    const r = JSON.parse(ok(s.home, 'bench', 'disk', '--size', '8M', '--rounds', '2', '--dir', dir, '--cache', 'none', '--json', '--results', results).stdout) as {
      benchmark: string;
      sizeBytes: number;
      rounds: number;
      dir: string;
      fileSystem: string;
      sourceCached: boolean;
      cache: string;
      loadAverage: { start: number; end: number };
      timings: Array<{ name: string; seconds: number[] }>;
      diskVsDd: number;
      roundRatios: { diskVsDd: number[] };
      targets: Record<string, { target: string; measured: number }>;
      resultFile: string;
    };
    expect(r).toMatchObject({ benchmark: 'disk', sizeBytes: 8 << 20, rounds: 2, cache: 'none', sourceCached: true });
    expect(path.dirname(r.dir)).toBe(fs.realpathSync(dir));
    expect(r.timings.map((t) => [t.name, t.seconds.length])).toEqual([
      ['plexus backup to a disk library', 2],
      ['dd bs=1M conv=fsync', 2],
    ]);
    expect(r.roundRatios.diskVsDd).toHaveLength(2);
    expect(r.targets['disk-target backup vs dd conv=fsync (dd time / plexus time)']).toMatchObject({ target: '>= 0.9', measured: r.diskVsDd });
    expect(Number.isFinite(r.loadAverage.start)).toBe(true);
    expect(fs.existsSync(r.resultFile)).toBe(true);
    // What it wrote is gone; the directory given stays.
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('refuses a directory inside the home and a bad cache mode', () => {
    ok(s.home, 'init');
    expectFailure(plexus(s.home, 'bench', 'disk', '--size', '8M', '--dir', path.join(s.home, 'x')), 'E_INVALID', 'inside the home');
    expectFailure(plexus(s.home, 'bench', 'disk', '--size', '8M', '--cache', 'maybe'), 'E_INVALID', '--cache');
  });
});
