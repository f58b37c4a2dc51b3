//! SCIM provisioning (`/scim/v2`) driven as Microsoft Entra ID drives it: match by filter,
//! create, set the manager, disable with `"False"`, re-enable with a PATCH without a path,
//! teams and their members, delete, and a leaver coming back; every change audited as the
//! provider's service account.

use fieldbook_server::storage::{Role, UserStatus};
use fieldbook_tests::{Backend, TestApp};
use serde_json::{Value, json};

const SCIM: &str = "application/scim+json";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PAT_OBJECT_ID: &str = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef";

struct Provider<'a> {
    app: &'a TestApp,
    key: String,
}

impl Provider<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let response = match body {
            Some(body) => self.app.server.request_as(method, path, &self.key, SCIM, &body).await,
            None => self.app.server.request(method, path, Some(&self.key), None).await,
        };
        if !response.body.is_empty() {
            assert_eq!(response.header("content-type"), Some(SCIM), "{method} {path}: {}", response.body);
        }
        (response.status, response.json())
    }

    async fn patch(&self, path: &str, operations: Value) -> Value {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations});
        let (status, resource) = self.call("PATCH", path, Some(body)).await;
        assert_eq!(status, 200, "PATCH {path}: {resource}");
        resource
    }

    async fn found(&self, path: &str) -> Vec<Value> {
        let (status, list) = self.call("GET", path, None).await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["totalResults"].as_u64().unwrap() as usize, list["Resources"].as_array().unwrap().len());
        list["Resources"].as_array().unwrap().clone()
    }
}

fn account(output: &str) -> (String, String) {
    let id = output.lines().find_map(|l| l.strip_prefix("added ")).and_then(|l| l.split(' ').next()).unwrap();
    let key = output.lines().find_map(|l| l.strip_prefix("key: ")).expect("a key").trim();
    (id.to_owned(), key.to_owned())
}

fn filter(expression: &str) -> String {
    let encoded: String = expression
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("?filter={encoded}")
}

async fn an_entra_provisioning_cycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (account_id, key) =
        account(&app.fieldbook(&["service-accounts", "add", "--name", "entra", "--scopes", "scim"]));
    let (_, hr_key) = account(&app.fieldbook(&["service-accounts", "add", "--name", "hr", "--scopes", "hr:read"]));
    let entra = Provider { app: &app, key };
    let server = &app.server;

    // Only the provider's account: no key, a person's token, a key without the scope.
    let none = server.request("GET", "/scim/v2/Users", None, None).await;
    assert_eq!((none.status, none.header("content-type")), (401, Some(SCIM)));
    assert_eq!(none.json()["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    assert_eq!(server.request("GET", "/scim/v2/Users", Some(&app.token), None).await.status, 401);
    assert_eq!(server.request("GET", "/scim/v2/Users", Some(&hr_key), None).await.status, 403);
    let (status, config) = entra.call("GET", "/scim/v2/ServiceProviderConfig", None).await;
    assert_eq!((status, &config["patch"]["supported"]), (200, &json!(true)));
    assert_eq!(entra.found("/scim/v2/Schemas").await.len(), 3);

    // Entra looks for each person by userName, then creates them: the manager first.
    assert!(
        entra
            .found(&format!("/scim/v2/Users{}", filter(r#"userName eq "Amara.Boateng@council.example""#)))
            .await
            .is_empty()
    );
    let amara = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": "5b7c5b6e-0000-4000-8000-000000000001", "userName": "Amara.Boateng@council.example",
        "active": true, "displayName": "Amara Boateng", "roles": [{"primary": "True", "value": "Supervisor"}],
    });
    let created = server.request_as("POST", "/scim/v2/Users", &entra.key, SCIM, &amara).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let amara_id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(amara_id, "amara.boateng");
    assert_eq!(created.header("location"), Some(format!("{}/scim/v2/Users/amara.boateng", app.http_url()).as_str()));
    let pat = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": PAT_OBJECT_ID, "userName": "Pat.Reid@council.example", "active": true,
        "displayName": "Pat Reid", "name": {"formatted": "Pat Reid", "givenName": "Pat", "familyName": "Reid"},
        "emails": [{"primary": true, "type": "work", "value": "Pat.Reid@council.example"}],
        ENTERPRISE: {"employeeNumber": "E1042"},
    });
    let (status, created) = entra.call("POST", "/scim/v2/Users", Some(pat.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!((&created["id"], &created["roles"][0]["value"]), (&json!("pat.reid"), &json!("practitioner")));
    let (status, again) = entra.call("POST", "/scim/v2/Users", Some(pat.clone())).await;
    assert_eq!((status, &again["scimType"]), (409, &json!("uniqueness")), "{again}");
    // Matched whatever the case of the userName, and by externalId.
    let by_name = entra.found(&format!("/scim/v2/Users{}", filter(r#"userName eq "pat.reid@COUNCIL.example""#))).await;
    assert_eq!(by_name[0]["id"], "pat.reid");
    let by_external =
        entra.found(&format!("/scim/v2/Users{}", filter(&format!(r#"externalId eq "{PAT_OBJECT_ID}""#)))).await;
    assert_eq!(by_external[0][ENTERPRISE]["employeeNumber"], "E1042");
    let (status, bad) = entra.call("GET", &format!("/scim/v2/Users{}", filter(r#"title co "x""#)), None).await;
    assert_eq!((status, &bad["scimType"]), (400, &json!("invalidFilter")));
    let db = app.db.connect().await;
    let stored = db.user("pat.reid").await.unwrap().unwrap();
    assert_eq!((stored.name.as_str(), stored.external_id.as_deref()), ("Pat Reid", Some(PAT_OBJECT_ID)));
    assert_eq!(stored.employee_number.as_deref(), Some("E1042"));

    // The manager, as Entra sends it, then changed the same day.
    let after = entra
        .patch(
            "/scim/v2/Users/pat.reid",
            json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": amara_id}]),
        )
        .await;
    assert_eq!(after[ENTERPRISE]["manager"]["value"], "amara.boateng");
    assert_eq!(db.current_supervisors().await.unwrap().get("pat.reid").map(String::as_str), Some("amara.boateng"));
    entra
        .patch(
            "/scim/v2/Users/pat.reid",
            json!([{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": {"value": "sam"}}]),
        )
        .await;
    assert_eq!(db.current_supervisors().await.unwrap().get("pat.reid").map(String::as_str), Some("sam"));
    // A PUT with no enterprise extension (a provider that maps neither) leaves both as they are.
    let plain = json!({"userName": "Pat.Reid@council.example", "externalId": PAT_OBJECT_ID, "displayName": "Pat Reid"});
    assert_eq!(entra.call("PUT", "/scim/v2/Users/pat.reid", Some(plain)).await.0, 200);
    assert_eq!(db.current_supervisors().await.unwrap().get("pat.reid").map(String::as_str), Some("sam"));
    assert_eq!(db.user("pat.reid").await.unwrap().unwrap().employee_number.as_deref(), Some("E1042"));
    let (status, own) = entra
        .call("PATCH", "/scim/v2/Users/pat.reid", Some(json!({"Operations": [{"op": "Replace", "path": format!("{ENTERPRISE}:manager"), "value": "pat.reid"}]})))
        .await;
    assert_eq!(status, 400, "{own}");

    // Disabled (`"False"`, as Entra sends it): suspended, and their token stops working.
    let pat_token = app.db.token(&db, "pat.reid", std::time::Duration::from_secs(600)).await;
    assert_eq!(server.get("/v1/people", Some(&pat_token)).await.0, 200);
    let after =
        entra.patch("/scim/v2/Users/pat.reid", json!([{"op": "Replace", "path": "active", "value": "False"}])).await;
    assert_eq!(after["active"], false);
    assert_eq!(db.user("pat.reid").await.unwrap().unwrap().status, UserStatus::Suspended);
    assert_eq!(server.get("/v1/people", Some(&pat_token)).await.0, 401);
    // Re-enabled by a PATCH without a path, renamed in the same operation.
    let after = entra
        .patch(
            "/scim/v2/Users/pat.reid",
            json!([{"op": "Replace", "value": {"active": true, "displayName": "Patricia Reid"}}]),
        )
        .await;
    assert_eq!((&after["active"], &after["displayName"]), (&json!(true), &json!("Patricia Reid")));
    assert_eq!(db.user("pat.reid").await.unwrap().unwrap().status, UserStatus::Active);

    // Teams: created with a member, a member added and one removed as Entra sends them.
    assert!(entra.found(&format!("/scim/v2/Groups{}", filter(r#"displayName eq "Children East""#))).await.is_empty());
    let (status, group) = entra
        .call(
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName": "Children East", "externalId": "grp-1", "members": [{"value": "pat.reid"}]})),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let group_path = format!("/scim/v2/Groups/{}", group["id"].as_str().unwrap());
    assert_eq!(db.user("pat.reid").await.unwrap().unwrap().team_id.as_deref(), group["id"].as_str());
    entra
        .patch(
            &group_path,
            json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "amara.boateng"}]}]),
        )
        .await;
    entra.patch(&group_path, json!([{"op": "Remove", "path": "members", "value": [{"value": "pat.reid"}]}])).await;
    let (_, group) = entra.call("GET", &group_path, None).await;
    let members: Vec<&str> =
        group["members"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap()).collect();
    assert_eq!(members, ["amara.boateng"]);
    assert_eq!(db.user("pat.reid").await.unwrap().unwrap().team_id, None, "removed from the team");
    let (_, lean) = entra.call("GET", &format!("{group_path}?excludedAttributes=members"), None).await;
    assert!(lean.get("members").is_none(), "{lean}");
    entra
        .patch(&group_path, json!([{"op": "Replace", "path": "displayName", "value": "Children's Services East"}]))
        .await;
    let by_external = entra.found(&format!("/scim/v2/Groups{}", filter(r#"externalId eq "grp-1""#))).await;
    assert_eq!(by_external[0]["displayName"], "Children's Services East");

    // People and teams added another way are found and adopted, not created twice.
    app.fieldbook(&["teams", "add", "--id", "north", "--name", "North"]);
    app.fieldbook(&[
        "users",
        "add",
        "--id",
        "kim",
        "--name",
        "Kim Lee",
        "--role",
        "practitioner",
        "--external-id",
        "Kim.Lee@council.example",
    ]);
    let kim = entra.found(&format!("/scim/v2/Users{}", filter(r#"userName eq "Kim.Lee@council.example""#))).await;
    assert_eq!(kim[0]["id"], "kim");
    let kim = json!({"userName": "Kim.Lee@council.example", "displayName": "Kim Lee", "active": true});
    assert_eq!(entra.call("POST", "/scim/v2/Users", Some(kim)).await.0, 409, "Entra links the one it found instead");
    let north = entra.found(&format!("/scim/v2/Groups{}", filter(r#"displayName eq "north""#))).await;
    assert_eq!(north[0]["id"], "north");
    entra.patch("/scim/v2/Groups/north", json!([{"op": "Add", "path": "members", "value": [{"value": "kim"}]}])).await;
    assert_eq!(db.user("kim").await.unwrap().unwrap().team_id.as_deref(), Some("north"));

    // Deleted: marked deleted, never erased; creating them again brings the same person back.
    let (status, _) = entra.call("DELETE", "/scim/v2/Users/pat.reid", None).await;
    assert_eq!(status, 204);
    assert_eq!(entra.call("GET", "/scim/v2/Users/pat.reid", None).await.0, 404);
    assert!(entra.found("/scim/v2/Users").await.iter().all(|u| u["id"] != "pat.reid"));
    assert_eq!(db.user("pat.reid").await.unwrap().unwrap().status, UserStatus::Deleted);
    let (status, back) = entra.call("POST", "/scim/v2/Users", Some(pat)).await;
    assert_eq!((status, &back["id"], &back["active"]), (201, &json!("pat.reid"), &json!(true)), "{back}");
    assert_eq!(entra.call("DELETE", &group_path, None).await.0, 204);
    assert_eq!(entra.call("GET", &group_path, None).await.0, 404);
    assert_eq!(db.user("amara.boateng").await.unwrap().unwrap().team_id, None, "the team's members left it");
    assert_eq!(db.user("amara.boateng").await.unwrap().unwrap().role, Role::Supervisor);
    db.close().await;

    // Every change is the provider's, in the audit trail.
    let audit = app.fieldbook(&["audit", "--user", &format!("service:{account_id}"), "--limit", "1000"]);
    for action in
        ["admin.user-added", "admin.supervisor-set", "admin.user-updated", "admin.team-added", "admin.team-deleted"]
    {
        assert!(audit.contains(action), "{action} missing from {audit}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_provisioning_cycle_sqlite() {
    an_entra_provisioning_cycle(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_provisioning_cycle_postgres() {
    an_entra_provisioning_cycle(Backend::Postgres).await;
}
