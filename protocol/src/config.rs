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
    /// Resolved for the `language` query parameter (exact, then its primary subtag, then
    /// the deployment's default).
    pub branding: Branding,
    /// `verified`: no button until the page sets a valid identity token.
    #[serde(default)]
    pub auth: AuthMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prechat_form: Option<PrechatForm>,
    /// Present when the deployment has business hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_hours: Option<BusinessHoursStatus>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AuthMode {
    #[default]
    Anonymous,
    Verified,
}

/// The deployment's pre-chat form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PrechatForm {
    /// Shown before each new conversation, or once per browser session.
    pub display: PrechatDisplay,
    /// Visible fields, in display order.
    pub fields: Vec<PrechatField>,
    /// Names the page may set with `prechatAPI.setHiddenPrechatFields`.
    pub hidden_fields: Vec<HiddenField>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrechatDisplay {
    #[default]
    Conversation,
    Session,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PrechatField {
    /// e.g. `_firstName`, `_lastName`, `_email`, `_subject`, or a custom name.
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    pub required: bool,
    /// In characters.
    pub max_length: u32,
    /// The allowed values of a `choice` field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FieldKind {
    #[default]
    Text,
    Email,
    Choice,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HiddenField {
    pub name: String,
    /// In characters.
    pub max_length: u32,
}

/// Whether the deployment is open now, and when that changes (the widget sets a timer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BusinessHoursStatus {
    pub open: bool,
    /// Milliseconds since the Unix epoch of the next open/close boundary.
    pub next_change_at: i64,
    /// What the button does while closed.
    pub outside_hours: OutsideHours,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutsideHours {
    /// No button outside business hours.
    #[default]
    Hide,
    /// The button stays, marked offline; messages still go into the thread for later.
    Offline,
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
    /// BCP 47-ish tag these words are in (`en`, `pt_BR`), as resolved by the server.
    pub language: String,
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
