/**
 * `plexus bench copy --sparse`: thin volumes kept thin (issue 13). A large sparse volume
 * holding little data (default 16 GiB with 64 MiB, in 4 MiB extents spread over it) is
 * copied by `plexus copy` and paired by `plexus pair create` (whole processes), against
 * `cp --sparse=always` and `qemu-img convert -O raw` of the same file, and against
 * `plexus copy` of a dense volume of just the data ("the data alone"), in the same run.
 * Backups and restores likewise: `plexus backup run` of the thin volume against that of
 * the dense one (to a virtual tape library in the same home), `plexus restore` of each
 * to a new file. Reported: times, the bytes each destination allocates (for a backup:
 * what the cartridges grew by), ratios per round (median).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PlexusError } from '../errors.js';
import { Home } from '../home/home.js';
import type { ProgressCallback } from '../progress.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { loadAverage, pairedRatio, roundRatios, runTool } from './measure.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/plexus.js');

/** Options of the sparse benchmark. */
export interface SparseBenchOptions {
  size: number;
  data: number;
  rounds?: number;
  log?: (line: string) => void;
  onProgress?: ProgressCallback;
}

/** One contender: seconds and the destination's allocated bytes per round. */
export interface SparseTiming {
  name: string;
  seconds: number[];
  allocated: number[];
}

/** What `bench copy --sparse` measured. */
export interface SparseBenchResult {
  benchmark: 'copy-sparse';
  date: string;
  machine: MachineInfo;
  sizeBytes: number;
  dataBytes: number;
  rounds: number;
  contenders: SparseTiming[];
  targets: Record<string, { target: string; measured: number; met: boolean; rounds: number[] }>;
  loadAverage: { start: number; end: number };
}

function plexus(home: string, ...args: string[]): number {
  return runTool(process.execPath, [CLI, '--home', home, ...args], { ...process.env, PLEXUS_HOME: '', PLEXUS_NO_AGENT: '1' });
}

const allocated = (file: string): number => fs.statSync(file).blocks * 512;

/** Runs the benchmark in a scratch home inside `home`. */
export async function benchSparse(home: Home, opts: SparseBenchOptions): Promise<SparseBenchResult> {
  const log = opts.log ?? (() => undefined);
  const rounds = opts.rounds ?? 3;
  const { size, data } = opts;
  if (data > size) throw new PlexusError('E_INVALID', `--data (${data}) is larger than --size (${size})`);
  if (spawnSync('qemu-img', ['--version']).status !== 0) throw new PlexusError('E_NOTOOL', 'bench copy --sparse needs qemu-img (Debian: qemu-utils; npm install sets it up as root)');
  const load0 = loadAverage();
  const dir = fs.mkdtempSync(path.join(home.dir, 'bench-sparse-'));
  try {
    const h = path.join(dir, 'home');
    Home.init(h);
    const vol = (n: string): string => path.join(h, 'volumes', `${n}.img`);
    log(`preparing a ${size}-byte volume holding ${data} bytes in 4 MiB extents`);
    plexus(h, 'volume', 'create', 'thin', '--size', String(size));
    plexus(h, 'volume', 'create', 'dense', '--size', String(data));
    const extent = 4 << 20;
    const extents = Math.max(1, Math.floor(data / extent));
    const stride = Math.floor(size / extents / extent) * extent;
    for (let i = 0; i < extents; i++) {
      plexus(h, 'volume', 'write', 'thin', '--offset', String(i * stride), '--random', String(extent), '--seed', String(i + 1));
      plexus(h, 'volume', 'write', 'dense', '--offset', String(i * extent), '--random', String(extent), '--seed', String(i + 1));
    }
    // Cartridges big enough for a round's jobs; a job that fills one goes on to the next.
    plexus(h, 'library', 'create', 'lib', '--slots', String(2 * rounds + 2), '--drives', '1', '--cartridge-size', String(Math.max(256 << 20, 2 * data + (16 << 20))));
    const tapes = (): number =>
      fs
        .readdirSync(path.join(h, 'libraries'), { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('.tape'))
        .reduce((a, f) => a + allocated(path.join(h, 'libraries', f)), 0);
    const out = path.join(dir, 'out.img');
    const contenders: SparseTiming[] = [
      'plexus copy',
      'plexus pair create',
      'cp --sparse=always',
      'qemu-img convert',
      'plexus copy of the data alone',
      'plexus backup run',
      'plexus backup run of the data alone',
      'plexus restore',
      'plexus restore of the data alone',
    ].map((name) => ({ name, seconds: [], allocated: [] }));
    const [copyT, pairT, cpT, qemuT, denseT, backupT, denseBackupT, restoreT, denseRestoreT] = contenders as [
      SparseTiming,
      SparseTiming,
      SparseTiming,
      SparseTiming,
      SparseTiming,
      SparseTiming,
      SparseTiming,
      SparseTiming,
      SparseTiming,
    ];
    let jobs = 0;
    // A backup, then a restore of it to a new file: seconds and bytes allocated of each.
    const backupAndRestore = (volume: string, b: SparseTiming, r: SparseTiming): void => {
      const before = tapes();
      b.seconds.push(plexus(h, 'backup', 'run', volume));
      b.allocated.push(tapes() - before);
      jobs++;
      tick();
      r.seconds.push(plexus(h, 'restore', String(jobs), '--to', out));
      r.allocated.push(allocated(out));
      fs.rmSync(out);
      tick();
    };
    const steps = rounds * contenders.length;
    let step = 0;
    const tick = (): void => opts.onProgress?.({ operation: 'bench copy --sparse', done: ++step, total: steps });
    for (let r = 0; r < rounds; r++) {
      log(`round ${r + 1}/${rounds}`);
      copyT.seconds.push(plexus(h, 'copy', 'thin', 'copy1', '--no-sync'));
      copyT.allocated.push(allocated(vol('copy1')));
      plexus(h, 'volume', 'rm', 'copy1');
      tick();
      plexus(h, 'volume', 'create', 'sec', '--size', String(size));
      pairT.seconds.push(plexus(h, 'pair', 'create', 'thin', 'sec'));
      pairT.allocated.push(allocated(vol('sec')));
      plexus(h, 'pair', 'delete', 'thin');
      plexus(h, 'volume', 'rm', 'sec');
      tick();
      cpT.seconds.push(runTool('cp', ['--sparse=always', vol('thin'), out]));
      cpT.allocated.push(allocated(out));
      fs.rmSync(out);
      tick();
      qemuT.seconds.push(runTool('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', vol('thin'), out]));
      qemuT.allocated.push(allocated(out));
      fs.rmSync(out);
      tick();
      denseT.seconds.push(plexus(h, 'copy', 'dense', 'copy2', '--no-sync'));
      denseT.allocated.push(allocated(vol('copy2')));
      plexus(h, 'volume', 'rm', 'copy2');
      tick();
      backupAndRestore('thin', backupT, restoreT);
      backupAndRestore('dense', denseBackupT, denseRestoreT);
    }
    const peer = cpT.seconds.map((c, i) => Math.min(c, qemuT.seconds[i]!));
    const t = (goal: string, per: number[], ok: (x: number) => boolean) => {
      const m = pairedRatio(
        per,
        per.map(() => 1),
      );
      return { target: goal, measured: m, met: ok(m), rounds: per };
    };
    const maxAlloc = Math.max(...copyT.allocated, ...pairT.allocated);
    const thinAlloc = [...backupT.allocated, ...restoreT.allocated];
    const maxThin = Math.max(...thinAlloc);
    return {
      benchmark: 'copy-sparse',
      date: new Date().toISOString(),
      machine: describeMachine(),
      sizeBytes: size,
      dataBytes: data,
      rounds,
      contenders,
      targets: {
        'plexus copy / the data alone': t('<= 2', roundRatios(copyT.seconds, denseT.seconds), (x) => x <= 2),
        'plexus pair create / the data alone': t('<= 2', roundRatios(pairT.seconds, denseT.seconds), (x) => x <= 2),
        'plexus copy / the faster of cp and qemu-img': t('<= 1', roundRatios(copyT.seconds, peer), (x) => x <= 1),
        'allocated by a copy or a pair / the data': { target: '<= 1.1', measured: maxAlloc / data, met: maxAlloc / data <= 1.1, rounds: [...copyT.allocated, ...pairT.allocated].map((a) => a / data) },
        'plexus backup run / that of the data alone': t('<= 2', roundRatios(backupT.seconds, denseBackupT.seconds), (x) => x <= 2),
        'plexus restore / that of the data alone': t('<= 2', roundRatios(restoreT.seconds, denseRestoreT.seconds), (x) => x <= 2),
        'plexus backup run / the faster of cp and qemu-img': t('<= 1', roundRatios(backupT.seconds, peer), (x) => x <= 1),
        'plexus restore / the faster of cp and qemu-img': t('<= 1', roundRatios(restoreT.seconds, peer), (x) => x <= 1),
        'allocated by a backup or a restore / the data': { target: '<= 1.1', measured: maxThin / data, met: maxThin / data <= 1.1, rounds: thinAlloc.map((a) => a / data) },
      },
      loadAverage: { start: load0, end: loadAverage() },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
