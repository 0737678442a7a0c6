/** A functional test of `plexus bench backup`: it runs, verifies and reports; speed is never asserted. */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { plexusAsync } from '../helpers/home.js';
import { MiB, useScratch } from './cli-helpers.js';

const s = useScratch();

describe('plexus bench backup', () => {
  it('runs with --json, stores its result, writes a plot and leaves nothing in the home', async () => {
    const res = path.join(s.dir, 'res');
    const svg = path.join(s.dir, 'b.svg');
    const r = await plexusAsync(s.home, 'bench', 'backup', '--size', '16M', '--rounds', '1', '--cartridges', '4', '--json', '--results', res, '--plot', svg);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      benchmark: string;
      sizeBytes: number;
      spanCartridges: number;
      timings: Array<{ name: string; bestSeconds: number; rate: number }>;
      targets: Record<string, { target: string; measured: number; met: boolean }>;
      backupVsDd: number;
      restoreVsDd: number;
      spanningOverhead: number;
      resultFile: string;
    };
    expect(out).toMatchObject({ benchmark: 'backup', sizeBytes: 16 * MiB, spanCartridges: 4 });
    expect(out.timings.map((t) => t.name)).toEqual([
      'plexus backup, 1 cartridge',
      'plexus backup, 4 cartridges',
      'plexus restore, 4 cartridges',
      'dd bs=4M conv=fsync (write)',
      'dd bs=4M conv=fsync (read back)',
      'tar -cf + sync',
    ]);
    for (const t of out.timings) expect(t.bestSeconds).toBeGreaterThan(0);
    expect(out.backupVsDd).toBeCloseTo(out.timings[3]!.bestSeconds / out.timings[0]!.bestSeconds, 9);
    expect(Object.keys(out.targets)).toHaveLength(3);
    expect(JSON.parse(fs.readFileSync(out.resultFile, 'utf8'))).toMatchObject({ benchmark: 'backup', sizeBytes: 16 * MiB });
    expect(fs.readFileSync(svg, 'utf8')).toMatch(/^<svg/);
    // The benchmark works in a scratch home of its own and removes it.
    expect(fs.readdirSync(s.home).filter((f) => f.startsWith('bench-backup-'))).toEqual([]);
  });
});
