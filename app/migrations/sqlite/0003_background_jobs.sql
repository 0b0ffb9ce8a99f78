-- Background jobs (comparisons of drafts, heatmaps): their state lives here, shared by every web worker and job worker
-- (app/jobs.py); the queue (Huey) only carries job ids. Times are ISO-8601 UTC text, as in the other tables.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,                -- a random token: the job's URL is its only key
    kind TEXT NOT NULL CHECK (kind IN ('compare', 'explain')),
    status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress REAL NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    params TEXT NOT NULL,               -- JSON object: what was asked (target genres, the genre to explain)
    client TEXT NOT NULL DEFAULT '',    -- a keyed hash of the submitter's address, for the per-client limit
    result TEXT,                        -- JSON object, when done
    error TEXT,                         -- what went wrong, in a sentence, when failed
    attempts INTEGER NOT NULL DEFAULT 0,  -- runs started; a run whose worker stopped is retried once
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started TEXT,
    heartbeat TEXT,                     -- written by the running worker every few seconds
    finished TEXT
);

CREATE INDEX jobs_status ON jobs (status, heartbeat);
CREATE INDEX jobs_client ON jobs (client, status);
CREATE INDEX jobs_finished ON jobs (finished);

-- The posters of a job, validated and re-encoded by the web request (JPEG, at most 512 px a side): the worker never
-- sees an upload as it was sent. A catalog movie has no image: its poster and vectors are the catalog's.
CREATE TABLE job_posters (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('upload', 'sample', 'imdb')),
    label TEXT NOT NULL,                -- the file name, the movie's title or the IMDb id, only ever shown
    imdb_id TEXT,
    image BLOB,
    PRIMARY KEY (job_id, position)
);

-- What a finished job made besides its JSON: the comparison sheet, the heatmap.
CREATE TABLE job_files (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,                 -- sheet.png, heatmap.png
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, name)
);
