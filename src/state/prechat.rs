//! The pre-chat form and `prechatAPI`: the rules for field values, and the form that comes
//! before a new conversation (part of `State::update`).
//!
//! The form gates the conversation itself, not just the composer: `join` creates no
//! conversation while the form waits, so a reload before submitting shows the form again
//! and the agent never sees a conversation without its pre-chat values.

use em_protocol::{FieldKind, PrechatDisplay, PrechatField, PrechatForm};

use super::*;
use crate::json::{Json, Obj, int_string};

/// The deployment's form and where the visitor is with it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prechat {
    /// The deployment's form (empty when it has none).
    pub form: PrechatForm,
    /// Filled in for the next new conversation (display `Session`: for this browser session).
    pub submitted: bool,
    /// `onEmbeddedMessagingPreChatLoaded` fired for the form now waiting.
    loaded_fired: bool,
    /// `setVisiblePrechatFields`: name, value, editable by the visitor.
    pub prefill: Vec<(String, String, bool)>,
    /// Bumped when `prefill` changes or the form is shown anew: the view refills its inputs.
    pub epoch: u32,
    /// After a refused submit, one message per visible field ("" when the field is fine).
    pub errors: Vec<String>,
}

/// What a page passed as a field value: a string, or something else.
pub type PageValue = Option<String>;

impl Prechat {
    /// A form for `form`; `remembered` is what this browser session stored on submitting
    /// (display `Session` only: the form is not shown again, its values go to new
    /// conversations). Returns the remembered values to put in the context.
    pub fn new(form: PrechatForm, remembered: Option<&str>) -> (Prechat, Vec<(String, String)>) {
        let (submitted, values) = match remembered.and_then(Json::parse) {
            Some(Json::Obj(pairs)) if form.display == PrechatDisplay::Session => (
                true,
                pairs
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
                    .collect(),
            ),
            _ => (false, Vec::new()),
        };
        let p = Prechat {
            form,
            submitted,
            ..Prechat::default()
        };
        (p, values)
    }

    fn visible(&self, name: &str) -> Option<&PrechatField> {
        self.form.fields.iter().find(|f| f.name == name)
    }

    /// `setHiddenPrechatFields`: the pairs to set, and a console message for each one refused.
    pub fn check_hidden(
        &self,
        pairs: Vec<(String, PageValue)>,
    ) -> (Vec<(String, String)>, Vec<String>) {
        let method = "prechatAPI.setHiddenPrechatFields";
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for (name, value) in pairs {
            let field = self.form.hidden_fields.iter().find(|f| f.name == name);
            let names = self.form.hidden_fields.iter().map(|f| f.name.as_str());
            let problem = match (field, &value) {
                (None, _) => not_declared("hidden", names),
                (Some(f), Some(v)) => page_value(v, f.max_length, &[]),
                (Some(_), None) => Some(NOT_A_STRING.into()),
            };
            match (problem, value) {
                (None, Some(v)) => good.push((name, v)),
                (problem, _) => bad.push(refusal(method, &name, &problem.unwrap_or_default())),
            }
        }
        (good, bad)
    }

    /// `setVisiblePrechatFields`: the prefills to set, and a console message for each refused.
    pub fn check_visible(
        &self,
        fields: Vec<(String, PageValue, bool)>,
    ) -> (Vec<(String, String, bool)>, Vec<String>) {
        let method = "prechatAPI.setVisiblePrechatFields";
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for (name, value, editable) in fields {
            let names = self.form.fields.iter().map(|f| f.name.as_str());
            let problem = match (self.visible(&name), &value) {
                (None, _) => not_declared("visible", names),
                (Some(f), Some(v)) => page_value(v, f.max_length, &f.choices).or_else(|| {
                    (f.kind == FieldKind::Email && !v.is_empty() && !is_email(v))
                        .then(|| "is not an email address".into())
                }),
                (Some(_), None) => Some(NOT_A_STRING.into()),
            };
            match (problem, value) {
                (None, Some(v)) => good.push((name, v, editable)),
                (problem, _) => bad.push(refusal(method, &name, &problem.unwrap_or_default())),
            }
        }
        (good, bad)
    }
}

const NOT_A_STRING: &str = "is not a string; pass text, e.g. String(value)";

fn not_declared<'a>(kind: &str, names: impl Iterator<Item = &'a str>) -> Option<String> {
    let declared: Vec<&str> = names.collect();
    Some(
        "is not a ".to_owned()
            + kind
            + " pre-chat field of this deployment (it has: "
            + &declared.join(", ")
            + "); fix the name or add the field to the deployment",
    )
}

/// `method: field "name" …; it was skipped.`
fn refusal(method: &str, name: &str, problem: &str) -> String {
    method.to_owned() + ": field \"" + name + "\" " + problem + ". The field was skipped."
}

/// Why a value set by the page cannot be used (`None`: it can).
fn page_value(value: &str, max_length: u32, choices: &[String]) -> Option<String> {
    if value.chars().count() > max_length as usize {
        Some(
            "is longer than its maxLength of ".to_owned()
                + &int_string(max_length.into())
                + " characters; shorten it",
        )
    } else if has_script(value) {
        Some("contains a script (a javascript: URL or <script>); pass plain text".into())
    } else if !choices.is_empty() && !value.is_empty() && !choices.iter().any(|c| c == value) {
        Some("is not one of its choices (".to_owned() + &choices.join(", ") + ")")
    } else {
        None
    }
}

/// A `javascript:` URL (browsers ignore whitespace and case in the scheme) or a `<script`.
/// (Bytes, not chars: URL parsers drop only ASCII tabs, newlines and controls, and byte
/// windows keep Unicode case tables and the `str::contains` searcher, ~20 KB brotli with the
/// panic formatting it drags in, out of the wasm.)
pub fn has_script(value: &str) -> bool {
    let squeezed: Vec<u8> = value
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && !b.is_ascii_control())
        .collect();
    let has = |needle: &[u8]| {
        squeezed
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    has(b"javascript:") || has(b"<script")
}

/// `local@domain.tld`: one `@`, no spaces, a dot inside the domain.
pub fn is_email(value: &str) -> bool {
    match value.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && !value.contains(char::is_whitespace)
                && domain
                    .split_once('.')
                    .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !domain.ends_with('.'))
        }
        None => false,
    }
}

/// What is wrong with what the visitor entered in `field` ("" when nothing is).
pub fn field_error(field: &PrechatField, value: &str) -> String {
    let too_long = value.chars().count() > field.max_length as usize;
    if value.is_empty() {
        if field.required {
            "Please fill in this field."
        } else {
            ""
        }
        .into()
    } else if too_long {
        "Use at most ".to_owned() + &int_string(field.max_length.into()) + " characters."
    } else if has_script(value) {
        "Please enter plain text.".into()
    } else if field.kind == FieldKind::Email && !is_email(value) {
        "Enter an email address like name@example.com.".into()
    } else if field.kind == FieldKind::Choice && !field.choices.iter().any(|c| c == value) {
        "Choose one of the options.".into()
    } else {
        String::new()
    }
}

impl State {
    /// The form shows in place of the composer: the deployment has visible fields and the
    /// next conversation is a new one the visitor has not filled the form for.
    pub fn prechat_shown(&self) -> bool {
        self.conversation_id.is_none()
            && !self.prechat.submitted
            && !self.prechat.form.fields.is_empty()
    }

    /// The value the form shows for field `i`: the page's prefill, if any.
    pub fn prechat_prefill(&self, name: &str) -> Option<&(String, String, bool)> {
        self.prechat.prefill.iter().find(|(n, _, _)| n == name)
    }

    /// The visitor submitted the form with `values` (one per visible field, in order).
    pub(super) fn submit_prechat(&mut self, values: Vec<String>, fx: &mut Vec<Effect>) {
        if !self.prechat_shown() {
            return;
        }
        let mut set = Vec::new();
        let mut remove = Vec::new();
        let mut errors = Vec::new();
        for (field, value) in self.prechat.form.fields.iter().zip(values) {
            // A field the page made read-only keeps the page's value.
            let value = match self.prechat_prefill(&field.name) {
                Some((_, v, false)) => v.clone(),
                _ => value.trim().to_owned(),
            };
            errors.push(field_error(field, &value));
            if value.is_empty() {
                remove.push(field.name.clone());
            } else {
                set.push((field.name.clone(), value));
            }
        }
        if errors.iter().any(|e| !e.is_empty()) {
            self.prechat.errors = errors;
            // The view moves focus to the first field in error.
            fx.push(Effect::FocusInput);
            return;
        }
        self.prechat.errors.clear();
        self.prechat.submitted = true;
        let display = self.prechat.form.display;
        self.change_context(ContextKind::Prechat, set, &remove, fx);
        fx.push(Effect::Emit(Event::PrechatSubmitted(display)));
        if display == PrechatDisplay::Session {
            let mut o = Obj::new();
            for (k, v) in &self.context.prechat {
                o = o.str(k, v);
            }
            fx.push(Effect::RememberPrechat(o.end()));
        }
        fx.push(Effect::FocusInput);
        // Welcomed and waiting for the form: create the conversation now.
        if self.link == Link::Joining && self.conversation_id.is_none() {
            fx.push(Effect::NewConversationId);
        }
    }

    /// `setVisiblePrechatFields` / `unsetVisiblePrechatFields` (already checked).
    pub(super) fn prefill_prechat(&mut self, set: Vec<(String, String, bool)>, remove: &[String]) {
        let prefill = &mut self.prechat.prefill;
        prefill.retain(|(n, _, _)| !remove.contains(n) && !set.iter().any(|(s, _, _)| s == n));
        prefill.extend(set);
        self.prechat.epoch = self.prechat.epoch.wrapping_add(1);
    }

    /// A new conversation follows an ended one: display `Conversation` asks again.
    pub(super) fn prechat_again(&mut self) {
        if self.prechat.form.display == PrechatDisplay::Conversation {
            self.prechat.submitted = false;
            self.prechat.loaded_fired = false;
            self.prechat.epoch = self.prechat.epoch.wrapping_add(1);
        }
    }

    /// `onEmbeddedMessagingPreChatLoaded` once the visitor can see the waiting form.
    pub(super) fn prechat_loaded(&mut self, fx: &mut Vec<Effect>) {
        if self.window == WindowState::Maximized
            && self.prechat_shown()
            && !self.prechat.loaded_fired
        {
            self.prechat.loaded_fired = true;
            fx.push(Effect::Emit(Event::PrechatLoaded(
                self.prechat.form.display,
            )));
        }
    }
}
