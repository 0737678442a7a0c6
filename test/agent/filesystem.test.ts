/**
 * The end-to-end proof users trust: a real file system on an agent's NBD export
 * (through nbdfuse and a loop device), frozen with fsfreeze while its mirror is split.
 * The split secondary is a clean ext4 (e2fsck) holding exactly the files written before
 * the freeze. Needs root (loop devices, mount, FUSE), as the machine's set-up gives.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ok, useScratch } from '../cli/cli-helpers.js';
import { type AgentChild, killAgent, startAgent, stopAgent } from './agent-helpers.js';

const s = useScratch();
const undo: Array<() => void> = [];
let agent: AgentChild | undefined;

afterEach(async () => {
  // Unwound in reverse, each step tried whatever failed before it.
  for (const u of undo.reverse()) {
    try {
      u();
    } catch {
      // Cleaned up as far as possible.
    }
  }
  undo.length = 0;
  if (agent && agent.child.exitCode === null) await killAgent(agent);
  agent = undefined;
});

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr}`);
  return r.stdout;
}

async function waitFor(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * An agent serving the home, and an ext4 made on primary `p`'s NBD export through
 * nbdfuse and a loop device, mounted; returns the mount point. Undone in afterEach.
 */
async function ext4OnExport(sizeMiB: number): Promise<string> {
  const sock = path.join(s.dir, 'nbd.sock');
  agent = await startAgent(s.home, '--nbd-socket', sock);
  const fuseDir = path.join(s.dir, 'fuse');
  const mnt = path.join(s.dir, 'mnt');
  fs.mkdirSync(fuseDir);
  fs.mkdirSync(mnt);
  const disk = path.join(fuseDir, 'disk');
  const fuse: ChildProcess = spawn('nbdfuse', [disk, `nbd+unix:///p?socket=${sock}`], { stdio: 'ignore' });
  undo.push(() => {
    // As root a FUSE mount comes off with umount (Debian's nbdfuse brings no fusermount).
    spawnSync('umount', [fuseDir]);
    fuse.kill('SIGKILL');
  });
  await waitFor(() => fs.existsSync(disk) && fs.statSync(disk).size === sizeMiB << 20, 'nbdfuse to show the export');
  const loop = sh('losetup', ['-f', '--show', disk]).trim();
  undo.push(() => sh('losetup', ['-d', loop]));
  sh('mkfs.ext4', ['-q', loop]);
  sh('mount', [loop, mnt]);
  undo.push(() => sh('umount', [mnt]));
  return mnt;
}

/** Checks the ext4 image `img` with e2fsck, mounts it read-only and runs `check` on it. */
function checkedMount(img: string, check: (mnt: string) => void): void {
  const fsck = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });
  expect(fsck.status, fsck.stdout + fsck.stderr).toBe(0);
  const mnt = fs.mkdtempSync(path.join(s.dir, 'ro-'));
  sh('mount', ['-o', 'ro,loop', img, mnt]);
  try {
    check(mnt);
  } finally {
    sh('umount', [mnt]);
  }
}

describe('a file system on an NBD export', () => {
  it('ext4 through nbdfuse and a loop device, split under fsfreeze: the secondary is a clean, consistent image', async () => {
    expect(process.getuid?.(), 'this test needs root: loop devices, mount and FUSE').toBe(0);
    ok(s.home, 'init');
    ok(s.home, 'volume', 'create', 'p', '--size', '256M');
    ok(s.home, 'volume', 'create', 's', '--size', '256M');
    ok(s.home, 'pair', 'create', 'p', 's');
    const mnt = await ext4OnExport(256);
    const before = crypto.randomBytes(12 << 20);
    fs.writeFileSync(path.join(mnt, 'before'), before);
    fs.mkdirSync(path.join(mnt, 'dir'));
    fs.writeFileSync(path.join(mnt, 'dir', 'note'), 'written before the freeze\n');
    // The split happens between freeze and thaw: the file system is consistent on disk.
    ok(s.home, 'pair', 'split', 'p', '--freeze', `fsfreeze -f ${mnt}`, '--thaw', `fsfreeze -u ${mnt}`);
    fs.writeFileSync(path.join(mnt, 'after'), crypto.randomBytes(1 << 20));
    sh('sync', []);
    const [pair] = JSON.parse(ok(s.home, 'pair', 'display', 'p', '--json').stdout);
    expect(pair.state).toBe('PSUS');
    expect(pair.dirtyBytes).toBeGreaterThan(0);
    // The secondary's data file, checked and mounted on its own.
    checkedMount(path.join(s.home, 'volumes', 's.img'), (mnt2) => {
      expect(
        crypto
          .createHash('sha256')
          .update(fs.readFileSync(path.join(mnt2, 'before')))
          .digest('hex'),
      ).toBe(crypto.createHash('sha256').update(before).digest('hex'));
      expect(fs.readFileSync(path.join(mnt2, 'dir', 'note'), 'utf8')).toBe('written before the freeze\n');
      expect(fs.existsSync(path.join(mnt2, 'after'))).toBe(false);
    });
    // Unwind the stack, then stop the agent cleanly and resync.
    for (const u of undo.reverse()) u();
    undo.length = 0;
    expect(await stopAgent(agent)).toBe(0);
    ok(s.home, 'pair', 'resync', 'p');
    expect(ok(s.home, 'volume', 'checksum', 'p').stdout).toBe(ok(s.home, 'volume', 'checksum', 's').stdout);
  });

  it('the one-command split backup of an ext4 primary frozen with fsfreeze: the restored image mounts and holds the files of the freeze', async () => {
    expect(process.getuid?.(), 'this test needs root: loop devices, mount and FUSE').toBe(0);
    ok(s.home, 'init');
    ok(s.home, 'library', 'create', 'lib', '--slots', '4', '--drives', '1', '--cartridge-size', '512M');
    ok(s.home, 'volume', 'create', 'p', '--size', '128M');
    ok(s.home, 'volume', 'create', 's', '--size', '128M');
    ok(s.home, 'pair', 'create', 'p', 's');
    const mnt = await ext4OnExport(128);
    const files = new Map<string, Buffer>();
    for (let i = 0; i < 8; i++) files.set(`f${i}`, crypto.randomBytes((i + 1) << 18));
    fs.mkdirSync(path.join(mnt, 'data'));
    for (const [name, data] of files) fs.writeFileSync(path.join(mnt, 'data', name), data);

    // One command: freeze, split, thaw, back up the split image, resync (through the agent).
    const r = JSON.parse(ok(s.home, 'backup', 'run', 'p', '--from-mirror', '--freeze', `fsfreeze -f ${mnt}`, '--thaw', `fsfreeze -u ${mnt}`, '--json').stdout) as {
      frozenMs: number;
      backup: { job: number; consistency: string };
      steps: Array<{ step: string; ok: boolean }>;
    };
    expect(r.steps.map((x) => x.step)).toEqual(['freeze', 'split', 'thaw', 'backup', 'resync']);
    expect(r.backup.consistency).toBe('consistent');
    // Thawed: the file system takes writes again at once.
    fs.writeFileSync(path.join(mnt, 'after'), crypto.randomBytes(1 << 20));
    sh('sync', []);
    const [pair] = JSON.parse(ok(s.home, 'pair', 'display', 'p', '--json').stdout);
    expect(pair.state).toBe('PAIR');

    // The backup, restored to a file, is a clean ext4 with exactly the files of the freeze.
    const img = path.join(s.dir, 'restored.img');
    ok(s.home, 'restore', String(r.backup.job), '--to', img);
    checkedMount(img, (mnt2) => {
      expect(fs.readdirSync(path.join(mnt2, 'data')).sort()).toEqual([...files.keys()].sort());
      for (const [name, data] of files) expect(Buffer.compare(fs.readFileSync(path.join(mnt2, 'data', name)), data), name).toBe(0);
      expect(fs.existsSync(path.join(mnt2, 'after'))).toBe(false);
    });
  });
});
