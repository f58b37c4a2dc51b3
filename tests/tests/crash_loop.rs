//! Nothing acknowledged is lost, however often the server crashes: it is killed (SIGKILL)
//! 20 times while writers keep sending changes, and after each kill a new server process on
//! the same database holds every change acknowledged before it.
//!
//! Each new server is checked before the writers hear of it: they still hold every change
//! they made and would send lost ones again, which would hide a loss.

use std::time::Duration;

use fieldbook_tests::writers::{self, Writers, jitter};
use fieldbook_tests::{Backend, TestApp};
use tokio::time::Instant;

const KILLS: usize = 20;
const WRITERS: usize = 3;
/// Acknowledgements each writer gets from a server before it is killed.
const ACKS_BEFORE_KILL: usize = 3;

async fn acknowledged_changes_survive_repeated_kill_9(backend: Backend) {
    let started = Instant::now();
    let mut app = TestApp::spawn(backend).await;
    let mut writers = Writers::start(WRITERS, &app.ws_url());
    let mut serving_since = Instant::now();
    let mut kills_during_a_push = 0;
    let mut checked = 0;
    for kill in 1..=KILLS {
        // The writers are at work on this server; kill it somewhere in their stream.
        writers.wait_for_acks(serving_since, ACKS_BEFORE_KILL, Duration::from_secs(30)).await;
        tokio::time::sleep(jitter(Duration::ZERO..Duration::from_millis(300))).await;
        let killed_at = Instant::now();
        app.server.kill_9();
        if kill == KILLS {
            writers.stop().await;
        }

        // A new process on the same database, checked before any writer can reach it (its
        // port is new, and they have not been told it).
        app.server = app.server.restart();
        let acknowledged = writers.acknowledged();
        checked = writers::verify(&app.ws_url(), &acknowledged).await.unwrap_or_else(|missing| {
            panic!("{backend:?}: after kill {kill}, changes acknowledged before it are missing:\n{missing}")
        });
        let interrupted = writers.interrupted();
        if interrupted.iter().any(|i| i.started < killed_at && i.at >= killed_at) {
            kills_during_a_push += 1;
        }
        if kill < KILLS {
            serving_since = Instant::now();
            writers.set_url(&app.ws_url());
        }
    }
    let documents = writers.acknowledged().len();
    let interrupted = writers.interrupted().len();
    eprintln!(
        "{backend:?}: {KILLS} kills ({kills_during_a_push} with a push in flight); {checked} acknowledged changes \
         in {documents} documents all present; {interrupted} pushes cut off; {:.1?}",
        started.elapsed()
    );
    // The kills must land on writes, not only between them.
    assert!(kills_during_a_push >= KILLS / 2, "only {kills_during_a_push} of {KILLS} kills cut off a push");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_kill_9_sqlite() {
    acknowledged_changes_survive_repeated_kill_9(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_kill_9_postgres() {
    acknowledged_changes_survive_repeated_kill_9(Backend::Postgres).await;
}
