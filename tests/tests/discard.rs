//! Discarding a draft (`DELETE /v1/records/{id}`): only its author, only while it is a draft;
//! it goes everywhere a deleted record goes, and no device can bring it back.

use std::time::Duration;

use automerge::Automerge;
use fieldbook_server::storage::Role;
use fieldbook_sync_core::json::set_path;
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::records::{document, observation, store};
use fieldbook_tests::{Backend, TestDatabase, TestServer};
use serde_json::json;

async fn discard(server: &TestServer, token: &str, url: &str) -> (u16, String) {
    let response = server.request("DELETE", &format!("/v1/records/{url}"), Some(token), None).await;
    (response.status, response.json()["detail"].as_str().unwrap_or_default().to_owned())
}

async fn only_its_author_discards_a_draft_and_it_goes_everywhere(backend: Backend) {
    let test_db = TestDatabase::new(backend).await;
    let sam = test_db.user("sam", Role::Supervisor).await;
    let pat = test_db.user("pat", Role::Practitioner).await;
    let db = test_db.connect().await;
    let draft_value = observation(json!({ "notes": "ZQXDRAFT first thoughts" }));
    let draft = store(&db, draft_value.clone()).await;
    let shared = store(&db, observation(json!({ "status": "shared" }))).await;
    let sharing = store(&db, observation(json!({}))).await;
    db.close().await;
    drop(db);
    let server = TestServer::start(&test_db.url);
    let mut tablet = Peer::connect(&server.ws_url(&sam), "tablet").await;
    let tablets_copy = tablet.fetch(draft).await.expect("the author's tablet follows the draft");

    let (status, detail) = discard(&server, &pat, &draft.url()).await;
    assert_eq!(status, 404, "someone else's draft is not theirs to know of: {detail}");
    assert!(detail.contains("no draft"), "{detail}");
    let (status, detail) = discard(&server, &sam, &shared.url()).await;
    assert_eq!((status, detail.contains("only a draft")), (409, true), "a shared record is kept: {detail}");
    assert_eq!(discard(&server, &pat, &shared.url()).await.0, 404, "nor the practitioner's to discard");
    assert_eq!(discard(&server, &sam, "not-a-document").await.0, 404);
    assert_eq!(server.request("DELETE", &format!("/v1/records/{}", draft.url()), None, None).await.status, 401);

    // Shared from the tablet an instant before the discard: the share wins.
    let mut shared_now = tablet.fetch(sharing).await.unwrap();
    edit(&mut shared_now, "status", json!("shared"));
    assert_eq!(tablet.push(sharing, &shared_now).await, Outcome::Accepted);
    assert_eq!(discard(&server, &sam, &sharing.url()).await.0, 409, "the committed share keeps it");

    let response = server.request("DELETE", &format!("/v1/records/{}", draft.url()), Some(&sam), None).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["discarded"], true);
    let told = tablet.notice_about(draft, Duration::from_secs(5)).await.expect("the tablet is told");
    assert_eq!(told.rule.as_deref(), Some("deleted"));
    assert!(!test_db.stores("ZQXDRAFT").await, "nothing of it is stored");

    // No device brings it back: not the tablet's old copy, nor a copy made anew.
    let mut phone = Peer::connect(&server.ws_url(&sam), "phone").await;
    assert!(matches!(phone.push(draft, &tablets_copy).await, Outcome::Rejected(r) if r.contains("deleted")));
    let mut again = Peer::connect(&server.ws_url(&sam), "again").await;
    assert!(matches!(again.push(draft, &document(&draft_value)).await, Outcome::Rejected(_)));
    assert_eq!(discard(&server, &sam, &draft.url()).await.0, 404, "discarded already");

    let index = server.get_with("/v1/records", Some(&sam)).await.json();
    let listed: Vec<&str> = index["records"].as_array().unwrap().iter().filter_map(|r| r["url"].as_str()).collect();
    assert!(!listed.contains(&draft.url().as_str()) && listed.contains(&shared.url().as_str()), "{listed:?}");
    let audit = test_db.fieldbook(&["audit", "--record", &draft.url()]);
    assert!(audit.contains("record-deleted") && audit.contains("draft discarded by its author"), "{audit}");
    assert!(audit.contains("\"sam\""), "audited as the author's act: {audit}");
}

fn edit(doc: &mut Automerge, path: &str, value: serde_json::Value) {
    let mut tx = doc.transaction();
    set_path(&mut tx, path, &value).unwrap();
    tx.commit();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_its_author_discards_a_draft_and_it_goes_everywhere_sqlite() {
    only_its_author_discards_a_draft_and_it_goes_everywhere(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_its_author_discards_a_draft_and_it_goes_everywhere_postgres() {
    only_its_author_discards_a_draft_and_it_goes_everywhere(Backend::Postgres).await;
}
