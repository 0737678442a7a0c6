/** How remote groups are shown by `pair display` and `remote pair display`. */
import type { GroupDisplay } from '../../remote/source.js';
import { formatBytes } from '../../util/size.js';
import { printTable } from '../render/output.js';

export type { GroupDisplay };

/** One row per member volume: the group's state, mode, link and lag. */
export function printRemoteGroups(groups: GroupDisplay[]): void {
  const rows = groups.flatMap((g) =>
    g.members.map((m) => [
      m.volume,
      `${g.peer}/${m.remote}`,
      g.state,
      g.group,
      g.mode,
      g.link,
      formatBytes(m.dirtyBytes),
      `${g.lag.records} rec / ${formatBytes(g.lag.bytes)} / ${g.lag.seconds.toFixed(1)} s`,
      `${g.epoch}:${g.lastSeq}`,
    ]),
  );
  printTable(['PRIMARY', 'REMOTE', 'STATE', 'GROUP', 'MODE', 'LINK', 'DIRTY', 'LAG', 'MARKER'], rows);
}
