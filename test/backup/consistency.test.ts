/**
 * What a backup job's data is, as the report and the catalog say: a consistent image (a
 * split secondary, a staged copy nothing wrote since) or a crash-consistent copy of a
 * live volume (a plain volume, a primary, a staged copy written since, a frozen image
 * whose data file changed while the job read it). Cartridges carry it for a rebuild.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { classifySource, settleConsistency } from '../../src/backup/consistency.js';
import { createLibrary } from '../../src/backup/libraries.js';
import { rebuildCatalog } from '../../src/backup/rebuild.js';
import { restoreJob } from '../../src/backup/restore.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { MIGRATIONS } from '../../src/catalog/migrations.js';
import { Home, VolumeStore } from '../../src/index.js';
import { Mirrors } from '../../src/mirror/mirrors.js';
import { stage } from '../../src/mirror/plexes.js';
import { scratchDir } from '../helpers/home.js';

const MiB = 1024 * 1024;

let scratch: ReturnType<typeof scratchDir>;
let home: Home;
let store: VolumeStore;

beforeEach(() => {
  scratch = scratchDir();
  home = Home.open(path.join(scratch.dir, 'home'));
  store = new VolumeStore(home);
  const catalog = Catalog.open(home);
  try {
    createLibrary(home, catalog, 'lib', { slots: 8, drives: 1, cartridgeSize: 16 * MiB, blockSize: 64 * 1024 });
  } finally {
    catalog.close();
  }
});
afterEach(() => scratch.cleanup());

async function volume(name: string, size = 2 * MiB): Promise<void> {
  const v = store.create(name, { size });
  await v.fill(0, size, { seed: 3 });
}

function catalogConsistency(job: number): string {
  const c = Catalog.open(home);
  try {
    return c.job(job).consistency;
  } finally {
    c.close();
  }
}

describe('backup consistency', () => {
  it('a plain volume and a primary are crash-consistent copies of a live volume', async () => {
    await volume('plain');
    const r = await runBackup(home, 'plain');
    expect(r.consistency).toBe('crash-consistent');
    expect(r.consistencyReason).toMatch(/live volume/);
    expect(catalogConsistency(r.job)).toBe('crash-consistent');

    await volume('p');
    store.create('s', { size: 2 * MiB });
    const mirrors = new Mirrors(home);
    await mirrors.create('p', 's');
    await expect(runBackup(home, 's')).rejects.toMatchObject({ code: 'E_STATE' });
    const rp = await runBackup(home, 'p');
    expect([rp.consistency, rp.consistencyReason]).toEqual(['crash-consistent', expect.stringMatching(/primary/)]);
  });

  it('a split secondary is a consistent image as of the split; a staged copy too, until written', async () => {
    await volume('p');
    store.create('s', { size: 2 * MiB });
    store.create('s2', { size: 2 * MiB });
    const mirrors = new Mirrors(home);
    await mirrors.create('p', 's');
    const split = await mirrors.split({ primary: 'p', plex: 's' }, { readOnly: true });
    const r = await runBackup(home, 's');
    expect([r.consistency, r.dataTime]).toEqual(['consistent', split.splitAt]);
    expect(catalogConsistency(r.job)).toBe('consistent');
    await mirrors.resync({ primary: 'p', plex: 's' });

    await mirrors.create('p', 's2');
    await stage(mirrors, 'p', 's2', 'staged');
    const st = await runBackup(home, 'staged');
    expect([st.consistency, st.consistencyReason]).toEqual(['consistent', expect.stringMatching(/staged copy of s2/)]);
    // Written after staging (by anything: here another program): no longer a frozen image.
    const fd = fs.openSync(store.file('staged'), 'r+');
    fs.writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 0);
    fs.closeSync(fd);
    const again = await runBackup(home, 'staged');
    expect([again.consistency, again.consistencyReason]).toEqual(['crash-consistent', expect.stringMatching(/written since/)]);

    // Jobs rebuilt from cartridges keep what they were.
    for (const f of ['catalog.db', 'catalog.db-wal', 'catalog.db-shm']) fs.rmSync(path.join(home.dir, f), { force: true });
    await rebuildCatalog(home);
    const c = Catalog.open(home);
    try {
      expect([r.job, st.job, again.job].map((id) => c.job(id).consistency)).toEqual(['consistent', 'consistent', 'crash-consistent']);
    } finally {
      c.close();
    }
  });

  it('a frozen image whose data file changes while the job reads it is downgraded', async () => {
    await volume('p');
    store.create('s', { size: 2 * MiB });
    const mirrors = new Mirrors(home);
    await mirrors.create('p', 's');
    await mirrors.split({ primary: 'p', plex: 's' });
    const image = classifySource(home, 's');
    expect(image.consistency).toBe('consistent');
    expect(settleConsistency(home, 's', image).consistency).toBe('consistent');
    const fd = fs.openSync(store.file('s'), 'r+');
    fs.writeSync(fd, Buffer.alloc(512, 7), 0, 512, 4096);
    fs.closeSync(fd);
    const settled = settleConsistency(home, 's', image);
    expect(settled).toEqual({ consistency: 'crash-consistent', reason: expect.stringMatching(/changed during the backup/) });
  });

  it('a split secondary written since the split (through the pair or behind it) is not an image as of the split', async () => {
    await volume('p');
    store.create('s', { size: 2 * MiB });
    store.create('t', { size: 2 * MiB });
    const mirrors = new Mirrors(home);
    await mirrors.create('p', 's');
    await mirrors.create('p', 't');
    await mirrors.split({ primary: 'p' });
    expect(classifySource(home, 's').consistency).toBe('consistent');
    // A host allowed to write the split secondary writes it through Plexus: recorded in
    // its dirty bitmap.
    const io = await mirrors.openIo('s', { write: true });
    try {
      io.write(8192, Buffer.alloc(4096, 5));
    } finally {
      io.close();
    }
    const through = await runBackup(home, 's');
    expect([through.consistency, through.consistencyReason]).toEqual(['crash-consistent', expect.stringMatching(/written since the split/)]);
    expect(through.dataTime).not.toBe(mirrors.display({ primary: 'p', plex: 's' })[0]!.splitAt);
    // Another program writes the other secondary's data file: no bitmap knows, its file does.
    const fd = fs.openSync(store.file('t'), 'r+');
    fs.writeSync(fd, Buffer.alloc(4096, 6), 0, 4096, 0);
    fs.closeSync(fd);
    const behind = await runBackup(home, 't');
    expect([behind.consistency, behind.consistencyReason]).toEqual(['crash-consistent', expect.stringMatching(/changed since the split/)]);
    // Resynced and split again: an image once more.
    await mirrors.resync({ primary: 'p' });
    await mirrors.split({ primary: 'p' });
    expect((await runBackup(home, 's')).consistency).toBe('consistent');
    expect((await runBackup(home, 't')).consistency).toBe('consistent');
  });

  it('an instant split whose fill is pending is refused until filled, then backed up as its image', async () => {
    await volume('p');
    store.create('s', { size: 2 * MiB });
    const mirrors = new Mirrors(home);
    const image = await store.open('p', { readOnly: true }).checksum();
    await mirrors.create('p', 's', { instant: true, deferCopy: true });
    // A write to the primary preserves its old region on the secondary first (copy on write).
    const io = await mirrors.openIo('p', { write: true });
    try {
      io.write(0, Buffer.alloc(64 * 1024, 9));
    } finally {
      io.close();
    }
    const seen = await mirrors.openIo('s');
    try {
      expect(await seen.checksum()).toBe(image);
    } finally {
      seen.close();
    }
    // The secondary's data file does not hold the unfilled regions yet: a backup of it
    // would not restore the image hosts read.
    const refused = runBackup(home, 's');
    await expect(refused).rejects.toMatchObject({ code: 'E_STATE' });
    await expect(refused).rejects.toThrow(/p → s.*fill.*plexus pair fill p/s);
    const c = Catalog.open(home);
    try {
      expect(c.jobs().filter((j) => j.target === 's')).toEqual([]);
    } finally {
      c.close();
    }

    await mirrors.fill({ primary: 'p' });
    const r = await runBackup(home, 's');
    expect(r.consistency).toBe('consistent');
    const to = path.join(scratch.dir, 's.restored');
    await restoreJob(home, r.job, to);
    expect(crypto.createHash('sha256').update(fs.readFileSync(to)).digest('hex')).toBe(image);
  });

  it("a secondary's access list holds for a backup: another host is refused (E_ACCESS), the listed one backs it up", async () => {
    await volume('p');
    store.create('s', { size: 2 * MiB });
    const mirrors = new Mirrors(home);
    await mirrors.create('p', 's', { allow: ['backup1'] });
    // Mirrored: even the listed host is refused (it gets the secondary once split).
    await expect(runBackup(home, 's', { host: 'backup1' })).rejects.toMatchObject({ code: 'E_ACCESS', message: expect.stringMatching(/only while/) });
    await mirrors.split({ primary: 'p' });
    const refused = runBackup(home, 's', { host: 'intruder' });
    await expect(refused).rejects.toMatchObject({ code: 'E_ACCESS', message: expect.stringMatching(/host intruder may not access volume s/) });
    const r = await runBackup(home, 's', { host: 'backup1' });
    expect(r.consistency).toBe('consistent');
    // Without a host: $PLEXUS_HOST, else the hostname, as the CLI's --host defaults.
    const saved = process.env.PLEXUS_HOST;
    try {
      process.env.PLEXUS_HOST = 'intruder';
      await expect(runBackup(home, 's')).rejects.toMatchObject({ code: 'E_ACCESS' });
      process.env.PLEXUS_HOST = 'backup1';
      expect((await runBackup(home, 's')).consistency).toBe('consistent');
    } finally {
      if (saved === undefined) delete process.env.PLEXUS_HOST;
      else process.env.PLEXUS_HOST = saved;
    }
    const c = Catalog.open(home);
    try {
      expect(c.jobs({ target: 's' }).map((j) => j.status)).toEqual(['done', 'done']);
    } finally {
      c.close();
    }
  });

  it('migration 4 marks jobs recorded before it as unknown', async () => {
    const Database = (await import('better-sqlite3')).default;
    const file = path.join(scratch.dir, 'old.db');
    const db = new Database(file);
    for (const m of MIGRATIONS.filter((x) => x.version < 4)) db.exec(m.sql);
    db.prepare(`INSERT INTO jobs (target, target_size, started_at, data_time, status) VALUES ('v', 1, 'then', 'then', 'done')`).run();
    db.exec(MIGRATIONS.find((x) => x.version === 4)!.sql);
    expect(db.prepare('SELECT consistency FROM jobs').get()).toEqual({ consistency: 'unknown' });
    expect(() => db.prepare(`UPDATE jobs SET consistency = 'maybe'`).run()).toThrow();
    db.close();
  });
});
