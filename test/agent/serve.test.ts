/**
 * The site agent through the CLI: a running `plexus serve` owns the home's pairs, and
 * commands ask it instead of failing with E_BUSY; background jobs, cancel, a clean stop
 * on SIGTERM, and a kill -9 that loses nothing the next agent cannot resume.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame } from '../../src/agent/frame.js';
import { expectFailure, ok, useScratch } from '../cli/cli-helpers.js';
import { plexus } from '../helpers/home.js';
import { type AgentChild, killAgent, startAgent, stopAgent, waitForJobs } from './agent-helpers.js';

const s = useScratch();
let agents: AgentChild[] = [];

afterEach(async () => {
  for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) await killAgent(a);
  agents = [];
});

async function serve(...args: string[]): Promise<AgentChild> {
  const a = await startAgent(s.home, ...args);
  agents.push(a);
  return a;
}

function paired(size = '32M'): void {
  ok(s.home, 'init');
  ok(s.home, 'volume', 'create', 'p', '--size', size);
  ok(s.home, 'volume', 'create', 's', '--size', size);
  ok(s.home, 'volume', 'write', 'p', '--random', size, '--seed', '5');
  ok(s.home, 'pair', 'create', 'p', 's');
}

const digest = (name: string): string => ok(s.home, 'volume', 'checksum', name).stdout.trim();

describe('plexus serve', () => {
  it('owns the home: a socket of mode 0600, a pid file, one agent per home, commands asked of it', async () => {
    paired();
    const a = await serve();
    const sock = path.join(s.home, 'agent.sock');
    expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(s.home, 'agent.pid'), 'utf8').trim()).toBe(String(a.pid));
    // A second agent on the same home is refused while the first runs.
    expectFailure(plexus(s.home, 'serve'), 'E_BUSY', 'an agent already serves', String(a.pid));
    // The agent holds the pairs of p: without it this write would be E_BUSY.
    ok(s.home, 'volume', 'write', 'p', '--pattern', '0x5a', '--length', '1M', '--offset', '4M');
    expect(digest('p')).toBe(digest('s'));
    const status = JSON.parse(ok(s.home, 'serve', '--status', '--json').stdout);
    expect(status.pid).toBe(a.pid);
    expect(status.pairSets).toEqual(['p']);
    // The agent is the only owner: an in-process command forced past it is refused.
    process.env.PLEXUS_NO_AGENT = '1';
    try {
      expectFailure(plexus(s.home, 'volume', 'write', 'p', '--pattern', '1', '--length', '4K'), 'E_BUSY', 'pairs of p');
    } finally {
      delete process.env.PLEXUS_NO_AGENT;
    }
    expect(await stopAgent(a)).toBe(0);
    expect(fs.existsSync(sock)).toBe(false);
    expect(fs.existsSync(path.join(s.home, 'agent.pid'))).toBe(false);
    // Stopped cleanly: the pair is in PAIR, not suspended, and reopens without a resync.
    const [pair] = JSON.parse(ok(s.home, 'pair', 'display', 'p', '--json').stdout);
    expect(pair.state).toBe('PAIR');
    expect(pair.dirtyBytes).toBe(0);
  });

  it('runs --background resyncs as jobs that `jobs` lists and `jobs cancel` stops; a rerun resumes', async () => {
    paired('64M');
    await serve();
    ok(s.home, 'pair', 'split', 'p');
    ok(s.home, 'volume', 'write', 'p', '--random', '32M', '--seed', '9');
    // 4 MiB/s: the job is still running when it is cancelled.
    const started = ok(s.home, 'pair', 'resync', 'p', '--background', '--max-rate', '4M', '--json');
    const { job } = JSON.parse(started.stdout);
    await waitForJobs(s.home, (jobs) => jobs.some((j) => j.id === job && j.state === 'running' && j.done > 0));
    const live = JSON.parse(ok(s.home, 'pair', 'display', 'p', '--json').stdout)[0];
    expect(live.operation.kind).toBe('resync');
    expect(live.operation.interrupted).toBe(false);
    ok(s.home, 'jobs', 'cancel', job);
    const jobs = await waitForJobs(s.home, (js) => js.some((j) => j.id === job && j.state !== 'running'));
    expect(jobs.find((j) => j.id === job)!.state).toBe('cancelled');
    expectFailure(plexus(s.home, 'jobs', 'cancel', job), 'E_STATE', `job ${job} is cancelled`);
    expectFailure(plexus(s.home, 'jobs', 'cancel', '999'), 'E_NOENT', 'no job 999');
    // The rerun resumes: it copies less than the 32 MiB that were dirty.
    const r = JSON.parse(ok(s.home, 'pair', 'resync', 'p', '--json').stdout);
    expect(r[0].resumed).toBe(true);
    expect(r[0].bytesCopied).toBeLessThan(32 << 20);
    expect(digest('p')).toBe(digest('s'));
    const table = ok(s.home, 'jobs').stdout;
    expect(table).toMatch(/ID\s+KIND\s+TARGET\s+STATE/);
    expect(table).toContain('cancelled');
  });

  it('survives kill -9 during a resync: the next agent resumes the job and the copies are byte-identical', async () => {
    paired('64M');
    const a = await serve();
    ok(s.home, 'pair', 'split', 'p');
    ok(s.home, 'volume', 'write', 'p', '--random', '48M', '--seed', '11');
    const want = digest('p');
    ok(s.home, 'pair', 'resync', 'p', '--background', '--max-rate', '8M');
    await waitForJobs(s.home, (jobs) => jobs.some((j) => j.state === 'running' && j.done > 0));
    await killAgent(a);
    // A killed agent leaves its socket file behind: commands run in-process again.
    expect(fs.existsSync(path.join(s.home, 'agent.sock'))).toBe(true);
    const interrupted = JSON.parse(ok(s.home, 'pair', 'display', 'p', '--json').stdout)[0];
    expect(interrupted.operation.interrupted).toBe(true);
    await serve();
    const jobs = await waitForJobs(s.home, (js) => js.some((j) => j.state === 'done'), 60_000);
    expect(jobs[0]!.kind).toBe('resync');
    const pair = JSON.parse(ok(s.home, 'pair', 'display', 'p', '--json').stdout)[0];
    expect(pair.state).toBe('PAIR');
    expect(digest('p')).toBe(want);
    expect(digest('s')).toBe(want);
  });

  it('survives kill -9 during mirrored writes: nothing acknowledged is lost and the next agent repairs the secondary', async () => {
    paired('32M');
    const a = await serve();
    for (let i = 0; i < 4; i++) ok(s.home, 'volume', 'write', 'p', '--random', '1M', '--seed', String(20 + i), '--offset', `${i * 3}M`);
    const want = digest('p');
    await killAgent(a);
    await serve();
    await waitForJobs(s.home, (js) => js.some((j) => j.state === 'done' && j.kind === 'resync'), 60_000);
    expect(JSON.parse(ok(s.home, 'pair', 'display', 'p', '--json').stdout)[0].state).toBe('PAIR');
    expect(digest('p')).toBe(want);
    expect(digest('s')).toBe(want);
  });

  it('stays up through hostile control clients: garbage, an oversize frame, a bad request', async () => {
    ok(s.home, 'init');
    const a = await serve();
    const sock = path.join(s.home, 'agent.sock');
    const send = (bytes: Buffer): Promise<Buffer> =>
      new Promise((resolve) => {
        const c = net.connect(sock);
        let got = Buffer.alloc(0);
        c.on('data', (d) => (got = Buffer.concat([got, d])));
        c.on('close', () => resolve(got));
        c.on('error', () => resolve(got));
        c.write(bytes);
        setTimeout(() => c.destroy(), 500);
      });
    await send(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    await send(Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from([0xc1, 0xc1, 0xc1])]));
    await send(encodeFrame({ id: 'x', method: 7 }));
    const reply = await send(encodeFrame({ id: 1, method: 'no.such', params: {} }));
    expect(reply.toString('latin1')).toContain('unknown control request');
    const bad = await send(encodeFrame({ id: 2, method: 'volume.read', params: { name: 5 } }));
    expect(bad.toString('latin1')).toContain('parameter name must be a string');
    expect(a.child.exitCode).toBeNull();
    ok(s.home, 'serve', '--status');
    expect(JSON.parse(ok(s.home, 'jobs', '--json').stdout)).toEqual([]);
  });

  it('--detach starts a daemon that --stop stops; without an agent `jobs` says so', () => {
    ok(s.home, 'init');
    expect(ok(s.home, 'jobs').stdout).toContain('no agent serves');
    const started = ok(s.home, 'serve', '--detach');
    expect(started.stdout).toMatch(/plexus agent started \(pid \d+\)/);
    const pid = Number(fs.readFileSync(path.join(s.home, 'agent.pid'), 'utf8'));
    expect(() => process.kill(pid, 0)).not.toThrow();
    expect(ok(s.home, 'serve', '--stop').stdout).toContain(`stopped agent ${pid}`);
    expect(() => process.kill(pid, 0)).toThrow();
    const log = fs
      .readFileSync(path.join(s.home, 'agent.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.map((l) => l.event)).toEqual(expect.arrayContaining(['started', 'stopping', 'stopped']));
    expect(log.find((l) => l.event === 'stopped').clean).toBe(true);
  });
});

describe('backups and restores as agent jobs', () => {
  it('backup run and restore go through the agent (listed as jobs); --background returns at once', async () => {
    paired('16M');
    ok(s.home, 'library', 'create', 'lib', '--slots', '4', '--drives', '1', '--cartridge-size', '64M');
    await serve();
    ok(s.home, 'pair', 'split', 'p');
    const r = JSON.parse(ok(s.home, 'backup', 'run', 's', '--json').stdout);
    expect(r.consistency).toBe('consistent');
    const out = path.join(s.dir, 'restored.img');
    ok(s.home, 'restore', String(r.job), '--to', path.relative(process.cwd(), out));
    const fileSum = (await import('node:crypto')).createHash('sha256').update(fs.readFileSync(out)).digest('hex');
    expect(fileSum).toBe(digest('s'));
    const started = JSON.parse(ok(s.home, 'backup', 'run', 's', '--background', '--json').stdout);
    const jobs = await waitForJobs(s.home, (js) => js.some((j) => j.id === started.job && j.state === 'done'));
    expect(jobs.map((j) => j.kind)).toEqual(expect.arrayContaining(['backup', 'restore']));
    const catalog = JSON.parse(ok(s.home, 'catalog', 'jobs', '--json').stdout);
    expect(catalog.length).toBe(2);
  });

  it('--background without an agent is refused with a hint', () => {
    paired('8M');
    expectFailure(plexus(s.home, 'backup', 'run', 's', '--background'), 'E_STATE', 'plexus serve');
  });
});
