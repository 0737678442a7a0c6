/**
 * The remote backup coordinator (MISSION B.4): a backup taken at the remote site without
 * suspending the remote pair. Freeze the application here, wait until the remote
 * applied everything written before the freeze (sync-wait), split the remote volumes
 * from their local mirror there (between two journal batches, so consistent across the
 * group), thaw, back the split mirror up to the remote site's library, and resync that
 * mirror. The application is frozen only for the sync-wait and the split.
 */

import type { RequestContext } from '../agent/methods.js';
import { PlexusError } from '../errors.js';
import { describeHook, HookError, type HookResult, runHook } from '../mirror/hooks.js';
import type { SourceGroup } from './source.js';

/** Options of `remote backup`. */
export interface RemoteBackupOptions {
  library: string;
  freeze?: string;
  thaw?: string;
  hookTimeoutMs?: number;
  /** How long the sync-wait inside the freeze may take. */
  syncTimeoutMs?: number;
}

/** Runs the coordinator for group `g`. */
export async function remoteBackup(g: SourceGroup, opts: RemoteBackupOptions, ctx: RequestContext): Promise<unknown> {
  const hookMs = opts.hookTimeoutMs ?? 60_000;
  const link = await g.peer();
  let freeze: HookResult | undefined;
  let thaw: HookResult | undefined;
  let frozenAt = 0;
  let frozenMs = 0;
  let marker = '';
  let split: unknown;
  try {
    if (opts.freeze) {
      frozenAt = Date.now();
      freeze = await runHook('freeze', opts.freeze, hookMs);
      ctx.onLog(describeHook('freeze', freeze));
      if (freeze.status !== 'ok') throw new HookError('E_HOOK', `${describeHook('freeze', freeze)}; nothing was split`, freeze);
    }
    frozenAt ||= Date.now();
    try {
      const w = await g.syncWait({ timeoutMs: opts.syncTimeoutMs ?? 60_000 });
      marker = w.marker;
      if (w.status !== 'DONE') throw new PlexusError('E_STATE', `sync-wait answered ${w.status} for group ${g.name} (marker ${w.marker}); nothing was split`);
      ctx.onLog(`remote applied everything up to ${w.marker}`);
      split = await link.call('repl.localSplit', { group: g.name }, 60_000);
      ctx.onLog(`split the local mirror at the remote site`);
    } finally {
      if (opts.thaw) {
        thaw = await runHook('thaw', opts.thaw, hookMs);
        ctx.onLog(describeHook('thaw', thaw));
      }
      frozenMs = Date.now() - frozenAt;
    }
    if (thaw && thaw.status !== 'ok') throw new HookError('E_HOOK', `${describeHook('thaw', thaw)}; the mirror was split, resync it at the remote site`, thaw);
    let backup: { jobs: Array<{ volume: string; job: number; bytes: number }> };
    try {
      ctx.onLog(`backing up the split mirror to library ${opts.library} at the remote site`);
      backup = await link.call('repl.localBackup', { group: g.name, library: opts.library }, 0);
    } finally {
      await link.call('repl.localResync', { group: g.name }, 0);
      ctx.onLog('resynced the local mirror at the remote site');
    }
    return { group: g.name, marker, frozenMs, freeze, thaw, split, jobs: backup.jobs, remoteState: g.record.state };
  } finally {
    link.close();
  }
}
