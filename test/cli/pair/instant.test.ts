/**
 * Instant splits (`pair create --instant`): the secondary is a point-in-time image at
 * once; regions not yet filled are read from the primary, and a write to the primary
 * first preserves the old region on the secondary.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { PairInfo } from '../../../src/mirror/mirrors.js';
import type { MirrorCopyReport } from '../../../src/mirror/plexset.js';
import { PlexSet } from '../../../src/mirror/plexset.js';
import { PairRecords } from '../../../src/mirror/record.js';
import { plexus } from '../../helpers/home.js';
import { checksum, expectFailure, MiB, ok, useScratch, volumeFiles } from '../cli-helpers.js';
import { alive, display, json, sum, until, volumes } from './pair-helpers.js';

const s = useScratch();
let child: number | undefined;

afterEach(() => {
  if (child !== undefined && alive(child)) process.kill(child, 'SIGKILL');
  child = undefined;
});

describe('instant split', () => {
  it('create --instant is split at once; the secondary keeps the image of creation', async () => {
    await volumes(s.home, 16, 'p', 's');
    const image = sum(s.home, 'p');
    const info = json<PairInfo>(ok(s.home, 'pair', 'create', 'p', 's', '--instant', '--json').stdout);
    expect(info).toMatchObject({ state: 'PSUS', fillPending: false, operation: null });
    expect(info.splitAt).not.toBeNull();
    ok(s.home, 'volume', 'write', 'p', '--random', '16M', '--seed', '5');
    expect(sum(s.home, 'p')).not.toBe(image);
    expect(checksum(s.home, 's')).toBe(image);
    expect(ok(s.home, 'pair', 'fill', 'p').stdout).toBe('filled 0 instant splits (0 B)\n');
  });

  it('an interrupted background fill: reads come from the primary, overwrites are preserved, fill resumes', async () => {
    await volumes(s.home, 32, 'p', 's');
    const image = sum(s.home, 'p');
    const tail = crypto
      .createHash('sha256')
      .update(fs.readFileSync(volumeFiles(s.home, 'p').img).subarray(28 * MiB))
      .digest('hex');

    // Paced at 1 MiB/s, the fill takes far longer than this test.
    const created = json<PairInfo & { pid: number }>(ok(s.home, 'pair', 'create', 'p', 's', '--instant', '--background', '--max-rate', '1M', '--json').stdout);
    expect(created).toMatchObject({ state: 'PSUS', fillPending: true });
    child = created.pid;
    expect(child).toBeGreaterThan(0);
    // Whether a live process holds the pairs of p (the background fill, once started).
    const records = new PairRecords(path.join(s.home, 'pairs'));
    const busy = (): boolean => PlexSet.isOpenElsewhere(records, 'p');
    expect(await until(busy, 10_000)).toBe(true);
    // One process owns a primary's pairs at a time.
    expectFailure(plexus(s.home, 'volume', 'write', 'p', '--pattern', '1', '--length', '1'), 'E_BUSY', 'p', String(child));

    process.kill(child, 'SIGKILL');
    expect(await until(() => !busy(), 10_000)).toBe(true);
    const [stalled] = display(s.home, 'p');
    expect(stalled).toMatchObject({ state: 'PSUS', fillPending: true, operation: expect.objectContaining({ kind: 'fill', interrupted: true }) });
    expect(stalled!.operation!.done).toBeLessThan(32 * MiB);
    expect(ok(s.home, 'pair', 'display').stdout).toContain('(interrupted: run `plexus pair fill` to resume)');

    // Overwrite the last 4 MiB of the primary: the secondary still reads the old bytes.
    ok(s.home, 'volume', 'write', 'p', '--random', '4M', '--seed', '5', '--offset', '28M');
    expect(sum(s.home, 'p')).not.toBe(image);
    const out = path.join(s.dir, 'tail.bin');
    ok(s.home, 'volume', 'read', 's', '--offset', '28M', '--to', out);
    expect(crypto.createHash('sha256').update(fs.readFileSync(out)).digest('hex')).toBe(tail);
    expect(checksum(s.home, 's')).toBe(image);

    // The data file of s does not hold the image yet: a backup or a copy of it is refused,
    // naming the pair and what to run, and no job is recorded.
    ok(s.home, 'library', 'create', 'lib', '--slots', '4', '--drives', '1', '--cartridge-size', '64M', '--block-size', '64K');
    expectFailure(plexus(s.home, 'backup', 'run', 's'), 'E_STATE', 'instant split p → s', '`plexus pair fill p`');
    expect(JSON.parse(ok(s.home, 'catalog', 'jobs', '--json').stdout)).toEqual([]);
    expectFailure(plexus(s.home, 'copy', 's', 'c'), 'E_STATE', 'instant split p → s', '`plexus pair fill p`');

    const [fill] = json<MirrorCopyReport[]>(ok(s.home, 'pair', 'fill', 'p', '--json').stdout);
    expect(fill!.bytesCopied).toBeGreaterThan(0);
    expect(fill!.bytesCopied).toBeLessThanOrEqual(28 * MiB); // the preserved tail is not copied again
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUS', fillPending: false, operation: null });
    expect(sum(s.home, 's')).toBe(image); // the data file itself now holds the whole image
    // Filled: an ordinary split image, backed up as consistent, restored as hosts read it.
    const job = JSON.parse(ok(s.home, 'backup', 'run', 's', '--json').stdout) as { job: number; consistency: string };
    expect(job.consistency).toBe('consistent');
    const restored = path.join(s.dir, 's.restored');
    ok(s.home, 'restore', String(job.job), '--to', restored);
    expect(crypto.createHash('sha256').update(fs.readFileSync(restored)).digest('hex')).toBe(image);
  });
});
