//! Research resources (issue 16): the starter set is there from the start; `fieldbook
//! resources import` adds a list, checked whole before anything is stored; a goal's
//! `resources` validate against imported ids; a retired resource stays valid on goals, is
//! listed as retired, and comes back when imported again.

use fieldbook_server::storage::Role;
use fieldbook_sync_core::DocumentId;
use fieldbook_sync_core::resources::{ResourceFile, SHIPPED};
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::records::{document, plan};
use fieldbook_tests::{Backend, TempDir, TestDatabase, TestServer};
use serde_json::{Value, json};

fn local_guide(components: &[&str]) -> Value {
    json!({"id": "local-guide", "title": "Our assessment practice guide", "url": "https://intranet.example/guide",
           "publisher": "Our council", "components": components, "addedAt": "2026-11-01"})
}

fn citing(resources: &[&str]) -> automerge::Automerge {
    document(&plan(json!({"goals": [{"id": "g1", "title": "Assess with the family", "components": ["kss-cf-2018/6.1"],
                                     "status": "in-progress", "evidence": [], "resources": resources}]})))
}

async fn listed(server: &TestServer, token: &str) -> Vec<Value> {
    let response = server.get_with("/v1/resources", Some(token)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["resources"].as_array().expect("a list").clone()
}

fn entry<'a>(list: &'a [Value], id: &str) -> Option<&'a Value> {
    list.iter().find(|r| r["id"] == id)
}

#[tokio::test]
async fn goals_cite_imported_resources_and_a_retired_one_stays_valid() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let sam = db.user("sam", Role::Supervisor).await;
    let pat = db.user("pat", Role::Practitioner).await;
    db.fieldbook(&["supervision", "set", "--user", "pat", "--supervisor", "sam", "--from", "2025-01-01"]);
    // A component inside area 6, so a resource on the area is suggested for a goal on it.
    let mut framework: Value = serde_json::from_str(include_str!("../../frameworks/kss-cf-2018.json")).unwrap();
    framework["areas"][5]["components"] =
        json!([{"id": "kss-cf-2018/6.1", "title": "Assessment that hears the child"}]);
    let dir = TempDir::new("resources");
    let file = |name: &str, value: Value| {
        let path = dir.path().join(name);
        std::fs::write(&path, value.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    db.fieldbook(&["frameworks", "import", &file("kss.json", framework)]);

    // A list with one bad entry is refused whole, saying which and why.
    let bad = file(
        "bad.json",
        json!({"source": "Our library", "resources": [local_guide(&["kss-cf-2018/6"]), local_guide(&["kss-cf-2018/11"])]}),
    );
    let refused = db.fieldbook_command().args(["resources", "import", &bad]).output().unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("local-guide appears twice"), "{said}");
    let bad = file("bad.json", json!({"source": "Our library", "resources": [local_guide(&["kss-cf-2018/11"])]}));
    let refused = db.fieldbook_command().args(["resources", "import", &bad]).output().unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && said.contains("\"kss-cf-2018/11\" is not an area or component"), "{said}");
    let good = file("good.json", json!({"source": "Our library", "resources": [local_guide(&["kss-cf-2018/6"])]}));
    let imported = db.fieldbook(&["resources", "import", &good]);
    assert!(imported.contains("1 resources added, 0 updated, 0 restored"), "{imported}");

    // Everyone signed in gets the list: the starter set and the import.
    let server = TestServer::start(&db.url);
    let starter = ResourceFile::from_json(SHIPPED, &fieldbook_sync_core::frameworks::Catalog::shipped()).unwrap();
    let list = listed(&server, &pat).await;
    assert_eq!(list.len(), starter.resources.len() + 1);
    for shipped in &starter.resources {
        let got = entry(&list, &shipped.id).unwrap_or_else(|| panic!("{} is not listed", shipped.id));
        assert_eq!((got["url"].as_str(), got["retired"].as_bool()), (Some(shipped.url.as_str()), Some(false)));
    }
    let guide = entry(&list, "local-guide").expect("the imported resource");
    assert_eq!(guide["components"], json!(["kss-cf-2018/6"]));
    assert_eq!((guide["source"].as_str(), guide["retired"].as_bool()), (Some("Our library"), Some(false)));
    assert_eq!(server.get_with("/v1/resources", None).await.status, 401);

    // A goal may cite imported ids, and only those.
    let mut tablet = Peer::connect(&server.ws_url(&sam), "sam-tablet").await;
    let plan_id = DocumentId::random();
    let mut cited = citing(&["local-guide", "nice-ng76"]);
    assert_eq!(tablet.push(plan_id, &cited).await, Outcome::Accepted);
    match tablet.push(DocumentId::random(), &citing(&["made-up"])).await {
        Outcome::Rejected(reason) => assert!(reason.contains("\"made-up\" is not an imported resource"), "{reason}"),
        other => panic!("a made-up resource was not refused: {other:?}"),
    }

    // Retired: listed as such, and the goal that cites it stays valid as the plan moves on.
    let retired = db.fieldbook(&["resources", "retire", "local-guide"]);
    assert!(retired.contains("local-guide is retired"), "{retired}");
    assert!(db.fieldbook(&["resources", "retire", "local-guide"]).contains("was retired already"));
    assert!(!db.fieldbook_command().args(["resources", "retire", "no-such"]).output().unwrap().status.success());
    assert_eq!(entry(&listed(&server, &sam).await, "local-guide").unwrap()["retired"], true);
    // A starter entry an administrator retired stays retired when a server starts again.
    db.fieldbook(&["resources", "retire", "nice-ph50"]);
    // A server started now knows it only as retired (one running learns within five seconds).
    drop(tablet);
    drop(server);
    let server = TestServer::start(&db.url);
    let mut tablet = Peer::connect(&server.ws_url(&sam), "sam-tablet").await;
    assert_eq!(entry(&listed(&server, &sam).await, "nice-ph50").unwrap()["retired"], true);
    {
        let mut tx = cited.transaction();
        fieldbook_sync_core::json::set_path(&mut tx, "status", &json!("agreed")).unwrap();
        tx.commit();
    }
    assert_eq!(tablet.push(plan_id, &cited).await, Outcome::Accepted);

    // Imported again, it is current again.
    let again = db.fieldbook(&["resources", "import", &good]);
    assert!(again.contains("0 resources added, 0 updated, 1 restored"), "{again}");
    assert_eq!(entry(&listed(&server, &sam).await, "local-guide").unwrap()["retired"], false);
    let trail = db.fieldbook(&["audit"]);
    let audited = |action: &str| trail.lines().any(|l| l.contains(action) && l.contains("local-guide"));
    assert!(audited("resources-imported") && audited("resource-retired"), "{trail}");
}
