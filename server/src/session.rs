//! Conversation operations of both sockets: create, resume and send (ending is in `ending.rs`).

use std::time::Duration;

use em_protocol::agent::ToAgent;
use em_protocol::visitor::ToVisitor;
use em_protocol::{
    ConversationId, EndUserId, EntryId, EntryPayload, ErrorCode, MAX_TEXT_CHARS, Participant, Role,
    SessionStatus,
};

use crate::engine::{Ctx, Engine, Inner};
use crate::error::{Error, Result};
use crate::hub::Outbox;
use crate::limits::Rate;
use crate::store::{Appended, NewEntry, Session, Update};

/// How long a visitor with too many open conversations is told to wait: ending one is up to
/// them (or to an agent), so there is no exact time.
const OPEN_CONVERSATIONS_RETRY: Duration = Duration::from_secs(60);

/// Who is behind a visitor socket, once `hello` succeeded.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub end_user_id: EndUserId,
    pub org_id: String,
    pub deployment_name: String,
}

/// A message about to be stored: who sends it and what.
pub struct Outgoing {
    pub conversation_id: ConversationId,
    pub entry_id: EntryId,
    pub text: String,
    pub client_timestamp: Option<i64>,
}

impl Engine {
    /// `createConversation`: idempotent per (id, owner); subscribes `out` to the conversation.
    /// Another visitor's id is `not_found`, as if it did not exist (no existence oracle). A new
    /// conversation counts against the end user's quotas (`[deployment.limits]`).
    pub async fn create_conversation(
        &self,
        v: Visitor,
        id: ConversationId,
        out: Outbox,
    ) -> Result<()> {
        let limiter = self.limiter.clone();
        self.run(move |inner, ctx| {
            let created = match inner.store.session(id)? {
                Some(s) if owns(&v, &s) => false,
                Some(_) => return Err(not_found(id)),
                None => {
                    let limits = ctx.config().limits(&v.org_id, &v.deployment_name);
                    let open = inner.store.open_conversation_count(v.end_user_id)?;
                    if open >= u64::from(limits.open_conversations) {
                        return Err(Error::rate_limited(
                            format!("{open} conversations are open; end one first"),
                            OPEN_CONVERSATIONS_RETRY,
                        ));
                    }
                    let n = limits.conversations_per_hour;
                    let rate = Rate::per(n, Duration::from_secs(3600));
                    if let Err(wait) = limiter.new_conversation(v.end_user_id, rate) {
                        return Err(Error::rate_limited(
                            format!("more than {n} new conversations per hour"),
                            wait,
                        ));
                    }
                    let s = Session::new(id, v.end_user_id, &v.org_id, &v.deployment_name);
                    inner.store.create_session(&s)?;
                    true
                }
            };
            let s = owned_session(inner, &v, id)?;
            inner.send(
                &out,
                &ToVisitor::Conversation {
                    conversation_id: id,
                    status: s.status,
                    last_seq: s.last_seq,
                    created,
                    replay_to: None,
                },
            );
            ctx.hub.subscribe(id, &out);
            Ok(())
        })
        .await
    }

    /// `resume`: the state, every entry after `after_seq`, then live entries. Reading and
    /// subscribing in one store-thread job means no entry is missed or sent twice.
    pub async fn resume(
        &self,
        v: Visitor,
        id: ConversationId,
        after_seq: u64,
        out: Outbox,
    ) -> Result<()> {
        self.run(move |inner, ctx| {
            let s = owned_session(inner, &v, id)?;
            let page = ctx.config().server.replay_page_entries;
            // A new view (0) wants the newest page, older ones on scrolling up (`history`);
            // a reconnect wants its gap in order, a page at a time.
            let newest = after_seq == 0;
            let entries = inner
                .store
                .entries_page(id, after_seq, u64::MAX, page, newest)?;
            let replay_to = entries
                .last()
                .map(|e| e.seq)
                .filter(|&to| !newest && to < s.last_seq);
            inner.send(
                &out,
                &ToVisitor::Conversation {
                    conversation_id: id,
                    status: s.status,
                    last_seq: s.last_seq,
                    created: false,
                    replay_to,
                },
            );
            // Before the replay: a widget fires read events only for lines it already shows,
            // so a reconnect learns of reads it missed and a reload does not repeat old ones.
            let seq = inner.store.read_seq(id)?;
            if seq > 0 {
                inner.send(
                    &out,
                    &ToVisitor::Read {
                        conversation_id: id,
                        seq,
                    },
                );
            }
            for entry in entries {
                inner.send(&out, &ToVisitor::Entry { entry });
            }
            ctx.hub.subscribe(id, &out);
            Ok(())
        })
        .await
    }

    /// A visitor's `history`: the newest page before `before_seq` of their conversation.
    pub async fn visitor_history(
        &self,
        v: Visitor,
        id: ConversationId,
        before_seq: u64,
        out: Outbox,
    ) -> Result<()> {
        self.run(move |inner, ctx| {
            owned_session(inner, &v, id)?;
            let page = ctx.config().server.replay_page_entries;
            let entries = inner.store.entries_page(id, 0, before_seq, page, true)?;
            inner.send(
                &out,
                &ToVisitor::History {
                    conversation_id: id,
                    entries,
                },
            );
            Ok(())
        })
        .await
    }

    /// An agent's `history`: the same, for a conversation assigned to them.
    pub async fn agent_history(
        &self,
        agent: String,
        id: ConversationId,
        before_seq: u64,
        out: Outbox,
    ) -> Result<()> {
        self.run(move |inner, ctx| {
            assigned_session(inner, &agent, id)?;
            let page = ctx.config().server.replay_page_entries;
            let entries = inner.store.entries_page(id, 0, before_seq, page, true)?;
            inner.send(
                &out,
                &ToAgent::History {
                    conversation_id: id,
                    entries,
                },
            );
            Ok(())
        })
        .await
    }

    /// A visitor's `sendMessage`. The first message of a new conversation goes to the bot,
    /// if the deployment has one, else starts routing; a message in a stale conversation whose
    /// agent is away routes it again.
    pub async fn visitor_message(&self, v: Visitor, m: Outgoing, out: Outbox) -> Result<()> {
        validate(&m.text)?;
        self.run(move |inner, ctx| {
            let s = owned_session(inner, &v, m.conversation_id)?;
            let max = ctx
                .config()
                .limits(&v.org_id, &v.deployment_name)
                .entries_per_conversation;
            // A resent message that was stored before the limit was reached is still acked.
            if s.last_seq >= max && inner.store.seq_of(s.conversation_id, m.entry_id)?.is_none()
            {
                return Err(Error::rate_limited(
                    format!("this conversation has {max} entries, the most it may hold; end it and start a new one"),
                    OPEN_CONVERSATIONS_RETRY,
                ));
            }
            let sender = Participant {
                role: Role::EndUser,
                subject: v.end_user_id.to_string(),
            };
            let entries = vec![new_message(&m, sender, "Guest")];
            let ack = |seq| ToVisitor::Ack {
                conversation_id: m.conversation_id,
                entry_id: m.entry_id,
                seq,
            };
            if !store_and_ack(inner, ctx, &s, &m, entries, Update::default(), &out, ack)? {
                return Ok(());
            }
            let unattended = s.status == SessionStatus::Active && s.agent_username.is_none();
            if let Some(bot) = ctx.bot_for(&s) {
                ctx.bot_turn(inner, &s, &bot, &m.text)
            } else if s.status == SessionStatus::New {
                ctx.start_waiting(inner, s.conversation_id, "Initial", None)
            } else if unattended {
                // The bot was talking and a reload removed it: hand off to a person.
                ctx.start_waiting(inner, s.conversation_id, "Transfer", None)
            } else {
                ctx.reopen_if_stale(inner, &s)
            }
        })
        .await
    }

    /// An agent's `sendMessage`, only on a conversation assigned to them.
    pub async fn agent_message(&self, agent: String, m: Outgoing, out: Outbox) -> Result<()> {
        validate(&m.text)?;
        self.run(move |inner, ctx| {
            let s = assigned_session(inner, &agent, m.conversation_id)?;
            let name = ctx.display_name(&agent);
            let sender = Participant {
                role: Role::Agent,
                subject: agent.clone(),
            };
            let entries = vec![new_message(&m, sender, &name)];
            let ack = |seq| ToAgent::Ack {
                conversation_id: m.conversation_id,
                entry_id: m.entry_id,
                seq,
            };
            if store_and_ack(inner, ctx, &s, &m, entries, Update::default(), &out, ack)? {
                inner.store.mark_first_response(m.conversation_id)?;
            }
            Ok(())
        })
        .await
    }

    /// A visitor's `typing`: relayed to the assigned agent's connections, not stored.
    pub async fn visitor_typing(&self, v: Visitor, id: ConversationId, typing: bool) -> Result<()> {
        self.run(move |inner, ctx| {
            let s = owned_session(inner, &v, id)?;
            if let Some(agent) = s.agent_username.as_deref() {
                let frame = ToAgent::Typing {
                    conversation_id: id,
                    typing,
                };
                ctx.to_agent(inner, agent, &frame);
            }
            Ok(())
        })
        .await
    }

    /// An agent's `typing`: relayed to the visitor's sockets, not stored.
    pub async fn agent_typing(
        &self,
        agent: String,
        id: ConversationId,
        typing: bool,
    ) -> Result<()> {
        self.run(move |inner, ctx| {
            assigned_session(inner, &agent, id)?;
            let frame = ToVisitor::Typing {
                conversation_id: id,
                sender: Participant {
                    role: Role::Agent,
                    subject: agent.clone(),
                },
                sender_display_name: ctx.display_name(&agent),
                typing,
            };
            if let Ok(text) = serde_json::to_string(&frame) {
                inner.to_conversation(&ctx.hub, id, None, text);
            }
            Ok(())
        })
        .await
    }

    /// An agent's `markRead`: raises the conversation's read `seq` (clamped to its last
    /// entry) and relays a rise to the visitor's sockets as `read`. Not stored.
    pub async fn agent_read(&self, agent: String, id: ConversationId, seq: u64) -> Result<()> {
        self.run(move |inner, ctx| {
            let s = assigned_session(inner, &agent, id)?;
            let seq = seq.min(s.last_seq);
            if inner.store.raise_read(id, seq)? {
                let frame = ToVisitor::Read {
                    conversation_id: id,
                    seq,
                };
                if let Ok(text) = serde_json::to_string(&frame) {
                    inner.to_conversation(&ctx.hub, id, None, text);
                }
            }
            Ok(())
        })
        .await
    }
}

/// Dedupe, ended check, append, ack, fan-out. Returns whether something new was stored.
#[allow(clippy::too_many_arguments)] // one call per socket; a struct would only rename them
fn store_and_ack<A: serde::Serialize>(
    inner: &mut Inner,
    ctx: &Ctx,
    s: &Session,
    m: &Outgoing,
    entries: Vec<NewEntry>,
    update: Update,
    out: &Outbox,
    ack: impl Fn(u64) -> A,
) -> Result<bool> {
    // A resent message that was stored before the session ended is still acknowledged.
    if s.status == SessionStatus::Ended {
        if let Some(seq) = inner.store.seq_of(s.conversation_id, m.entry_id)? {
            inner.send(out, &ack(seq));
            return Ok(false);
        }
        return Err(Error::peer(
            ErrorCode::ConversationEnded,
            format!(
                "conversation {} has ended; start a new one",
                s.conversation_id
            ),
        ));
    }
    let (entries, update) = crate::sweep::waking(s, entries, update);
    match inner.store.append(s.conversation_id, entries, update)? {
        Appended::Duplicate { seq } => {
            inner.send(out, &ack(seq));
            Ok(false)
        }
        Appended::Stored(stored) => {
            inner.send(out, &ack(stored[0].seq));
            ctx.publish(
                inner,
                s.conversation_id,
                s.agent_username.as_deref(),
                stored,
            );
            Ok(true)
        }
    }
}

fn new_message(m: &Outgoing, sender: Participant, name: &str) -> NewEntry {
    NewEntry {
        identifier: m.entry_id,
        sender,
        sender_display_name: name.to_string(),
        client_timestamp: m.client_timestamp,
        payload: EntryPayload::text(m.entry_id, m.text.clone()),
    }
}

fn validate(text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::peer(ErrorCode::InvalidMessage, "text is empty"));
    }
    let n = text.chars().count();
    if n > MAX_TEXT_CHARS {
        return Err(Error::peer(
            ErrorCode::InvalidMessage,
            format!("text has {n} characters; at most {MAX_TEXT_CHARS} are allowed"),
        ));
    }
    Ok(())
}

fn owns(v: &Visitor, s: &Session) -> bool {
    s.end_user_id == v.end_user_id && s.org_id == v.org_id && s.deployment_name == v.deployment_name
}

/// The session if this visitor owns it; otherwise `not_found`, never revealing that it exists.
pub(crate) fn owned_session(inner: &mut Inner, v: &Visitor, id: ConversationId) -> Result<Session> {
    match inner.store.session(id)? {
        Some(s) if owns(v, &s) => Ok(s),
        _ => Err(not_found(id)),
    }
}

fn not_found(id: ConversationId) -> Error {
    Error::peer(
        ErrorCode::NotFound,
        format!("no conversation {id} for this visitor"),
    )
}

pub(crate) fn assigned_session(
    inner: &mut Inner,
    agent: &str,
    id: ConversationId,
) -> Result<Session> {
    match inner.store.session(id)? {
        Some(s) if s.agent_username.as_deref() == Some(agent) => Ok(s),
        _ => Err(Error::peer(
            ErrorCode::Unauthorized,
            format!("conversation {id} is not assigned to {agent}"),
        )),
    }
}
