//! Administrative commands that read or change what the server holds: frameworks and the
//! quarantine.

use fieldbook_sync_core::frameworks::Framework;
use fieldbook_sync_core::{DocumentId, json};

use crate::cli::{FrameworksCommand, QuarantineCommand};
use crate::storage::Database;

pub(crate) async fn frameworks(command: FrameworksCommand) -> anyhow::Result<()> {
    match command {
        FrameworksCommand::Import { file, database } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let framework = Framework::from_json(&text)?;
            let db = Database::connect(&database.database_url).await?;
            let report = db.import_framework(&framework).await?;
            println!(
                "{} {} ({}): {} ids added, {} retitled, {} retired (retired ids stay valid for existing records)",
                if report.created { "imported" } else { "corrected" },
                framework.id,
                framework.version,
                report.added,
                report.retitled,
                report.retired
            );
            db.close().await;
        }
        FrameworksCommand::List { database } => {
            let db = Database::connect(&database.database_url).await?;
            for f in db.frameworks().await? {
                let to = f.effective_to.as_deref().unwrap_or("");
                println!(
                    "{}\t{}\tversion {}\t{}\t{}..{}\t{} ids ({} retired)\t{}",
                    f.id, f.title, f.version, f.publisher, f.effective_from, to, f.items, f.retired, f.source
                );
            }
            db.close().await;
        }
    }
    Ok(())
}

pub(crate) async fn quarantine(command: QuarantineCommand) -> anyhow::Result<()> {
    match command {
        QuarantineCommand::List { document, database } => {
            let db = Database::connect(&database.database_url).await?;
            let document = document.map(|d| DocumentId::parse_url_or_id(&d)).transpose()?;
            for q in db.quarantined(document).await? {
                println!(
                    "{}\tautomerge:{}\t{}\t{}\t{} changes\t{}",
                    q.id,
                    q.document_id,
                    q.user_id,
                    q.device_id.as_deref().unwrap_or("-"),
                    q.change_hashes.len(),
                    q.reason
                );
            }
            db.close().await;
        }
        QuarantineCommand::Show { id, database } => {
            let db = Database::connect(&database.database_url).await?;
            let q = db.quarantined_change(id).await?.ok_or_else(|| anyhow::anyhow!("no quarantined change {id}"))?;
            // The stored record with the refused changes applied, for a reviewer to compare.
            let document: DocumentId = q.document_id.parse()?;
            let (mut doc, _) = db.load_document(document).await?;
            let stored = json::to_json(&doc);
            doc.load_incremental(&q.changes)?;
            let out = serde_json::json!({
                "id": q.id,
                "document": document.url(),
                "user": q.user_id,
                "device": q.device_id,
                "reason": q.reason,
                "changeHashes": q.change_hashes,
                "receivedAtMillis": q.received_at,
                "stored": stored,
                "withRefusedChanges": json::to_json(&doc),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            db.close().await;
        }
    }
    Ok(())
}
