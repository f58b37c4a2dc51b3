-- A secret per device, handed to the device at each password sign-in: with it (or, offline,
-- the user's PIN) the device unlocks the key that encrypts its local copies of records. Never
-- handed out on a token refresh, so stolen tokens alone do not unlock a copied device store.
ALTER TABLE devices ADD COLUMN storage_key TEXT;
