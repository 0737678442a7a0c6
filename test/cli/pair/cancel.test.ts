/**
 * Ctrl-C (SIGINT) during `pair resync` and `pair fill`: exit 130 with one clear line,
 * nothing half-written left behind, and running the command again finishes the job
 * byte for byte.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Home, Mirrors } from '../../../src/index.js';
import { CLI } from '../../helpers/home.js';
import { MiB, ok, useScratch } from '../cli-helpers.js';
import { display, sum, volumes } from './pair-helpers.js';

const s = useScratch();
const SIZE_MIB = 256;

/** Runs the CLI, sends SIGINT once the pair's operation has copied `minDone` bytes,
 * and returns its exit code and stderr. */
async function interrupt(args: string[], minDone: number): Promise<{ code: number | null; stderr: string }> {
  const mirrors = new Mirrors(Home.open(s.home));
  const child = spawn(process.execPath, [CLI, '--home', s.home, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PLEXUS_HOME: '' } });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  for (;;) {
    if (child.exitCode !== null) throw new Error(`finished before it could be interrupted: ${stderr}`);
    let done = 0;
    try {
      done = mirrors.display({ primary: 'p' })[0]?.operation?.done ?? 0;
    } catch {
      done = 0;
    }
    if (done >= minDone) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill('SIGINT');
  return { code: await exited, stderr };
}

/** Files a clean cancel must not leave: the owner marker, partial copies, temporaries. */
function leftovers(home: string): string[] {
  return (fs.readdirSync(home, { recursive: true }) as string[]).filter((f) => /\.open$|plexus-partial|\.tmp$/.test(path.basename(f)));
}

describe('Ctrl-C cancels cleanly', () => {
  it('pair resync: exit 130, no marker, the record says interrupted, and a rerun ends byte-identical', async () => {
    await volumes(s.home, SIZE_MIB, 'p', 's');
    ok(s.home, 'pair', 'create', 'p', 's');
    ok(s.home, 'pair', 'split', 'p');
    const r = await interrupt(['pair', 'resync', 'p', '--full', '--threads', '1', '--max-rate', '100M'], 64 * MiB);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/^plexus: resync of p → s cancelled; .*plexus pair resync p --plex s.* \(E_CANCELLED\)\n$/);
    expect(leftovers(s.home)).toEqual([]);
    const [seen] = display(s.home, 'p');
    expect(seen).toMatchObject({ state: 'COPY(RS)', busy: false, operation: expect.objectContaining({ kind: 'resync', interrupted: true }) });
    const again = JSON.parse(ok(s.home, 'pair', 'resync', 'p', '--json').stdout) as Array<{ resumed: boolean; bytesCopied: number }>;
    expect(again[0]!.resumed).toBe(true);
    expect(again[0]!.bytesCopied).toBeLessThan(SIZE_MIB * MiB);
    expect(display(s.home, 'p')[0]!.state).toBe('PAIR');
    expect(sum(s.home, 's')).toBe(sum(s.home, 'p'));
  });

  it('pair fill: exit 130, no marker, and a rerun fills the rest to the split image', async () => {
    await volumes(s.home, SIZE_MIB, 'p', 's');
    const image = sum(s.home, 'p');
    // An instant split whose fill is left to `pair fill`.
    await new Mirrors(Home.open(s.home)).create('p', 's', { instant: true, deferCopy: true });
    const r = await interrupt(['pair', 'fill', 'p', '--threads', '1', '--max-rate', '100M'], 64 * MiB);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/^plexus: fill of p → s cancelled; .*plexus pair fill p --plex s.* \(E_CANCELLED\)\n$/);
    expect(leftovers(s.home)).toEqual([]);
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUS', fillPending: true, busy: false, operation: expect.objectContaining({ kind: 'fill', interrupted: true }) });
    ok(s.home, 'pair', 'fill', 'p');
    expect(display(s.home, 'p')[0]).toMatchObject({ state: 'PSUS', fillPending: false, operation: null });
    expect(sum(s.home, 's')).toBe(image);
  });
});
