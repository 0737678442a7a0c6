/**
 * Backup policies (001 English, Fig. 12 and 19): recurring backups of a data set — its
 * volumes, how often (`every 6h`, `every 1d`), in which time window, to which library,
 * in which mode, keeping how many complete jobs per volume. The console of Fig. 12
 * "rearranges the frequency of backing up, the time zone, or the destination ... in
 * accordance with the data or volume" and "automatically performs the backup
 * processing individually"; here the catalog keeps the policies (migration 8), the agent
 * or `backup schedule run-due` fires them (policy-runner.ts), `backup plan` shows what
 * the coming windows hold (policy-plan.ts) and retention expires old jobs (retention.ts).
 */
import path from 'node:path';
import { Catalog, type PolicyRow, type PolicyRunRow } from '../catalog/catalog.js';
import { guarded, PlexusError } from '../errors.js';
import type { Home } from '../home/home.js';
import { Library } from '../tape/library.js';
import { VolumeStore } from '../volumes/store.js';
import { BACKUP_MODES, type BackupMode } from './backup.js';
import { type LastRun, type PolicySpec, runKey } from './policy-plan.js';
import { formatWindow, nextDueSlot, parseInterval, parseWindow } from './policy-time.js';

/** What `addPolicy` is given, as a user writes it. */
export interface PolicyInput {
  name: string;
  volumes: readonly string[];
  /** `6h`, `1d`, ... (policy-time.ts). */
  every: string;
  /** `HH:MM-HH:MM` local time; default: at any time. */
  window?: string;
  /** The library to write to; or `disk`. */
  library?: string;
  /** The directory of a disk library (`library create NAME --disk DIR`): the library keeping its cartridges there. */
  disk?: string;
  mode?: BackupMode;
  streams?: number;
  keep?: number;
  /** Added disabled (default: enabled). */
  disabled?: boolean;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Streams a parallel or chunked backup secures unless told otherwise (as `backup run`). */
const DEFAULT_STREAMS = 2;

/** Drives one backup of a policy holds. */
export function drivesPerJob(p: Pick<PolicyRow, 'mode' | 'streams'>): number {
  return p.mode === 'single' ? 1 : (p.streams ?? DEFAULT_STREAMS);
}

/** A catalog row as the planners take it. */
export function policySpec(p: PolicyRow): PolicySpec {
  return {
    name: p.name,
    volumes: p.volumes,
    everyS: p.everyS,
    window: p.window === null ? undefined : parseWindow(p.window),
    library: p.library,
    drivesPerJob: drivesPerJob(p),
    enabled: p.enabled,
  };
}

/** The last runs of `policies`, as the planners take them. */
export function lastRunsOf(catalog: Catalog, policies: readonly PolicyRow[]): Map<string, LastRun> {
  const out = new Map<string, LastRun>();
  for (const [k, r] of catalog.lastPolicyRuns(policies)) out.set(k, { volume: r.volume, startedAt: new Date(r.startedAt), running: r.status === 'running' });
  return out;
}

/** Adds a policy; returns it as stored. Every failure is a PlexusError. */
export function addPolicy(home: Home, input: PolicyInput): PolicyRow {
  return guarded(() => add(home, input));
}

function add(home: Home, input: PolicyInput): PolicyRow {
  if (!NAME.test(input.name)) throw new PlexusError('E_INVALID', `invalid policy name '${input.name}': use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  if (input.volumes.length === 0) throw new PlexusError('E_INVALID', `policy ${input.name} needs at least one volume (--volumes V...)`);
  const dup = input.volumes.find((v, i) => input.volumes.indexOf(v) !== i);
  if (dup !== undefined) throw new PlexusError('E_INVALID', `volume ${dup} is listed twice in policy ${input.name}`);
  const store = new VolumeStore(home);
  for (const v of input.volumes) store.open(v, { readOnly: true });
  const everyS = parseInterval(input.every);
  if (input.window !== undefined) parseWindow(input.window);
  const mode = input.mode ?? 'single';
  if (!BACKUP_MODES.includes(mode)) throw new PlexusError('E_INVALID', `backup mode must be one of ${BACKUP_MODES.join(', ')}, not '${String(mode)}'`);
  if (input.streams !== undefined && (mode === 'single' || !Number.isInteger(input.streams) || input.streams < 1 || input.streams > 16)) {
    throw new PlexusError('E_INVALID', mode === 'single' ? '--streams goes with --mode parallel or chunked' : `streams must be a whole number from 1 to 16, not ${input.streams}`);
  }
  if (input.keep !== undefined && !(Number.isInteger(input.keep) && input.keep >= 1)) throw new PlexusError('E_INVALID', `keep must be a whole number of jobs, at least 1, not ${input.keep}`);
  const catalog = Catalog.open(home);
  try {
    const lib = target(home, input);
    const row: Omit<PolicyRow, 'createdAt'> = {
      name: input.name,
      volumes: [...input.volumes],
      everyS,
      window: input.window === undefined ? null : formatWindow(parseWindow(input.window)),
      library: lib.name,
      mode,
      streams: mode === 'single' ? null : (input.streams ?? null),
      keep: input.keep ?? null,
      enabled: !input.disabled,
    };
    const drives = drivesPerJob(row);
    if (drives > lib.config.drives) throw new PlexusError('E_INVALID', `a ${mode} backup of policy ${input.name} needs ${drives} drives; library ${lib.name} has ${lib.config.drives}`);
    catalog.addPolicy(row);
    return catalog.policy(input.name);
  } catch (e) {
    if (e instanceof PlexusError && e.code === 'E_EXISTS') throw new PlexusError('E_EXISTS', `backup policy ${input.name} already exists`, { cause: e });
    throw e;
  } finally {
    catalog.close();
  }
}

/** The library a policy writes to: `--library NAME`, or the disk library keeping its cartridges in `--disk DIR`. */
function target(home: Home, input: PolicyInput): Library {
  if ((input.library === undefined) === (input.disk === undefined)) throw new PlexusError('E_INVALID', 'a policy needs one target: --library NAME or --disk DIR');
  if (input.library !== undefined) return Library.open(home, input.library);
  const dir = path.resolve(input.disk!);
  // A disk library (`library create NAME --disk DIR`) says so in its description, with
  // the directory its cartridge files are in; read loosely, so a home whose libraries
  // are all tape libraries simply has none.
  const lib = Library.list(home).find((l) => {
    const c = l.config as { kind?: string; dir?: string };
    return c.kind === 'disk' && typeof c.dir === 'string' && path.resolve(c.dir) === dir;
  });
  if (!lib) throw new PlexusError('E_NOENT', `no disk library keeps its cartridges in ${dir}: create one with \`plexus library create NAME --disk ${input.disk}\`, or name a library with --library`);
  return lib;
}

/** Every policy, by name. */
export function listPolicies(home: Home): PolicyRow[] {
  return guarded(() => withCatalog(home, (c) => c.policies()));
}

/** A volume of a policy: its last run and when it is next due. */
export interface PolicyVolumeState {
  volume: string;
  last: PolicyRunRow | null;
  /** The start of the next slot it is due in (now's, if due now). */
  nextDue: string;
}

/** A policy with its volumes' state and its recent runs. */
export interface PolicyDetail {
  policy: PolicyRow;
  volumes: PolicyVolumeState[];
  runs: PolicyRunRow[];
}

/** A policy, its volumes' last runs and next due slots (at `now`), and its newest runs. */
export function showPolicy(home: Home, name: string, now = new Date(), runs = 20): PolicyDetail {
  return guarded(() =>
    withCatalog(home, (c) => {
      c.settleDeadPolicyRuns();
      const policy = c.policy(name);
      const spec = policySpec(policy);
      const last = c.lastPolicyRuns([policy]);
      return {
        policy,
        volumes: policy.volumes.map((volume) => {
          const l = last.get(runKey(name, volume)) ?? null;
          const started = l ? new Date(l.startedAt) : undefined;
          return { volume, last: l, nextDue: nextDueSlot(spec.everyS, spec.window, now, started).start.toISOString() };
        }),
        runs: c.policyRuns({ policy: name, limit: runs }),
      };
    }),
  );
}

/** Removes a policy and its run history (its jobs stay); E_BUSY while one of its backups runs. */
export function removePolicy(home: Home, name: string): void {
  guarded(() =>
    withCatalog(home, (c) => {
      c.settleDeadPolicyRuns();
      c.policy(name);
      const running = c.policyRuns({ policy: name, status: 'running' });
      if (running.length > 0) throw new PlexusError('E_BUSY', `policy ${name} is backing up ${running.map((r) => r.volume).join(', ')} now; remove it once that ends (or disable it first)`);
      c.removePolicy(name);
    }),
  );
}

/** Enables or disables a policy (a disabled one fires nothing and is left out of the plan). */
export function enablePolicy(home: Home, name: string, enabled: boolean): void {
  guarded(() => withCatalog(home, (c) => c.setPolicyEnabled(name, enabled)));
}

function withCatalog<T>(home: Home, fn: (c: Catalog) => T): T {
  const c = Catalog.open(home);
  try {
    return fn(c);
  } finally {
    c.close();
  }
}
