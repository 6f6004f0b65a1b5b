//! `[deployment.bot]`: the rule bot's script (greeting, menu, intents, handoff words).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    /// Sender display name of the bot's entries.
    #[serde(default = "default_name")]
    pub name: String,
    pub greeting: String,
    #[serde(default = "default_menu_text")]
    pub menu_text: String,
    /// Quick replies offered after the greeting and after each answer.
    #[serde(default)]
    pub menu: Vec<String>,
    /// A message containing one of these (case-insensitive) hands off to routing.
    #[serde(default = "default_handoff_keywords")]
    pub handoff_keywords: Vec<String>,
    #[serde(default = "default_handoff_message")]
    pub handoff_message: String,
    #[serde(default = "default_fallback")]
    pub fallback_message: String,
    #[serde(default)]
    pub intent: Vec<Intent>,
}

/// `[[deployment.bot.intent]]`: keywords → an answer, optionally collecting one value first,
/// optionally handing off afterwards.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    pub keywords: Vec<String>,
    /// Said after the value is collected (or at once); `{name}` is replaced by a variable.
    #[serde(default)]
    pub answer: String,
    /// Variable to collect into the conversation context.
    pub collect: Option<String>,
    /// Question asked to collect it.
    #[serde(default)]
    pub prompt: String,
    /// `any` (default) or `digits`.
    #[serde(default = "default_pattern")]
    pub pattern: String,
    #[serde(default)]
    pub handoff: bool,
}

impl BotConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.greeting.trim().is_empty() {
            return Err(("greeting".into(), "must not be empty".into()));
        }
        for (i, intent) in self.intent.iter().enumerate() {
            let at = |f: &str| format!("intent[{i}].{f}");
            if intent.keywords.iter().all(|k| k.trim().is_empty()) {
                return Err((at("keywords"), "list at least one keyword".into()));
            }
            if intent.collect.is_some() && intent.prompt.trim().is_empty() {
                return Err((
                    at("prompt"),
                    "an intent that collects a value needs a prompt".into(),
                ));
            }
            if intent.collect.is_none() && intent.answer.trim().is_empty() && !intent.handoff {
                return Err((
                    at("answer"),
                    "say something, collect a value, or hand off".into(),
                ));
            }
            if !matches!(intent.pattern.as_str(), "any" | "digits") {
                return Err((
                    at("pattern"),
                    format!("{:?} is not `any` or `digits`", intent.pattern),
                ));
            }
        }
        Ok(())
    }
}

fn default_name() -> String {
    "Assistant".into()
}
fn default_menu_text() -> String {
    "What can I help you with?".into()
}
fn default_handoff_keywords() -> Vec<String> {
    vec!["talk to a person".into(), "agent".into(), "human".into()]
}
fn default_handoff_message() -> String {
    "Let me connect you with a person.".into()
}
fn default_fallback() -> String {
    "Sorry, I did not get that.".into()
}
fn default_pattern() -> String {
    "any".into()
}
