/** `plexus bench catalog` on a small synthetic catalog: every operation reported, no full scans, the result stored (not a timed test). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ok, useScratch } from '../cli/cli-helpers.js';

const s = useScratch();

describe('plexus bench catalog', () => {
  it('times each operation on a synthetic catalog and stores the result', () => {
    const results = path.join(s.dir, 'results');
    const out = ok(s.home, 'bench', 'catalog', '--jobs', '300', '--segments', '20000', '--cartridges', '120', '--rounds', '1', '--json', '--results', results).stdout;
    const r = JSON.parse(out) as {
      benchmark: string;
      shape: { jobs: number; segments: number; cartridges: number };
      operations: Array<{ name: string; runsMs: number[]; fullScans: string[] }>;
      rebuild: Array<{ library: string; cartridges: number }>;
      targets: Record<string, { measured: number; met: boolean }>;
      resultFile: string;
    };
    expect(r.benchmark).toBe('catalog');
    expect(r.shape).toMatchObject({ jobs: 300, segments: 20000, cartridges: 120 });
    expect(r.operations.map((o) => o.name.replace(/\d+ segments/, 'N segments'))).toEqual([
      'open, nothing to settle',
      'catalog jobs (all, newest first)',
      'catalog jobs --status failed',
      'catalog jobs --target vol7',
      'catalog show (a job of N segments)',
      'plan a 1 GiB range restore (a job of N segments)',
      'plan a 1 GiB range restore (a job of N segments)',
      'add a job of N segments',
      'settle 10 dead jobs',
    ]);
    for (const o of r.operations) expect(o.runsMs).toHaveLength(1);
    expect(r.targets['operations with a full scan of a growing table']!.measured).toBe(0);
    expect(r.rebuild.map((b) => b.cartridges)).toEqual([1, 10, 100, 10]);
    expect(path.dirname(r.resultFile)).toBe(results);
    expect(JSON.parse(fs.readFileSync(r.resultFile, 'utf8')).benchmark).toBe('catalog');
    // The scratch catalog is gone.
    expect(fs.readdirSync(s.home).filter((f) => f.startsWith('bench-catalog-'))).toEqual([]);
  });
});
