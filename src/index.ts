/**
 * Plexus: the public library API (`import { ... } from 'plexus'`). Everything the CLI does
 * goes through these: each command is a thin run function over them.
 */

// Backup
export { BACKUP_MODES, type BackupMode, type BackupOptions, type BackupReport, chooseLibrary, DEFAULT_CHUNK, MIN_CHUNK, runBackup, type StreamReport } from './backup/backup.js';
export { createLibrary, removeLibrary } from './backup/libraries.js';
export { type PlanEntry, type PlanReport, planBackups } from './backup/plan.js';
export { addPolicy, enablePolicy, listPolicies, type PolicyDetail, type PolicyInput, removePolicy, showPolicy } from './backup/policy.js';
export { type DueRun, duePolicyRuns, type Plan, type PlannedRun, type PolicySpec, planPolicies } from './backup/policy-plan.js';
export { type PolicyOutcome, type PolicyPassOptions, runDuePolicies } from './backup/policy-runner.js';
export { type RebuildReport, rebuildCatalog } from './backup/rebuild.js';
export { type RestoreOptions, type RestoreReport, restoreJob } from './backup/restore.js';
export { type ExpireOptions, type ExpireReport, expireJobs } from './backup/retention.js';
export { type AllDue, addSchedule, type DueOutcome, listSchedule, parseWhen, runAllDue, runDue } from './backup/schedule.js';
// Catalog
export {
  Catalog,
  type JobRow,
  type JobStatus,
  type LibraryRow,
  type ListedJobStatus,
  type LocationRow,
  type MediaRow,
  type PolicyRow,
  type PolicyRunRow,
  type ScheduleRow,
  type SegmentRow,
} from './catalog/catalog.js';
// The demo
export { type DemoOptions, type DemoSummary, runDemo } from './demo/demo.js';
export { PlexusError } from './errors.js';
export { Home, hostIdentity, type OpenHomeOptions, resolveHomeDir } from './home/home.js';
export { type BackgroundOperation, type BackgroundReport, backgroundArgs, runInBackground } from './mirror/background.js';
export { fillIo } from './mirror/fill.js';
export { type IoOptions, openVolumeIo, type VolumeIo } from './mirror/io.js';
// Mirrors
export { type CreatePairOptions, Mirrors, type PairInfo, type PairSelector, type ResyncOptions, type ResyncResult, type SplitOptions, type SplitReport } from './mirror/mirrors.js';
export { type PromoteReport, promote, type RotateReport, rotate, type StageReport, stage } from './mirror/plexes.js';
export type { PairSuspension } from './mirror/plexset.js';
export type { PairOperation, PairRecord } from './mirror/record.js';
export { isDuplexing, isSplit, PAIR_STATES, type PairState, parseState } from './mirror/states.js';
export { type CopyToVolumeReport, copyToVolume, pairOfVolume, removeVolume } from './mirror/volume-ops.js';
export type { ProgressCallback, ProgressEvent } from './progress.js';
export { clearFaults, type EffectiveFault, type FaultKind, type FaultRow, type FaultSpec, faultsFor, injectFault, listFaults } from './resources/faults.js';
// Resources
export { describeFault, driveName, Inventory, type MoverKind, type Resource, type ResourceRow, type ResourceState } from './resources/inventory.js';
export { DEFINED_KINDS, type DefinedKind, RESOURCE_KINDS, type ResourceKind } from './resources/kinds.js';
export { Fabric, type Link, STORAGE } from './resources/topology.js';
// Tape
export { type CreateLibraryOptions, DEFAULT_TAPE_BLOCK, Library, type LibraryConfig } from './tape/library.js';
export { writeFileDurable } from './util/durable.js';
export { formatBytes, formatRate, parseSize } from './util/size.js';
export { DEFAULT_GRANULARITY, DirtyBitmap } from './volumes/bitmap.js';
export { type CopyOptions, type CopyReport, checkCopyOptions, copyVolume } from './volumes/copy.js';
export { type ByteTarget, readVolumeInPieces, readVolumeToFile, resolveRange, writeFileToVolume } from './volumes/files.js';
export { checkVolumeName } from './volumes/names.js';
// Volumes
export { type CreateVolumeOptions, DEFAULT_BLOCK_SIZE, VolumeStore } from './volumes/store.js';
export { openVolumeFile, Volume, type VolumeInfo } from './volumes/volume.js';
