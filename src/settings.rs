//! What the page passes in: `embeddedservice_bootstrap.settings` and the `init` arguments,
//! read once through serde-wasm-bindgen.
//!
//! A mistyped setting is warned about (naming the setting and the fix) and its default used:
//! one bad value never fails the widget. `targetElement` is a DOM element, read apart.

use js_sys::Reflect;
use serde::{Deserialize, Deserializer};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::Element;

use crate::console;
use crate::error::Error;

/// The `init(orgId, deploymentName, siteURL, { scrt2URL })` arguments (checked by the loader).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitArgs {
    pub org_id: String,
    pub deployment_name: String,
    #[serde(rename = "siteURL")]
    pub site_url: String,
    #[serde(rename = "scrt2URL")]
    pub scrt2_url: String,
}

/// The settings this widget understands, as the page wrote them (unknown keys are ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PageSettings {
    language: Checked<String>,
    hide_chat_button_on_load: Checked<bool>,
    chat_button_position: Checked<String>,
    dev_mode: Checked<bool>,
}

/// The settings, checked.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub language: Option<String>,
    pub hide_chat_button_on_load: bool,
    /// `(bottom, right)` CSS lengths from `chatButtonPosition`.
    pub button_position: Option<(String, String)>,
    pub target_element: Option<Element>,
    pub dev_mode: bool,
}

/// One setting: unset (absent, `null`, `undefined`), a value, or why the value was refused.
///
/// serde-wasm-bindgen gives every property its own deserializer, so a refused value is
/// caught here and the rest of the object is still read.
#[derive(Debug)]
struct Checked<T>(Option<Result<T, String>>);

impl<T> Default for Checked<T> {
    fn default() -> Self {
        Checked(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Checked(
            Option::<T>::deserialize(d)
                .map_err(|e| e.to_string())
                .transpose(),
        ))
    }
}

impl<T> Checked<T> {
    /// The value; a refused one is warned about as `settings.<name>`, with `fix`.
    fn value(self, name: &str, fix: &str) -> Option<T> {
        match self.0? {
            Ok(v) => Some(v),
            Err(why) => {
                console::warn(
                    &("settings.".to_owned()
                        + name
                        + " was ignored ("
                        + &why
                        + "): set it to "
                        + fix
                        + "; using the default."),
                );
                None
            }
        }
    }
}

impl InitArgs {
    pub fn from_js(value: &JsValue) -> Result<InitArgs, Error> {
        let mut args: InitArgs = serde_wasm_bindgen::from_value(value.clone())
            .map_err(|e| Error::Invalid("init: ".to_owned() + &e.to_string()))?;
        for (name, v) in [
            ("orgId", &args.org_id),
            ("deploymentName", &args.deployment_name),
            ("siteURL", &args.site_url),
            ("scrt2URL", &args.scrt2_url),
        ] {
            if v.is_empty() {
                return Err(Error::Invalid("init: missing ".to_owned() + name));
            }
        }
        args.scrt2_url = args.scrt2_url.trim_end_matches('/').to_owned();
        Ok(args)
    }
}

impl Settings {
    pub fn from_js(value: &JsValue) -> Settings {
        let page: PageSettings = if value.is_object() {
            serde_wasm_bindgen::from_value(value.clone()).unwrap_or_default()
        } else {
            PageSettings::default()
        };
        let flag = |c: Checked<bool>, name| c.value(name, "true or false") == Some(true);
        let mut s = Settings {
            language: page
                .language
                .value("language", "a language code such as \"en_US\"")
                .filter(|l| !l.is_empty()),
            hide_chat_button_on_load: flag(page.hide_chat_button_on_load, "hideChatButtonOnLoad"),
            dev_mode: flag(page.dev_mode, "devMode"),
            ..Settings::default()
        };
        const POSITION: &str = "\"<bottom>, <right>\" in CSS lengths (e.g. \"25px, 30px\")";
        if let Some(p) = page
            .chat_button_position
            .value("chatButtonPosition", POSITION)
        {
            s.button_position = parse_position(&p);
            if s.button_position.is_none() {
                console::warn(
                    &("settings.chatButtonPosition \"".to_owned()
                        + &p
                        + "\" is not "
                        + POSITION
                        + "; using the default position."),
                );
            }
        }
        let target = if value.is_object() {
            Reflect::get(value, &JsValue::from_str("targetElement")).unwrap_or(JsValue::UNDEFINED)
        } else {
            JsValue::UNDEFINED
        };
        if !target.is_undefined() && !target.is_null() {
            match target.dyn_into::<Element>() {
                Ok(el) => s.target_element = Some(el),
                Err(_) => console::warn(
                    "settings.targetElement is not a DOM element; using document.body.",
                ),
            }
        }
        s
    }
}

/// `"25px, 30px"` → `("25px", "30px")`; anything that is not two CSS lengths → `None`.
pub fn parse_position(value: &str) -> Option<(String, String)> {
    let mut parts = value.split(',').map(str::trim);
    let (bottom, right) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_length(bottom) || !is_length(right) {
        return None;
    }
    Some((bottom.to_owned(), right.to_owned()))
}

fn is_length(v: &str) -> bool {
    let bytes = v.as_bytes();
    let unit_at = bytes
        .iter()
        .position(|c| !(c.is_ascii_digit() || *c == b'.'))
        .unwrap_or(bytes.len());
    let (num, unit) = bytes.split_at(unit_at);
    let digits = num.iter().filter(|c| c.is_ascii_digit()).count();
    if digits == 0 || num.iter().filter(|b| **b == b'.').count() > 1 {
        return false;
    }
    matches!(
        unit,
        b"px"
            | b"%"
            | b"em"
            | b"rem"
            | b"vh"
            | b"vw"
            | b"vmin"
            | b"vmax"
            | b"dvh"
            | b"dvw"
            | b"svh"
            | b"svw"
    ) || (unit.is_empty() && num.iter().all(|c| *c == b'0' || *c == b'.'))
}

/// The visitor socket URL: `ws(s)://…/embeddedservice/v1/ws?orgId=&esConfigName=`.
pub fn socket_url(args: &InitArgs) -> String {
    let base = &args.scrt2_url;
    let base = if let Some(rest) = base.strip_prefix("https://") {
        "wss://".to_owned() + rest
    } else if let Some(rest) = base.strip_prefix("http://") {
        "ws://".to_owned() + rest
    } else {
        base.clone()
    };
    base + em_protocol::paths::VISITOR_SOCKET
        + "?orgId="
        + &encode(&args.org_id)
        + "&esConfigName="
        + &encode(&args.deployment_name)
}

/// Percent-encoding for a query value (RFC 3986 unreserved characters stay as they are).
pub fn encode(value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// The localStorage key of this org + deployment.
pub fn storage_key(args: &InitArgs) -> String {
    "embeddedMessaging:".to_owned() + &args.org_id + ":" + &args.deployment_name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> InitArgs {
        InitArgs {
            org_id: "00D000000000001".into(),
            deployment_name: "My Deployment".into(),
            site_url: "https://example.com/ESW".into(),
            scrt2_url: "https://chat.example.com".into(),
        }
    }

    #[test]
    fn position_accepts_two_css_lengths() {
        // chatButtonPosition takes "<bottom>, <right>" in px, %, em... and rejects anything else.
        assert_eq!(
            parse_position("25px, 30px"),
            Some(("25px".into(), "30px".into()))
        );
        assert_eq!(parse_position("1%,1%"), Some(("1%".into(), "1%".into())));
        assert_eq!(
            parse_position("0, 2.5rem"),
            Some(("0".into(), "2.5rem".into()))
        );
        for bad in [
            "",
            "25px",
            "25px, 30px, 1px",
            "left, 3px",
            "10, 10",
            "px, 3px",
            "3px; color: red, 1px",
        ] {
            assert_eq!(parse_position(bad), None, "{bad}");
        }
    }

    #[test]
    fn urls_are_derived_from_scrt2_url() {
        // The socket URL is the ws(s) twin of scrt2URL with encoded query values; the storage key is namespaced.
        let a = args();
        assert_eq!(
            socket_url(&a),
            "wss://chat.example.com/embeddedservice/v1/ws?orgId=00D000000000001&esConfigName=My%20Deployment"
        );
        let local = InitArgs {
            scrt2_url: "http://127.0.0.1:8080".into(),
            ..a
        };
        assert!(socket_url(&local).starts_with("ws://127.0.0.1:8080/embeddedservice/v1/ws?"));
        assert_eq!(
            storage_key(&local),
            "embeddedMessaging:00D000000000001:My Deployment"
        );
    }
}
