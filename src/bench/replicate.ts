/**
 * `plexus bench replicate`: remote replication end to end between two real agents on
 * loopback, against a plain TCP copy between two processes measured in the same run:
 *  - drain: a burst journaled while the remote is stopped, then shipped and applied
 *    (the replication pipeline alone: read batch, frame, send, decode, reorder, apply);
 *  - live: a burst written while replicating (nbdcopy into the agent's NBD export),
 *    from its first write until the remote applied the last (the writer's own speed
 *    included), and the lag left at its end;
 *  - sync-wait latency when idle (a control-socket round trip, and the whole command);
 *  - the drain again over a link with 20 ms each way (a delay proxy: this kernel has no
 *    netem), against the TCP copy through the same proxy.
 * Each round runs every contender; ratios are the median of the per-round ratios.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../agent/client.js';
import { PlexusError } from '../errors.js';
import { Home } from '../home/home.js';
import type { ProgressCallback } from '../progress.js';
import { describeMachine, type MachineInfo } from './machine.js';
import { loadAverage, median, pairedRatio, roundRatios } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(here, '../../bin/plexus.js');

/** Options of the replication benchmark. */
export interface ReplicateBenchOptions {
  size: number;
  rounds?: number;
  /** One-way delay of the long link, ms (default 20). */
  delayMs?: number;
  log?: (line: string) => void;
  onProgress?: ProgressCallback;
}

/** What `bench replicate` measured (rates in bytes per second, per round). */
export interface ReplicateBenchResult {
  benchmark: 'replicate';
  date: string;
  machine: MachineInfo;
  sizeBytes: number;
  rounds: number;
  delayMs: number;
  tcp: number[];
  tcpDelayed: number[];
  drain: number[];
  drainDelayed: number[];
  live: number[];
  /** The writer alone: the same burst into a volume that is not replicated. */
  writer: number[];
  /** Seconds from the burst's last local acknowledgement to the remote having applied it. */
  lagAfterBurstSeconds: number[];
  /** Records and bytes not yet applied at the burst's end. */
  lagAtBurstEnd: Array<{ records: number; bytes: number }>;
  syncWaitIdleMs: { control: number[]; command: number[] };
  targets: Record<string, { target: string; measured: number; met: boolean; rounds: number[] }>;
  loadAverage: { start: number; end: number };
}

function plexus(home: string, ...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, '--home', home, ...args], { encoding: 'utf8', env: { ...process.env, PLEXUS_HOME: '' }, maxBuffer: 16 << 20 });
  if (r.status !== 0 && !(args[0] === 'sync-wait' && r.stdout)) throw new PlexusError('E_IO', `plexus ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Starts a child and resolves with its first stdout line matching `re`. */
function startChild(args: string[], re: RegExp, children: ChildProcess[], what: string): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PLEXUS_HOME: '' } });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new PlexusError('E_TIMEOUT', `${what} did not start within 20 s: ${out}`)), 20_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = re.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ child, match: m });
      }
    });
    child.stderr!.on('data', (d) => (out += d));
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new PlexusError('E_IO', `${what} exited (${code}) before it started: ${out}`));
    });
  });
}

async function tcpCopy(sink: ChildProcess, address: string, bytes: number): Promise<number> {
  const got = new Promise<number>((resolve) => {
    let out = '';
    const on = (d: Buffer): void => {
      out += d;
      const m = /received (\d+) ([\d.e-]+)\n/.exec(out);
      if (m) {
        sink.stdout!.off('data', on);
        resolve(Number(m[1]) / Number(m[2]));
      }
    };
    sink.stdout!.on('data', on);
  });
  const sender = spawn(process.execPath, [path.join(here, 'socket-copy.js'), 'send', address, String(bytes)], { stdio: 'ignore' });
  const rate = await got;
  await new Promise((r) => sender.once('exit', r));
  return rate;
}

async function syncWaitDone(home: string, group: string, timeoutMs: number): Promise<void> {
  const c = await AgentClient.connect(home);
  if (!c) throw new PlexusError('E_AGENT', `no agent at ${home}`);
  try {
    const r = await c.call<{ status: string }>('remote.syncWait', { group, timeoutMs });
    if (r.status !== 'DONE') throw new PlexusError('E_STATE', `sync-wait of ${group} answered ${r.status}`);
  } finally {
    c.close();
  }
}

async function displayOf(home: string, group: string): Promise<{ lag: { records: number; bytes: number } }> {
  const c = await AgentClient.connect(home);
  if (!c) throw new PlexusError('E_AGENT', `no agent at ${home}`);
  try {
    return (await c.call<Array<{ lag: { records: number; bytes: number } }>>('remote.display', { group }))[0]!;
  } finally {
    c.close();
  }
}

/** Runs the benchmark in scratch homes inside `home`. */
export async function benchReplicate(home: Home, opts: ReplicateBenchOptions): Promise<ReplicateBenchResult> {
  const log = opts.log ?? (() => undefined);
  const rounds = opts.rounds ?? 3;
  const size = opts.size;
  const delayMs = opts.delayMs ?? 20;
  const load0 = loadAverage();
  const dir = fs.mkdtempSync(path.join(home.dir, 'bench-replicate-'));
  const children: ChildProcess[] = [];
  const res: ReplicateBenchResult = {
    benchmark: 'replicate',
    date: new Date().toISOString(),
    machine: describeMachine(),
    sizeBytes: size,
    rounds,
    delayMs,
    tcp: [],
    tcpDelayed: [],
    drain: [],
    drainDelayed: [],
    live: [],
    writer: [],
    lagAfterBurstSeconds: [],
    lagAtBurstEnd: [],
    syncWaitIdleMs: { control: [], command: [] },
    targets: {},
    loadAverage: { start: load0, end: 0 },
  };
  try {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    Home.init(a);
    Home.init(b);
    fs.writeFileSync(path.join(dir, 'key'), plexus(b, 'remote', 'key'));
    plexus(a, 'remote', 'key', '--import', path.join(dir, 'key'));
    for (const h of [a, b]) for (const v of ['v', 'w']) plexus(h, 'volume', 'create', v, '--size', String(size));
    // The writer alone: the same burst into a volume of the primary that is not replicated.
    plexus(a, 'volume', 'create', 'x', '--size', String(size));
    log(`preparing ${size} bytes of random data`);
    const data = path.join(dir, 'burst.raw');
    const fd = fs.openSync(data, 'w');
    for (let at = 0; at < size; at += 16 << 20) fs.writeSync(fd, crypto.randomBytes(Math.min(16 << 20, size - at)));
    fs.closeSync(fd);
    const { child: agentB, match: mb } = await startChild(
      [process.execPath, CLI, '--home', b, 'serve', '--listen', '127.0.0.1:0', '--log-file', path.join(dir, 'b.log')],
      /peers on (\S+);/,
      children,
      'the remote agent',
    );
    const peer = mb[1]!;
    const nbdSocket = path.join(dir, 'a.nbd');
    await startChild([process.execPath, CLI, '--home', a, 'serve', '--nbd-socket', nbdSocket, '--log-file', path.join(dir, 'a.log')], /plexus agent serving/, children, 'the primary agent');
    // The burst is written as a real program would, through the agent's NBD export
    // (nbdcopy, 4 connections); without nbdcopy, through the control socket.
    const nbdcopy = spawnSync('nbdcopy', ['--version']).status === 0;
    const burst = (volume: string): void => {
      if (nbdcopy) {
        const r = spawnSync('nbdcopy', [data, `nbd+unix:///${volume}?socket=${nbdSocket}`], { stdio: ['ignore', 'ignore', 'pipe'] });
        if (r.status !== 0) throw new PlexusError('E_IO', `nbdcopy into ${volume} failed: ${r.stderr.toString().trim()}`);
      } else plexus(a, 'volume', 'write', volume, '--from', data);
    };
    const proxy = (await startChild([process.execPath, path.join(here, 'delay-proxy-main.js'), peer, String(delayMs)], /listening (\S+)\n/, children, 'the delay proxy')).match[1]!;
    // Room for a whole burst: the drain journals it while the remote is stopped.
    const journal = String(Math.max(2 * size + (64 << 20), 1 << 30));
    plexus(a, 'remote', 'pair', 'create', 'v', `${peer}/v`, '--group', 'g', '--journal-capacity', journal, '--link-timeout', '300');
    plexus(a, 'remote', 'pair', 'create', 'w', `${proxy}/w`, '--group', 'gd', '--journal-capacity', journal, '--link-timeout', '300');
    const { child: sink, match: ms } = await startChild([process.execPath, path.join(here, 'socket-copy.js'), 'sink'], /listening (\d+)\n/, children, 'the TCP sink');
    const sinkAddr = `127.0.0.1:${ms[1]}`;
    const sinkDelayed = (await startChild([process.execPath, path.join(here, 'delay-proxy-main.js'), sinkAddr, String(delayMs)], /listening (\S+)\n/, children, 'the delay proxy')).match[1]!;
    const steps = rounds * 5;
    let step = 0;
    const progress = (): void => opts.onProgress?.({ operation: 'bench replicate', done: ++step, total: steps });
    const drain = async (volume: string, group: string): Promise<number> => {
      process.kill(agentB.pid!, 'SIGSTOP');
      try {
        burst(volume);
      } finally {
        process.kill(agentB.pid!, 'SIGCONT');
      }
      const t0 = process.hrtime.bigint();
      await syncWaitDone(a, group, 600_000);
      return size / (Number(process.hrtime.bigint() - t0) / 1e9);
    };
    burst('x');
    // Warm-up, not measured: the remote volumes' blocks are allocated by their first writes.
    log('warming up: a first burst into each group');
    for (const [v, g] of [
      ['v', 'g'],
      ['w', 'gd'],
    ] as const) {
      burst(v);
      await syncWaitDone(a, g, 600_000);
    }
    for (let r = 0; r < rounds; r++) {
      // The peer is short and noisy: the median of three copies per round.
      const three = async (addr: string): Promise<number> => median([await tcpCopy(sink, addr, size), await tcpCopy(sink, addr, size), await tcpCopy(sink, addr, size)]);
      res.tcp.push(await three(sinkAddr));
      res.tcpDelayed.push(await three(sinkDelayed));
      progress();
      res.drain.push(await drain('v', 'g'));
      progress();
      res.drainDelayed.push(await drain('w', 'gd'));
      progress();
      const w0 = process.hrtime.bigint();
      burst('x');
      res.writer.push(size / (Number(process.hrtime.bigint() - w0) / 1e9));
      const t0 = process.hrtime.bigint();
      burst('v');
      const t1 = process.hrtime.bigint();
      const d = await displayOf(a, 'g');
      await syncWaitDone(a, 'g', 600_000);
      const t2 = process.hrtime.bigint();
      res.live.push(size / (Number(t2 - t0) / 1e9));
      res.lagAfterBurstSeconds.push(Number(t2 - t1) / 1e9);
      res.lagAtBurstEnd.push({ records: d.lag.records, bytes: d.lag.bytes });
      progress();
      // Idle: the group caught up, nothing to ship.
      const c = await AgentClient.connect(a);
      if (!c) throw new PlexusError('E_AGENT', 'the primary agent went away');
      try {
        for (let i = 0; i < 50; i++) {
          const s0 = process.hrtime.bigint();
          await c.call('remote.syncWait', { group: 'g', timeoutMs: 10_000 });
          res.syncWaitIdleMs.control.push(Number(process.hrtime.bigint() - s0) / 1e6);
        }
      } finally {
        c.close();
      }
      for (let i = 0; i < 3; i++) {
        const s0 = process.hrtime.bigint();
        plexus(a, 'sync-wait', '--group', 'g', '--timeout', '10');
        res.syncWaitIdleMs.command.push(Number(process.hrtime.bigint() - s0) / 1e6);
      }
      progress();
      log(
        `round ${r + 1}: tcp ${(res.tcp[r]! / 1e9).toFixed(2)} GB/s, drain ${(res.drain[r]! / 1e9).toFixed(2)} GB/s, live ${(res.live[r]! / 1e9).toFixed(2)} GB/s (lag after ${res.lagAfterBurstSeconds[r]!.toFixed(2)} s); ${delayMs} ms link: tcp ${(res.tcpDelayed[r]! / 1e9).toFixed(2)} GB/s, drain ${(res.drainDelayed[r]! / 1e9).toFixed(2)} GB/s`,
      );
    }
    const target = (goal: string, measured: number, met: boolean, per: number[]) => ({ target: goal, measured, met, rounds: per });
    const drainRatio = pairedRatio(res.drain, res.tcp);
    const liveRatio = pairedRatio(res.live, res.tcp);
    const delayedRatio = pairedRatio(res.drainDelayed, res.tcpDelayed);
    const idle = median(res.syncWaitIdleMs.control);
    res.targets = {
      'drain / loopback TCP': target('>= 0.5', drainRatio, drainRatio >= 0.5, roundRatios(res.drain, res.tcp)),
      'live burst / loopback TCP': target('>= 0.5', liveRatio, liveRatio >= 0.5, roundRatios(res.live, res.tcp)),
      [`drain / TCP, ${delayMs} ms each way`]: target('>= 0.5', delayedRatio, delayedRatio >= 0.5, roundRatios(res.drainDelayed, res.tcpDelayed)),
      'sync-wait when idle (ms)': target('<= 10', idle, idle <= 10, res.syncWaitIdleMs.control),
      'live burst / the writer alone (information)': target('-', pairedRatio(res.live, res.writer), true, roundRatios(res.live, res.writer)),
    };
    res.loadAverage.end = loadAverage();
    return res;
  } finally {
    for (const c of children) {
      if (c.exitCode !== null) continue;
      try {
        process.kill(c.pid!, 'SIGCONT');
      } catch {
        // Gone.
      }
      c.kill('SIGKILL');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
