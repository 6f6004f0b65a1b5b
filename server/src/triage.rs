//! The bot's turn in a conversation: runs `bot.rs` on a visitor message, stores what it says
//! and what it collected, and hands off to routing with the context attached.

use em_protocol::{
    AbstractMessage, ConversationId, EntryId, EntryPayload, Participant, ParticipantChange,
    ParticipantOperation, Role, SessionStatus,
};

use crate::bot::{self, Say};
use crate::config::BotConfig;
use crate::engine::{Ctx, Inner};
use crate::error::Result;
use crate::lifecycle::system_entry;
use crate::store::{NewEntry, Session, Update};

fn bot_participant() -> Participant {
    Participant {
        role: Role::Chatbot,
        subject: "bot".into(),
    }
}

fn bot_entry(bot: &BotConfig, say: Say) -> NewEntry {
    let id = EntryId(uuid::Uuid::new_v4());
    let payload = match say {
        Say::Text(t) => EntryPayload::text(id, t),
        Say::Choices(choices) => EntryPayload::Message {
            abstract_message: AbstractMessage::ChoicesMessage { id, choices },
        },
    };
    NewEntry {
        identifier: id,
        sender: bot_participant(),
        sender_display_name: bot.name.clone(),
        client_timestamp: None,
        payload,
    }
}

impl Ctx {
    /// Whether the bot handles the next visitor message of `s`.
    pub fn bot_for(&self, s: &Session) -> Option<BotConfig> {
        let fresh = s.status == SessionStatus::New;
        let talking = s.status == SessionStatus::Active
            && s.agent_username.is_none()
            && s.bot_state.as_deref().is_some_and(|st| st != bot::HANDOFF);
        if !(fresh || talking) {
            return None; // the common case (an agent's conversation) costs no config lookup
        }
        self.config()
            .deployment(&s.org_id, &s.deployment_name)?
            .bot
            .clone()
    }

    /// The bot answers `text` (already stored) in conversation `s`.
    pub fn bot_turn(
        &self,
        inner: &mut Inner,
        s: &Session,
        bot: &BotConfig,
        text: &str,
    ) -> Result<()> {
        let id: ConversationId = s.conversation_id;
        let mut entries = Vec::new();
        let first = s.status == SessionStatus::New;
        let state = if first {
            entries.push(system_entry(EntryPayload::ParticipantChanged {
                entries: vec![ParticipantChange {
                    operation: ParticipantOperation::Add,
                    participant: bot_participant(),
                    display_name: bot.name.clone(),
                }],
            }));
            entries.push(system_entry(EntryPayload::SessionStatusChanged {
                session_status: SessionStatus::Active,
            }));
            "menu".to_string()
        } else {
            s.bot_state.clone().unwrap_or_else(|| "menu".into())
        };
        let turn = bot::reply(bot, &state, text, &s.context.variables);
        let params = if first {
            inner.store.auto_response_parameters(id)?
        } else {
            Default::default()
        };
        let says = if first && !turn.matched {
            bot::greet(bot, &params) // a first "hi" gets the greeting and the menu, not "I did not get that"
        } else if first {
            let mut says = vec![bot::greeting(bot, &params)];
            says.extend(turn.say.clone());
            says
        } else {
            turn.say.clone()
        };
        entries.extend(says.into_iter().map(|say| bot_entry(bot, say)));
        if turn.handoff {
            entries.push(system_entry(EntryPayload::ParticipantChanged {
                entries: vec![ParticipantChange {
                    operation: ParticipantOperation::Remove,
                    participant: bot_participant(),
                    display_name: bot.name.clone(),
                }],
            }));
        }
        if let Some((name, value)) = &turn.collected {
            let mut context = s.context.clone();
            context.variables.insert(name.clone(), value.clone());
            inner.store.set_context(id, &context)?;
        }
        inner
            .store
            .set_bot(id, &turn.state, turn.answered, turn.handoff)?;
        let update = Update {
            status: first.then_some(SessionStatus::Active),
            agent: None,
        };
        self.append(inner, id, entries, update)?;
        if turn.handoff {
            tracing::info!(conversation = %id, "bot handed off");
            self.start_waiting(inner, id, "Transfer", None)?;
        }
        Ok(())
    }
}
