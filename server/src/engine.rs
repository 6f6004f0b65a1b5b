//! The shared state handle (store + routing under one lock, plus the fan-out hub) and the
//! transitions that change routing: assigning and ending sessions.
//!
//! Locking choice: SQLite with one connection serializes writes anyway, so the store and the
//! routing state share a single `std::sync::Mutex`. Every operation takes it inside
//! `spawn_blocking` (never across an `.await`), does its store transaction, updates routing
//! and publishes to the hub before releasing it. That makes "persist, then ack, then fan out"
//! and "assign in the store and in memory" atomic, keeps every listener's entries in seq
//! order, and leaves no lock ordering to get wrong (engine lock, then the short hub lock).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use em_protocol::agent::{ConversationSummary, ToAgent};
use em_protocol::{
    ConversationEntry, ConversationId, EntryId, EntryPayload, Participant, ParticipantChange,
    ParticipantOperation, Role, SessionStatus, visitor::ToVisitor,
};

use crate::config::Config;
use crate::error::Result;
use crate::hub::Hub;
use crate::routing::Routing;
use crate::session::assigned_session;
use crate::store::{Appended, NewEntry, Session, Store, Update};

pub struct Engine {
    inner: Mutex<Inner>,
    pub hub: Hub,
    pub config: Arc<Config>,
}

/// What the engine lock protects.
pub struct Inner {
    pub store: Store,
    pub routing: Routing,
}

impl Engine {
    /// Opens the store and rebuilds queues and assignments from it.
    pub fn open(config: Arc<Config>, db: &Path) -> Result<Self> {
        let store = Store::open(db)?;
        let mut routing = Routing::new(&config);
        for s in store.sessions_with_status(SessionStatus::Active)? {
            if !s
                .agent_username
                .as_deref()
                .is_some_and(|a| routing.restore(a, s.conversation_id))
            {
                tracing::warn!(conversation = %s.conversation_id, agent = ?s.agent_username,
                               "active conversation's agent is no longer configured; routing it again");
                enqueue(&config, &mut routing, &s);
            }
        }
        for s in store.sessions_with_status(SessionStatus::Waiting)? {
            enqueue(&config, &mut routing, &s);
        }
        Ok(Self {
            inner: Mutex::new(Inner { store, routing }),
            hub: Hub::default(),
            config,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Store transactions roll back on panic and routing updates are single steps,
        // so the state behind a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with the lock held, on the blocking pool.
    pub async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Inner, &Engine) -> Result<T> + Send + 'static,
    {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut inner = this.lock();
            f(&mut inner, &this)
        })
        .await?
    }

    /// Sends stored entries to a conversation's visitors and to `agent`'s connections.
    pub fn publish(
        &self,
        id: ConversationId,
        agent: Option<&str>,
        entries: Vec<ConversationEntry>,
    ) {
        for entry in entries {
            // The `entry` frame has the same JSON on both sockets: serialize once.
            if let Ok(text) = serde_json::to_string(&ToVisitor::Entry { entry }) {
                self.hub.publish(id, agent, text.into());
            }
        }
    }

    /// Makes every assignment routing allows now. Each is one store transaction, then the
    /// in-memory commit, then the `assigned` frame and the entries the visitor sees.
    pub fn route(&self, inner: &mut Inner) {
        while let Some(a) = inner.routing.next() {
            let display_name = self
                .config
                .agent(&a.agent)
                .map_or(a.agent.clone(), |c| c.display_name.clone());
            let entries = vec![
                system_entry(EntryPayload::ParticipantChanged {
                    entries: vec![ParticipantChange {
                        operation: ParticipantOperation::Add,
                        participant: Participant {
                            role: Role::Agent,
                            subject: a.agent.clone(),
                        },
                        display_name,
                    }],
                }),
                system_entry(EntryPayload::SessionStatusChanged {
                    session_status: SessionStatus::Active,
                }),
            ];
            let update = Update {
                status: Some(SessionStatus::Active),
                agent: Some(Some(a.agent.clone())),
            };
            let stored = match inner.store.append(a.conversation, entries, update) {
                Ok(Appended::Stored(e)) => e,
                Ok(Appended::Duplicate { .. }) => Vec::new(),
                Err(e) => {
                    // Left at the head of its queue; the next routing run retries it.
                    tracing::error!(conversation = %a.conversation, error = %e, "assignment failed");
                    return;
                }
            };
            inner.routing.commit(&a);
            tracing::info!(conversation = %a.conversation, agent = %a.agent, "assigned");
            match assigned_frame(inner, a.conversation) {
                Ok(frame) => self.hub.to_agent(&a.agent, &frame),
                Err(e) => {
                    tracing::error!(conversation = %a.conversation, error = %e, "cannot load history")
                }
            }
            self.publish(a.conversation, None, stored);
        }
    }
}

impl Engine {
    /// `endSession`: the agent leaves, the session ends, capacity frees and routing re-runs.
    pub async fn end_session(self: &Arc<Self>, agent: String, id: ConversationId) -> Result<()> {
        self.run(move |inner, engine| {
            let s = assigned_session(inner, &agent, id)?;
            if s.status != SessionStatus::Ended {
                let name = engine
                    .config
                    .agent(&agent)
                    .map_or(agent.clone(), |a| a.display_name.clone());
                let entries = vec![
                    system_entry(EntryPayload::ParticipantChanged {
                        entries: vec![ParticipantChange {
                            operation: ParticipantOperation::Remove,
                            participant: Participant {
                                role: Role::Agent,
                                subject: agent.clone(),
                            },
                            display_name: name,
                        }],
                    }),
                    system_entry(EntryPayload::SessionStatusChanged {
                        session_status: SessionStatus::Ended,
                    }),
                ];
                let update = Update {
                    status: Some(SessionStatus::Ended),
                    agent: None,
                };
                if let Appended::Stored(stored) = inner.store.append(id, entries, update)? {
                    engine.publish(id, Some(&agent), stored);
                }
            }
            inner.routing.release(&agent, id);
            engine.hub.to_agent(
                &agent,
                &ToAgent::Released {
                    conversation_id: id,
                },
            );
            engine.route(inner);
            Ok(())
        })
        .await
    }
}

/// `assigned {conversation, history}` for one conversation, from the store.
pub fn assigned_frame(inner: &Inner, id: ConversationId) -> Result<ToAgent> {
    let s = inner
        .store
        .session(id)?
        .ok_or_else(|| crate::error::Error::Corrupt(format!("session {id} vanished")))?;
    Ok(ToAgent::Assigned {
        conversation: summary(&s),
        history: inner.store.entries_after(id, 0)?,
    })
}

pub fn summary(s: &Session) -> ConversationSummary {
    ConversationSummary {
        conversation_id: s.conversation_id,
        end_user_id: s.end_user_id,
        org_id: s.org_id.clone(),
        deployment_name: s.deployment_name.clone(),
        status: s.status,
    }
}

/// An entry written by the server itself (routing and status changes).
pub fn system_entry(payload: EntryPayload) -> NewEntry {
    NewEntry {
        identifier: EntryId(uuid::Uuid::new_v4()),
        sender: Participant {
            role: Role::System,
            subject: "system".into(),
        },
        sender_display_name: "System".into(),
        client_timestamp: None,
        payload,
    }
}

/// Puts a session in its deployment's queue; a deployment removed from the config has none.
pub fn enqueue(config: &Config, routing: &mut Routing, s: &Session) {
    match config.deployment(&s.org_id, &s.deployment_name) {
        Some(d) => routing.enqueue(&d.queue, s.conversation_id),
        None => {
            tracing::warn!(conversation = %s.conversation_id, "deployment no longer configured; not routed")
        }
    }
}
