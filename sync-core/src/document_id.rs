//! Document ids as automerge-repo spells them: a UUID's 16 bytes, bs58check-encoded, and
//! `automerge:<id>` URLs.

use std::fmt;
use std::str::FromStr;

const URL_PREFIX: &str = "automerge:";

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId([u8; 16]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid document id {input:?}: {reason}")]
pub struct InvalidDocumentId {
    pub input: String,
    pub reason: &'static str,
}

impl DocumentId {
    /// A fresh random id, as `repo.create()` makes one.
    pub fn random() -> Self {
        Self(*uuid::Uuid::new_v4().as_bytes())
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The `automerge:` URL of this document.
    pub fn url(&self) -> String {
        format!("{URL_PREFIX}{self}")
    }

    /// Parses either a bare id or an `automerge:` URL. A `#heads` suffix (automerge-repo 2.x
    /// links to a version) is accepted and ignored: the id names the whole document.
    pub fn parse_url_or_id(input: &str) -> Result<Self, InvalidDocumentId> {
        let id = input.strip_prefix(URL_PREFIX).unwrap_or(input);
        let id = id.split_once('#').map_or(id, |(id, _heads)| id);
        id.parse().map_err(|e: InvalidDocumentId| InvalidDocumentId { input: input.to_owned(), reason: e.reason })
    }
}

impl FromStr for DocumentId {
    type Err = InvalidDocumentId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidDocumentId { input: s.to_owned(), reason };
        let bytes = bs58::decode(s).with_check(None).into_vec().map_err(|_| invalid("not bs58check"))?;
        let bytes: [u8; 16] = bytes.try_into().map_err(|_| invalid("not 16 bytes"))?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).with_check().into_string())
    }
}

impl fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_string_and_url() {
        let id = DocumentId::random();
        assert_eq!(id.to_string().parse::<DocumentId>().unwrap(), id);
        assert_eq!(DocumentId::parse_url_or_id(&id.url()).unwrap(), id);
        assert_eq!(DocumentId::parse_url_or_id(&format!("{}#abc|def", id.url())).unwrap(), id);
    }

    #[test]
    fn rejects_garbage_and_bad_checksums() {
        assert!("not-an-id".parse::<DocumentId>().is_err());
        let mut corrupted = DocumentId::random().to_string();
        let last = corrupted.pop().unwrap();
        corrupted.push(if last == '2' { '3' } else { '2' });
        assert_eq!(corrupted.parse::<DocumentId>().unwrap_err().reason, "not bs58check");
        let short = bs58::encode([1u8; 8]).with_check().into_string();
        assert_eq!(short.parse::<DocumentId>().unwrap_err().reason, "not 16 bytes");
    }
}
