import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirtyBitmap, Home, VolumeStore } from '../../src/index.js';
import { CLI, plexusAsync, scratchDir } from '../helpers/home.js';

const WRITER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/intent-writer.mjs');

let scratch: ReturnType<typeof scratchDir>;
beforeEach(() => (scratch = scratchDir()));
afterEach(() => scratch.cleanup());

describe('crash safety (SIGKILL of a real child process)', () => {
  it('never loses the dirty bit of an acknowledged write', async () => {
    const store = new VolumeStore(Home.open(scratch.dir));
    const size = 256 << 20;
    store.create('vol', { size });
    const file = path.join(scratch.dir, 'vol.bitmap');
    DirtyBitmap.create(file, size, { granularity: 64 << 10, durable: true });

    const child = spawn(process.execPath, [WRITER, scratch.dir, 'vol', file], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked: Array<[number, number]> = [];
    let buffered = '';
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const l of lines) {
          const [, o, n] = l.split(' ');
          acked.push([Number(o), Number(n)]);
        }
        if (acked.length >= 150) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
    });
    expect(child.signalCode).toBe('SIGKILL');
    expect(acked.length).toBeGreaterThanOrEqual(150);

    const reopened = DirtyBitmap.open(file, { durable: true });
    for (const [offset, length] of acked) {
      expect(reopened.isDirty(offset, length), `write at ${offset}+${length}`).toBe(true);
    }
    const vol = store.open('vol');
    for (const [offset, length] of acked.slice(-20)) {
      expect(vol.read(offset, length).every((b) => b === 0xcd)).toBe(true);
    }
  });

  it('a killed copy leaves its source intact and can simply be repeated', async () => {
    const store = new VolumeStore(Home.open(scratch.dir));
    const size = 256 << 20;
    const src = store.create('src', { size });
    await src.fill(0, 16 << 20, { seed: 3 });
    await src.fill(size - (16 << 20), 16 << 20, { seed: 4 });
    const before = await src.checksum();

    const child = spawn(process.execPath, [CLI, '--home', scratch.dir, 'copy', 'src', 'dst', '--threads', '1', '--chunk', '1M'], {
      stdio: 'ignore',
    });
    // Kill the CLI once the destination exists, i.e. with the copy under way.
    const dst = path.join(scratch.dir, 'volumes', 'dst.img.meta');
    while (!fs.existsSync(dst) && child.exitCode === null) await new Promise((r) => setTimeout(r, 2));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(child.signalCode).toBe('SIGKILL');
    expect(await src.checksum()).toBe(before);

    const again = await plexusAsync(scratch.dir, 'copy', 'src', 'dst');
    expect(again.code, again.stderr).toBe(0);
    expect(await store.open('dst').checksum()).toBe(before);
  });
});
