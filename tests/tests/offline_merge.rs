//! Two devices edit the same document while offline; after both sync they agree.

use fieldbook_tests::records::observation;
use fieldbook_tests::{Backend, Device, TestApp};
use serde_json::json;

#[tokio::test]
async fn concurrent_offline_edits_merge_to_the_same_state() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (token, server) = (app.token.as_str(), &app.server);

    let tablet = Device::new();
    let phone = Device::new();
    let url = tablet.create(&observation(json!({"notes": "Visit went well.", "feedback": ""})));
    tablet.sync(&server.http_url(), token, &[]);
    phone.sync(&server.http_url(), token, &[&url]);

    // Offline, the observer's two devices edit the same text and different fields.
    tablet.edit(&url, &[("notes", "Visit went well. Child spoke freely."), ("feedback", "Good use of play.")]);
    phone.edit(&url, &[("notes", "Home visit went well."), ("purpose", "Review of the plan.")]);

    tablet.sync(&server.http_url(), token, &[]);
    phone.sync(&server.http_url(), token, &[]);
    tablet.sync(&server.http_url(), token, &[]);

    let on_tablet = tablet.show(&url);
    let on_phone = phone.show(&url);
    assert_eq!(on_tablet, on_phone);
    assert_eq!(on_tablet["notes"], "Home visit went well. Child spoke freely.", "text edits interleave");
    assert_eq!(on_tablet["feedback"], "Good use of play.");
    assert_eq!(on_tablet["purpose"], "Review of the plan.");

    // A fresh device gets the same merged state from the server.
    let fresh = Device::new();
    fresh.sync(&server.http_url(), token, &[&url]);
    assert_eq!(fresh.show(&url), on_tablet);
}
