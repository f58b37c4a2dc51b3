//! Fieldbook's extension to the protocol: notices carried in `ephemeral` messages on the
//! document they concern, so any automerge-repo client receives them as ephemeral data
//! (documented in the README).

use ciborium::Value;

pub const REJECTED: &str = "fieldbook/rejected";
/// A top-level message (not ephemeral): `{ type: "fieldbook/wipe", senderId, targetId,
/// reason }`. The device was revoked; it must delete its local copies. The server closes
/// the connection right after.
pub const WIPE: &str = "fieldbook/wipe";

/// True if ephemeral `data` claims to be one of Fieldbook's own notices (`type` starting
/// with `fieldbook/`). Only the server may send those; the server drops any a client sends.
pub fn is_server_notice(data: &[u8]) -> bool {
    let Ok(Value::Map(entries)) = ciborium::from_reader::<Value, _>(data) else { return false };
    entries.iter().any(|(k, v)| k.as_text() == Some("type") && v.as_text().is_some_and(|t| t.starts_with("fieldbook/")))
}

/// Encodes a `fieldbook/wipe` message (see [`WIPE`]).
pub fn wipe_message(sender_id: &str, target_id: &str, reason: &str) -> Vec<u8> {
    let text = |s: &str| Value::Text(s.to_owned());
    let value = Value::Map(vec![
        (text("type"), text(WIPE)),
        (text("senderId"), text(sender_id)),
        (text("targetId"), text(target_id)),
        (text("reason"), text(reason)),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&value, &mut out).expect("writing CBOR to a Vec cannot fail");
    out
}

/// `{ type: "fieldbook/rejected", reason, rule, changeHashes }`: the server refused these
/// changes (hex change hashes) and kept them aside; the document carries on syncing without
/// them. `rule` names the rule broken (see [`crate::refusal::rule`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectionNotice {
    pub reason: String,
    pub rule: Option<String>,
    pub change_hashes: Vec<String>,
}

impl RejectionNotice {
    pub fn encode(&self) -> Vec<u8> {
        let text = |s: &str| Value::Text(s.to_owned());
        let mut entries = vec![(text("type"), text(REJECTED)), (text("reason"), text(&self.reason))];
        if let Some(rule) = &self.rule {
            entries.push((text("rule"), text(rule)));
        }
        entries.push((text("changeHashes"), Value::Array(self.change_hashes.iter().map(|h| text(h)).collect())));
        let value = Value::Map(entries);
        let mut out = Vec::new();
        ciborium::into_writer(&value, &mut out).expect("writing CBOR to a Vec cannot fail");
        out
    }

    /// `None` if `data` is not a rejection notice (other ephemeral traffic).
    pub fn decode(data: &[u8]) -> Option<Self> {
        let Value::Map(entries) = ciborium::from_reader::<Value, _>(data).ok()? else { return None };
        let field = |name: &str| entries.iter().find(|(k, _)| k.as_text() == Some(name)).map(|(_, v)| v);
        if field("type")?.as_text()? != REJECTED {
            return None;
        }
        let reason = field("reason")?.as_text()?.to_owned();
        let rule = field("rule").and_then(Value::as_text).map(str::to_owned);
        let change_hashes = match field("changeHashes") {
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_text().map(str::to_owned)).collect(),
            _ => Vec::new(),
        };
        Some(Self { reason, rule, change_hashes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_notices_are_recognised() {
        let notice = RejectionNotice { reason: "r".into(), rule: None, change_hashes: vec![] }.encode();
        assert!(is_server_notice(&notice));
        let mut presence = Vec::new();
        ciborium::into_writer(
            &Value::Map(vec![(Value::Text("cursor".into()), Value::Integer(3.into()))]),
            &mut presence,
        )
        .unwrap();
        assert!(!is_server_notice(&presence));
        assert!(!is_server_notice(b"not cbor at all"));
    }

    #[test]
    fn round_trips_and_ignores_other_ephemeral_data() {
        let notice =
            RejectionNotice { reason: "locked".into(), rule: Some("locked".into()), change_hashes: vec!["ab".into()] };
        assert_eq!(RejectionNotice::decode(&notice.encode()), Some(notice));
        let mut other = Vec::new();
        ciborium::into_writer(
            &Value::Map(vec![(Value::Text("type".into()), Value::Text("cursor".into()))]),
            &mut other,
        )
        .unwrap();
        assert_eq!(RejectionNotice::decode(&other), None);
        assert_eq!(RejectionNotice::decode(b"junk"), None);
    }
}
