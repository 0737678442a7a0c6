/** Declares `plexus resources list|set|add|rm` (run by ../commands/resources.ts). */

import { DEFINED_KINDS, RESOURCE_KINDS } from '../../resources/kinds.js';
import { Command } from '../commander.js';
import { lazy } from '../lazy.js';

const load = () => import('../commands/resources.js');

/** Registers the resources commands. */
export function resourcesCommand(): Command {
  const cmd = new Command('resources').description('backup servers, copy devices, switches, libraries, drives, cartridges: state and links');

  cmd
    .command('list')
    .description('list resources (state, job and stream holding each) and the switch links')
    .option('--kind <kind>', `only one kind: ${RESOURCE_KINDS.join(', ')}`)
    .option('--json', 'print JSON: { resources, links }')
    .action(lazy(load, (m) => m.runResourcesList));

  cmd
    .command('set <name>')
    .description('mark a resource available or unavailable (a job holding it sees the change on its next check)')
    .requiredOption('--state <state>', 'available | unavailable')
    .option('--json', 'print the resource as JSON')
    .action(lazy(load, (m) => m.runResourcesSet));

  cmd
    .command('add <kind> <name>')
    .description(`define a ${DEFINED_KINDS.join(', ')}`)
    .option('--connects <names>', 'comma-separated: for a switch, storage / servers / copy devices / libraries / switches; for a server or copy device, its switches')
    .option('--detail <text>', 'a free description')
    .option('--json', 'print the resource as JSON')
    .action(lazy(load, (m) => m.runResourcesAdd));

  cmd
    .command('rm <name>')
    .description('remove a server, copy device or switch and its links')
    .action(lazy(load, (m) => m.runResourcesRm));
  return cmd;
}
