//! `fieldbook-bench checks`: what the server's checks cost per incoming message as a record
//! grows. Each message is one small edit (a keystroke in the notes, a field set), taken
//! through the checked receive path the server runs — staged on a scratch copy, judged
//! (access rules, sign-offs, record validation), accepted — in process, with no database or
//! network. Beside it: what converting the whole document to JSON costs, which every
//! message used to pay twice.

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT, ReadDoc};
use clap::Args;
use fieldbook_sync_core::access::{Proposal, Role, Stored, Viewer, judge};
use fieldbook_sync_core::frameworks::Catalog;
use fieldbook_sync_core::{DocSync, SyncKind, changes_message, json};
use serde_json::json as j;

#[derive(Args)]
pub struct ChecksArgs {
    /// Notes sizes to try, in characters (typed ten at a time, as history builds up).
    #[arg(long, value_delimiter = ',', default_value = "2000,20000,200000")]
    sizes: Vec<usize>,
    /// Messages timed per size and kind of edit.
    #[arg(long, default_value_t = 200)]
    messages: usize,
    #[arg(long, default_value = "bench-results/checks.json")]
    out: String,
}

pub async fn run(args: ChecksArgs) -> anyhow::Result<()> {
    let catalog = Catalog::shipped();
    let observer = Viewer { user_id: "sam".into(), role: Role::Supervisor, line: vec![], team: None };
    let mut rows = Vec::new();
    println!(
        "{:>9} {:>8} | {:>21} | {:>21} | {:>10}",
        "notes", "changes", "keystroke: path/judge", "field set: path/judge", "doc → JSON"
    );
    for &size in &args.sizes {
        let doc = record_with_notes(size);
        let changes = doc.get_changes(&[]).len();
        let keystroke = per_message(&doc, &catalog, &observer, args.messages, |tx, notes, i| {
            tx.splice_text(notes, i % 100, 0, "x").unwrap();
        });
        let field = per_message(&doc, &catalog, &observer, args.messages, |tx, _, i| {
            tx.put(ROOT, "purpose", if i % 2 == 0 { "review" } else { "first visit" }).unwrap();
        });
        let to_json = {
            let started = Instant::now();
            for _ in 0..20 {
                std::hint::black_box(json::to_json(&doc));
            }
            started.elapsed() / 20
        };
        println!(
            "{size:>9} {changes:>8} | {:>9.0}µs / {:>6.0}µs | {:>9.0}µs / {:>6.0}µs | {:>8.0}µs",
            micros(keystroke.0),
            micros(keystroke.1),
            micros(field.0),
            micros(field.1),
            micros(to_json)
        );
        rows.push(j!({
            "notesChars": size, "changes": changes,
            "keystroke": {"pathMicros": micros(keystroke.0), "judgeMicros": micros(keystroke.1)},
            "fieldSet": {"pathMicros": micros(field.0), "judgeMicros": micros(field.1)},
            "wholeDocumentToJsonMicros": micros(to_json),
        }));
    }
    let mut results = serde_json::Map::new();
    results.insert("checks".into(), j!(rows));
    crate::write_results(&args.out, results)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A shared observation whose notes were typed ten characters a change.
fn record_with_notes(chars: usize) -> Automerge {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    let record = j!({
        "type": "observation", "schemaVersion": 1, "practitionerId": "pat", "observerId": "sam",
        "observedAt": "2026-11-20T10:00:00Z", "setting": "home-visit", "framework": "kss-cf-2018",
        "components": ["kss-cf-2018/1"], "purpose": "review", "feedback": "", "reflection": "",
        "consent": {"given": true, "by": "mother", "how": "verbally"},
        "judgements": {}, "actions": [], "status": "shared", "signOff": {},
    });
    json::put_object(&mut tx, &record).unwrap();
    let notes = tx.put_object(ROOT, "notes", ObjType::Text).unwrap();
    tx.commit();
    let mut typed = 0;
    while typed < chars {
        let mut tx = doc.transaction();
        tx.splice_text(&notes, typed, 0, "abcdefghi ").unwrap();
        tx.commit();
        typed += 10;
    }
    doc
}

/// Mean times over `messages` messages, each one change made by `edit` on top of the last:
/// the whole checked receive path, and the judging within it.
fn per_message(
    base: &Automerge,
    catalog: &Catalog,
    viewer: &Viewer,
    messages: usize,
    edit: impl Fn(&mut automerge::transaction::Transaction<'_>, &automerge::ObjId, usize),
) -> (Duration, Duration) {
    let mut server: DocSync<()> = DocSync::new(base.clone());
    let mut stored = Stored::of(base, catalog).expect("a record");
    let mut client = base.clone();
    let notes = client.get(ROOT, "notes").unwrap().unwrap().1;
    let (mut total, mut judging) = (Duration::ZERO, Duration::ZERO);
    for i in 0..messages {
        let before = client.get_heads();
        let mut tx = client.transaction();
        edit(&mut tx, &notes, i);
        tx.commit();
        let data = changes_message(&client, &before);
        let started = Instant::now();
        let heads = server.heads();
        let staged = server.stage(&(), SyncKind::Sync, &data).expect("a sync message");
        let (metadata, changes) = (staged.new_change_metadata(), staged.new_changes());
        let proposal = Proposal {
            viewer,
            today: "2026-11-29",
            stored: Some(&stored),
            before_heads: &heads,
            after: staged.after(),
            changes: &changes,
            metadata: &metadata,
        };
        let judged = Instant::now();
        let judgement = judge(&proposal, catalog).expect("an edit the observer may make");
        judging += judged.elapsed();
        server.accept(staged);
        stored = judgement.stored;
        total += started.elapsed();
    }
    (total / messages as u32, judging / messages as u32)
}
