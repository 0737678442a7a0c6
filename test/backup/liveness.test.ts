/** A job's liveness is its kernel lock, not its pid: a job left `running` under a reused pid is settled and restorable. */

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/backup.js';
import { createLibrary } from '../../src/backup/libraries.js';
import { restoreJob } from '../../src/backup/restore.js';
import { Catalog } from '../../src/catalog/catalog.js';
import { lockFile } from '../../src/catalog/liveness.js';
import { VolumeStore } from '../../src/index.js';
import { sha256File } from '../../src/util/hash.js';
import { useHome } from '../resources/helpers.js';

const MiB = 1 << 20;
const h = useHome();

describe('job liveness', () => {
  it('a job whose process died after writing everything, its pid now reused, is settled and restores', async () => {
    const c = Catalog.open(h.home);
    createLibrary(h.home, c, 'lib', { slots: 2, drives: 1, cartridgeSize: 16 * MiB, blockSize: 64 << 10 });
    c.close();
    const v = new VolumeStore(h.home).create('db', { size: 3 * MiB });
    await v.fill(0, 3 * MiB, { seed: 5 });
    const sum = await v.checksum();
    const r = await runBackup(h.home, 'db');
    // Its lock file is gone with the job.
    expect(fs.existsSync(lockFile(path.join(h.home.dir, 'catalog.db'), 'job', r.job))).toBe(false);
    // As if the process had died before finishing the job, and its pid had gone to a live process (this one).
    const raw = Catalog.open(h.home);
    raw.db.prepare(`UPDATE jobs SET status = 'running', ended_at = NULL, pid = ? WHERE id = ?`).run(process.pid, r.job);
    raw.db.prepare(`UPDATE locations SET status = 'writing' WHERE job_id = ?`).run(r.job);
    raw.close();
    const to = path.join(h.dir, 'out');
    const rep = await restoreJob(h.home, r.job, to);
    expect(rep.bytes).toBe(3 * MiB);
    expect(sha256File(to)).toBe(sum);
    const after = Catalog.open(h.home);
    expect(after.job(r.job)).toMatchObject({ status: 'incomplete', pid: null });
    after.close();
  });
});
