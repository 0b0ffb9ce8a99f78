-- PosterBench's state: every recommendation shown, and at most one vote on each.
CREATE TABLE recommendations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    policy TEXT NOT NULL DEFAULT 'epsilon_greedy',  -- the bandit policy that chose the arm
    arm TEXT NOT NULL,                  -- the distance used: manhattan, euclidean or cosine
    epsilon REAL NOT NULL,              -- epsilon-greedy's exploration rate when the arm was chosen (else 0)
    explored INTEGER NOT NULL DEFAULT 0 CHECK (explored IN (0, 1)),  -- 1 when the choice explored (bandit.Choice)
    arm_probability REAL NOT NULL CHECK (arm_probability > 0 AND arm_probability <= 1),  -- propensity of `arm`
    query_kind TEXT NOT NULL CHECK (query_kind IN ('upload', 'sample', 'imdb')),
    query_imdb_id TEXT,                 -- the catalog movie or IMDb title queried, if any
    query_image BLOB,                   -- a JPEG thumbnail of an uploaded poster
    genres TEXT NOT NULL,               -- JSON object: genre -> predicted probability
    results TEXT NOT NULL               -- JSON array of the recommended imdb_ids, nearest first
);

CREATE TABLE feedback (
    recommendation_id INTEGER PRIMARY KEY REFERENCES recommendations (id),  -- one vote per recommendation
    reward INTEGER NOT NULL CHECK (reward IN (-1, 0, 1)),
    client TEXT NOT NULL DEFAULT '',    -- a keyed hash of the voter's address, for the rate limit (not the address)
    created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX feedback_created ON feedback (created);
CREATE INDEX feedback_client ON feedback (client, created);
