//! The embedded-messaging widget: Rust compiled to WebAssembly behind the
//! `embeddedservice_bootstrap` loader (`src/loader.js`).
//!
//! Map of the crate:
//! - [`state`]: the pure core (`State`, `Msg`, `Effect`, `State::update`), tested natively;
//! - [`runtime`]: the one queue that feeds `Msg`s to the state and runs its effects;
//! - [`view`] + [`dom`] + [`style`]: all DOM and CSS (launcher, shadow-root window);
//! - [`socket`]: the visitor connection, one per browser (`src/link.js` shares it across tabs);
//!   [`storage`]: localStorage; [`events`]: window events;
//! - [`boot`]: config fetch → mount → Ready; [`settings`]: what the page passes in;
//! - [`wire`] + [`json`]: JSON text ↔ protocol types at the edges;
//! - [`error`], [`console`]: errors as values, prefixed console output.

pub mod boot;
pub mod console;
pub mod dom;
pub mod error;
pub mod events;
pub mod json;
pub mod runtime;
pub mod settings;
pub mod socket;
pub mod state;
pub mod storage;
pub mod style;
pub mod view;
pub mod wire;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::runtime::Runtime;
use crate::settings::{InitArgs, Settings};
use crate::state::{ContextKind, Msg, State, WindowState};

/// The handle the loader forwards API calls to.
#[wasm_bindgen]
pub struct Widget {
    rt: Runtime,
}

#[wasm_bindgen]
impl Widget {
    /// `utilAPI.launchChat()`: opens or maximizes the window; resolves once it is open.
    #[wasm_bindgen(js_name = launchChat)]
    pub fn launch_chat(&self) -> Promise {
        self.rt.launch_chat()
    }

    /// `utilAPI.sendTextMessage(text)`: sends as the visitor; rejects (with a string) unless a
    /// conversation is open (`onEmbeddedMessagingConversationOpened`) and `text` is not blank.
    /// Resolves once the message is queued: the outbox delivers it when the server is reachable.
    #[wasm_bindgen(js_name = sendTextMessage)]
    pub fn send_text_message(&self, text: JsValue) -> Promise {
        let rt = self.rt.clone();
        future_to_promise(async move {
            let text = text
                .as_string()
                .filter(|t| !t.trim().is_empty())
                .ok_or("utilAPI.sendTextMessage: text must be a non-empty string.")?;
            if rt.with_state(State::conversation_open) != Some(true) {
                return Err(
                    "utilAPI.sendTextMessage: no conversation is open yet; call it after onEmbeddedMessagingConversationOpened.".into(),
                );
            }
            let (entry_id, now) = view::fresh_entry();
            rt.dispatch(Msg::SendTextRequested {
                text,
                entry_id,
                now,
            });
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `utilAPI.minimizeChat()`.
    #[wasm_bindgen(js_name = minimizeChat)]
    pub fn minimize_chat(&self) -> Promise {
        let rt = self.rt.clone();
        future_to_promise(async move {
            rt.dispatch(Msg::MinimizeRequested);
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `utilAPI.showChatButton()`: always succeeds.
    #[wasm_bindgen(js_name = showChatButton)]
    pub fn show_chat_button(&self) -> bool {
        self.rt
            .dispatch(Msg::ButtonVisibilityRequested { hidden: false });
        true
    }

    /// `utilAPI.hideChatButton()`: fails (false) while the window shows.
    #[wasm_bindgen(js_name = hideChatButton)]
    pub fn hide_chat_button(&self) -> bool {
        if self.rt.with_state(|s| s.window) != Some(WindowState::Closed) {
            console::warn("utilAPI.hideChatButton: the chat window is showing; close it first.");
            return false;
        }
        self.rt
            .dispatch(Msg::ButtonVisibilityRequested { hidden: true });
        true
    }

    /// `userVerificationAPI.setIdentityToken({ identityTokenType: "JWT", identityToken })`:
    /// false (with a console message, never a throw) unless the deployment is verified and
    /// the token is a JWT that has not expired. The server verifies its signature.
    #[wasm_bindgen(js_name = setIdentityToken)]
    pub fn set_identity_token(&self, arg: JsValue) -> bool {
        const M: &str = "userVerificationAPI.setIdentityToken: ";
        let refuse = |why: &str| {
            console::error(&(M.to_owned() + why));
            false
        };
        if self.rt.with_state(|s| s.verified) != Some(true) {
            return refuse(
                "this deployment does not use user verification, so the token is ignored. Turn on verified mode for the deployment on the server, or don't call it.",
            );
        }
        let kind = settings::prop(&arg, "identityTokenType").as_string();
        let token = settings::prop(&arg, "identityToken").as_string();
        let (Some("JWT"), Some(token)) = (kind.as_deref(), token) else {
            return refuse("pass { identityTokenType: \"JWT\", identityToken: \"<the JWT>\" }.");
        };
        match state::check_token(&token, js_sys::Date::now()) {
            Ok(()) => {
                self.rt.dispatch(Msg::IdentityTokenSet(token));
                true
            }
            Err(why) => refuse(&("the token ".to_owned() + why + "; pass a fresh JWT.")),
        }
    }

    /// `userVerificationAPI.clearSession(end?)`: forgets the identity and the conversation in
    /// every tab and fires Ready again; `true` also ends the conversation on the server.
    #[wasm_bindgen(js_name = clearSession)]
    pub fn clear_session(&self, end: JsValue) -> Promise {
        self.rt.dispatch(Msg::ClearSessionRequested {
            end: end.as_bool() == Some(true),
        });
        Promise::resolve(&JsValue::UNDEFINED)
    }

    /// `utilAPI.setSessionContext(obj)`: variables for the bot, routing and the agent.
    #[wasm_bindgen(js_name = setSessionContext)]
    pub fn set_session_context(&self, obj: JsValue) {
        self.set_context("utilAPI.setSessionContext", ContextKind::Session, &obj);
    }

    /// `autoResponseAPI.setAutoResponseParameters(obj)`: merged into automated messages.
    #[wasm_bindgen(js_name = setAutoResponseParameters)]
    pub fn set_auto_response_parameters(&self, obj: JsValue) {
        self.set_context(
            "autoResponseAPI.setAutoResponseParameters",
            ContextKind::AutoResponse,
            &obj,
        );
    }

    /// `autoResponseAPI.removeAutoResponseParameters(names)`.
    #[wasm_bindgen(js_name = removeAutoResponseParameters)]
    pub fn remove_auto_response_parameters(&self, names: JsValue) {
        if let Some(remove) =
            settings::names("autoResponseAPI.removeAutoResponseParameters", &names)
        {
            self.rt.dispatch(Msg::ContextChanged {
                kind: ContextKind::AutoResponse,
                set: Vec::new(),
                remove,
            });
        }
    }

    /// `prechatAPI.<PRECHAT_API[op]>(arg)`, with the argument as JSON text (the loader's
    /// `JSON.stringify`; `None` when it has none). Hidden fields must be declared hidden fields
    /// with a plain string within their maxLength; visible ones prefill the form. Bad fields
    /// are logged and skipped, never thrown. (One export reading JSON with the widget's reader
    /// costs far less wasm than four exports walking page objects with `Reflect`.)
    pub fn prechat(&self, op: usize, arg: Option<String>) {
        let arg = arg.as_deref().and_then(json::Json::parse);
        let arg = arg.unwrap_or(json::Json::Null);
        if let Some((msg, refused)) = self.rt.with_state(|s| s.prechat.call(op, &arg)) {
            refused.iter().for_each(|r| console::error(r));
            if let Some(msg) = msg {
                self.rt.dispatch(msg);
            }
        }
    }

    /// Remove every element, listener, socket and timer of the widget.
    #[wasm_bindgen(js_name = removeAllComponents)]
    pub fn remove_all_components(&self) {
        self.rt.shut_down();
    }
}

impl Widget {
    fn set_context(&self, method: &str, kind: ContextKind, obj: &JsValue) {
        if let Some(set) = settings::pairs(method, obj) {
            self.rt.dispatch(Msg::ContextChanged {
                kind,
                set,
                remove: Vec::new(),
            });
        }
    }
}

/// Entry point called by the loader with `(settings, {orgId, deploymentName, siteURL,
/// scrt2URL}, config)`, where `config` is the loader's fetch of the deployment config:
/// `{status, body}` or `{error}`. Returns the `Widget` after `onEmbeddedMessagingReady`;
/// throws (after a console error and `onEmbeddedMessagingInitError`) when the deployment
/// cannot be used.
#[wasm_bindgen]
pub fn start(settings: JsValue, init: JsValue, config: JsValue) -> Result<Widget, JsError> {
    let result = match InitArgs::from_js(&init) {
        Ok(args) => boot::boot(Settings::from_js(&settings), args, &config),
        Err(e) => Err(e),
    };
    match result {
        Ok(rt) => Ok(Widget { rt }),
        Err(e) => {
            boot::report(&e);
            Err(JsError::new(e.message()))
        }
    }
}
