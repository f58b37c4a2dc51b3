//! Subject access: `fieldbook subject-access` (both databases) and the admin API export every
//! record in which the person is a party, with its narrative, and none of the third-party
//! content withheld (family voice, other people's identities, the other party's own words).

use automerge::Automerge;
use fieldbook_server::storage::Role;
use fieldbook_sync_core::DocumentId;
use fieldbook_sync_core::json::set_path;
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::records::{document, observation, plan};
use fieldbook_tests::{Backend, TempDir, TestDatabase, TestServer};
use serde_json::{Value, json};

const NOTES: &str = "Explained the plan clearly";
const REFLECTION: &str = "I listened before I explained";
const FAMILY_VOICE: &str = "Mum said the visit helped";
const SOMEONE_ELSES: &str = "Kim kept good records";
const PRESENT: &str = "grandmother and two children";
const CONSENT_HOW: &str = "asked at the door";

fn set(doc: &mut Automerge, path: &str, value: Value) {
    let mut tx = doc.transaction();
    set_path(&mut tx, path, &value).unwrap();
    tx.commit();
}

struct Org {
    server: TestServer,
    pat_records: Vec<DocumentId>,
    other: DocumentId,
}

/// Pat's observation (with pat's reflection and the family's voice) and plan, and someone
/// else's observation.
async fn organisation(db: &TestDatabase) -> Org {
    let sam = db.user("sam", Role::Supervisor).await;
    let pat = db.user("pat", Role::Practitioner).await;
    db.user("kim", Role::Practitioner).await;
    db.fieldbook(&["supervision", "set", "--user", "pat", "--supervisor", "sam", "--from", "2025-01-01"]);
    let server = TestServer::start(&db.url);
    let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;
    let observed = DocumentId::random();
    let family = json!({ "given": true, "by": "mother", "how": CONSENT_HOW });
    let mut doc = document(&observation(json!({ "notes": NOTES, "present": PRESENT, "consent": family })));
    assert_eq!(tablet.push(observed, &doc).await, Outcome::Accepted);
    set(&mut doc, "status", json!("shared"));
    assert_eq!(tablet.push(observed, &doc).await, Outcome::Accepted);
    let mut phone = Peer::connect(&server.ws_url(&pat), "phone").await;
    let mut mine = phone.fetch(observed).await.unwrap();
    set(&mut mine, "reflection", json!(REFLECTION));
    set(&mut mine, "familyVoice", json!(FAMILY_VOICE));
    assert_eq!(phone.push(observed, &mine).await, Outcome::Accepted);
    let planned = DocumentId::random();
    assert_eq!(tablet.push(planned, &document(&plan(json!({})))).await, Outcome::Accepted);
    let other = DocumentId::random();
    let kims = document(&observation(json!({ "practitionerId": "kim", "notes": SOMEONE_ELSES })));
    assert_eq!(tablet.push(other, &kims).await, Outcome::Accepted);
    Org { server, pat_records: vec![observed, planned], other }
}

fn assert_pats_export(export: &str, org: &Org) {
    for id in &org.pat_records {
        assert!(export.contains(&id.url()), "{id} is exported");
    }
    assert!(!export.contains(&org.other.url()), "someone else's record is not");
    assert!(export.contains(NOTES) && export.contains(REFLECTION), "the narrative about pat is there");
    assert!(!export.contains(FAMILY_VOICE), "the family's voice is withheld");
    assert!(!export.contains(PRESENT) && !export.contains(CONSENT_HOW), "the family's details are withheld");
    assert!(!export.contains(SOMEONE_ELSES));
    assert!(!export.contains("\"sam\"") && !export.contains(">sam<"), "other people's identities are withheld");
}

async fn exports_everything_about_a_person_and_nothing_of_others(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let org = organisation(&db).await;
    let dir = TempDir::new("sar");
    let out = dir.path().join("pat.json");
    let printed = db.fieldbook(&["subject-access", "--user", "pat", "--out", out.to_str().unwrap()]);
    assert_eq!(printed.lines().last(), Some(out.to_str().unwrap()));
    let export = std::fs::read_to_string(&out).unwrap();
    assert_pats_export(&export, &org);
    let parsed: Value = serde_json::from_str(&export).unwrap();
    assert_eq!(parsed["subject"]["id"], "pat");
    assert!(
        parsed["withheld"].as_array().unwrap().iter().any(|w| w["field"] == "familyVoice"),
        "withholdings are listed"
    );
    let page = std::fs::read_to_string(dir.path().join("pat.html")).unwrap();
    assert!(page.starts_with("<!doctype html>"));
    assert_pats_export(&page, &org);
    assert!(db.fieldbook(&["audit", "--limit", "100000"]).contains("subject-access-exported"), "the export is audited");
    // The observer's export: their narrative, not the practitioner's own words or identity.
    let sams = dir.path().join("sam.json");
    db.fieldbook(&["subject-access", "--user", "sam", "--out", sams.to_str().unwrap()]);
    let export = std::fs::read_to_string(&sams).unwrap();
    assert!(export.contains(NOTES) && !export.contains(REFLECTION) && !export.contains(FAMILY_VOICE));
    assert!(!export.contains("\"pat\"") && !export.contains("\"kim\""), "other people's identities are withheld");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_everything_about_a_person_and_nothing_of_others_sqlite() {
    exports_everything_about_a_person_and_nothing_of_others(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_everything_about_a_person_and_nothing_of_others_postgres() {
    exports_everything_about_a_person_and_nothing_of_others(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_export_through_the_api() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let org = organisation(&db).await;
    let admin = db.user("ada", Role::Admin).await;
    let pat = db.token(&db.connect().await, "pat", std::time::Duration::from_secs(600)).await;
    let server = &org.server;
    let path = "/v1/admin/users/pat/subject-access";
    let json = server.get_with(path, Some(&admin)).await;
    assert_eq!(json.status, 200, "{}", json.body);
    assert_pats_export(&json.body, &org);
    let page = server.get_with(&format!("{path}?format=html"), Some(&admin)).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/html")));
    assert_pats_export(&page.body, &org);
    assert_eq!(server.get_with(path, Some(&pat)).await.status, 403, "admins only");
    assert_eq!(server.get_with("/v1/admin/users/nobody/subject-access", Some(&admin)).await.status, 404);
    assert_eq!(server.get_with(&format!("{path}?format=pdf"), Some(&admin)).await.status, 400);
}
