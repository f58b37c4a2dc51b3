//! The server's index of records this user may see (`GET /v1/records`): how a device learns
//! of records it has not been told about, such as an observation just shared with its user.

use anyhow::Context;
use fieldbook_sync_core::DocumentId;

use crate::session;
use crate::store::Store;

/// Positions are commit ids, and concurrent commits on PostgreSQL can become visible out of
/// order: each look goes back this far behind the cursor, so none is missed.
const REREAD: i64 = 1000;

/// Where the last look got to: the cursor, and the server's access version then.
pub struct Position {
    cursor: i64,
    access_version: String,
}

fn cursor_setting(server: &str) -> String {
    format!("index.cursor {server}")
}

fn access_setting(server: &str) -> String {
    format!("index.access {server}")
}

/// Records listed for this user that changed since the last look, and the position to save
/// (with [`save`]) once they are synced. When who-may-see-what changed on the server (its
/// access version moved), records now visible may sit behind the cursor: start over.
pub async fn changed_records(store: &Store, server: &str, token: &str) -> anyhow::Result<(Vec<DocumentId>, Position)> {
    let base = session::base_url(server)?;
    let saved: i64 = store.setting(&cursor_setting(&base)).await?.and_then(|c| c.parse().ok()).unwrap_or(0);
    let seen_access = store.setting(&access_setting(&base)).await?;
    let mut cursor = (saved - REREAD).max(0);
    let mut records = Vec::new();
    loop {
        let page = session::get(format!("{base}/v1/records?after={cursor}"), token).await?;
        let access_version = page["accessVersion"].to_string();
        if cursor != 0 && seen_access.as_deref() != Some(access_version.as_str()) {
            cursor = 0;
            records.clear();
            continue;
        }
        for entry in page["records"].as_array().context("the record index has no `records`")? {
            let url = entry["url"].as_str().context("a record index entry has no `url`")?;
            records.push(DocumentId::parse_url_or_id(url)?);
        }
        cursor = page["cursor"].as_i64().unwrap_or(cursor);
        if page["more"] != true {
            return Ok((records, Position { cursor, access_version }));
        }
    }
}

pub async fn save(store: &Store, server: &str, position: &Position) -> anyhow::Result<()> {
    let base = session::base_url(server)?;
    let cursor = position.cursor.to_string();
    store.set_settings(&[(&cursor_setting(&base), &cursor), (&access_setting(&base), &position.access_version)]).await
}
