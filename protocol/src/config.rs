//! The deployment config the widget reads over HTTP before it shows the button.

use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// `GET {scrt2URL}/embeddedservice/v1/embedded-service-config` → 200 with this body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfig {
    pub org_id: String,
    pub deployment_name: String,
    pub protocol_version: u32,
    pub branding: Branding,
}

/// Look and words of the widget, set by the admin.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Branding {
    /// Window title, e.g. "Chat with us".
    pub title: String,
    /// Shown at the top of a new conversation.
    pub greeting: String,
    /// Shown for agents when no name is known.
    pub agent_display_name: String,
    /// Launcher and visitor-bubble color (CSS color).
    pub button_color: String,
    /// Header background (CSS color).
    pub header_color: String,
    /// Focus rings and links (CSS color).
    pub accent_color: String,
    /// CSS font-family; empty inherits the page's.
    pub font_family: String,
    /// Accessible name of the launcher, e.g. "Chat with an agent".
    pub button_label: String,
    /// Composer placeholder, e.g. "Type your message".
    pub input_placeholder: String,
}

/// Any non-200 answer of the config endpoint: `{ "error": { code, message } }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigError {
    pub error: ConfigErrorBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigErrorBody {
    pub code: ErrorCode,
    pub message: String,
}
