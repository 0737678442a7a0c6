/**
 * Commands that a running site agent does for the CLI: each asks the home's agent when
 * one runs (it owns the pairs) and runs in-process otherwise. `PLEXUS_NO_AGENT=1` forces
 * in-process (the agent's own detached helpers, debugging).
 */
import type { AgentClient, CallOptions } from '../agent/client.js';
import { resolveHomeDir } from '../home/home.js';
import type { GlobalOptions } from './context.js';

/** The agent of the command's home, connected; undefined when none runs. */
export async function agentOf(o: GlobalOptions): Promise<AgentClient | undefined> {
  if (process.env.PLEXUS_NO_AGENT === '1') return undefined;
  const { AgentClient } = await import('../agent/client.js');
  return AgentClient.connect(resolveHomeDir(o.home));
}

/** Asks the agent one thing and closes the connection. */
export async function ask<T>(agent: AgentClient, method: string, params: Record<string, unknown>, opts: CallOptions = {}): Promise<T> {
  try {
    return await agent.call<T>(method, withoutUndefined(params), opts);
  } finally {
    agent.close();
  }
}

/** MessagePack would send `undefined` as nil; leaving keys out keeps requests minimal. */
function withoutUndefined(p: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(p).filter(([, v]) => v !== undefined));
}
