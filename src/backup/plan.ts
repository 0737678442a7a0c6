/**
 * `backup plan`: the coming windows' backups, worked out from each volume's data and
 * each library's measured throughput (estimates.ts), in the order and on the drive lanes
 * the policy runner will use (policy-plan.ts), with a warning for every window the plan
 * does not fit in.
 */
import { Catalog } from '../catalog/catalog.js';
import { guarded } from '../errors.js';
import type { Home } from '../home/home.js';
import { measuredThroughput, type Throughput, type VolumeData, volumeData } from './estimates.js';
import { lastRunsOf, policySpec } from './policy.js';
import { type LibraryEstimate, type PlannedRun, planPolicies } from './policy-plan.js';
import { drivesInService } from './policy-runner.js';

/** One backup of the plan, with what its estimate rests on. */
export interface PlanEntry extends Omit<PlannedRun, 'slot' | 'start' | 'end' | 'windowClose'> {
  slot: string;
  start: string;
  end: string;
  windowClose: string;
  /** Where `bytes` comes from: the allocated bytes of the volume (a backup is a full image, holes skipped). */
  bytesSource: 'allocated' | 'unknown';
  /** What changed since the volume's last checkpoint, where a dirty bitmap records it (else null). */
  changed: VolumeData['changed'];
  /** Why the volume cannot be read (its backup will fail). */
  error?: string;
}

/** The plan. */
export interface PlanReport {
  now: string;
  runs: PlanEntry[];
  libraries: Array<Throughput & { drives: number }>;
  totals: { runs: number; bytes: number; seconds: number };
  warnings: string[];
  /** Policies left out because they are disabled. */
  disabled: string[];
}

/** The plan at `now` (default: the real time). Every failure is a PlexusError. */
export function planBackups(home: Home, now = new Date()): PlanReport {
  return guarded(() => {
    const catalog = Catalog.open(home);
    try {
      return plan(home, catalog, now);
    } finally {
      catalog.close();
    }
  });
}

function plan(home: Home, catalog: Catalog, now: Date): PlanReport {
  catalog.settleDeadPolicyRuns();
  const all = catalog.policies();
  const enabled = all.filter((p) => p.enabled);
  const data = new Map<string, VolumeData>();
  for (const v of new Set(enabled.flatMap((p) => p.volumes))) data.set(v, volumeData(home, v));
  const libraries = new Map<string, LibraryEstimate & Throughput>();
  for (const lib of new Set(enabled.map((p) => p.library))) libraries.set(lib, { ...measuredThroughput(catalog, lib), drives: drivesInService(home, catalog, lib) });
  const bytes = new Map([...data].map(([v, d]) => [v, d.allocatedBytes]));
  const planned = planPolicies(enabled.map(policySpec), lastRunsOf(catalog, enabled), now, libraries, bytes);
  const warnings = [...planned.warnings];
  for (const l of libraries.values()) {
    if (l.source === 'default') warnings.push(`library ${l.library} has no finished job to measure: its throughput is assumed to be ${Math.round(l.bytesPerSecond / (1 << 20))} MiB/s`);
  }
  const runs = planned.runs.map((r): PlanEntry => {
    const d = data.get(r.volume);
    return {
      ...r,
      slot: r.slot.toISOString(),
      start: r.start.toISOString(),
      end: r.end.toISOString(),
      windowClose: r.windowClose.toISOString(),
      bytesSource: d?.error ? 'unknown' : 'allocated',
      changed: d?.changed ?? null,
      ...(d?.error ? { error: d.error } : {}),
    };
  });
  return {
    now: now.toISOString(),
    runs,
    libraries: [...libraries.values()].map(({ library, bytesPerSecond, source, jobs, drives }) => ({ library, bytesPerSecond, source, jobs, drives })),
    totals: { runs: runs.length, bytes: runs.reduce((a, r) => a + r.bytes, 0), seconds: runs.reduce((a, r) => a + r.seconds, 0) },
    warnings,
    disabled: all.filter((p) => !p.enabled).map((p) => p.name),
  };
}
