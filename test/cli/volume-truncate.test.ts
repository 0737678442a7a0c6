/**
 * Another program truncating a volume's data file while plexus reads it must not crash
 * plexus (it used to die of SIGBUS, exit 135, reading through a memory map): the
 * command fails with exit 1 and one E_CORRUPT / E_IO line naming the volume and offset.
 * Each test spawns the real CLI on a large sparse volume with data in it, waits until
 * the child has the data file open, and truncates the file under it.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/home.js';
import { ok, useScratch, volumeFiles } from './cli-helpers.js';

const s = useScratch();

/** A 2 GiB sparse volume with data at its start and its end: reading it takes a while. */
function bigVolume(name: string, dense = false): string {
  ok(s.home, 'volume', 'create', name, '--size', '2G', '--block-size', '64K');
  // A copy or a backup skips holes, so a sparse source would be done before the cut: dense then.
  if (dense) ok(s.home, 'volume', 'write', name, '--pattern', '0x5a', '--length', '2G');
  ok(s.home, 'volume', 'write', name, '--random', '16M', '--seed', '5');
  ok(s.home, 'volume', 'write', name, '--offset', '2032M', '--random', '16M', '--seed', '6');
  return volumeFiles(s.home, name).img;
}

/** Whether process `pid` has `file` open. */
function hasOpen(pid: number, file: string): boolean {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  truncated: boolean;
}

/** Runs `plexus ARGS`; once it has `file` open, truncates `file` to `to` bytes. */
function runAndTruncate(file: string, to: number, ...args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, '--home', s.home, ...args], { env: { ...process.env, PLEXUS_HOME: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let truncated = false;
    child.stderr.on('data', (d) => (stderr += d));
    const poll = setInterval(() => {
      if (truncated || !child.pid || !hasOpen(child.pid, file)) return;
      // Opened: let the reading begin, then cut the file from under it.
      setTimeout(() => fs.truncateSync(file, to), 30);
      truncated = true;
    }, 2);
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve({ code, signal, stderr, truncated });
    });
  });
}

/** Exit 1, not a signal, and a last line `plexus: ... (E_CORRUPT|E_IO)` naming the volume and an offset. */
function expectCleanFailure(r: Outcome, volume: string): void {
  expect(r.truncated, 'the data file was truncated while the command ran').toBe(true);
  expect(r.signal, `stderr: ${r.stderr}`).toBeNull();
  expect(r.code, `stderr: ${r.stderr}`).toBe(1);
  const last = r.stderr.trimEnd().split('\n').at(-1) ?? '';
  expect(last).toMatch(/^plexus: .+ \((E_CORRUPT|E_IO)\)$/);
  expect(last).toContain(`volume ${volume}`);
  expect(last).toMatch(/offset \d+/);
}

describe('a data file truncated under a reader', () => {
  it('volume checksum fails with E_CORRUPT, not SIGBUS', async () => {
    const img = bigVolume('v');
    const r = await runAndTruncate(img, 1 << 20, 'volume', 'checksum', 'v');
    expectCleanFailure(r, 'v');
  });

  it('copy fails with E_CORRUPT, not SIGBUS', async () => {
    const img = bigVolume('a', true);
    ok(s.home, 'volume', 'create', 'b', '--size', '2G', '--block-size', '64K');
    const r = await runAndTruncate(img, 1 << 20, 'copy', 'a', 'b', '--no-sync');
    expectCleanFailure(r, 'a');
  });

  it('backup run fails with E_CORRUPT, not SIGBUS, and the job is failed', async () => {
    // Dense: a thin volume's backup skips its holes and is over before the cut.
    const img = bigVolume('v', true);
    ok(s.home, 'library', 'create', 'lib', '--slots', '2', '--drives', '1', '--cartridge-size', '3G', '--block-size', '256K');
    const r = await runAndTruncate(img, 1 << 20, 'backup', 'run', 'v');
    expectCleanFailure(r, 'v');
    const jobs = JSON.parse(ok(s.home, 'catalog', 'jobs', '--json').stdout) as Array<{ status: string }>;
    expect(jobs.map((j) => j.status)).toEqual(['failed']);
  });

  it('pair resync fails with E_CORRUPT, not SIGBUS', async () => {
    ok(s.home, 'volume', 'create', 'p', '--size', '256M', '--block-size', '64K');
    ok(s.home, 'volume', 'create', 's', '--size', '256M', '--block-size', '64K');
    ok(s.home, 'pair', 'create', 'p', 's');
    ok(s.home, 'pair', 'split', 'p');
    // Every region of the primary dirty: the resync copies all of it.
    ok(s.home, 'volume', 'write', 'p', '--random', '256M', '--seed', '8');
    const r = await runAndTruncate(volumeFiles(s.home, 'p').img, 1 << 20, 'pair', 'resync', 'p');
    expectCleanFailure(r, 'p');
  });
});
