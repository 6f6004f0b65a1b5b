//! Conversations changing hands: an agent's transfer (to an agent or a queue), and a stale
//! conversation reopened by the visitor going to whoever is available.

use em_protocol::agent::{Presence, ToAgent};
use em_protocol::{ConversationId, EntryPayload, ErrorCode, ParticipantOperation, SessionStatus};

use crate::config::Route;
use crate::engine::{Ctx, Engine, Inner};
use crate::error::{Error, Result};
use crate::lifecycle::{change, system_entry};
use crate::routing::Assignment;
use crate::session::assigned_session;
use crate::store::{Appended, Session, Update};

impl Ctx {
    /// A visitor writes in a conversation whose agent is not Online and that was idle for
    /// `reopen_after_seconds`: it goes to whoever is available instead.
    pub fn reopen_if_stale(&self, inner: &mut Inner, s: &Session) -> Result<()> {
        let Some(agent) = s.agent_username.as_deref() else {
            return Ok(());
        };
        let idle_ms = self.clock.now_ms() - s.updated_at;
        let limit_ms = self.config().routing.reopen_after_seconds as i64 * 1000;
        // `Inactive` is idle but open: it reopens too.
        if !matches!(s.status, SessionStatus::Active | SessionStatus::Inactive)
            || inner.routing.presence(agent) == Presence::Online
            || idle_ms < limit_ms
        {
            return Ok(());
        }
        tracing::info!(conversation = %s.conversation_id, agent, "reopened; routing again");
        self.leave(inner, s.conversation_id, agent, false)?;
        self.start_waiting(inner, s.conversation_id, "Reopened", None)
    }

    /// `agent` leaves the conversation: stored, capacity freed, `released` sent.
    pub(crate) fn leave(
        &self,
        inner: &mut Inner,
        id: ConversationId,
        agent: &str,
        transfer: bool,
    ) -> Result<()> {
        let entries = vec![system_entry(EntryPayload::ParticipantChanged {
            entries: vec![change(
                ParticipantOperation::Remove,
                agent,
                self.display_name(agent),
            )],
        })];
        inner.store.assignment_end(id, agent, transfer)?;
        if let Appended::Stored(stored) = inner.store.append(
            id,
            entries,
            Update {
                status: None,
                agent: Some(None),
            },
        )? {
            self.publish(inner, id, Some(agent), stored);
        }
        self.release_agent(inner, agent, id);
        Ok(())
    }
}

impl Engine {
    /// `transfer`: to an Online agent with room (at once), or to a queue (waits there).
    pub async fn transfer(
        &self,
        agent: String,
        id: ConversationId,
        to_agent: Option<String>,
        to_queue: Option<String>,
    ) -> Result<()> {
        self.run(move |inner, ctx| {
            let s = assigned_session(inner, &agent, id)?;
            if s.status == SessionStatus::Ended {
                return Err(Error::peer(ErrorCode::ConversationEnded, format!("conversation {id} has ended")));
            }
            let config = ctx.config();
            match (to_agent, to_queue) {
                (Some(target), None) => {
                    if target == agent || config.agent(&target).is_none() {
                        return Err(Error::peer(ErrorCode::NotFound, format!("no other agent named {target:?}")));
                    }
                    if !inner.routing.can_take(&target) {
                        return Err(Error::peer(
                            ErrorCode::Conflict,
                            format!("{target} is not Online with free capacity; transfer to a queue instead"),
                        ));
                    }
                    inner.store.assignment_end(id, &agent, true)?;
                    inner.change(crate::routing::Change::Release {
                        agent: agent.clone(),
                        id,
                    });
                    let a = Assignment {
                        queue: s.queue.clone(),
                        conversation: id,
                        agent: target,
                    };
                    ctx.assign(inner, &a, Some(&agent))?;
                    ctx.to_agent(inner, &agent, &ToAgent::Released { conversation_id: id });
                }
                (None, Some(queue)) => {
                    if config.queue(&queue).is_none() {
                        return Err(Error::peer(ErrorCode::NotFound, format!("no queue named {queue:?}")));
                    }
                    ctx.leave(inner, id, &agent, true)?;
                    let route = Route {
                        queue,
                        priority: s.priority,
                        skills: Vec::new(),
                    };
                    ctx.start_waiting(inner, id, "Transfer", Some(route))?;
                }
                _ => {
                    return Err(Error::peer(ErrorCode::BadFrame, "transfer needs exactly one of toAgent and toQueue"));
                }
            }
            ctx.route(inner);
            Ok(())
        })
        .await
    }
}
