/** `plexus bench copy --sparse` on a small thin volume: every contender run, destinations stay thin, the result stored (not a timed test). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ok, useScratch } from '../cli/cli-helpers.js';

const s = useScratch();

describe('plexus bench copy --sparse', () => {
  it('copies, pairs, backs up and restores a thin volume against cp and qemu-img, and every destination holds only the data', () => {
    const results = path.join(s.dir, 'results');
    const r = JSON.parse(ok(s.home, 'bench', 'copy', '--sparse', '--size', '1G', '--data', '8M', '--rounds', '1', '--json', '--results', results).stdout) as {
      benchmark: string;
      sizeBytes: number;
      dataBytes: number;
      contenders: Array<{ name: string; seconds: number[]; allocated: number[] }>;
      targets: Record<string, { measured: number }>;
      resultFile: string;
    };
    expect(r.benchmark).toBe('copy-sparse');
    expect(r.dataBytes).toBe(8 << 20);
    expect(r.contenders.map((c) => c.name)).toEqual([
      'plexus copy',
      'plexus pair create',
      'cp --sparse=always',
      'qemu-img convert',
      'plexus copy of the data alone',
      'plexus backup run',
      'plexus backup run of the data alone',
      'plexus restore',
      'plexus restore of the data alone',
    ]);
    // The thin volume's copies, its backup on the cartridges and its restore allocate
    // its 8 MiB (and a few headers), not its 1 GiB.
    for (const c of r.contenders) expect(c.allocated[0]!, c.name).toBeLessThanOrEqual(9 << 20);
    expect(r.contenders.find((c) => c.name === 'plexus backup run')!.allocated[0]!).toBeGreaterThanOrEqual(8 << 20);
    expect(r.targets['allocated by a copy or a pair / the data']!.measured).toBeLessThanOrEqual(1.1);
    expect(r.targets['allocated by a backup or a restore / the data']!.measured).toBeLessThanOrEqual(1.1);
    expect(fs.existsSync(r.resultFile)).toBe(true);
  });
});
