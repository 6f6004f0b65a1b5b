//! Ending a conversation, by its agent (`endSession`) or its visitor (`endConversation`): one
//! path for both, so the agent, the capacity, the queue and the metrics see the same end.

use em_protocol::{
    ConversationId, EntryPayload, Participant, ParticipantOperation, Role, SessionStatus,
};

use crate::engine::{Ctx, Engine, Inner};
use crate::error::Result;
use crate::lifecycle::{change, system, system_entry};
use crate::session::{Visitor, assigned_session, owned_session};
use crate::store::{Appended, NewEntry, Session, Update};

impl Ctx {
    /// Ends a conversation for good, whoever ends it (`by` is the sender of the `Ended`
    /// entry: the system for an agent's `endSession`, the end user for the visitor's
    /// `endConversation`). An assigned agent leaves (`ParticipantChanged` remove, assignment
    /// closed for the metrics, capacity freed, `released`); a waiting conversation leaves the
    /// queue; then routing re-runs. Ending an ended conversation stores nothing.
    pub(crate) fn end(&self, inner: &mut Inner, s: &Session, by: NewEntry) -> Result<()> {
        let id = s.conversation_id;
        if s.status == SessionStatus::Ended {
            return Ok(());
        }
        let agent = s.agent_username.as_deref();
        let mut entries = Vec::new();
        if let Some(agent) = agent {
            entries.push(system_entry(EntryPayload::ParticipantChanged {
                entries: vec![change(
                    ParticipantOperation::Remove,
                    agent,
                    self.display_name(agent),
                )],
            }));
        }
        entries.push(by);
        let update = Update {
            status: Some(SessionStatus::Ended),
            agent: None,
        };
        if let Appended::Stored(stored) = inner.store.append(id, entries, update)? {
            if let Some(agent) = agent {
                inner.store.assignment_end(id, agent, false)?;
            }
            inner.store.mark_ended(id)?;
            self.publish(inner, id, agent, stored);
        }
        inner.change(crate::routing::Change::Dequeue { id });
        if let Some(agent) = agent {
            self.release_agent(inner, agent, id);
        }
        self.route(inner);
        Ok(())
    }
}

/// The `SessionStatusChanged` `Ended` entry, said by `sender`.
fn ended_by(sender: Participant, sender_display_name: &str) -> NewEntry {
    NewEntry {
        sender,
        sender_display_name: sender_display_name.to_string(),
        ..system_entry(EntryPayload::SessionStatusChanged {
            session_status: SessionStatus::Ended,
        })
    }
}

impl Engine {
    /// `endSession`: the agent leaves, the session ends, capacity frees and routing re-runs.
    /// Ending an ended session again only repeats `released`.
    pub async fn end_session(&self, agent: String, id: ConversationId) -> Result<()> {
        self.run(move |inner, ctx| {
            let s = assigned_session(inner, &agent, id)?;
            if s.status != SessionStatus::Ended {
                return ctx.end(inner, &s, ended_by(system(), "System"));
            }
            ctx.release_agent(inner, &agent, id);
            ctx.route(inner);
            Ok(())
        })
        .await
    }

    /// The visitor's `endConversation`: like the agent's `endSession`, with the end user as
    /// the sender of the `Ended` entry. Only the owner may end it (`not_found` otherwise);
    /// ending an ended conversation is a no-op.
    pub async fn end_conversation(&self, v: Visitor, id: ConversationId) -> Result<()> {
        self.run(move |inner, ctx| {
            let s = owned_session(inner, &v, id)?;
            let visitor = Participant {
                role: Role::EndUser,
                subject: v.end_user_id.to_string(),
            };
            ctx.end(inner, &s, ended_by(visitor, "Guest"))
        })
        .await
    }
}
