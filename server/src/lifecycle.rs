//! Session transitions that involve routing: assigning waiting conversations, ending
//! sessions, and rebuilding the routing state from the store at start.

use em_protocol::agent::{ConversationSummary, ToAgent};
use em_protocol::{
    ConversationEntry, ConversationId, EntryId, EntryPayload, Participant, ParticipantChange,
    ParticipantOperation, Role, SessionStatus, visitor::ToVisitor,
};

use crate::config::Config;
use crate::engine::{Ctx, Engine, Inner};
use crate::error::{Error, Result};
use crate::routing::Routing;
use crate::session::assigned_session;
use crate::store::{Appended, NewEntry, Session, Store, Update};

/// Queues and assignments as the store has them.
pub fn rebuild(config: &Config, store: &Store) -> Result<Routing> {
    let mut routing = Routing::new(config);
    for s in store.sessions_with_status(SessionStatus::Active)? {
        let restored = s
            .agent_username
            .as_deref()
            .is_some_and(|a| routing.restore(a, s.conversation_id));
        if !restored {
            tracing::warn!(conversation = %s.conversation_id, agent = ?s.agent_username,
                           "active conversation's agent is no longer configured; routing it again");
            enqueue(config, &mut routing, &s);
        }
    }
    for s in store.sessions_with_status(SessionStatus::Waiting)? {
        enqueue(config, &mut routing, &s);
    }
    Ok(routing)
}

impl Ctx {
    /// Sends stored entries to a conversation's visitors and to `agent`'s connections.
    pub fn publish(
        &self,
        inner: &mut Inner,
        id: ConversationId,
        agent: Option<&str>,
        entries: Vec<ConversationEntry>,
    ) {
        for entry in entries {
            // The `entry` frame has the same JSON on both sockets: serialize once.
            if let Ok(text) = serde_json::to_string(&ToVisitor::Entry { entry }) {
                inner.send_text(self.hub.recipients(id, agent), text.into());
            }
        }
    }

    /// Sends a frame to every connection of an agent.
    pub fn to_agent(&self, inner: &mut Inner, agent: &str, frame: &ToAgent) {
        if let Ok(text) = serde_json::to_string(frame) {
            inner.send_text(self.hub.agent_connections(agent), text.into());
        }
    }

    pub fn display_name(&self, agent: &str) -> String {
        self.config
            .agent(agent)
            .map_or(agent.to_string(), |a| a.display_name.clone())
    }

    /// Makes every assignment routing allows now. Each is one store transaction, then the
    /// in-memory commit, then the `assigned` frame and the entries the visitor sees.
    pub fn route(&self, inner: &mut Inner) {
        while let Some(a) = inner.routing.next() {
            let display_name = self.display_name(&a.agent);
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
                Ok(frame) => self.to_agent(inner, &a.agent, &frame),
                Err(e) => {
                    tracing::error!(conversation = %a.conversation, error = %e, "cannot load history")
                }
            }
            self.publish(inner, a.conversation, None, stored);
        }
    }
}

impl Engine {
    /// `endSession`: the agent leaves, the session ends, capacity frees and routing re-runs.
    pub async fn end_session(&self, agent: String, id: ConversationId) -> Result<()> {
        self.run(move |inner, ctx| {
            let s = assigned_session(inner, &agent, id)?;
            if s.status != SessionStatus::Ended {
                let entries = vec![
                    system_entry(EntryPayload::ParticipantChanged {
                        entries: vec![ParticipantChange {
                            operation: ParticipantOperation::Remove,
                            participant: Participant {
                                role: Role::Agent,
                                subject: agent.clone(),
                            },
                            display_name: ctx.display_name(&agent),
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
                    ctx.publish(inner, id, Some(&agent), stored);
                }
            }
            inner.routing.release(&agent, id);
            ctx.to_agent(
                inner,
                &agent,
                &ToAgent::Released {
                    conversation_id: id,
                },
            );
            ctx.route(inner);
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
        .ok_or_else(|| Error::Corrupt(format!("session {id} vanished")))?;
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
