/**
 * `plexus bench nbd`: the agent's NBD data path against the same raw file served by
 * `qemu-nbd` and by `nbdkit file`, in one run, over Unix sockets: nbdcopy writing and
 * reading the whole export, and 4 KiB random writes (fio's nbd engine) through a PAIR
 * mirror and through a split primary against qemu-nbd on a plain file. Every round runs
 * every contender back to back; ratios are the median of the per-round ratios.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PlexusError } from '../errors.js';
import { Home } from '../home/home.js';
import type { ProgressCallback } from '../progress.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { loadAverage, median, roundRatios, runTool, summarize, type Timing } from './measure.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/plexus.js');

/** Options of the NBD benchmark. */
export interface NbdBenchOptions {
  size: number;
  rounds?: number;
  /** Bytes written by each random-write run (4 KiB writes; default 64 MiB). */
  randomBytes?: number;
  log?: (line: string) => void;
  onProgress?: ProgressCallback;
}

/** A random-write contender: IOPS per round. */
export interface IopsTiming {
  name: string;
  iops: number[];
  medianIops: number;
}

/** A target and whether it was met. */
export interface NbdTarget {
  target: string;
  measured: number;
  met: boolean;
  /** Each round's ratio, in order. */
  rounds: number[];
}

/** What `bench nbd` measured. */
export interface NbdBenchResult {
  benchmark: 'nbd';
  date: string;
  machine: MachineInfo;
  peers: Record<string, string>;
  sizeBytes: number;
  rounds: number;
  write: Timing[];
  read: Timing[];
  randomWrite: IopsTiming[];
  targets: Record<string, NbdTarget>;
  loadAverage: { start: number; end: number };
}

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new PlexusError('E_NOTOOL', `bench nbd needs ${cmd} (Debian: qemu-utils, libnbd-bin, nbdkit, fio; npm install sets them up as root)`);
  return (r.stdout || r.stderr).trim().split('\n')[0]!;
}

async function waitForSocket(file: string, child: ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new PlexusError('E_IO', `${what} exited (status ${child.exitCode}) before it served`);
    if (fs.existsSync(file)) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(file);
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (ok) return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new PlexusError('E_TIMEOUT', `${what} did not listen on ${file} within 20 s`);
}

function plexus(home: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, '--home', home, ...args], { encoding: 'utf8', env: { ...process.env, PLEXUS_HOME: '' } });
  if (r.status !== 0) throw new PlexusError('E_IO', `plexus ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** fio's 4 KiB random writes over the export; IOPS. */
function fioIops(uri: string, size: number, bytes: number, seed: number): number {
  const r = spawnSync(
    'fio',
    ['--name=randwrite', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', '--iodepth=16', `--size=${size}`, `--io_size=${bytes}`, `--randseed=${seed}`, '--output-format=json'],
    { encoding: 'utf8', maxBuffer: 16 << 20 },
  );
  if (r.error) throw new PlexusError('E_NOTOOL', `cannot run fio: ${r.error.message}`);
  if (r.status !== 0) throw new PlexusError('E_IO', `fio on ${uri} failed: ${r.stderr.trim()}`);
  const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { jobs: Array<{ write: { iops: number } }> };
  return json.jobs[0]!.write.iops;
}

/** Runs the benchmark in a scratch home inside `home`. */
export async function benchNbd(home: Home, opts: NbdBenchOptions): Promise<NbdBenchResult> {
  const log = opts.log ?? (() => undefined);
  const rounds = opts.rounds ?? 3;
  const size = opts.size;
  const randomBytes = Math.min(opts.randomBytes ?? 64 << 20, size);
  const peers = {
    'qemu-nbd': version('qemu-nbd', ['--version']),
    nbdkit: version('nbdkit', ['--version']),
    nbdcopy: version('nbdcopy', ['--version']),
    fio: version('fio', ['--version']),
  };
  const load0 = loadAverage();
  const dir = fs.mkdtempSync(path.join(home.dir, 'bench-nbd-'));
  const children: ChildProcess[] = [];
  try {
    const bh = path.join(dir, 'home');
    Home.init(bh);
    log(`preparing ${size} bytes of random data and the volumes`);
    const src = path.join(dir, 'src.raw');
    const fd = fs.openSync(src, 'w');
    for (let at = 0; at < size; at += 16 << 20) fs.writeSync(fd, crypto.randomBytes(Math.min(16 << 20, size - at)));
    fs.closeSync(fd);
    const srcSum = crypto.createHash('sha256').update(fs.readFileSync(src)).digest('hex');
    for (const v of ['plain', 'p', 's']) plexus(bh, 'volume', 'create', v, '--size', String(size));
    plexus(bh, 'pair', 'create', 'p', 's');
    const peerFile = path.join(dir, 'peer.raw');
    const kitFile = path.join(dir, 'kit.raw');
    for (const f of [peerFile, kitFile]) {
      fs.writeFileSync(f, '');
      fs.truncateSync(f, size);
    }

    const sock = { plexus: path.join(dir, 'plexus.sock'), qemu: path.join(dir, 'qemu.sock'), nbdkit: path.join(dir, 'nbdkit.sock') };
    const agent = spawn(process.execPath, [CLI, '--home', bh, 'serve', '--nbd-socket', sock.plexus, '--log-file', path.join(dir, 'agent.log')], { stdio: 'ignore' });
    children.push(agent);
    const qemu = spawn('qemu-nbd', ['-f', 'raw', '-t', '-k', sock.qemu, '--cache=writeback', peerFile], { stdio: 'ignore' });
    children.push(qemu);
    const kit = spawn('nbdkit', ['-f', '-U', sock.nbdkit, 'file', kitFile], { stdio: 'ignore' });
    children.push(kit);
    await Promise.all([waitForSocket(sock.plexus, agent, 'plexus serve'), waitForSocket(sock.qemu, qemu, 'qemu-nbd'), waitForSocket(sock.nbdkit, kit, 'nbdkit')]);
    const uri = {
      plexus: `nbd+unix:///plain?socket=${sock.plexus}`,
      'qemu-nbd': `nbd+unix:///?socket=${sock.qemu}`,
      'nbdkit file': `nbd+unix:///?socket=${sock.nbdkit}`,
    };
    const names = Object.keys(uri) as Array<keyof typeof uri>;
    // Every file allocated first: the rounds compare rewrites, not first allocation.
    log('warming up: one untimed copy into every export');
    for (const n of names) runTool('nbdcopy', [src, uri[n]]);
    // The paired primary too (through the mirror): every random-write contender then
    // overwrites an allocated, cached file, as qemu-nbd's does.
    runTool('nbdcopy', [src, `nbd+unix:///p?socket=${sock.plexus}`]);
    const write: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    const read: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      // A different contender goes first each round.
      const order = names.map((_, i) => names[(i + r) % names.length]!);
      for (const n of order) {
        log(`round ${r + 1}/${rounds}: nbdcopy into ${n}`);
        write[n]!.push(runTool('nbdcopy', [src, uri[n]]));
        log(`round ${r + 1}/${rounds}: nbdcopy from ${n}`);
        read[n]!.push(runTool('nbdcopy', [uri[n], 'null:']));
      }
      opts.onProgress?.({ operation: 'bench nbd', done: r + 1, total: rounds * 2 });
    }
    const digest = plexus(bh, 'volume', 'checksum', 'plain').trim();
    if (digest !== srcSum) throw new PlexusError('E_CORRUPT', `the plexus export does not hold what nbdcopy wrote (sha256 ${digest}, want ${srcSum})`);

    // 4 KiB random writes: qemu-nbd on a plain file against the PAIR primary, then
    // against the same primary split.
    const iops: Record<string, number[]> = { 'qemu-nbd (plain file)': [], 'plexus PAIR primary': [], 'plexus split primary': [] };
    const pUri = `nbd+unix:///p?socket=${sock.plexus}`;
    if (plexus(bh, 'volume', 'checksum', 'p').trim() !== plexus(bh, 'volume', 'checksum', 's').trim()) {
      throw new PlexusError('E_CORRUPT', 'nbdcopy through the PAIR primary did not reach its secondary');
    }
    for (let r = 0; r < rounds; r++) {
      log(`round ${r + 1}/${rounds}: random 4 KiB writes, qemu-nbd and PAIR`);
      iops['qemu-nbd (plain file)']!.push(fioIops(uri['qemu-nbd'], size, randomBytes, 100 + r));
      iops['plexus PAIR primary']!.push(fioIops(pUri, size, randomBytes, 100 + r));
    }
    plexus(bh, 'pair', 'split', 'p');
    const qemuAgain: number[] = [];
    for (let r = 0; r < rounds; r++) {
      log(`round ${r + 1}/${rounds}: random 4 KiB writes, qemu-nbd and split primary`);
      qemuAgain.push(fioIops(uri['qemu-nbd'], size, randomBytes, 200 + r));
      iops['plexus split primary']!.push(fioIops(pUri, size, randomBytes, 200 + r));
      opts.onProgress?.({ operation: 'bench nbd', done: rounds + r + 1, total: rounds * 2 });
    }
    // The split primary's changes are all in its bitmap: a resync makes the pair equal.
    plexus(bh, 'pair', 'resync', 'p');
    const [pSum, sSum] = [plexus(bh, 'volume', 'checksum', 'p').trim(), plexus(bh, 'volume', 'checksum', 's').trim()];
    if (pSum !== sSum) throw new PlexusError('E_CORRUPT', 'after the random writes and a resync the pair differs');

    const writeT = names.map((n) => summarize(n, write[n]!, size));
    const readT = names.map((n) => summarize(n, read[n]!, size));
    const better = (t: Record<string, number[]>, i: number) => Math.min(t['qemu-nbd']![i]!, t['nbdkit file']![i]!);
    const peerBest = (t: Record<string, number[]>) => t.plexus!.map((_, i) => better(t, i));
    const target = (label: string, ratios: number[], goal: number): NbdTarget => ({ target: `>= ${goal}x ${label}`, measured: median(ratios), met: median(ratios) >= goal, rounds: ratios });
    // Throughput ratios: peer time / our time (higher is better).
    const writeRatios = roundRatios(peerBest(write), write.plexus!);
    const readRatios = roundRatios(peerBest(read), read.plexus!);
    const pairRatios = roundRatios(iops['plexus PAIR primary']!, iops['qemu-nbd (plain file)']!);
    const splitRatios = roundRatios(iops['plexus split primary']!, qemuAgain);
    return {
      benchmark: 'nbd',
      date: new Date().toISOString(),
      machine: describeMachine(),
      peers,
      sizeBytes: size,
      rounds,
      write: writeT,
      read: readT,
      randomWrite: Object.entries(iops)
        .map(([name, v]) => ({ name, iops: v, medianIops: median(v) }))
        .concat([{ name: 'qemu-nbd (plain file, split rounds)', iops: qemuAgain, medianIops: median(qemuAgain) }]),
      targets: {
        'nbdcopy write vs better peer': target('the better peer', writeRatios, 0.8),
        'nbdcopy read vs better peer': target('the better peer', readRatios, 0.8),
        '4K random writes, PAIR vs qemu-nbd plain': target('qemu-nbd on a plain file', pairRatios, 0.5),
        '4K random writes, split primary vs qemu-nbd plain': target('qemu-nbd on a plain file', splitRatios, 0.9),
      },
      loadAverage: { start: load0, end: loadAverage() },
    };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
