//! What the page passes in: `embeddedservice_bootstrap.settings` and the `init` arguments,
//! read once, key by key, with `js_sys::Reflect` and typed checks.
//!
//! A mistyped setting is warned about (naming the setting and the fix) and its default used:
//! one bad value never fails the widget. Unknown keys are never looked at.
//!
//! Why not serde-wasm-bindgen (STYLE's "JS config in through serde-wasm-bindgen"): reading
//! these 5 settings and 4 init strings through `from_value` cost 11.5 KB of the 60 KB brotli
//! budget, most of it serde's error messages, which format numbers and so pull in Rust's float
//! formatting (~20 KB of code raw). One `Reflect::get` per known key plus `as_string` /
//! `as_bool` is the same contract in well under 1 KB.

use js_sys::Reflect;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::Element;

use crate::console;
use crate::error::Error;

/// The `init(orgId, deploymentName, siteURL, { scrt2URL })` arguments (checked by the loader).
#[derive(Clone, Debug, PartialEq)]
pub struct InitArgs {
    pub org_id: String,
    pub deployment_name: String,
    pub site_url: String,
    pub scrt2_url: String,
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
    /// `displayMode: 'inline'`: the window lives in `targetElement`, with no floating button.
    pub inline: bool,
    /// Inline: don't open the conversation on load (the page calls `launchChat()`).
    pub no_inline_auto_launch: bool,
    /// `enableUserInputForConversationWithBot` (default true): the composer stays usable
    /// while the bot leads.
    pub input_with_bot: bool,
    /// `shouldOpenLinksInSameTab`.
    pub links_same_tab: bool,
    /// `shouldShowParticipantChgEvntInConvHist`: "agent joined/left" lines in the history.
    pub participant_lines: bool,
    /// `shouldMinimizeWindowOnNewTab`: an open conversation starts minimized in a new page.
    pub minimize_on_new_tab: bool,
}

/// `obj[key]`; `undefined` when `obj` is not an object or the getter throws.
pub fn prop(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// `settings.<name>`: unset (absent, `null`, `undefined`) → `None`; a value `read` refuses is
/// warned about, naming the setting, what it got and `fix`, and reads as `None` (the default).
fn setting<T>(
    obj: &JsValue,
    name: &str,
    expected: &str,
    fix: &str,
    read: fn(&JsValue) -> Option<T>,
) -> Option<T> {
    let v = prop(obj, name);
    if v.is_undefined() || v.is_null() {
        return None;
    }
    let got = read(&v);
    if got.is_none() {
        let kind = v.js_typeof().as_string().unwrap_or_default();
        console::warn(
            &("settings.".to_owned()
                + name
                + " was ignored (invalid type: "
                + &kind
                + ", expected "
                + expected
                + "): set it to "
                + fix
                + "; using the default."),
        );
    }
    got
}

/// A page object `{ name: value }` as pairs: strings as they are, other values as JSON
/// (`{ items: 2 }` → `"2"`). Not an object → a console error naming `method`, and `None`.
pub fn pairs(method: &str, obj: &JsValue) -> Option<Vec<(String, String)>> {
    if !obj.is_object() || js_sys::Array::is_array(obj) {
        console::error(&(method.to_owned() + ": pass an object such as { name: \"value\" }."));
        return None;
    }
    let mut out = Vec::new();
    for entry in js_sys::Object::entries(obj.unchecked_ref()).iter() {
        let entry: js_sys::Array = entry.unchecked_into();
        let (key, value) = (entry.get(0).as_string().unwrap_or_default(), entry.get(1));
        let value = value.as_string().or_else(|| {
            js_sys::JSON::stringify(&value)
                .ok()
                .and_then(|s| s.as_string())
        });
        match value {
            Some(v) => out.push((key, v)),
            None => console::error(
                &(method.to_owned() + ": \"" + &key + "\" was skipped: its value is not JSON."),
            ),
        }
    }
    Some(out)
}

/// A page array of names (`["a", "b"]`). Anything else → a console error, and `None`.
pub fn names(method: &str, list: &JsValue) -> Option<Vec<String>> {
    if !js_sys::Array::is_array(list) {
        console::error(&(method.to_owned() + ": pass an array of names such as [\"name\"]."));
        return None;
    }
    Some(
        js_sys::Array::from(list)
            .iter()
            .filter_map(|v| v.as_string())
            .collect(),
    )
}

fn string(obj: &JsValue, name: &str, fix: &str) -> Option<String> {
    setting(obj, name, "a string", fix, JsValue::as_string)
}

fn flag(obj: &JsValue, name: &str) -> bool {
    setting(obj, name, "a boolean", "true or false", JsValue::as_bool) == Some(true)
}

impl InitArgs {
    pub fn from_js(value: &JsValue) -> Result<InitArgs, Error> {
        let get = |name: &str| match prop(value, name).as_string() {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(Error::Invalid(
                "init: missing ".to_owned() + name + " (a non-empty string)",
            )),
        };
        Ok(InitArgs {
            org_id: get("orgId")?,
            deployment_name: get("deploymentName")?,
            site_url: get("siteURL")?,
            scrt2_url: get("scrt2URL")?.trim_end_matches('/').to_owned(),
        })
    }
}

impl Settings {
    pub fn from_js(value: &JsValue) -> Settings {
        let mut s = Settings {
            language: string(value, "language", "a language code such as \"en_US\"")
                .filter(|l| !l.is_empty()),
            hide_chat_button_on_load: flag(value, "hideChatButtonOnLoad"),
            dev_mode: flag(value, "devMode"),
            no_inline_auto_launch: flag(value, "disableInlineAutoLaunch"),
            input_with_bot: setting(
                value,
                "enableUserInputForConversationWithBot",
                "a boolean",
                "true or false",
                JsValue::as_bool,
            ) != Some(false),
            links_same_tab: flag(value, "shouldOpenLinksInSameTab"),
            participant_lines: flag(value, "shouldShowParticipantChgEvntInConvHist"),
            minimize_on_new_tab: flag(value, "shouldMinimizeWindowOnNewTab"),
            // Sessions are always per deployment here (one stored record per org +
            // deployment), which is what `restrictSessionOnMessagingChannel` asks for.
            ..Settings::default()
        };
        match string(value, "displayMode", "\"inline\" or \"embedded\"").as_deref() {
            Some("inline") => s.inline = true,
            None | Some("embedded") => {}
            Some(other) => console::warn(
                &("settings.displayMode \"".to_owned()
                    + other
                    + "\" is not \"inline\" or \"embedded\"; using the floating button."),
            ),
        }
        const POSITION: &str = "\"<bottom>, <right>\" in CSS lengths (e.g. \"25px, 30px\")";
        if let Some(p) = string(value, "chatButtonPosition", POSITION) {
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
        let target = prop(value, "targetElement");
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
