/**
 * The catalog schema, as numbered migrations. `PRAGMA user_version` holds the number of
 * the last one applied; each runs once, in a transaction. Never edit a released
 * migration: add the next one. docs/catalog.md documents the resulting schema.
 */

/** One schema step. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

/** Every migration, in order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'libraries, media, jobs, locations, segments, schedule',
    sql: `
      CREATE TABLE libraries (
        name            TEXT PRIMARY KEY,
        dir             TEXT NOT NULL,
        slots           INTEGER NOT NULL CHECK (slots > 0),
        drives          INTEGER NOT NULL CHECK (drives > 0),
        cartridge_size  INTEGER NOT NULL CHECK (cartridge_size > 0),
        created_at      TEXT NOT NULL
      );

      CREATE TABLE media (
        barcode     TEXT PRIMARY KEY,
        library     TEXT NOT NULL REFERENCES libraries(name) ON DELETE CASCADE,
        slot        INTEGER NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('scratch', 'filling', 'full', 'missing')),
        capacity    INTEGER NOT NULL,
        bytes       INTEGER NOT NULL DEFAULT 0,
        updated_at  TEXT NOT NULL,
        UNIQUE (library, slot)
      );

      CREATE TABLE schedule (
        id           INTEGER PRIMARY KEY,
        at           TEXT NOT NULL,
        target       TEXT NOT NULL,
        library      TEXT,
        status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done', 'failed')),
        created_at   TEXT NOT NULL,
        last_run_at  TEXT,
        outcome      TEXT
      );

      CREATE TABLE jobs (
        id           INTEGER PRIMARY KEY,
        target       TEXT NOT NULL,
        target_size  INTEGER NOT NULL,
        mode         TEXT NOT NULL DEFAULT 'single',
        started_at   TEXT NOT NULL,
        ended_at     TEXT,
        data_time    TEXT NOT NULL,
        status       TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'incomplete')),
        pid          INTEGER,
        bytes        INTEGER NOT NULL DEFAULT 0,
        error        TEXT,
        schedule_id  INTEGER REFERENCES schedule(id) ON DELETE SET NULL
      );
      CREATE INDEX jobs_by_target ON jobs(target, started_at);

      CREATE TABLE locations (
        id       INTEGER PRIMARY KEY,
        job_id   INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        copy     INTEGER NOT NULL DEFAULT 0,
        seq      INTEGER NOT NULL,
        library  TEXT NOT NULL,
        stream   INTEGER NOT NULL DEFAULT 0,
        status   TEXT NOT NULL CHECK (status IN ('writing', 'done', 'failed')),
        UNIQUE (job_id, copy, seq)
      );

      CREATE TABLE segments (
        id             INTEGER PRIMARY KEY,
        location_id    INTEGER NOT NULL REFERENCES locations(id) ON DELETE CASCADE,
        seq            INTEGER NOT NULL,
        barcode        TEXT NOT NULL REFERENCES media(barcode),
        file_number    INTEGER NOT NULL,
        first_block    INTEGER NOT NULL,
        source_offset  INTEGER NOT NULL,
        length         INTEGER NOT NULL,
        checksum       TEXT NOT NULL,
        written_at     TEXT NOT NULL,
        UNIQUE (location_id, seq)
      );
      CREATE INDEX segments_by_barcode ON segments(barcode, file_number);
    `,
  },
  {
    version: 2,
    description: 'backup manager: resources, links, faults; the default topology',
    // The default topology is inserted here, once per catalog, so a user who removes it
    // (to describe their own) never sees it come back. Libraries, drives and cartridges
    // are not rows yet: the inventory registers them from the library directories, and
    // links a new library to every switch that already links every known library (so
    // fc0 and fc1 reach every library). docs/backup-manager.md describes the model.
    sql: `
      CREATE TABLE resources (
        name         TEXT PRIMARY KEY,
        kind         TEXT NOT NULL CHECK (kind IN ('server', 'copy-device', 'switch', 'library', 'drive', 'cartridge')),
        state        TEXT NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'in-use', 'unavailable')),
        job_id       INTEGER,
        stream       INTEGER,
        pid          INTEGER,
        reserved_at  TEXT,
        detail       TEXT,
        CHECK ((state = 'in-use') <= (job_id IS NOT NULL AND stream IS NOT NULL AND pid IS NOT NULL))
      );
      CREATE INDEX resources_by_kind ON resources(kind, name);
      CREATE INDEX resources_by_holder ON resources(job_id, stream) WHERE job_id IS NOT NULL;

      CREATE TABLE links (
        switch    TEXT NOT NULL REFERENCES resources(name) ON DELETE CASCADE,
        endpoint  TEXT NOT NULL,
        PRIMARY KEY (switch, endpoint),
        CHECK (endpoint != switch)
      );
      CREATE INDEX links_by_endpoint ON links(endpoint);

      CREATE TABLE faults (
        id           INTEGER PRIMARY KEY,
        target       TEXT NOT NULL REFERENCES resources(name) ON DELETE CASCADE,
        kind         TEXT NOT NULL CHECK (kind IN ('fail-after', 'hang', 'unavailable')),
        after_bytes  INTEGER CHECK ((kind = 'fail-after') = (after_bytes IS NOT NULL) AND (after_bytes IS NULL OR after_bytes >= 0)),
        created_at   TEXT NOT NULL,
        UNIQUE (target, kind)
      );

      INSERT INTO resources (name, kind, detail) VALUES
        ('server0', 'server', 'default topology'),
        ('server1', 'server', 'default topology'),
        ('xcopy0', 'copy-device', 'default topology'),
        ('xcopy1', 'copy-device', 'default topology'),
        ('fc0', 'switch', 'default topology'),
        ('fc1', 'switch', 'default topology');
      INSERT INTO links (switch, endpoint) VALUES
        ('fc0', 'storage'), ('fc0', 'server0'), ('fc0', 'xcopy0'),
        ('fc1', 'storage'), ('fc1', 'server1'), ('fc1', 'xcopy1');
    `,
  },
  {
    version: 3,
    description: 'faults: a hang may wait for a number of bytes first',
    // SQLite cannot change a CHECK in place: the table is copied into its new shape.
    sql: `
      CREATE TABLE faults_v3 (
        id           INTEGER PRIMARY KEY,
        target       TEXT NOT NULL REFERENCES resources(name) ON DELETE CASCADE,
        kind         TEXT NOT NULL CHECK (kind IN ('fail-after', 'hang', 'unavailable')),
        after_bytes  INTEGER CHECK (CASE kind WHEN 'fail-after' THEN after_bytes IS NOT NULL WHEN 'unavailable' THEN after_bytes IS NULL ELSE 1 END
                                    AND (after_bytes IS NULL OR after_bytes >= 0)),
        created_at   TEXT NOT NULL,
        UNIQUE (target, kind)
      );
      INSERT INTO faults_v3 (id, target, kind, after_bytes, created_at) SELECT id, target, kind, after_bytes, created_at FROM faults;
      DROP TABLE faults;
      ALTER TABLE faults_v3 RENAME TO faults;
    `,
  },
  {
    version: 4,
    description: 'jobs: whether the data is a consistent image or a crash-consistent copy of a live volume',
    // Jobs recorded before this was tracked are 'unknown' (treat as crash-consistent).
    sql: `
      ALTER TABLE jobs ADD COLUMN consistency TEXT NOT NULL DEFAULT 'unknown'
        CHECK (consistency IN ('consistent', 'crash-consistent', 'unknown'));
    `,
  },
  {
    version: 5,
    description: 'faults: a stream may get stuck in a system call (a hang no cancellation reaches)',
    sql: `
      CREATE TABLE faults_v5 (
        id           INTEGER PRIMARY KEY,
        target       TEXT NOT NULL REFERENCES resources(name) ON DELETE CASCADE,
        kind         TEXT NOT NULL CHECK (kind IN ('fail-after', 'hang', 'stuck', 'unavailable')),
        after_bytes  INTEGER CHECK (CASE kind WHEN 'fail-after' THEN after_bytes IS NOT NULL WHEN 'unavailable' THEN after_bytes IS NULL ELSE 1 END
                                    AND (after_bytes IS NULL OR after_bytes >= 0)),
        created_at   TEXT NOT NULL,
        UNIQUE (target, kind)
      );
      INSERT INTO faults_v5 (id, target, kind, after_bytes, created_at) SELECT id, target, kind, after_bytes, created_at FROM faults;
      DROP TABLE faults;
      ALTER TABLE faults_v5 RENAME TO faults;
    `,
  },
  {
    version: 6,
    description: 'indexes for a catalog of years of jobs: no query scans jobs, locations or segments to find a few rows',
    // Each index serves the queries docs/catalog.md ("Indexes") names; test/catalog/scale.test.ts
    // checks their plans. Existing rows stay; CREATE INDEX only reads them once.
    sql: `
      -- settling dead jobs, catalog jobs --status, a rebuild's "is a job running"
      CREATE INDEX jobs_by_status ON jobs(status, id);
      -- settling a dead run-due (its entry's job), and ON DELETE SET NULL of a schedule entry
      CREATE INDEX jobs_by_schedule ON jobs(schedule_id) WHERE schedule_id IS NOT NULL;
      -- settling a dead run-due, claiming the due entries
      CREATE INDEX schedule_by_status ON schedule(status, at, id);
      -- a scoped rebuild and forgetting a library: the location entries of a library
      CREATE INDEX locations_by_library ON locations(library);
      -- planning a range restore: the segments of a location entry around an offset
      CREATE INDEX segments_by_offset ON segments(location_id, source_offset);
    `,
  },
  {
    version: 7,
    description: "the data bytes of a segment: what a thin volume's backup put on the cartridge beside its logical length",
    // NULL for the segments written before: they hold all their bytes (format version 1
    // cartridges record no holes).
    sql: `
      ALTER TABLE segments ADD COLUMN data_bytes INTEGER CHECK (data_bytes IS NULL OR (data_bytes >= 0 AND data_bytes <= length));
    `,
  },
  {
    version: 8,
    description: 'backup policies: recurring backups of a data set in a time window, their runs, retention (jobs.expired_at)',
    // A policy's volumes keep the order they were given in (the plan lists them so).
    // policy_runs.started_at and slot are on the policy clock (an injected `now` in
    // tests); the jobs they start keep real times. An expired job keeps its row (what
    // was backed up stays listed); its segments go when their cartridge is freed.
    sql: `
      CREATE TABLE policies (
        name        TEXT PRIMARY KEY,
        every_s     INTEGER NOT NULL CHECK (every_s > 0),
        window      TEXT,
        library     TEXT NOT NULL,
        mode        TEXT NOT NULL DEFAULT 'single' CHECK (mode IN ('single', 'parallel', 'chunked')),
        streams     INTEGER CHECK (streams IS NULL OR streams > 0),
        keep        INTEGER CHECK (keep IS NULL OR keep > 0),
        enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
        created_at  TEXT NOT NULL
      );

      CREATE TABLE policy_volumes (
        policy  TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE,
        volume  TEXT NOT NULL,
        seq     INTEGER NOT NULL,
        PRIMARY KEY (policy, volume)
      );

      CREATE TABLE policy_runs (
        id          INTEGER PRIMARY KEY,
        policy      TEXT NOT NULL REFERENCES policies(name) ON DELETE CASCADE,
        volume      TEXT NOT NULL,
        slot        TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        ended_at    TEXT,
        library     TEXT NOT NULL,
        drives      INTEGER NOT NULL CHECK (drives > 0),
        status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled')),
        job_id      INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
        pid         INTEGER,
        outcome     TEXT
      );
      -- a volume's last run (is it due?), a policy's runs (policy show)
      CREATE INDEX policy_runs_by_volume ON policy_runs(policy, volume, started_at);
      -- the runs holding drives now
      CREATE INDEX policy_runs_by_status ON policy_runs(status, library);
      -- retention: the runs of a job; ON DELETE SET NULL of a job
      CREATE INDEX policy_runs_by_job ON policy_runs(job_id) WHERE job_id IS NOT NULL;

      ALTER TABLE jobs ADD COLUMN expired_at TEXT;
      -- freeing cartridges: the expired jobs whose segments may still lie on one
      CREATE INDEX jobs_expired ON jobs(id) WHERE expired_at IS NOT NULL;
    `,
  },
];
