//! `[deployment.branding]`: the widget's look and words, with usable defaults.

use em_protocol::Branding;
use serde::Deserialize;

/// `[deployment.branding]`: snake_case in TOML, every field optional with a usable default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingConfig {
    pub title: String,
    pub greeting: String,
    pub agent_display_name: String,
    pub button_color: String,
    pub header_color: String,
    pub accent_color: String,
    pub font_family: String,
    pub button_label: String,
    pub input_placeholder: String,
    /// Tag of the language these words are in; `[deployment.labels.<lang>]` add others.
    pub language: String,
}

impl Default for BrandingConfig {
    fn default() -> Self {
        Self {
            title: "Chat with us".into(),
            greeting: "Hi! How can we help?".into(),
            agent_display_name: "Agent".into(),
            button_color: "#0b5cab".into(),
            header_color: "#032d60".into(),
            accent_color: "#0b5cab".into(),
            font_family: String::new(),
            button_label: "Chat with an agent".into(),
            input_placeholder: "Type your message".into(),
            language: "en".into(),
        }
    }
}

impl From<&BrandingConfig> for Branding {
    fn from(b: &BrandingConfig) -> Self {
        Branding {
            title: b.title.clone(),
            greeting: b.greeting.clone(),
            agent_display_name: b.agent_display_name.clone(),
            button_color: b.button_color.clone(),
            header_color: b.header_color.clone(),
            accent_color: b.accent_color.clone(),
            font_family: b.font_family.clone(),
            button_label: b.button_label.clone(),
            input_placeholder: b.input_placeholder.clone(),
            language: b.language.clone(),
        }
    }
}
