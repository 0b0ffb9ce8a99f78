-- What the query poster evokes besides its genres: JSON with the decade probabilities, the expected year, the
-- expected IMDb rating and its range, and whether it looks like a movie poster (NULL for rows from before).
ALTER TABLE recommendations ADD COLUMN evoked TEXT;
