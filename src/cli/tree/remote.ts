/** Declares `plexus remote ...` and `plexus sync-wait` (run by ../commands/remote.ts). */
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

const load = () => import('../commands/remote.js');

/** Exit status of sync-wait for TIMEOUT, BROKEN and CHANGED. */
export const SYNC_WAIT_EXIT = { TIMEOUT: 3, BROKEN: 4, CHANGED: 5 } as const;

/** Registers `remote`: asynchronous remote replication between sites. */
export function remoteCommand(): Command {
  const cmd = new Command('remote').description('remote replication between two sites: sequenced journal, consistency groups, takeover');
  cmd
    .command('serve')
    .description('run the site agent listening for peers (plexus serve --listen)')
    .requiredOption('--listen <host:port>', 'where peers connect')
    .option('--site <name>', "this site's name in handshakes and logs")
    .option('--nbd <host:port>', 'also serve NBD over TCP')
    .option('--detach', 'run in the background')
    .option('--log-file <file>', 'append the JSON log lines here')
    .action(lazy(load, (m) => m.runRemoteServe));
  cmd
    .command('key')
    .description("print this home's peer key (made on first use); both sites of a link hold the same key")
    .option('--import <file>', "install the other site's key instead (- reads stdin)")
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runRemoteKey));

  const pair = cmd.command('pair').description('remote pairs: volumes replicated to another site');
  pair
    .command('create <primary> <target>')
    .description('replicate PRIMARY to HOST:PORT/VOLUME at the remote site in consistency group G: initial copy, then asynchronous (or --sync) replication')
    .requiredOption('--group <name>', 'consistency group (created if new; a group may hold several volumes)')
    .option('--sync', 'synchronous: a write is acknowledged once the remote applied it')
    .option('--granularity <size>', 'bytes per dirty-bitmap bit (new group)', '64K')
    .option('--journal-capacity <size>', 'most the journal holds before the group suspends (new group)', '1G')
    .option('--link-timeout <seconds>', 'a link silent this long suspends the group (PSUE) (new group)', '10')
    .option('--background', 'return at once; the initial copy runs as an agent job')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runRemotePairCreate));
  pair
    .command('display')
    .description('remote groups: state, link, dirty bytes, lag')
    .option('--group <name>', 'one group')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runRemotePairDisplay));
  pair
    .command('mode')
    .description('switch a group between asynchronous and synchronous replication')
    .requiredOption('--group <name>', 'the group')
    .option('--sync', 'synchronous')
    .option('--async', 'asynchronous')
    .action(lazy(load, (m) => m.runRemotePairMode));
  pair
    .command('delete')
    .description('stop replicating a group (at either site: at the remote it lifts the fence of its volumes)')
    .requiredOption('--group <name>', 'the group')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runRemotePairDelete));
  cmd
    .command('takeover')
    .description("at the remote site: make the group's volumes writable now (the primary site is lost, or planned), recording where they diverge")
    .requiredOption('--group <name>', 'the group')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runRemoteTakeover));
  cmd
    .command('backup')
    .description("back up a group at the remote site without suspending it: freeze, sync-wait, split the remote's local mirror, thaw, back up, resync")
    .requiredOption('--group <name>', 'the group')
    .requiredOption('--library <name>', 'a tape library of the remote site')
    .option('--freeze <cmd>', 'command run first (put the application in backup mode)')
    .option('--thaw <cmd>', 'command run once the remote mirror is split')
    .option('--hook-timeout <seconds>', 'timeout of each hook', '60')
    .option('--timeout <seconds>', 'how long the sync-wait may take', '60')
    .option('--verbose', 'print each step on stderr as it happens')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runRemoteBackup));
  cmd
    .command('status')
    .description("this site's replication: listener, groups, targets")
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runRemoteStatus));
  return cmd;
}

/** Registers `sync-wait`. */
export function syncWaitCommand(): Command {
  return new Command('sync-wait')
    .description(
      `wait until the remote applied every write made so far (or up to --marker): prints DONE (exit 0), TIMEOUT (${SYNC_WAIT_EXIT.TIMEOUT}), BROKEN (${SYNC_WAIT_EXIT.BROKEN}), CHANGED (${SYNC_WAIT_EXIT.CHANGED}) or NOWAIT (exit 0) and the marker`,
    )
    .requiredOption('--group <name>', 'the remote group')
    .option('--timeout <seconds>', 'give up after this long (TIMEOUT)', '60')
    .option('--marker <m>', 'wait for this marker (as --nowait printed it) instead of the newest write')
    .option('--nowait', 'print the current marker at once (NOWAIT)')
    .option('--json', 'print JSON')
    .action(lazy(load, (m) => m.runSyncWait));
}
