/**
 * PSUE keeps its record of what differs: a secondary that cannot be written suspends
 * the pair, the primary's writes are still recorded, and the resync afterwards copies
 * only those regions (a full copy only when the bitmaps were lost).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ResyncResult } from '../../../src/mirror/mirrors.js';
import { plexus } from '../../helpers/home.js';
import { expectFailure, ok, useScratch, volumeFiles } from '../cli-helpers.js';
import { display, G, json, put, sum, volumes } from './pair-helpers.js';

const s = useScratch();
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../dist/index.js');

describe('suspended pairs (PSUE)', () => {
  it('a secondary that is gone suspends the pair; its bitmaps keep recording and the resync is differential', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    const img = volumeFiles(s.home, 's').img;
    fs.renameSync(img, `${img}.away`);
    put(s.home, 'p', 3 * G + 10, 100, 1);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUE', lastError: expect.stringContaining('secondary unavailable') });
    put(s.home, 'p', 6 * G, 2 * G, 2);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUE', dirtyBytes: 3 * G });
    fs.renameSync(`${img}.away`, img);
    const [r] = json<ResyncResult[]>(ok(s.home, 'pair', 'resync', 'p', '--json').stdout);
    expect(r!.bytesCopied).toBe(3 * G);
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PAIR', lastError: null });
  });

  it('an owner killed after writes to a mirrored primary leaves the pair suspended with those regions, never cleared by a split', async () => {
    await volumes(s.home, 8, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    // The duplexed write's second half never happens: the owner writes the primary
    // through the pair, then the secondary is put back as it was, as if the process
    // had died between the two writes.
    const before = fs.readFileSync(volumeFiles(s.home, 's').img);
    const script = `
      const { Home, Mirrors } = await import(${JSON.stringify(DIST)});
      const io = await new Mirrors(Home.open(${JSON.stringify(s.home)})).openIo('p', { write: true });
      io.write(${5 * G}, Buffer.alloc(4096, 0xab));
      process.kill(process.pid, 'SIGKILL');`;
    const k = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(k.signal, k.stderr).toBe('SIGKILL');
    fs.writeFileSync(volumeFiles(s.home, 's').img, before);
    expect(sum(s.home, 's')).not.toBe(sum(s.home, 'p'));
    // display shows what the next owner will find, without writing anything.
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUE', dirtyBytes: G });
    // The next owner finds the region recorded: the pair cannot claim to be mirrored.
    put(s.home, 'p', 0, 16, 3);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUE', lastError: expect.stringContaining('died during mirrored writes') });
    expectFailure(plexus(s.home, 'pair', 'split', 'p'), 'E_STATE', 'PSUE');
    const [r] = json<ResyncResult[]>(ok(s.home, 'pair', 'resync', 'p', '--json').stdout);
    expect(r!.bytesCopied).toBe(2 * G);
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
  });
});
