//! The visitor's auto-response parameters, kept in the session's `context_json` beside the
//! context agents see (whose wire type has no place for them), so no column is needed.

use std::collections::BTreeMap;

use em_protocol::ConversationId;
use rusqlite::{OptionalExtension, params};

use super::Store;
use super::rows::json;
use crate::error::{Error, Result};

impl Store {
    /// The parameters stored for a conversation (none for an unknown one).
    pub fn auto_response_parameters(&self, id: ConversationId) -> Result<BTreeMap<String, String>> {
        let text: Option<Option<String>> = self
            .conn
            .prepare_cached(
                "SELECT json_extract(context_json, '$.autoResponseParameters')
                 FROM messaging_session WHERE conversation_id = ?1",
            )?
            .query_row([id.to_string()], |r| r.get(0))
            .optional()?;
        match text.flatten() {
            Some(t) => serde_json::from_str(&t)
                .map_err(|e| Error::Corrupt(format!("auto-response parameters: {e}"))),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Replaces the parameters; `set_context` keeps them when it rewrites the context.
    pub fn set_auto_response_parameters(
        &self,
        id: ConversationId,
        parameters: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.exec(
            "UPDATE messaging_session
             SET context_json = json_set(context_json, '$.autoResponseParameters', json(?2))
             WHERE conversation_id = ?1",
            params![id.to_string(), json(parameters)],
        )
    }
}
