//! The widget's error type: every failure is a value with a stable code and a clear message.

use wasm_bindgen::{JsCast, JsValue};

/// Why the widget could not do something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The deployment config endpoint refused (`unknown_deployment`, `origin_not_allowed`, ...).
    #[error("{message}")]
    Config { code: &'static str, message: String },
    /// A browser API threw.
    #[error("{0}")]
    Js(String),
    /// Something the page passed in is not usable.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The stable code used in `onEmbeddedMessagingInitError`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config { code, .. } => code,
            Error::Js(_) => "browser_error",
            Error::Invalid(_) => "invalid_argument",
        }
    }

    /// The message (what `Display` shows), borrowed: `to_string` would go through `core::fmt`.
    pub fn message(&self) -> &str {
        match self {
            Error::Config { message, .. } | Error::Js(message) | Error::Invalid(message) => message,
        }
    }
}

impl From<JsValue> for Error {
    fn from(value: JsValue) -> Self {
        Error::Js(js_message(&value))
    }
}

/// The message of a thrown JS value (an `Error`'s `message`, a string, or a generic text).
pub fn js_message(value: &JsValue) -> String {
    if let Some(err) = value.dyn_ref::<js_sys::Error>() {
        return err.message().into();
    }
    value
        .as_string()
        .unwrap_or_else(|| "unknown JavaScript error".into())
}
