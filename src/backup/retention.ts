/**
 * Retention: a policy keeps the newest `keep` complete jobs of each of its volumes; older
 * ones are expired, and a cartridge left holding nothing but expired jobs' segments is
 * freed — erased to a fresh label and `scratch` again, for the next backup to write.
 *
 * An expired job keeps its row (status `expired`: what was backed up stays listed) and
 * restore refuses it (E_EXPIRED). Its segments stay in the catalog for as long as their
 * cartridge still holds them, beside a live job's (jobs share a cartridge when one
 * fills what another left): the catalog never says a cartridge is emptier than it is.
 * Only jobs a policy made are expired, and only `done` ones count toward `keep` (a
 * failed or incomplete job is neither counted nor expired).
 */
import { Catalog, type ExpiredCartridge } from '../catalog/catalog.js';
import { asPlexusError, guarded } from '../errors.js';
import type { Home } from '../home/home.js';
import { Library } from '../tape/library.js';
import { relabelCartridge } from '../tape/relabel.js';

/** What a retention pass did (or, dry, would do). */
export interface ExpireReport {
  dryRun: boolean;
  /** Jobs expired now. */
  expired: Array<{ job: number; policy: string; volume: string }>;
  /** Cartridges freed: erased and scratch again. */
  freed: Array<{ barcode: string; library: string; jobs: number[] }>;
  /** Cartridges holding only expired jobs that could not be freed now, and why (a later pass frees them). */
  pending: Array<{ barcode: string; library: string; reason: string }>;
}

/** Options of a retention pass. */
export interface ExpireOptions {
  /** Only this policy (default: every policy with `keep`). */
  policy?: string;
  /** Only this volume of it. */
  volume?: string;
  /** Report what would be expired and freed; change nothing. */
  dryRun?: boolean;
  /** The time recorded as the expiry (default: now). */
  now?: Date;
}

/** Runs retention: expires jobs beyond each policy's `keep`, then frees cartridges. Every failure is a PlexusError. */
export function expireJobs(home: Home, opts: ExpireOptions = {}): ExpireReport {
  return guarded(() => {
    const catalog = Catalog.open(home);
    try {
      return applyRetention(home, catalog, opts);
    } finally {
      catalog.close();
    }
  });
}

/** Retention on an open catalog (the policy runner's after each backup). */
export function applyRetention(home: Home, catalog: Catalog, opts: ExpireOptions = {}): ExpireReport {
  const at = (opts.now ?? new Date()).toISOString();
  if (opts.dryRun) {
    // Expire inside a transaction that is rolled back: the cartridges it would free are
    // those the catalog finds all-expired then.
    catalog.db.exec('BEGIN IMMEDIATE');
    try {
      const expired = markExpired(catalog, opts, at);
      const freed = catalog.expiredCartridges().map((c) => ({ barcode: c.barcode, library: c.library, jobs: c.jobs }));
      return { dryRun: true, expired, freed, pending: [] };
    } finally {
      catalog.db.exec('ROLLBACK');
    }
  }
  const expired = catalog.transaction(() => markExpired(catalog, opts, at));
  return { dryRun: false, expired, ...freeCartridges(home, catalog) };
}

/** Marks the jobs beyond `keep` of each (policy, volume) expired; returns them. */
function markExpired(catalog: Catalog, opts: ExpireOptions, at: string): ExpireReport['expired'] {
  const out: ExpireReport['expired'] = [];
  const policies = opts.policy === undefined ? catalog.policies() : [catalog.policy(opts.policy)];
  for (const p of policies) {
    if (p.keep === null) continue;
    for (const volume of p.volumes) {
      if (opts.volume !== undefined && volume !== opts.volume) continue;
      for (const job of catalog.policyJobs(p.name, volume).slice(p.keep)) {
        if (catalog.expireJob(job, at)) out.push({ job, policy: p.name, volume });
      }
    }
  }
  return out;
}

/**
 * Frees every cartridge that holds only expired jobs' segments: claimed (skipped while a
 * job has it loaded), checked again under the claim, erased, then forgotten in the
 * catalog and made scratch. Erased first: a crash between the two leaves a blank
 * cartridge the catalog still lists expired segments on, which the next pass frees.
 */
function freeCartridges(home: Home, catalog: Catalog): Pick<ExpireReport, 'freed' | 'pending'> {
  const freed: ExpireReport['freed'] = [];
  const pending: ExpireReport['pending'] = [];
  for (const c of catalog.expiredCartridges()) {
    const why = freeOne(home, catalog, c);
    if (why === undefined) freed.push({ barcode: c.barcode, library: c.library, jobs: c.jobs });
    else if (why !== null) pending.push({ barcode: c.barcode, library: c.library, reason: why });
  }
  return { freed, pending };
}

/** Frees one cartridge: undefined when freed, null when it no longer needs freeing, else why not now. */
function freeOne(home: Home, catalog: Catalog, c: ExpiredCartridge): string | null | undefined {
  let lib: Library;
  try {
    lib = Library.open(home, c.library);
  } catch (e) {
    return `library ${c.library} cannot be opened: ${asPlexusError(e).message}`;
  }
  if (!lib.present(c.barcode)) return `it is missing from library ${c.library}: freed once it is back`;
  const lock = lib.tryClaimCartridge(c.barcode);
  if (!lock) return 'a job has it loaded: freed by a later pass';
  try {
    // A job may have recorded segments on it between the look and the claim.
    if (catalog.expiredCartridges(c.barcode).length === 0) return null;
    relabelCartridge(lib, c.barcode);
    catalog.dropFreedCartridge(c.barcode);
    return undefined;
  } finally {
    lock.release();
  }
}
