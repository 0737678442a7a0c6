/** `benchScaleCosts` on small sparse volumes: every case measured, the checkpoints cost what was copied, not the volume (not a timed test). */
import { describe, expect, it } from 'vitest';
import { benchScaleCosts } from '../../src/bench/scale-costs.js';
import { scratchDir } from '../helpers/home.js';

const MiB = 2 ** 20;

describe('benchScaleCosts', () => {
  it('pairs sparse volumes of growing size holding the same data; their copies write the same few log bytes', async () => {
    const s = scratchDir();
    try {
      const r = await benchScaleCosts({ dir: s.dir, sizes: [64 * MiB, 1024 * MiB], data: 8 * MiB, markRounds: 1, marksPerWriter: 20 });
      expect(r.benchmark).toBe('scale-costs');
      expect(r.checkpoints.map((c) => [c.sizeBytes, c.dataBytes, c.granules])).toEqual([
        [64 * MiB, 8 * MiB, 1024],
        [1024 * MiB, 8 * MiB, 16384],
      ]);
      for (const c of r.checkpoints) {
        // Clear records only: no snapshot, a record or two, one sync each.
        expect(c.snapshots).toBe(0);
        expect(c.sidecarBytes).toBe(32 * c.records);
        expect(c.sidecarSyncs).toBeLessThanOrEqual(2);
        expect(c.perGiBCopied.bytes).toBe(c.sidecarBytes * 128);
      }
      expect(r.marks.one.marksPerSync).toBe(1);
      expect(r.marks.eight.syncs[0]).toBeLessThanOrEqual(160);
      expect(Object.keys(r.targets)).toHaveLength(3);
    } finally {
      s.cleanup();
    }
  });
});
