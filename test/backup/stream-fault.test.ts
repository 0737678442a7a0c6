/** Stream faults acted out on a copy device's source, as the backup manager's failover uses them. */
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Home, VolumeStore } from '../../src/index.js';
import { TapeDrive } from '../../src/tape/drive.js';
import { scratchDir } from '../helpers/home.js';

const MiB = 1024 * 1024;
let scratch: ReturnType<typeof scratchDir>;
let store: VolumeStore;
let tape: TapeDrive;

beforeEach(async () => {
  scratch = scratchDir();
  store = new VolumeStore(Home.open(path.join(scratch.dir, 'home')));
  const v = store.create('src', { size: 8 * MiB });
  await v.fill(0, 8 * MiB, { seed: 1 });
  const file = path.join(scratch.dir, 'c.tape');
  TapeDrive.format(file, 'S00001L9', 32 * MiB, 64 * 1024);
  tape = TapeDrive.load(file, false);
  tape.spaceToEod();
});
afterEach(() => {
  tape.unload();
  scratch.cleanup();
});

const whole = [{ id: 0, sourceOffset: 0, length: 8 * MiB }];

describe('stream faults', () => {
  it('a stream failing after N bytes fails its command with E_IO; the cartridge keeps nothing of it', async () => {
    const failed = await tape.executeCommands(store.open('src'), whole, { fault: { failAfter: 2 * MiB } });
    expect(failed.stop).toMatchObject({ reason: 'error', command: 0, code: 'E_IO' });
    expect(failed.stop!.message).toContain('failed after 2097152 bytes');
    expect(failed).toMatchObject({ completed: [], remaining: whole, open: false });
    expect(tape.files()).toEqual([]);
    const ok = await tape.executeCommands(store.open('src'), whole);
    expect(ok.stop).toBeUndefined();
    expect(ok.completed.map((c) => c.length)).toEqual([8 * MiB]);
    await tape.closeSegment(null);
    expect(tape.files().map((f) => f.bytes)).toEqual([8 * MiB]);
  });

  it('a hanging stream is ended only by cancelling it (the timeout path)', async () => {
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(), 200);
    const r = await tape.executeCommands(store.open('src'), whole, { fault: { hangAfter: MiB }, signal: ac.signal });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(['E_CANCELLED', 'E_IO']).toContain(r.stop?.code);
    expect(tape.files()).toEqual([]);
  });
});
