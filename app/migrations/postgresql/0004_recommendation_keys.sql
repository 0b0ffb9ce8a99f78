-- A random value per recommendation that its key hashes with its id (app/recommendations.py, recommendation_key):
-- ids start again at 1 in a new database, and a key of the id alone would open the new row N with an old link to N.
-- NULL for rows from before, whose key hashes the id alone, as their links did.
ALTER TABLE recommendations ADD COLUMN key_salt TEXT;
