/**
 * Plexus: the public library API (`import { ... } from 'plexus'`). Everything the CLI does
 * goes through these: each command is a thin run function over them.
 */
export { PlexusError } from './errors.js';
export { Home, resolveHomeDir, type OpenHomeOptions } from './home/home.js';
export { writeFileDurable } from './util/durable.js';
export { parseSize, formatBytes, formatRate } from './util/size.js';
export type { ProgressCallback, ProgressEvent } from './progress.js';

// Volumes
export { VolumeStore, DEFAULT_BLOCK_SIZE, type CreateVolumeOptions } from './volumes/store.js';
export { Volume, openVolumeFile, type VolumeInfo } from './volumes/volume.js';
export { checkVolumeName } from './volumes/names.js';
export { copyVolume, checkCopyOptions, type CopyOptions, type CopyReport } from './volumes/copy.js';
export { DirtyBitmap, DEFAULT_GRANULARITY } from './volumes/bitmap.js';
export { resolveRange, writeFileToVolume, readVolumeToFile, readVolumeInPieces, type ByteTarget } from './volumes/files.js';

// Mirrors
export { Mirrors, type PairSelector, type PairInfo, type CreatePairOptions, type SplitOptions, type SplitReport, type ResyncOptions, type ResyncResult } from './mirror/mirrors.js';
export { PAIR_STATES, parseState, isDuplexing, isSplit, type PairState } from './mirror/states.js';
export { openVolumeIo, type VolumeIo, type IoOptions } from './mirror/io.js';
export { fillIo } from './mirror/fill.js';
export { promote, rotate, stage, type PromoteReport, type RotateReport, type StageReport } from './mirror/plexes.js';
export { removeVolume, copyToVolume, pairOfVolume, type CopyToVolumeReport } from './mirror/volume-ops.js';
export { runInBackground, backgroundArgs, type BackgroundOperation, type BackgroundReport } from './mirror/background.js';
export type { PairRecord, PairOperation } from './mirror/record.js';

// Tape
export { Library, DEFAULT_TAPE_BLOCK, type LibraryConfig, type CreateLibraryOptions } from './tape/library.js';

// Catalog
export { Catalog, type JobStatus, type JobRow, type LocationRow, type SegmentRow, type MediaRow, type LibraryRow, type ScheduleRow } from './catalog/catalog.js';

// Backup
export { runBackup, chooseLibrary, BACKUP_MODES, DEFAULT_CHUNK, MIN_CHUNK, type BackupMode, type BackupOptions, type BackupReport, type StreamReport } from './backup/backup.js';
export { restoreJob, type RestoreOptions, type RestoreReport } from './backup/restore.js';
export { rebuildCatalog, type RebuildReport } from './backup/rebuild.js';
export { addSchedule, listSchedule, runDue, parseWhen, type DueOutcome } from './backup/schedule.js';
export { createLibrary, removeLibrary } from './backup/libraries.js';

// Resources
export { Inventory, describeFault, driveName, type Resource, type ResourceRow, type ResourceState, type MoverKind } from './resources/inventory.js';
export { RESOURCE_KINDS, DEFINED_KINDS, type ResourceKind, type DefinedKind } from './resources/kinds.js';
export { injectFault, clearFaults, listFaults, faultsFor, type FaultSpec, type FaultRow, type FaultKind, type EffectiveFault } from './resources/faults.js';
export { Fabric, STORAGE, type Link } from './resources/topology.js';

// The demo
export { runDemo, type DemoOptions, type DemoSummary } from './demo/demo.js';
