//! Several `fieldbook serve` processes ("nodes") on one fresh PostgreSQL test database, as a
//! load balancer would spread devices over them, and the checks that only make sense across
//! nodes: the change feed numbered without gap or duplicate, each once-only event once.

use std::collections::BTreeMap;

use fieldbook_server::storage::Role;
use serde_json::Value;

use crate::{Backend, TestDatabase, TestServer};

/// Turns a node's cross-node listener off (`FIELDBOOK_CLUSTER_LISTEN=off`): it does not
/// follow the other nodes, so its cached documents go stale on purpose.
pub const NOT_LISTENING: &[(&str, &str)] = &[("FIELDBOOK_CLUSTER_LISTEN", "off")];

pub struct Cluster {
    pub db: TestDatabase,
    /// `sam`, a supervisor: valid for an hour, device `test-device`.
    pub token: String,
    pub nodes: Vec<TestServer>,
}

impl Cluster {
    /// `count` nodes with default settings on a fresh PostgreSQL database holding `sam`.
    pub async fn start(count: usize) -> Self {
        Self::start_with(&vec![&[][..]; count]).await
    }

    /// One node per entry, each with those environment variables (e.g. [`NOT_LISTENING`]).
    pub async fn start_with(envs: &[&[(&str, &str)]]) -> Self {
        let db = TestDatabase::new(Backend::Postgres).await;
        let token = db.user("sam", Role::Supervisor).await;
        let mut cluster = Self { db, token, nodes: Vec::new() };
        for env in envs {
            cluster.add_node(env);
        }
        cluster
    }

    /// Starts one more node on the database; returns its index.
    pub fn add_node(&mut self, env: &[(&str, &str)]) -> usize {
        self.nodes.push(TestServer::start_with_env(&self.db.url, &[], env));
        self.nodes.len() - 1
    }

    pub fn node(&self, index: usize) -> &TestServer {
        &self.nodes[index]
    }

    /// Node `index`'s sync URL with `sam`'s token.
    pub fn ws_url(&self, index: usize) -> String {
        self.nodes[index].ws_url(&self.token)
    }

    /// Every node's sync URL with `sam`'s token.
    pub fn ws_urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.ws_url(i)).collect()
    }

    /// `pat`, a practitioner supervised by `sam`; returns pat's token.
    pub async fn add_practitioner(&self, id: &str) -> String {
        let token = self.db.user(id, Role::Practitioner).await;
        let db = self.db.connect().await;
        db.set_supervisor(id, Some("sam"), "2020-01-01").await.expect("set supervisor");
        db.close().await;
        token
    }

    /// Runs a `fieldbook` admin command against the cluster's database; returns stdout.
    pub fn fieldbook(&self, args: &[&str]) -> String {
        self.db.fieldbook(args)
    }

    /// A service account with `hr:read`; returns its key.
    pub fn hr_key(&self) -> String {
        let out = self.fieldbook(&["service-accounts", "add", "--name", "HR", "--scopes", "hr:read"]);
        out.lines()
            .find_map(|l| l.strip_prefix("key: "))
            .unwrap_or_else(|| panic!("no key line in {out}"))
            .trim()
            .to_owned()
    }

    /// The central store's projection for a practitioner (`fieldbook records show`): plans
    /// with goals, observations with status, components, judgements and sign-offs.
    pub fn projection(&self, practitioner: &str) -> Value {
        let out = self.fieldbook(&["records", "show", "--practitioner", practitioner]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("records show printed no JSON ({e}): {out}"))
    }
}

/// The whole change feed (`GET /v1/api/feed`, every page) as read through `node`.
pub async fn feed(node: &TestServer, key: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = node.get_with(&format!("/v1/api/feed?after={after}&limit=5000"), Some(key)).await;
        assert_eq!(page.status, 200, "the feed through {}: {}", node.addr, page.body);
        let page = page.json();
        let batch = page["events"].as_array().unwrap_or_else(|| panic!("no events in {page}")).clone();
        events.extend(batch);
        after = page["next"].as_i64().unwrap_or_else(|| panic!("no next in {page}"));
        if page["more"] != true {
            return events;
        }
    }
}

/// What must happen at most once per record (and per goal): the key it is counted by.
fn once_key(event: &Value) -> Option<String> {
    let kind = event["kind"].as_str()?;
    let record = event["record"].as_str()?;
    match kind {
        "observation.created" | "observation.shared" | "observation.signed-off" | "plan.created" => {
            Some(format!("{kind} {record}"))
        }
        "goal.added" | "goal.removed" => Some(format!("{kind} {record} {}", event["detail"]["goalId"])),
        // A goal's status moves between the same two values more than once only if someone
        // moves it back; the tests that use this never do.
        "goal.status-changed" => Some(format!(
            "{kind} {record} {} {}->{}",
            event["detail"]["goalId"], event["detail"]["from"], event["detail"]["to"]
        )),
        _ => None,
    }
}

/// Checks the feed is numbered 1..=N in order, with no gap or duplicate, and that no
/// once-only event (a record created, shared or signed off; a goal added; one status move of
/// a goal) appears twice. Returns every problem found.
pub fn feed_problems(events: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap_or(-1)).collect();
    let expected: Vec<i64> = (1..=events.len() as i64).collect();
    if seqs != expected {
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        let duplicates: Vec<i64> = sorted.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
        let max = sorted.last().copied().unwrap_or(0);
        let gaps: Vec<i64> = (1..=max).filter(|s| sorted.binary_search(s).is_err()).collect();
        problems.push(format!(
            "the feed's seq numbers are not 1..={} in order: duplicates {duplicates:?}, gaps {gaps:?}, \
             first ones {:?}",
            events.len(),
            &seqs[..seqs.len().min(20)]
        ));
    }
    let mut counts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for event in events {
        if let Some(key) = once_key(event) {
            counts.entry(key).or_default().push(event["seq"].as_i64().unwrap_or(-1));
        }
    }
    for (key, seqs) in counts.iter().filter(|(_, s)| s.len() > 1) {
        problems.push(format!("{key} is in the feed {} times (seq {seqs:?})", seqs.len()));
    }
    problems
}

/// How many events of `kind` the feed holds for `record` (an `automerge:` URL).
pub fn count(events: &[Value], record: &str, kind: &str) -> usize {
    events.iter().filter(|e| e["record"] == record && e["kind"] == kind).count()
}
