-- The heads of each document as committed, written with its version (space-separated hex;
-- NULL: not known yet, e.g. chunks written by a tool; filled in when the document is next
-- loaded). A device reconnecting with exactly these heads is answered without loading the
-- document (see the server's `sync::in_sync`).
ALTER TABLE document_versions ADD COLUMN heads TEXT;
