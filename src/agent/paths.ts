/** Where a home's site agent keeps its socket, pid file, log and lock. */
import path from 'node:path';
import { PlexusError } from '../errors.js';

/** The agent's files in a home. */
export interface AgentPaths {
  /** The control socket (a Unix socket, mode 0600). */
  socket: string;
  /** The running agent's process id. */
  pid: string;
  /** JSON log lines of a detached agent. */
  log: string;
  /** Held by the running agent: one agent per home. */
  lock: string;
}

/** Longest path a Unix socket address holds on Linux (sun_path, without its NUL). */
const SUN_PATH_MAX = 107;

/** The agent files of the home at `homeDir`. */
export function agentPaths(homeDir: string): AgentPaths {
  return {
    socket: path.join(homeDir, 'agent.sock'),
    pid: path.join(homeDir, 'agent.pid'),
    log: path.join(homeDir, 'agent.log'),
    lock: path.join(homeDir, 'agent.lock'),
  };
}

/** E_INVALID when a socket path is too long for a Unix socket address. */
export function checkSocketPath(p: string): void {
  if (Buffer.byteLength(p) > SUN_PATH_MAX) {
    throw new PlexusError('E_INVALID', `socket path ${p} is ${Buffer.byteLength(p)} bytes; a Unix socket path holds at most ${SUN_PATH_MAX} (use a shorter --home)`);
  }
}
