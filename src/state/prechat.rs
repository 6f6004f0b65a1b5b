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

    /// One `prechatAPI` call: method `op` (its index in `PRECHAT_API`) with the page's
    /// argument (read from JSON: `Null` when it could not be written). Returns what to tell
    /// the state, and a console message for each thing refused (naming the method, the field
    /// and the fix): bad fields are skipped, the others set.
    pub fn call(&self, op: usize, arg: &Json) -> (Option<Msg>, Vec<String>) {
        let name = PRECHAT_API.get(op).copied().unwrap_or_default();
        let method = "prechatAPI.".to_owned() + name;
        let visible = op >= 2;
        match (op % 2, arg) {
            (0, Json::Obj(fields)) => {
                let (set, bad) = self.check(&method, visible, fields);
                let msg = if visible {
                    Msg::PrechatPrefilled {
                        set,
                        remove: Vec::new(),
                    }
                } else {
                    Msg::ContextChanged {
                        kind: ContextKind::Hidden,
                        set: set.into_iter().map(|(k, v, _)| (k, v)).collect(),
                        remove: Vec::new(),
                    }
                };
                (Some(msg), bad)
            }
            (1, Json::Arr(names)) => {
                let remove = names.iter().filter_map(|n| Some(n.as_str()?.to_owned()));
                let remove = remove.collect();
                let msg = if visible {
                    Msg::PrechatPrefilled {
                        set: Vec::new(),
                        remove,
                    }
                } else {
                    Msg::ContextChanged {
                        kind: ContextKind::Hidden,
                        set: Vec::new(),
                        remove,
                    }
                };
                (Some(msg), Vec::new())
            }
            (0, _) => (None, vec![method + API_WANTS_OBJECT]),
            _ => (
                None,
                vec![method + ": pass an array of field names; nothing was removed."],
            ),
        }
    }

    /// The fields of a `set…PrechatFields` call: the ones to set (name, value, editable), and
    /// a console message for each one refused. (One path for both kinds: each costs wasm.)
    fn check(
        &self,
        method: &str,
        visible: bool,
        fields: &[(String, Json)],
    ) -> (Vec<(String, String, bool)>, Vec<String>) {
        let kind = if visible { "visible" } else { "hidden" };
        // Name, maxLength, choices, must be an email address.
        let declared: Vec<(&str, u32, &[String], bool)> = if visible {
            let f = self.form.fields.iter();
            f.map(|f| {
                (
                    &*f.name,
                    f.max_length,
                    &*f.choices,
                    f.kind == FieldKind::Email,
                )
            })
            .collect()
        } else {
            let f = self.form.hidden_fields.iter();
            f.map(|f| (&*f.name, f.max_length, &[][..], false))
                .collect()
        };
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for (name, v) in fields {
            // Visible: `{ value, isEditableByEndUser }`; hidden: the string itself.
            let (value, editable) = match visible {
                true => (v.get("value"), v.get("isEditableByEndUser")),
                false => (Some(v), None),
            };
            let value = value.and_then(Json::as_str);
            let problem = match (declared.iter().find(|d| d.0 == name), value) {
                (None, _) => [
                    "is not a ",
                    kind,
                    " pre-chat field of this deployment (it has: ",
                    &comma_list(&mut declared.iter().map(|d| d.0)),
                    "); fix the name or add the field to the deployment",
                ]
                .concat(),
                (Some(_), None) if visible => {
                    "needs { value: \"text\", isEditableByEndUser: true or false }".into()
                }
                (Some(_), None) => "is not a string; pass text, e.g. String(value)".into(),
                (Some(&(_, max, choices, email)), Some(v)) => page_value(v, max, choices, email),
            };
            match value {
                Some(v) if problem.is_empty() => {
                    let editable = editable.and_then(Json::as_bool) != Some(false);
                    good.push((name.clone(), v.to_owned(), editable))
                }
                _ => bad.push(
                    [
                        method,
                        ": field \"",
                        name,
                        "\" ",
                        &problem,
                        ". The field was skipped.",
                    ]
                    .concat(),
                ),
            }
        }
        (good, bad)
    }
}

/// The `prechatAPI` methods, in the order of the index the loader passes (`src/loader.js`).
pub const PRECHAT_API: [&str; 4] = [
    "setHiddenPrechatFields",
    "removeHiddenPrechatFields",
    "setVisiblePrechatFields",
    "unsetVisiblePrechatFields",
];

const API_WANTS_OBJECT: &str = ": pass an object of field names and values; nothing was set.";

/// `a, b, c`. (Messages are built with `concat` and this: `String + &str` chains inline a
/// grow-and-copy per piece.)
fn comma_list(items: &mut dyn Iterator<Item = &str>) -> String {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(item);
    }
    out
}

/// Characters, not bytes (maxLength counts characters); a plain loop, not core's SIMD-style
/// counter, which is larger.
fn char_count(s: &str) -> usize {
    s.bytes().filter(|&b| (b as i8) >= -0x40).count()
}

/// Why a value set by the page cannot be used ("": it can).
fn page_value(value: &str, max_length: u32, choices: &[String], email: bool) -> String {
    if char_count(value) > max_length as usize {
        let max = int_string(max_length.into());
        [
            "is longer than its maxLength of ",
            &max,
            " characters; shorten it",
        ]
        .concat()
    } else if has_script(value) {
        "contains a script (a javascript: URL or <script>); pass plain text".into()
    } else if !choices.is_empty() && !value.is_empty() && !choices.iter().any(|c| c == value) {
        let list = comma_list(&mut choices.iter().map(String::as_str));
        ["is not one of its choices (", &list, ")"].concat()
    } else if email && !value.is_empty() && !is_email(value) {
        "is not an email address".into()
    } else {
        String::new()
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

/// `local@domain.tld`: one `@`, no spaces, a dot inside the domain (bytes: no str searcher).
pub fn is_email(value: &str) -> bool {
    let b = value.as_bytes();
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    let domain = b.get(at + 1..).unwrap_or_default();
    at > 0
        && b.iter().filter(|&&c| c == b'@').count() == 1
        && !b.iter().any(u8::is_ascii_whitespace)
        && domain
            .iter()
            .position(|&c| c == b'.')
            .is_some_and(|dot| dot > 0)
        && domain.last() != Some(&b'.')
}

/// What is wrong with what the visitor entered in `field` ("" when nothing is).
pub fn field_error(field: &PrechatField, value: &str) -> String {
    let too_long = char_count(value) > field.max_length as usize;
    if value.is_empty() {
        if field.required {
            "Please fill in this field."
        } else {
            ""
        }
        .into()
    } else if too_long {
        [
            "Use at most ",
            &int_string(field.max_length.into()),
            " characters.",
        ]
        .concat()
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
