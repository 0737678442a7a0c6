/** `plexus serve` and `plexus jobs` (declared in ../tree/serve.ts). */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient } from '../../agent/client.js';
import type { AgentStatus } from '../../agent/core.js';
import type { TlsOptions } from '../../agent/exports.js';
import type { JobInfo } from '../../agent/jobs.js';
import { agentPaths } from '../../agent/paths.js';
import { PlexusError } from '../../errors.js';
import { Home, resolveHomeDir } from '../../home/home.js';
import { formatBytes } from '../../util/size.js';
import { agentOf, ask } from '../agent.js';
import type { GlobalOptions } from '../context.js';
import { printFields, printJson, printTable } from '../render/output.js';

export interface ServeOpts extends GlobalOptions {
  nbd?: string;
  listen?: string;
  site?: string;
  nbdSocket?: string;
  allowRemote?: boolean;
  detach?: boolean;
  logFile?: string;
  status?: boolean;
  stop?: boolean;
  json?: boolean;
  tlsCertificates?: string;
  tlsVerifyPeer?: boolean;
  tlsPsk?: string;
  tls: string;
}

function tlsOf(o: ServeOpts): TlsOptions | undefined {
  if (o.tls !== 'require' && o.tls !== 'on') throw new PlexusError('E_INVALID', `--tls must be require or on, got '${o.tls}'`);
  if (o.tlsCertificates === undefined && o.tlsPsk === undefined) return undefined;
  return { certificates: o.tlsCertificates && path.resolve(o.tlsCertificates), psk: o.tlsPsk && path.resolve(o.tlsPsk), verifyPeer: o.tlsVerifyPeer, mode: o.tls };
}

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/plexus.js');

/** `serve`: runs the agent in the foreground until SIGTERM, or starts it detached. */
export async function runServe(o: ServeOpts): Promise<void> {
  if (o.status) return printStatus(o);
  if (o.stop) return stopAgent(o);
  const home = Home.open(o.home, { create: false });
  if (o.detach) return detach(home.dir, o);
  const { startAgent } = await import('../../agent/agent.js');
  const agent = await startAgent(home.dir, { nbd: o.nbd, nbdSocket: o.nbdSocket, logFile: o.logFile, allowRemote: o.allowRemote, tls: tlsOf(o), listen: o.listen, site: o.site });
  const nbd = agent.core.exports?.addresses();
  const peers = agent.core.replication?.listening;
  process.stdout.write(
    `plexus agent serving ${home.dir} (pid ${process.pid})${nbd?.tcp ? `; NBD on ${nbd.tcp}` : ''}${nbd?.unix ? `; NBD socket ${nbd.unix}` : ''}${peers ? `; peers on ${peers}` : ''}; stop with SIGTERM\n`,
  );
  await agent.stopped;
}

/** Starts the agent as a daemon and returns once it answers on its control socket. */
async function detach(homeDir: string, o: ServeOpts): Promise<void> {
  const paths = agentPaths(homeDir);
  const log = o.logFile !== undefined ? path.resolve(o.logFile) : paths.log;
  const args = [CLI, '--home', homeDir, 'serve', '--log-file', log];
  if (o.nbd !== undefined) args.push('--nbd', o.nbd);
  if (o.nbdSocket !== undefined) args.push('--nbd-socket', path.resolve(o.nbdSocket));
  if (o.allowRemote) args.push('--allow-remote');
  if (o.listen !== undefined) args.push('--listen', o.listen);
  if (o.site !== undefined) args.push('--site', o.site);
  const tls = tlsOf(o);
  if (tls?.certificates) args.push('--tls-certificates', tls.certificates);
  if (tls?.psk) args.push('--tls-psk', tls.psk);
  if (tls?.verifyPeer) args.push('--tls-verify-peer');
  if (tls) args.push('--tls', tls.mode!);
  const child = spawn(process.execPath, args, { detached: true, stdio: 'ignore', cwd: homeDir });
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      throw new PlexusError('E_AGENT', `the agent exited (status ${exited}) before it served; see ${log}: ${lastLines(log)}`);
    }
    const client = await AgentClient.connect(homeDir, 500);
    if (client) {
      const status = await ask<AgentStatus>(client, 'agent.status', {});
      if (status.pid === child.pid) {
        child.unref();
        process.stdout.write(`plexus agent started (pid ${status.pid}); log ${log}\n`);
        return;
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGTERM');
  throw new PlexusError('E_TIMEOUT', `the agent did not answer within 20 s; see ${log}`);
}

function lastLines(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '(no log)';
  }
}

async function printStatus(o: ServeOpts): Promise<void> {
  const agent = await agentOf(o);
  if (!agent) {
    if (o.json) printJson(null);
    else process.stdout.write(`no agent serves ${resolveHomeDir(o.home)}\n`);
    return;
  }
  const s = await ask<AgentStatus>(agent, 'agent.status', {});
  if (o.json) return printJson(s);
  printFields([
    ['pid', s.pid],
    ['home', s.home],
    ['started', s.startedAt],
    ['nbd', s.nbd ? `${[s.nbd.tcp, s.nbd.unix].filter(Boolean).join(', ')} (${s.nbd.clients} client${s.nbd.clients === 1 ? '' : 's'})` : '-'],
    ['peers', s.peers ?? '-'],
    ['running jobs', s.jobs],
    ['pair sets', s.pairSets.join(', ') || '-'],
  ]);
}

async function stopAgent(o: ServeOpts): Promise<void> {
  const agent = await agentOf(o);
  if (!agent) throw new PlexusError('E_NOENT', `no agent serves ${resolveHomeDir(o.home)}`);
  const { pid } = await agent.call<AgentStatus>('agent.status', {});
  await ask(agent, 'agent.stop', {});
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && alive(pid)) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) throw new PlexusError('E_TIMEOUT', `agent ${pid} did not stop within 30 s`);
  process.stdout.write(`stopped agent ${pid}\n`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `jobs`. */
export async function runJobsList(o: GlobalOptions & { json?: boolean }): Promise<void> {
  const agent = await agentOf(o);
  const jobs = agent ? await ask<JobInfo[]>(agent, 'jobs.list', {}) : [];
  if (o.json) return printJson(jobs);
  if (!agent) return void process.stdout.write(`no agent serves ${resolveHomeDir(o.home)}: no jobs (start one with plexus serve)\n`);
  if (jobs.length === 0) return void process.stdout.write('no jobs\n');
  printTable(
    ['ID', 'KIND', 'TARGET', 'STATE', 'PROGRESS', 'STARTED', 'ERROR'],
    jobs.map((j) => [j.id, j.kind, j.target, j.state, j.total > 0 ? `${j.percent}% of ${formatBytes(j.total)}` : '-', j.startedAt, j.error ? `${j.error.message} (${j.error.code})` : '-']),
  );
}

/** `jobs cancel`. */
export async function runJobsCancel(id: string, o: GlobalOptions): Promise<void> {
  const agent = await agentOf(o);
  if (!agent) throw new PlexusError('E_NOENT', `no agent serves ${resolveHomeDir(o.home)}: there are no jobs to cancel`);
  const j = await ask<JobInfo>(agent, 'jobs.cancel', { id });
  process.stdout.write(`cancelling job ${j.id} (${j.kind} of ${j.target}); it stops between chunks\n`);
}
