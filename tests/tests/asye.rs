//! ASYE progress (`GET /v1/people/{id}/asye`): the programme's evidence counted from the
//! central store against counts that are data, for the practitioner, their line and PSWs.

use fieldbook_server::storage::Role;
use fieldbook_tests::records::{observation, plan, store};
use fieldbook_tests::{Backend, TestApp};
use serde_json::{Value, json};

fn signed_off(day: &str, extra: Value) -> Value {
    let sign = |by: &str| json!({"at": format!("{day}T12:00:00Z"), "by": by});
    let mut value = observation(json!({
        "observedAt": format!("{day}T10:00:00Z"), "status": "signed-off",
        "signOff": {"observer": sign("sam"), "practitioner": sign("pat")},
    }));
    for (key, v) in extra.as_object().unwrap() {
        value[key] = v.clone();
    }
    value
}

#[tokio::test]
async fn asye_progress_counts_the_programmes_evidence_for_those_who_may_see_it() {
    let app = TestApp::spawn(Backend::Sqlite).await; // sam, a practice supervisor
    let pat = app.db.user("pat", Role::Practitioner).await;
    let eve = app.db.user("eve", Role::Practitioner).await;
    let pip = app.db.user("pip", Role::PrincipalSocialWorker).await;
    let hana = app.db.user("hana", Role::Hr).await;
    app.fieldbook(&["supervision", "set", "--user", "pat", "--supervisor", "sam", "--from", "2025-01-01"]);
    let progress = |token: String| {
        let server = &app.server;
        async move { server.get_with("/v1/people/pat/asye", Some(&token)).await }
    };
    assert_eq!(progress(pat.clone()).await.json()["inAsye"], false, "no early-career plan yet");

    let db = app.db.connect().await;
    store(&db, plan(json!({"source": "early-career-programme", "period": {"from": "2026-01-05", "to": "2027-01-04"}})))
        .await;
    // In the year: family voice and a reflection; a reflection only; not signed off; before it.
    store(
        &db,
        signed_off(
            "2026-02-01",
            json!({"familyVoice": {"text": "Mum felt heard", "how": "asked"}, "reflection": "I slowed down"}),
        ),
    )
    .await;
    store(&db, signed_off("2026-03-01", json!({"reflection": "I asked more"}))).await;
    let mut shared = signed_off("2026-04-01", json!({"familyVoice": "Thanks"}));
    shared["status"] = json!("shared");
    shared["signOff"] = json!({});
    store(&db, shared).await;
    store(&db, signed_off("2025-12-01", json!({"familyVoice": "Before the year", "reflection": "Before"}))).await;
    db.close().await;

    let answer = progress(pat.clone()).await.json();
    assert_eq!(answer["inAsye"], true, "{answer:#}");
    assert_eq!(answer["evidence"], json!({"observations": 2, "familyVoice": 1, "reflections": 2}), "{answer:#}");
    assert_eq!(answer["requirements"], json!({"observations": 3, "familyVoice": 3, "reflections": 2}));
    assert_eq!(answer["stillNeeded"], json!({"observations": 1, "familyVoice": 2, "reflections": 0}));
    assert!(!answer.to_string().contains("Mum felt heard"), "counts only");

    // The counts are the employer's programme's.
    app.fieldbook(&["asye", "set", "--observations", "4", "--family-voice", "1", "--reflections", "3"]);
    let answer = progress(app.token.clone()).await.json();
    assert_eq!(answer["stillNeeded"], json!({"observations": 2, "familyVoice": 0, "reflections": 1}), "{answer:#}");
    assert_eq!(progress(pip).await.status, 200);
    assert_eq!(progress(eve).await.status, 403);
    assert_eq!(progress(hana).await.status, 403);
}
