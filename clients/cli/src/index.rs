//! The server's index of records this user may see (`GET /v1/records`): how a device learns
//! of records it has not been told about, such as an observation just shared with its user.

use anyhow::Context;
use fieldbook_sync_core::DocumentId;

use crate::session;
use crate::store::Store;

/// The index cursor for a server: records changed after it are new to this device.
fn cursor_setting(server: &str) -> String {
    format!("index.cursor {server}")
}

/// Records listed for this user that changed since the last look. Returns them with the
/// cursor to save once they are synced.
pub async fn changed_records(store: &Store, server: &str, token: &str) -> anyhow::Result<(Vec<DocumentId>, i64)> {
    let base = session::base_url(server)?;
    let mut cursor: i64 = match store.setting(&cursor_setting(&base)).await? {
        Some(c) => c.parse().unwrap_or(0),
        None => 0,
    };
    let mut records = Vec::new();
    loop {
        let page = session::get(format!("{base}/v1/records?after={cursor}"), token).await?;
        for entry in page["records"].as_array().context("the record index has no `records`")? {
            let url = entry["url"].as_str().context("a record index entry has no `url`")?;
            records.push(DocumentId::parse_url_or_id(url)?);
        }
        cursor = page["cursor"].as_i64().unwrap_or(cursor);
        if page["more"] != true {
            return Ok((records, cursor));
        }
    }
}

pub async fn save_cursor(store: &Store, server: &str, cursor: i64) -> anyhow::Result<()> {
    let base = session::base_url(server)?;
    store.set_settings(&[(&cursor_setting(&base), &cursor.to_string())]).await
}
