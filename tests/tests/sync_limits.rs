//! What one sync connection may cost the server: its session ends with its token (unless
//! renewed in-band), it follows a bounded number of documents, ephemeral messages go only
//! to documents the sender may read, a slow reader is disconnected rather than buffered,
//! records have a maximum size, and a flood of messages is read more slowly.

use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, ScalarValue};
use fieldbook_server::config::{CacheConfig, Limits, ServerConfig};
use fieldbook_server::storage::Role;
use fieldbook_sync_core::{DocumentId, Message, SyncKind};
use fieldbook_tests::peer::{Outcome, Peer};
use fieldbook_tests::raw::{self, Received};
use fieldbook_tests::records::{document, observation};
use fieldbook_tests::{Backend, TestApp, TestDatabase};
use serde_json::json as j;

/// A valid observation carrying `bytes` of opaque data in a field outside the schema (the
/// observer's to write), to make documents of a given size cheaply.
fn observation_of_size(bytes: usize) -> Automerge {
    let mut doc = document(&observation(j!({"status": "shared"})));
    let mut tx = doc.transaction();
    // Pseudo-random, so compression cannot shrink it (xorshift).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise = (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    tx.put(ROOT, "attachment", ScalarValue::Bytes(noise)).unwrap();
    tx.commit();
    doc
}

async fn joined(ws_url: &str, name: &str) -> raw::Socket {
    let mut socket = raw::connect(ws_url).await;
    raw::send(&mut socket, raw::join_frame(name)).await;
    assert!(matches!(raw::next(&mut socket).await, Some(Message::Peer { .. })));
    socket
}

fn renew_frame(token: &str) -> Vec<u8> {
    Message::Renew { sender_id: "client".into(), token: token.into() }.encode()
}

#[tokio::test]
async fn a_sync_session_ends_when_its_token_expires_unless_renewed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let pat = app.db.user("pat", Role::Practitioner).await;
    let keys = app.db.keys();
    let token = |ttl: u64| keys.issue("sam", Some("test-device"), Duration::from_secs(ttl)).unwrap();
    let started = Instant::now();
    let mut renewed = Peer::connect(&app.server.ws_url(&token(3)), "renewed").await;
    let mut lapsed = joined(&app.server.ws_url(&token(3)), "lapsed").await;
    renewed.send_frame(renew_frame(&token(600))).await;

    // The unrenewed session is told why, then closed with the documented code, once (and
    // only once) its token has expired.
    match raw::receive(&mut lapsed, Duration::from_secs(20)).await {
        Received::Message(Message::Error { message, .. }) => {
            assert!(message.contains("access token expired"), "{message}")
        }
        other => panic!("expected an error saying the token expired, got {other:?}"),
    }
    assert!(matches!(raw::receive(&mut lapsed, Duration::from_secs(5)).await, Received::Closed(Some(4401))));
    assert!(started.elapsed() >= Duration::from_secs(2), "closed before its token expired");

    // The renewed one carries on: a record sent after the first token expired is stored.
    let id = DocumentId::random();
    assert_eq!(renewed.push(id, &document(&observation(j!({})))).await, Outcome::Accepted);

    // A renewal must be for the same user and device; otherwise the session ends (4403).
    let mut hijack = joined(&app.server.ws_url(&token(600)), "hijack").await;
    raw::send(&mut hijack, renew_frame(&pat)).await;
    match raw::receive(&mut hijack, Duration::from_secs(10)).await {
        Received::Message(Message::Error { message, .. }) => assert!(message.contains("another user"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(matches!(raw::receive(&mut hijack, Duration::from_secs(5)).await, Received::Closed(Some(4403))));
    // So does a bad token.
    let mut forged = joined(&app.server.ws_url(&token(600)), "forged").await;
    raw::send(&mut forged, renew_frame("not-a-jwt")).await;
    assert!(matches!(
        raw::receive(&mut forged, Duration::from_secs(10)).await,
        Received::Message(Message::Error { .. })
    ));
    assert!(matches!(raw::receive(&mut forged, Duration::from_secs(5)).await, Received::Closed(Some(4403))));
}

/// A server in this process, so the test can look at what a connection costs it.
async fn in_process(test_db: &TestDatabase, limits: Limits) -> (String, fieldbook_server::app::Server) {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), test_db.url.clone());
    config.limits = limits;
    config.cache = CacheConfig::default();
    config.auth.signing_key_file = Some(fieldbook_tests::database::key_file_for(&test_db.url));
    let server = fieldbook_server::app::Server::bind(config).await.unwrap();
    (format!("ws://{}/v1/sync", server.local_addr()), server)
}

fn request(id: DocumentId) -> Vec<u8> {
    use automerge::sync::SyncDoc;
    let data = Automerge::new().generate_sync_message(&mut automerge::sync::State::new()).unwrap().encode();
    Message::Sync { kind: SyncKind::Request, sender_id: "p".into(), target_id: "s".into(), document_id: id, data }
        .encode()
}

fn ephemeral(id: DocumentId, data: &[u8]) -> Vec<u8> {
    Message::Ephemeral {
        sender_id: "p".into(),
        target_id: "s".into(),
        count: 1,
        session_id: "session".into(),
        document_id: id,
        data: data.to_vec(),
    }
    .encode()
}

#[tokio::test]
async fn a_connection_follows_a_bounded_number_of_documents_and_ephemeral_messages_need_access() {
    let test_db = TestDatabase::new(Backend::Sqlite).await;
    let sam = test_db.user("sam", Role::Supervisor).await;
    let pat = test_db.user("pat", Role::Practitioner).await;
    let eve = test_db.user("eve", Role::Practitioner).await;
    let limits = Limits { max_subscriptions: 20, ..Limits::default() };
    let (ws, server) = in_process(&test_db, limits).await;
    let hub = server.state().hub.clone();
    tokio::spawn(server.run(std::future::pending()));
    let url = |token: &str| format!("{ws}?token={token}");

    // Requests for 200 documents nobody has: each is answered, but one connection follows
    // at most 20 of them.
    let mut flood = joined(&url(&eve), "flood").await;
    for _ in 0..200 {
        raw::send(&mut flood, request(DocumentId::random())).await;
    }
    for _ in 0..200 {
        assert!(matches!(raw::next(&mut flood).await, Some(Message::DocUnavailable { .. })));
    }
    assert!(hub.followed_documents() <= 20, "followed: {}", hub.followed_documents());
    // Ephemeral messages about documents the sender cannot read follow nothing at all.
    let before = hub.followed_documents();
    let mut gossip = joined(&url(&eve), "gossip").await;
    for _ in 0..200 {
        raw::send(&mut gossip, ephemeral(DocumentId::random(), b"\xa1\x64type\x66cursor")).await;
    }
    // A connection's frames are handled in order: once a request sent after them is
    // answered, the ephemeral messages have been dealt with. The request follows one document.
    let settled = |mut socket: raw::Socket| async move {
        raw::send(&mut socket, request(DocumentId::random())).await;
        assert!(matches!(raw::next(&mut socket).await, Some(Message::DocUnavailable { .. })));
        socket
    };
    let mut gossip = settled(gossip).await;
    assert_eq!(hub.followed_documents(), before + 1, "200 ephemeral messages followed nothing");

    // sam's shared record, followed by sam and pat; eve may not read it.
    let id = DocumentId::random();
    let mut sam_peer = Peer::connect(&url(&sam), "sam").await;
    assert_eq!(sam_peer.push(id, &document(&observation(j!({"status": "shared"})))).await, Outcome::Accepted);
    let mut pat_peer = Peer::connect(&url(&pat), "pat").await;
    assert!(pat_peer.fetch(id).await.is_ok());
    let presence = b"\xa1\x64type\x66cursor"; // {type: "cursor"}, as a presence message would be
    raw::send(&mut gossip, ephemeral(id, b"\xa1\x64type\x63eve")).await;
    let _gossip = settled(gossip).await; // eve's message is dealt with before pat sends theirs
    pat_peer.send_frame(ephemeral(id, presence)).await;
    // sam hears pat's (a reader's) message, and never eve's, which came first.
    match sam_peer.next_message().await {
        Some(Message::Ephemeral { document_id, data, .. }) => {
            assert_eq!((document_id, data.as_slice()), (id, &presence[..]));
        }
        other => panic!("expected pat's ephemeral message, got {other:?}"),
    }
    // sam and pat follow the record; eve only the two documents she asked for.
    assert_eq!(hub.followed_documents(), before + 4, "eve's message about the record followed it");
}

#[tokio::test]
async fn a_slow_reader_is_disconnected_and_large_records_are_refused() {
    let test_db = TestDatabase::new(Backend::Sqlite).await;
    let sam = test_db.user("sam", Role::Supervisor).await;
    let limits = Limits { max_queued_bytes: 256 * 1024, max_document_bytes: 2 * 1024 * 1024, ..Limits::default() };
    let (ws, server) = in_process(&test_db, limits).await;
    tokio::spawn(server.run(std::future::pending()));
    let url = format!("{ws}?token={sam}");

    // A record over the limit is refused, and the sender told why.
    let mut writer = Peer::connect(&url, "writer").await;
    match writer.push(DocumentId::random(), &observation_of_size(3 * 1024 * 1024)).await {
        Outcome::Rejected(reason) => assert!(reason.contains("more than this server's limit"), "{reason}"),
        other => panic!("a 3 MiB record must be refused, got {other:?}"),
    }
    // Twelve records of 1.5 MiB are within it.
    let ids: Vec<DocumentId> = (0..12).map(|_| DocumentId::random()).collect();
    for id in &ids {
        assert_eq!(writer.push(*id, &observation_of_size(1536 * 1024)).await, Outcome::Accepted);
    }

    // A reader that asks for all of them and does not read: once more than the limit waits
    // for it (beyond what the kernel buffers), it is disconnected.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr = url.trim_start_matches("ws://").split('/').next().unwrap().parse().unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut slow, _) =
        tokio_tungstenite::client_async(url.as_str(), tokio_tungstenite::MaybeTlsStream::Plain(stream)).await.unwrap();
    raw::send(&mut slow, raw::join_frame("slow")).await;
    for id in &ids {
        raw::send(&mut slow, request(*id)).await;
    }
    // Meanwhile everyone else is served as usual.
    let mut other = Peer::connect(&url, "other").await;
    assert!(other.fetch(ids[0]).await.is_ok());
    // Read it all now: the connection was closed before all twelve records came.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut records = 0;
    loop {
        match raw::receive(&mut slow, Duration::from_secs(30)).await {
            Received::Message(Message::Sync { .. }) => records += 1,
            Received::Message(_) => {}
            Received::Closed(_) => break,
        }
    }
    assert!(records < ids.len(), "a reader that does not read got all {records} records buffered for it");
}

#[tokio::test]
async fn a_flood_of_messages_is_read_at_the_configured_rate() {
    let test_db = TestDatabase::new(Backend::Sqlite).await;
    let eve = test_db.user("eve", Role::Practitioner).await;
    let limits = Limits { messages_per_second: 10, message_burst: 10, ..Limits::default() };
    let (ws, server) = in_process(&test_db, limits).await;
    tokio::spawn(server.run(std::future::pending()));
    let mut flood = joined(&format!("{ws}?token={eve}"), "flood").await;
    // The join used one message of the burst; 9 more go at once, the next 30 at 10 a second.
    for _ in 0..39 {
        raw::send(&mut flood, request(DocumentId::random())).await;
    }
    let started = Instant::now();
    for _ in 0..39 {
        assert!(matches!(raw::next(&mut flood).await, Some(Message::DocUnavailable { .. })));
    }
    // A lower bound only: a slow machine can only make it take longer.
    assert!(started.elapsed() >= Duration::from_millis(2500), "39 messages read in {:?}", started.elapsed());
}
