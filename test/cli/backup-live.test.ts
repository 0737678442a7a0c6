/**
 * A backup of a volume that another program writes while it runs (a VM or a database
 * writing its disk image) must still restore: every block's CRC and the segment digest
 * cover exactly the bytes stored. It used to fail: the CRC was computed over mapped
 * pages that the writer changed before they were written to the cartridge, and the
 * restore died with `payload checksum mismatch`. The report and the catalog say the
 * job is a crash-consistent copy of a live volume, not a consistent image.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { plexusAsync } from '../helpers/home.js';
import { ok, useScratch, volumeFiles } from './cli-helpers.js';

const s = useScratch();

/** Another program writing random 4 KiB pages at random offsets of `file`, until killed. */
function liveWriter(file: string, size: number): ChildProcess {
  const script = `
    const fs = require('node:fs'), crypto = require('node:crypto');
    const fd = fs.openSync(process.argv[1], 'r+');
    const pages = Number(process.argv[2]) / 4096;
    const pool = crypto.randomBytes(1 << 20);
    let n = 0;
    process.stdout.write('ready\\n');
    for (;;) {
      const page = Math.floor(Math.random() * pages);
      const from = (n++ * 4096) % pool.length;
      fs.writeSync(fd, pool, from, 4096, page * 4096);
    }`;
  return spawn(process.execPath, ['-e', script, file, String(size)], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function started(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`writer exited ${code}`)));
  });
}

function stopped(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe('backup of a volume written while it runs', () => {
  it('restores: every block checksum covers the bytes stored; the job is crash-consistent', async () => {
    const size = 128 << 20;
    ok(s.home, 'library', 'create', 'lib', '--slots', '2', '--drives', '1', '--cartridge-size', '512M', '--block-size', '256K');
    ok(s.home, 'volume', 'create', 'db', '--size', '128M');
    ok(s.home, 'volume', 'write', 'db', '--random', '128M', '--seed', '9');
    const writer = liveWriter(volumeFiles(s.home, 'db').img, size);
    const run: Awaited<ReturnType<typeof plexusAsync>>[] = [];
    try {
      await started(writer);
      // Three jobs, so the race has every chance to show on the old code.
      for (let i = 0; i < 3; i++) run.push(await plexusAsync(s.home, 'backup', 'run', 'db', '--json'));
    } finally {
      await stopped(writer);
    }
    for (const r of run) {
      expect(r.code, r.stderr).toBe(0);
      const job = JSON.parse(r.stdout) as { job: number; bytes: number; consistency: string };
      expect(job.bytes).toBe(size);
      expect(job.consistency).toBe('crash-consistent');
      // Restore reads every block back and checks its CRC-32C against the bytes read,
      // and the segment digests against the catalog's: a block whose checksum was
      // computed over other bytes than those stored fails here.
      const to = path.join(s.dir, `db.${job.job}.out`);
      const restored = await plexusAsync(s.home, 'restore', String(job.job), '--to', to);
      expect(restored.code, restored.stderr).toBe(0);
      expect(fs.statSync(to).size).toBe(size);
      fs.rmSync(to);
    }
    const jobs = JSON.parse(ok(s.home, 'catalog', 'jobs', '--json').stdout) as Array<{ status: string; consistency: string }>;
    expect(jobs.map((j) => [j.status, j.consistency])).toEqual(Array(3).fill(['done', 'crash-consistent']));
  });
});
