/**
 * Disk libraries on file systems of their own, mounted by the test (root only): a
 * loop-mounted ext4 image, so "another file system" is really another one, and a
 * small tmpfs that fills up, so a full disk is a real ENOSPC: the job fails E_NOSPC
 * naming the directory, and what the library held before still restores.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { createDiskLibrary } from '../../src/backup/libraries.js';
import { rebuildCatalog } from '../../src/backup/rebuild.js';
import { restoreJob } from '../../src/backup/restore.js';
import { Catalog } from '../../src/catalog/catalog.js';
import type { PlexusError } from '../../src/errors.js';
import { VolumeStore } from '../../src/index.js';
import type { Library } from '../../src/tape/library.js';
import { sha256File } from '../../src/util/hash.js';
import { useHome } from '../resources/helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const h = useHome();

/** Whether this process may mount file systems (root, and a kernel that lets it). */
function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = fs.mkdtempSync('/tmp/plexus-mount-probe-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(probe, { recursive: true, force: true });
  }
}

const mounted: string[] = [];
afterEach(() => {
  // Unmounted before the scratch directory they are in goes.
  for (const m of mounted.splice(0).reverse()) execFileSync('umount', [m], { stdio: 'ignore' });
});

/** Mounts `args` (mount's arguments before the mount point) at a new directory under the test's scratch directory. */
function mount(name: string, ...args: string[]): string {
  const at = path.join(h.dir, name);
  fs.mkdirSync(at);
  execFileSync('mount', [...args, at], { stdio: 'pipe' });
  mounted.push(at);
  return at;
}

function disk(name: string, dir: string, volumeSize: number): Library {
  const c = Catalog.open(h.home);
  try {
    return createDiskLibrary(h.home, c, name, dir, { volumeSize, blockSize: 64 * KiB, drives: 1 });
  } finally {
    c.close();
  }
}

async function volume(name: string, size: number, seed: number): Promise<string> {
  const v = new VolumeStore(h.home).create(name, { size });
  await v.fill(0, size, { seed });
  return v.checksum();
}

describe.skipIf(!canMount())('disk libraries on file systems of their own', () => {
  it('back up to, restore and rebuild from a loop-mounted ext4 file system', async () => {
    const image = path.join(h.dir, 'disk.img');
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 96 * MiB);
    execFileSync('mkfs.ext4', ['-q', '-F', image], { stdio: 'pipe' });
    const mnt = mount('ext4', '-o', 'loop', image);
    const dir = path.join(mnt, 'backups');
    const lib = disk('offsite', dir, 16 * MiB);
    // Really another file system than the home's.
    expect(fs.statSync(lib.cartridgeDir).dev).not.toBe(fs.statSync(h.home.dir).dev);
    const sum = await volume('db', 40 * MiB, 11);
    const r = await runBackup(h.home, 'db', { library: 'offsite' });
    expect(r.cartridges).toHaveLength(3);
    const out = path.join(h.dir, 'db.img');
    await restoreJob(h.home, r.job, out);
    expect(sha256File(out)).toBe(sum);
    const part = path.join(h.dir, 'part.bin');
    await restoreJob(h.home, r.job, part, { offset: 15 * MiB, length: 3 * MiB });
    expect(fs.readFileSync(part).equals(fs.readFileSync(out).subarray(15 * MiB, 18 * MiB))).toBe(true);
    for (const f of fs.readdirSync(h.home.dir).filter((n) => n.startsWith('catalog.db'))) fs.rmSync(path.join(h.home.dir, f));
    expect(await rebuildCatalog(h.home)).toMatchObject({ jobs: 1, segments: 3, problems: [] });
    fs.rmSync(out);
    await restoreJob(h.home, r.job, out);
    expect(sha256File(out)).toBe(sum);
  });

  it('fail a job clearly when the disk is full, and keep what the library held', async () => {
    const mnt = mount('tmpfs', '-t', 'tmpfs', '-o', 'size=12m', 'tmpfs');
    disk('small', mnt, 4 * MiB);
    const kept = await volume('kept', 5 * MiB, 1);
    const first = await runBackup(h.home, 'kept', { library: 'small' });
    await volume('big', 24 * MiB, 2);
    const e = (await runBackup(h.home, 'big', { library: 'small' }).then(
      () => undefined,
      (err: unknown) => err,
    )) as PlexusError | undefined;
    expect(e?.code).toBe('E_NOSPC');
    expect(e?.message).toContain(`the file system of disk library small (${fs.realpathSync(mnt)}) is full`);
    const c = Catalog.open(h.home);
    try {
      expect(c.jobs().map((j) => [j.target, j.status])).toEqual([
        ['big', 'failed'],
        ['kept', 'done'],
      ]);
    } finally {
      c.close();
    }
    // The cartridges of the first job still restore, byte for byte.
    const out = path.join(h.dir, 'kept.img');
    await restoreJob(h.home, first.job, out);
    expect(sha256File(out)).toBe(kept);
  });
});
