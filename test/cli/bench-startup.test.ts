/** `plexus bench startup`: its result has every contender, paired ratios, the load and a stored file (not a timed test). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ok, useScratch } from './cli-helpers.js';

const s = useScratch();

describe('plexus bench startup', () => {
  it('measures --version and volume list against node -e 0 and stores the result', () => {
    const results = path.join(s.dir, 'results');
    const r = JSON.parse(ok(s.home, 'bench', 'startup', '--rounds', '2', '--json', '--results', results).stdout) as {
      benchmark: string;
      rounds: number;
      loadAverage: { start: number; end: number };
      timings: Array<{ name: string; seconds: number[]; medianRatio: number }>;
      targets: Record<string, { measured: number; met: boolean }>;
      resultFile: string;
    };
    expect(r.benchmark).toBe('startup');
    expect(r.timings.map((t) => t.name)).toEqual(['node -e 0', 'plexus --version', 'plexus volume list']);
    for (const t of r.timings) expect(t.seconds).toHaveLength(2);
    expect(r.timings[0]!.medianRatio).toBe(1);
    expect(Object.keys(r.targets)).toEqual(['plexus --version / node -e 0', 'plexus volume list / node -e 0']);
    expect(r.loadAverage.start).toBeGreaterThanOrEqual(0);
    expect(path.dirname(r.resultFile)).toBe(results);
    expect(JSON.parse(fs.readFileSync(r.resultFile, 'utf8')).timings).toHaveLength(3);
  });
});
