/**
 * The site agent (`plexus serve`): the long-lived owner of one storage home. It holds the
 * primaries' pair sets open, runs long operations as jobs, answers the CLI on a control
 * socket and serves the volumes over NBD. It stops cleanly on SIGTERM: jobs are
 * cancelled between chunks (their progress is durable, so the next agent resumes them),
 * NBD clients' in-flight requests finish and the exports are flushed, and the pairs are
 * closed as a CLI command closes them. Killed with -9, it loses nothing acknowledged.
 */
import fs from 'node:fs';
import { asPlexusError, callNative, PlexusError } from '../errors.js';
import { Home } from '../home/home.js';
import { Mirrors } from '../mirror/mirrors.js';
import { PlexSet } from '../mirror/plexset.js';
import { native } from '../native/binding.js';
import { writeFileDurable } from '../util/durable.js';
import { AgentCore } from './core.js';
import type { TlsOptions } from './exports.js';
import { Jobs } from './jobs.js';
import { AgentLog } from './log.js';
import { agentPaths, checkSocketPath } from './paths.js';
import { type PolicyTimer, startPolicyTimer } from './policy-timer.js';
import { closeControl, listenControl } from './server.js';

/** How the agent is started. */
export interface AgentOptions {
  /** NBD over TCP, `HOST:PORT`. */
  nbd?: string;
  /** NBD over a Unix socket at this path. */
  nbdSocket?: string;
  /** Log to this file instead of stderr (a detached agent logs to the home's agent.log). */
  logFile?: string;
  /** Let NBD listen on an address other than loopback without TLS. */
  allowRemote?: boolean;
  /** TLS for NBD clients. */
  tls?: TlsOptions;
  /** Listen for remote-replication peers at `HOST:PORT` (`plexus remote serve --listen`). */
  listen?: string;
  /** This site's name in peer handshakes. */
  site?: string;
  /** Stop on SIGTERM and SIGINT (default true; tests running agents in-process turn it off). */
  handleSignals?: boolean;
}

/** A running agent. */
export interface RunningAgent {
  core: AgentCore;
  /** Resolves once the agent has stopped. */
  stopped: Promise<void>;
  stop(why?: string): Promise<void>;
}

/** How long a stopping agent waits for its jobs to reach a chunk boundary. */
const STOP_GRACE_MS = 15_000;

/** Starts the agent of the home at `homeDir`. E_BUSY if one already runs there. */
export async function startAgent(homeDir: string | undefined, opts: AgentOptions = {}): Promise<RunningAgent> {
  const home = Home.open(homeDir, { create: false });
  const paths = agentPaths(home.dir);
  checkSocketPath(paths.socket);
  let lock: InstanceType<typeof native.NativeOwnerLock>;
  try {
    lock = callNative(() => native.NativeOwnerLock.acquire(paths.lock, `the agent of home ${home.dir}`));
  } catch (e) {
    const err = asPlexusError(e);
    if (err.code !== 'E_BUSY') throw err;
    throw new PlexusError('E_BUSY', `an agent already serves home ${home.dir}${pidNote(paths.pid)}; stop it first (kill -TERM)`, { cause: e });
  }
  const log = new AgentLog(opts.logFile);
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  const signals = opts.handleSignals ?? true;
  const onSignal = (sig: NodeJS.Signals): void => void core.stop(`signal ${sig}`);
  const mirrors = new Mirrors(home);
  const jobs = new Jobs(log);
  let control: Awaited<ReturnType<typeof listenControl>> | undefined;
  let policies: PolicyTimer | undefined;
  const core: AgentCore = new AgentCore(home, mirrors, jobs, log, async (why) => {
    log.event('stopping', { why });
    let failure: unknown;
    const step = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        failure ??= e;
        log.event('stop-step-failed', { step: what, error: asPlexusError(e).message });
      }
    };
    await step('control socket', () => control && closeControl(control));
    // No policy backup starts from here on; those running are cancelled and recorded.
    await step('policies', () => policies?.stop(STOP_GRACE_MS));
    // Jobs first: a cancelled copy stops between chunks with its progress durable.
    await step('jobs', () => jobs.stopAll(STOP_GRACE_MS));
    await step('exports', () => core.exports?.close());
    // After the exports (no change in flight any more): shipping stops with the journal
    // holding what was not sent, applied records are made durable, a clean stop recorded.
    await step('replication', () => core.replication?.stop());
    await step('pairs', () => PlexSet.closeKept());
    await step('write paths', () => core.writePaths.close());
    await step('pid file', () => fs.rmSync(paths.pid, { force: true }));
    lock.release();
    if (signals) {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    }
    log.event('stopped', { clean: failure === undefined });
    log.close();
    resolveStopped();
  });
  try {
    PlexSet.keepOpen();
    // Exports first: the pair sets opened next take their write paths from them, so a
    // client's writes and the library's go through the same mirrors.
    if (opts.nbd !== undefined || opts.nbdSocket !== undefined) {
      const { startExports } = await import('./exports.js');
      core.exports = startExports(core, { tcp: opts.nbd, unix: opts.nbdSocket, allowRemote: Boolean(opts.allowRemote), tls: opts.tls });
    }
    // Own every primary now: a pair left open by a killed owner is recovered here, and
    // no CLI process can take a set from under the agent later.
    for (const primary of new Set(mirrors.records.all().map((r) => r.primary))) {
      try {
        PlexSet.open(mirrors.store, mirrors.records, primary);
      } catch (e) {
        log.event('pair-set-not-opened', { primary, error: asPlexusError(e).message });
      }
    }
    // Replication attaches to the members' write paths (the ones the pair sets and
    // exports use), so it starts once they exist and before anything can write.
    const { Replication } = await import('../remote/service.js');
    core.replication = await Replication.start(core, { listen: opts.listen, site: opts.site });
    core.changed();
    control = await listenControl(core, paths.socket);
    writeFileDurable(paths.pid, `${process.pid}\n`);
    policies = startPolicyTimer(core);
  } catch (e) {
    log.muteStderr();
    await core.stop(`start failed: ${asPlexusError(e).message}`);
    throw e;
  }
  if (signals) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    // The agent outlives any one request: a failure nobody awaited is logged (it is a
    // bug, E_INTERNAL) instead of ending the process and every client with it.
    process.on('unhandledRejection', (e) => log.event('internal-error', { error: asPlexusError(e).message, stack: (e as Error | undefined)?.stack }));
    process.on('uncaughtException', (e) => log.event('internal-error', { error: asPlexusError(e).message, stack: e.stack }));
  }
  const resumed = core.resumeInterrupted();
  log.event('started', { pid: process.pid, home: home.dir, socket: paths.socket, nbd: core.exports?.addresses() ?? null, peers: core.replication?.listening ?? null, resumedJobs: resumed });
  return { core, stopped, stop: (why = 'requested') => core.stop(why) };
}

/** " (pid N)" from a pid file, when it holds one. */
function pidNote(file: string): string {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? ` (pid ${pid})` : '';
  } catch {
    return '';
  }
}
