import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Home, Mirrors, VolumeStore } from '../../src/index.js';
import { CLI, plexusAsync, scratchDir } from '../helpers/home.js';

let scratch: ReturnType<typeof scratchDir>;
let mirrors: Mirrors;
let store: VolumeStore;
const MiB = 1 << 20;
const SIZE = 384 * MiB;

beforeEach(async () => {
  scratch = scratchDir();
  const home = Home.open(scratch.dir);
  mirrors = new Mirrors(home);
  store = new VolumeStore(home);
  store.create('p', { size: SIZE });
  store.create('s', { size: SIZE });
  await store.open('p').fill(0, SIZE, { seed: 21 });
});
afterEach(() => scratch.cleanup());

/** Runs the CLI and SIGKILLs it once the pair record shows `minDone` bytes copied. */
async function killMidway(args: string[], minDone: number): Promise<number> {
  const child = spawn(process.execPath, [CLI, '--home', scratch.dir, ...args], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  let done = 0;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the operation finished before it could be killed (${args.join(' ')})`);
    try {
      done = mirrors.display({ primary: 'p' })[0]?.operation?.done ?? 0;
    } catch {
      done = 0;
    }
    if (done >= minDone) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  child.kill('SIGKILL');
  await exited;
  expect(child.signalCode).toBe('SIGKILL');
  return done;
}

describe('crash safety: kill -9 of a real process, then resume', () => {
  it('an interrupted initial copy resumes from its durable bitmap and ends byte-identical', async () => {
    const source = await store.open('p').checksum();
    // A paced copy (200 MiB/s) on one thread gives the kill a window of seconds.
    await killMidway(['pair', 'create', 'p', 's', '--threads', '1', '--max-rate', '200M'], 100 * MiB);
    const [seen] = mirrors.display({ primary: 'p' });
    expect(seen!.state).toBe('COPY');
    expect(seen!.operation?.interrupted).toBe(true);
    expect(seen!.busy).toBe(false);

    const r = await plexusAsync(scratch.dir, 'pair', 'resync', 'p', '--json');
    expect(r.code, r.stderr).toBe(0);
    const [report] = JSON.parse(r.stdout) as Array<{ resumed: boolean; bytesCopied: number }>;
    expect(report!.resumed).toBe(true);
    // At least one 64 MiB checkpoint was durable before the kill, so less is recopied.
    expect(report!.bytesCopied).toBeLessThanOrEqual(SIZE - 64 * MiB);
    expect(report!.bytesCopied).toBeGreaterThan(0);
    expect(mirrors.display({ primary: 'p' })[0]!.state).toBe('PAIR');
    expect(await store.open('s').checksum()).toBe(source);
  });

  it('an interrupted resync resumes and ends byte-identical; the split image was never corrupted', async () => {
    await mirrors.create('p', 's');
    await mirrors.split({ primary: 'p' });
    // Rewrite the whole primary so the resync has a lot to do.
    const io = await mirrors.openIo('p', { write: true });
    io.close();
    await store.open('p').fill(0, SIZE, { seed: 22 });
    const source = await store.open('p').checksum();
    await killMidway(['pair', 'resync', 'p', '--full', '--threads', '1', '--max-rate', '200M'], 100 * MiB);
    const [seen] = mirrors.display({ primary: 'p' });
    expect(seen!.state).toBe('COPY(RS)');
    expect(seen!.operation?.interrupted).toBe(true);

    // pair wait --state PAIR resumes an interrupted copy itself.
    const w = await plexusAsync(scratch.dir, 'pair', 'wait', 'p', '--state', 'PAIR', '--timeout', '120');
    expect(w.code, w.stderr).toBe(0);
    expect(await store.open('s').checksum()).toBe(source);
  });

  for (const writeIntent of [true, false]) {
    it(`an owner killed after a write to a split primary ${writeIntent ? 'loses no dirty region (write intent)' : 'leaves the pair for a full resync (no write intent)'}`, async () => {
      await mirrors.create('p', 's', { writeIntent });
      await mirrors.split({ primary: 'p' });
      // A long-lived owner process writes 4 KiB at 100 MiB and dies without closing.
      const dist = path.resolve(path.dirname(CLI), '../dist/index.js');
      const script = `
        const { Home, Mirrors } = await import(${JSON.stringify(dist)});
        const io = await new Mirrors(Home.open(${JSON.stringify(scratch.dir)})).openIo('p', { write: true });
        io.write(${100 * MiB}, Buffer.alloc(4096, 0xab));
        process.kill(process.pid, 'SIGKILL');`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script]);
      expect(r.signal, r.stderr.toString()).toBe('SIGKILL');
      const [info] = mirrors.display({ primary: 'p' });
      expect(info!.state).toBe(writeIntent ? 'PSUS' : 'PSUE');
      const [res] = await mirrors.resync({ primary: 'p' });
      // With write intent the log names the 4 MiB intent extent around the write
      // (docs/bitmap-sidecar.md): that much is copied, not the volume.
      expect(res!.bytesCopied).toBe(writeIntent ? 4 * MiB : SIZE);
      expect(await store.open('s').checksum()).toBe(await store.open('p').checksum());
    });
  }
});
