//! Several nodes, one service: what a node tells the others, and how it hears them.
//!
//! Every node runs the same store thread (`engine.rs`) over one PostgreSQL database. Each
//! group of jobs takes one cluster-wide lock for its transaction, first applies what the other
//! nodes logged since its last group, then runs its jobs, and logs what they did as one row of
//! [`Event`]s before it commits. So the groups of all nodes form one order, every node applies
//! every routing [`Change`] in that order (the routing state is the same everywhere, and
//! routing decides each assignment once), and every frame for a conversation's or an agent's
//! sockets reaches the node that holds them. The log row's commit sends a `NOTIFY`, which
//! wakes idle nodes to catch up at once. The embedded SQLite default is one node: nothing is
//! logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use em_protocol::ConversationId;
use postgres::fallible_iterator::FallibleIterator;
use serde::{Deserialize, Serialize};

use crate::routing::Change;

/// The channel the log's commits notify on.
pub const CHANNEL: &str = "em_cluster";

/// What a group did that other nodes must apply, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event {
    /// A routing change (see [`Change`]).
    Routing(Change),
    /// A frame for a conversation's visitors, and for `agent`'s connections if given.
    ToConversation {
        id: ConversationId,
        agent: Option<String>,
        text: String,
    },
    /// A frame for every connection of an agent.
    ToAgent { agent: String, text: String },
}

/// This process's name in the cluster: new at every start, so a restarted node is a new
/// member and its predecessor's agents are found gone (see `sweep.rs`).
pub fn node_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let id = uuid::Uuid::new_v4().simple().to_string();
    if host.is_empty() {
        id[..12].to_string()
    } else {
        format!("{host}-{}", &id[..8])
    }
}

/// Whether the node's `LISTEN` connection is up (`/readyz` reports it).
#[derive(Debug, Default)]
pub struct Listening(AtomicBool);

impl Listening {
    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Keeps a `LISTEN` connection open and calls `wake` for every notification (and after every
/// reconnect, since notifications may have been missed meanwhile). Runs on its own thread
/// until `wake` returns false (the engine is gone).
pub fn listen(url: String, state: Arc<Listening>, wake: impl Fn() -> bool + Send + 'static) {
    let run = move || {
        loop {
            match postgres::Client::connect(&url, postgres::NoTls) {
                Ok(mut client) => {
                    if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")) {
                        tracing::warn!(error = %e, "cluster LISTEN failed; retrying");
                    } else {
                        state.0.store(true, Ordering::Relaxed);
                        if !wake() {
                            return;
                        }
                        let mut notifications = client.notifications();
                        let mut each = notifications.timeout_iter(Duration::from_secs(5));
                        loop {
                            match each.next() {
                                Ok(Some(_)) => {
                                    if !wake() {
                                        return;
                                    }
                                }
                                // A quiet spell; a closed connection comes back as an error.
                                Ok(None) => {}
                                Err(e) => {
                                    tracing::warn!(error = %e, "cluster notifications lost; reconnecting");
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cluster LISTEN connection failed; retrying"),
            }
            state.0.store(false, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(500));
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("em-cluster".into())
        .spawn(run)
    {
        tracing::error!(error = %e, "cannot start the cluster listener");
    }
}
