//! Session transitions that involve routing: waiting (with the rules), assigning, queue
//! position updates, and rebuilding the routing state from the store at start (ending:
//! `ending.rs`; transfers and reopening: `transfer.rs`).

use em_protocol::agent::{ConversationSummary, ToAgent};
use em_protocol::{
    ConversationEntry, ConversationId, EntryId, EntryPayload, EstimatedWaitTime, Participant,
    ParticipantChange, ParticipantOperation, Role, SessionStatus, visitor::ToVisitor,
};

use crate::config::{Config, Route};
use crate::engine::{Ctx, Inner};
use crate::error::{Error, Result};
use crate::routing::{Assignment, Change, Routing, Standing};
use crate::store::{Appended, NewEntry, Session, Store, Update};

/// Queues and assignments as the store has them.
pub fn rebuild(config: &Config, store: &mut dyn Store) -> Result<Routing> {
    let mut routing = Routing::new(config);
    // Idle (Inactive) conversations are open and still hold their agent's capacity.
    let mut open = store.sessions_with_status(SessionStatus::Active)?;
    open.extend(store.sessions_with_status(SessionStatus::Inactive)?);
    for s in open {
        let Some(agent) = s.agent_username.as_deref() else {
            continue; // with the bot, which needs no routing state
        };
        if !routing.restore(agent, s.conversation_id) {
            tracing::warn!(conversation = %s.conversation_id, agent,
                           "active conversation's agent is no longer configured; routing it again");
            enqueue(config, &mut routing, &s);
        }
    }
    for s in store.sessions_with_status(SessionStatus::Waiting)? {
        enqueue(config, &mut routing, &s);
        // They were told some position before the restart: from now on, tell them when it moves.
        if let Some(st) = routing.standing(s.conversation_id) {
            routing.apply(&Change::Tell {
                id: s.conversation_id,
                position: st.position,
            });
        }
    }
    Ok(routing)
}

/// Puts a stored waiting session back in the waiting list, where routing sent it.
fn enqueue(config: &Config, routing: &mut Routing, s: &Session) {
    let route = if s.queue.is_empty() || config.queue(&s.queue).is_none() {
        match config.deployment(&s.org_id, &s.deployment_name) {
            Some(d) => d.route(&s.context),
            None => {
                tracing::warn!(conversation = %s.conversation_id, "deployment no longer configured; not routed");
                return;
            }
        }
    } else {
        Route {
            queue: s.queue.clone(),
            priority: s.priority,
            skills: s.skills.clone(),
        }
    };
    routing.apply(&Change::Enqueue {
        id: s.conversation_id,
        route,
    });
}

/// Who says routing's messages to the visitor: the deployment's bot, else the system.
pub fn speaker(config: &Config, s: &Session) -> (Participant, String) {
    match config
        .deployment(&s.org_id, &s.deployment_name)
        .and_then(|d| d.bot.as_ref())
    {
        Some(bot) => (
            Participant {
                role: Role::Chatbot,
                subject: "bot".into(),
            },
            bot.name.clone(),
        ),
        None => (
            Participant {
                role: Role::System,
                subject: "system".into(),
            },
            "System".into(),
        ),
    }
}

/// Queue position and expected wait: ⌈position ÷ seats serving the queue⌉ rounds of the
/// queue's average handle time.
fn estimate(config: &Config, queue: &str, st: &Standing) -> EstimatedWaitTime {
    let handle = config
        .queue(queue)
        .map_or(300, |q| q.average_handle_seconds);
    let rounds = u64::from(st.position).div_ceil(st.serving_capacity.max(1) as u64);
    EstimatedWaitTime {
        position: st.position,
        estimated_wait_time_in_seconds: rounds * handle,
    }
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
                inner.to_conversation(&self.hub, id, agent, text);
            }
        }
    }

    /// Appends entries and sends them to the visitor and the session's agent.
    pub fn append(
        &self,
        inner: &mut Inner,
        id: ConversationId,
        entries: Vec<NewEntry>,
        update: Update,
    ) -> Result<()> {
        let agent = match &update.agent {
            Some(a) => a.clone(),
            None => inner.store.session(id)?.and_then(|s| s.agent_username),
        };
        if let Appended::Stored(stored) = inner.store.append(id, entries, update)? {
            self.publish(inner, id, agent.as_deref(), stored);
        }
        Ok(())
    }

    /// Appends and publishes an entry that is news but not activity (a queue update, going
    /// idle): the session's `updated_at`, which measures idleness and orders the waiting list
    /// after a restart, keeps its value.
    pub fn notice(
        &self,
        inner: &mut Inner,
        s: &Session,
        entry: NewEntry,
        status: Option<SessionStatus>,
    ) -> Result<()> {
        let update = Update {
            status,
            agent: None,
        };
        self.append(inner, s.conversation_id, vec![entry], update)?;
        inner.store.set_updated_at(s.conversation_id, s.updated_at)
    }

    /// The agent no longer holds `id`: its seat is free, and its consoles drop the conversation.
    pub fn release_agent(&self, inner: &mut Inner, agent: &str, id: ConversationId) {
        inner.change(Change::Release {
            agent: agent.to_string(),
            id,
        });
        self.to_agent(
            inner,
            agent,
            &ToAgent::Released {
                conversation_id: id,
            },
        );
    }

    /// Sends a frame to every connection of an agent.
    pub fn to_agent(&self, inner: &mut Inner, agent: &str, frame: &ToAgent) {
        if let Ok(text) = serde_json::to_string(frame) {
            inner.to_agent(&self.hub, agent, text);
        }
    }

    pub fn display_name(&self, agent: &str) -> String {
        self.config()
            .agent(agent)
            .map_or(agent.to_string(), |a| a.display_name.clone())
    }

    /// The conversation starts waiting: the deployment's rules (or `route`) pick queue,
    /// priority and skills; the visitor learns the outcome (queue position and estimated
    /// wait, or that nobody can answer now), then routing runs.
    pub fn start_waiting(
        &self,
        inner: &mut Inner,
        id: ConversationId,
        routing_type: &str,
        route: Option<Route>,
    ) -> Result<()> {
        let config = self.config();
        let s = inner
            .store
            .session(id)?
            .ok_or_else(|| Error::Corrupt(format!("session {id} vanished")))?;
        let Some(d) = config.deployment(&s.org_id, &s.deployment_name) else {
            tracing::warn!(conversation = %id, "deployment no longer configured; not routed");
            return Ok(());
        };
        let route = route.unwrap_or_else(|| d.route(&s.context));
        inner.store.set_route(id, &route)?;
        inner.change(Change::Enqueue {
            id,
            route: route.clone(),
        });
        let now_assigned = inner.routing.next().is_some_and(|a| a.conversation == id);
        let (mut failure, mut wait, mut say) = (None, None, None);
        if let Some(st) = inner.routing.standing(id).filter(|_| !now_assigned) {
            if !d.is_open(self.clock.now_ms()) && !st.agent_online {
                failure = Some("OutsideBusinessHours".to_string());
                say = Some(d.after_hours_message.clone());
            } else if !st.agent_online {
                failure = Some("NoAgentAvailable".to_string());
                say = Some(d.no_agent_message.clone());
            } else {
                wait = Some(estimate(&config, &route.queue, &st));
                inner.change(Change::Tell {
                    id,
                    position: st.position,
                });
            }
        }
        let mut entries = vec![system_entry(EntryPayload::RoutingResult {
            routing_type: routing_type.into(),
            failure_type: failure,
            estimated_wait_time: wait,
        })];
        if s.status != SessionStatus::Waiting {
            entries.push(system_entry(EntryPayload::SessionStatusChanged {
                session_status: SessionStatus::Waiting,
            }));
        }
        if let Some(text) = say {
            let (sender, name) = speaker(&config, &s);
            let params = inner.store.auto_response_parameters(id)?;
            entries.push(said(sender, &name, crate::context::fill(&text, &params)));
        }
        let update = Update {
            status: Some(SessionStatus::Waiting),
            agent: Some(None),
        };
        self.append(inner, id, entries, update)?;
        self.route(inner);
        Ok(())
    }

    /// Makes every assignment routing allows now. Each is one store write, then the
    /// in-memory commit, then the `assigned` frame and the entries the visitor sees.
    /// Then every waiting visitor whose queue position moved is told the new one.
    pub fn route(&self, inner: &mut Inner) {
        while let Some(a) = inner.routing.next() {
            if let Err(e) = self.assign(inner, &a, None) {
                // Left waiting; the next routing run retries it.
                tracing::error!(conversation = %a.conversation, error = %e, "assignment failed");
                return;
            }
        }
        if let Err(e) = self.announce_positions(inner) {
            tracing::error!(error = %e, "queue position update failed");
        }
    }

    /// A `RoutingResult` (`QueueUpdate`) with the new position and wait for each waiting
    /// conversation whose position changed since the visitor was last told.
    fn announce_positions(&self, inner: &mut Inner) -> Result<()> {
        let moved = inner.routing.moved();
        if moved.is_empty() {
            return Ok(());
        }
        let config = self.config();
        for (id, st) in moved {
            inner.change(Change::Tell {
                id,
                position: st.position,
            });
            let Some(s) = inner.store.session(id)? else {
                continue;
            };
            let entry = system_entry(EntryPayload::RoutingResult {
                routing_type: "QueueUpdate".into(),
                failure_type: None,
                estimated_wait_time: Some(estimate(&config, &s.queue, &st)),
            });
            self.notice(inner, &s, entry, None)?;
        }
        Ok(())
    }

    /// Gives a conversation to `a.agent`; `from` is the agent it is transferred from.
    pub(crate) fn assign(
        &self,
        inner: &mut Inner,
        a: &Assignment,
        from: Option<&str>,
    ) -> Result<()> {
        let mut changes = Vec::new();
        if let Some(from) = from {
            changes.push(change(
                ParticipantOperation::Remove,
                from,
                self.display_name(from),
            ));
        }
        changes.push(change(
            ParticipantOperation::Add,
            &a.agent,
            self.display_name(&a.agent),
        ));
        let mut entries = vec![system_entry(EntryPayload::ParticipantChanged {
            entries: changes,
        })];
        let status = inner.store.session(a.conversation)?.map(|s| s.status);
        if status != Some(SessionStatus::Active) {
            entries.push(system_entry(EntryPayload::SessionStatusChanged {
                session_status: SessionStatus::Active,
            }));
        }
        let update = Update {
            status: Some(SessionStatus::Active),
            agent: Some(Some(a.agent.clone())),
        };
        let stored = match inner.store.append(a.conversation, entries, update)? {
            Appended::Stored(e) => e,
            Appended::Duplicate { .. } => Vec::new(),
        };
        inner
            .store
            .assignment_start(a.conversation, &a.agent, &a.queue)?;
        inner.change(Change::Commit(a.clone()));
        tracing::info!(conversation = %a.conversation, agent = %a.agent, queue = %a.queue, "assigned");
        let page = self.config().server.replay_page_entries;
        let frame = assigned_frame(inner, a.conversation, page)?;
        self.to_agent(inner, &a.agent, &frame);
        // The new agent got these entries in `history`; the visitor and the previous agent get them live.
        for entry in stored {
            if let Ok(text) = serde_json::to_string(&ToVisitor::Entry { entry }) {
                inner.to_conversation(&self.hub, a.conversation, from, text);
            }
        }
        Ok(())
    }
}

/// `assigned {conversation, history}` for one conversation, from the store: the newest
/// `page` entries (the console asks for older ones with `history`).
pub fn assigned_frame(inner: &mut Inner, id: ConversationId, page: usize) -> Result<ToAgent> {
    let s = inner
        .store
        .session(id)?
        .ok_or_else(|| Error::Corrupt(format!("session {id} vanished")))?;
    Ok(ToAgent::Assigned {
        conversation: summary(&s),
        history: inner.store.entries_page(id, 0, u64::MAX, page, true)?,
    })
}

pub fn summary(s: &Session) -> ConversationSummary {
    ConversationSummary {
        conversation_id: s.conversation_id,
        end_user_id: s.end_user_id,
        org_id: s.org_id.clone(),
        deployment_name: s.deployment_name.clone(),
        status: s.status,
        queue: s.queue.clone(),
        context: s.context.clone(),
    }
}

pub(crate) fn change(
    operation: ParticipantOperation,
    agent: &str,
    display_name: String,
) -> ParticipantChange {
    ParticipantChange {
        operation,
        participant: Participant {
            role: Role::Agent,
            subject: agent.to_string(),
        },
        display_name,
    }
}

pub(crate) fn system() -> Participant {
    Participant {
        role: Role::System,
        subject: "system".into(),
    }
}

/// An entry written by the server itself (routing and status changes).
pub fn system_entry(payload: EntryPayload) -> NewEntry {
    NewEntry {
        identifier: EntryId(uuid::Uuid::new_v4()),
        sender: system(),
        sender_display_name: "System".into(),
        client_timestamp: None,
        payload,
    }
}

/// A text message the server says as `sender` (the bot, or the system).
pub fn said(sender: Participant, name: &str, text: String) -> NewEntry {
    let id = EntryId(uuid::Uuid::new_v4());
    NewEntry {
        identifier: id,
        sender,
        sender_display_name: name.to_string(),
        client_timestamp: None,
        payload: EntryPayload::text(id, text),
    }
}
