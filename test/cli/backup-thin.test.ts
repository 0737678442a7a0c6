import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checksum, ok, useScratch } from './cli-helpers.js';

const s = useScratch();
const MiB = 1 << 20;
const SIZE = 1024 * MiB;

/** Bytes a file takes on disk. */
function allocated(file: string): number {
  return fs.statSync(file).blocks * 512;
}

/** SHA-256 of a file, streamed (a thin 1 GiB file is not read into memory). */
async function fileSha(file: string): Promise<string> {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 4 * MiB })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Every cartridge file under the home. */
function cartridges(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.tape'))
    .map((f) => path.join(dir, f));
}

describe('backup of a thin volume', () => {
  it('records holes as extents on the cartridge, reports logical and data bytes, restores thin', async () => {
    ok(s.home, 'library', 'create', 'lib', '--slots', '2', '--drives', '1', '--cartridge-size', '64M', '--block-size', '64K');
    ok(s.home, 'volume', 'create', 'vm', '--size', '1G');
    // 5 MiB of data in three places; the rest never written.
    ok(s.home, 'volume', 'write', 'vm', '--random', '1M', '--seed', '1');
    ok(s.home, 'volume', 'write', 'vm', '--offset', '700M', '--random', '3M', '--seed', '2');
    ok(s.home, 'volume', 'write', 'vm', '--offset', '1023M', '--random', '1M', '--seed', '3');
    const sum = checksum(s.home, 'vm');

    const job = JSON.parse(ok(s.home, 'backup', 'run', 'vm', '--json').stdout) as { job: number; bytes: number; cartridges: string[] };
    expect(job.bytes).toBe(SIZE);
    // One 64 MiB cartridge holds the whole gigabyte: only the data is on it.
    expect(job.cartridges).toHaveLength(1);
    const onDisk = cartridges(s.home).reduce((a, f) => a + allocated(f), 0);
    expect(onDisk).toBeLessThan(8 * MiB);

    const shown = JSON.parse(ok(s.home, 'catalog', 'show', String(job.job), '--json').stdout) as {
      logicalBytes: number;
      dataBytes: number;
      segments: Array<{ length: number; dataBytes: number | null }>;
    };
    expect(shown.logicalBytes).toBe(SIZE);
    expect(shown.dataBytes).toBe(5 * MiB);
    expect(shown.segments.reduce((a, x) => a + (x.dataBytes ?? x.length), 0)).toBe(5 * MiB);
    expect(ok(s.home, 'catalog', 'show', String(job.job)).stdout).toMatch(/1\.00 GiB logical, 5\.00 MiB of data/);

    const to = path.join(s.dir, 'vm.raw');
    ok(s.home, 'restore', String(job.job), '--to', to);
    expect(fs.statSync(to).size).toBe(SIZE);
    expect(allocated(to)).toBeLessThan(16 * MiB);
    expect(await fileSha(to)).toBe(sum);

    // A range across a hole and data restores exactly those bytes.
    const range = path.join(s.dir, 'range.raw');
    ok(s.home, 'restore', String(job.job), '--to', range, '--offset', '699M', '--length', '2M');
    const whole = fs.readFileSync(to).subarray(699 * MiB, 701 * MiB);
    expect(Buffer.compare(fs.readFileSync(range), whole)).toBe(0);
    expect(whole.subarray(0, MiB).every((b) => b === 0)).toBe(true);

    // A rebuilt catalog knows the data bytes too: they are in the cartridge's catalog files.
    fs.rmSync(path.join(s.home, 'catalog.db'), { force: true });
    for (const f of ['catalog.db-wal', 'catalog.db-shm']) fs.rmSync(path.join(s.home, f), { force: true });
    ok(s.home, 'catalog', 'rebuild');
    const rebuilt = JSON.parse(ok(s.home, 'catalog', 'show', String(job.job), '--json').stdout) as { logicalBytes: number; dataBytes: number };
    expect([rebuilt.logicalBytes, rebuilt.dataBytes]).toEqual([SIZE, 5 * MiB]);
  });
});
