//! The pre-chat form and `prechatAPI`: value rules and the form before a new conversation.
//!
//! Part of `State::update`. The form gates the conversation itself, not just the composer:
//! `join` creates no conversation while the form waits, so a reload before submitting shows
//! the form again and the agent never sees a conversation without its pre-chat values.

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
    /// `setVisiblePrechatFields` values (kept like context pairs: `prechat` of a `Context`).
    pub prefill: Context,
    /// Prefilled fields the visitor may not edit (`isEditableByEndUser: false`).
    pub locked: Vec<String>,
    /// Bumped when the prefills change or the form is shown anew: the view refills its inputs.
    pub epoch: u32,
    /// After a refused submit, one message per visible field ("" when the field is fine).
    pub errors: Vec<String>,
}

/// The `prechatAPI` methods, in the order of the index the loader passes (`src/loader.js`).
pub const PRECHAT_API: [&str; 4] = [
    "setHiddenPrechatFields",
    "removeHiddenPrechatFields",
    "setVisiblePrechatFields",
    "unsetVisiblePrechatFields",
];

impl Prechat {
    /// A form for `form`; `remembered` is what this browser session stored on submitting
    /// (display `Session` only: the form is not shown again, its values go to new
    /// conversations). Returns the remembered values to put in the context.
    pub fn new(form: PrechatForm, remembered: Option<&str>) -> (Prechat, Vec<(String, String)>) {
        let mut values = Vec::new();
        let remembered = remembered.and_then(Json::parse);
        let submitted =
            form.display == PrechatDisplay::Session && matches!(remembered, Some(Json::Obj(_)));
        if let (true, Some(Json::Obj(pairs))) = (submitted, remembered) {
            for (k, v) in pairs {
                if let Json::Str(v) = v {
                    values.push((k, v));
                }
            }
        }
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
        let method = cat(&["prechatAPI.", name]);
        let visible = op >= 2;
        let (mut set, mut locked, mut remove, mut bad) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        match (op % 2, arg) {
            (0, Json::Obj(fields)) => {
                // Name, maxLength, choices, must be an email address; and the names listed.
                let (mut declared, mut names) = (Vec::new(), String::new());
                if visible {
                    for f in &self.form.fields {
                        let email = f.kind == FieldKind::Email;
                        declared.push((&*f.name, f.max_length, &*f.choices, email));
                    }
                } else {
                    for f in &self.form.hidden_fields {
                        declared.push((&*f.name, f.max_length, &[][..], false));
                    }
                }
                for d in &declared {
                    push_listed(&mut names, d.0);
                }
                for (field, raw) in fields {
                    // Visible: `{ value, isEditableByEndUser }`; hidden: the string itself.
                    let value = if visible { raw.get("value") } else { Some(raw) };
                    let value = value.and_then(Json::as_str);
                    let kind = if visible { "visible" } else { "hidden" };
                    let problem = match (declared.iter().find(|d| d.0 == field), value) {
                        (None, _) => cat(&[
                            "is not a ",
                            kind,
                            " pre-chat field of this deployment (it has: ",
                            &names,
                            "); fix the name or add the field to the deployment",
                        ]),
                        (Some(_), None) if visible => {
                            "needs { value: \"text\", isEditableByEndUser: true or false }".into()
                        }
                        (Some(_), None) => "is not a string; pass text, e.g. String(value)".into(),
                        (Some(&(_, max, choices, email)), Some(v)) => {
                            let rule = broken_rule(v, max, choices, email);
                            let mut detail = String::new();
                            match rule {
                                Rule::TooLong => detail = int_string(max.into()),
                                Rule::NotAChoice => {
                                    for c in choices {
                                        push_listed(&mut detail, c);
                                    }
                                }
                                _ => {}
                            }
                            say(rule, &PAGE_SAYS, &detail)
                        }
                    };
                    match value {
                        Some(v) if problem.is_empty() => {
                            let editable = raw.get("isEditableByEndUser").and_then(Json::as_bool);
                            if editable == Some(false) {
                                locked.push(field.clone());
                            }
                            set.push((field.clone(), v.to_owned()));
                        }
                        _ => bad.push(cat(&[
                            &method,
                            ": field \"",
                            field,
                            "\" ",
                            &problem,
                            ". The field was skipped.",
                        ])),
                    }
                }
            }
            (1, Json::Arr(names)) => {
                for n in names {
                    if let Json::Str(n) = n {
                        remove.push(n.clone());
                    }
                }
            }
            _ => {
                let why = if op.is_multiple_of(2) {
                    ": pass an object of field names and values; nothing was set."
                } else {
                    ": pass an array of field names; nothing was removed."
                };
                return (None, vec![cat(&[&method, why])]);
            }
        }
        let msg = if visible {
            Msg::PrechatPrefilled {
                set,
                locked,
                remove,
            }
        } else {
            Msg::ContextChanged {
                kind: ContextKind::Hidden,
                set,
                remove,
            }
        };
        (Some(msg), bad)
    }
}

/// The pieces joined. (Messages are built with this: `String + &str` chains inline a
/// grow-and-copy per piece, and `[&str]::concat` is a kilobyte of generic code.)
#[inline(never)]
pub fn cat(parts: &[&str]) -> String {
    let mut out = String::new();
    for p in parts {
        out.push_str(p);
    }
    out
}

/// `item` appended to a `a, b, c` list.
fn push_listed(list: &mut String, item: &str) {
    if !list.is_empty() {
        list.push_str(", ");
    }
    list.push_str(item);
}

/// The rule a value breaks, shared by the page's values and the visitor's (their messages
/// differ: the page's name the fix for a developer, the visitor's are for the visitor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Kept,
    TooLong,
    Script,
    NotAChoice,
    NotAnEmail,
}

/// What each broken rule (from `TooLong` on) says, around its detail (the maxLength, the
/// choices): tables and one `say` instead of a string built per case.
const PAGE_SAYS: [(&str, &str); 4] = [
    (
        "is longer than its maxLength of ",
        " characters; shorten it",
    ),
    (
        "contains a script (a javascript: URL or <script>); pass plain text",
        "",
    ),
    ("is not one of its choices (", ")"),
    ("is not an email address", ""),
];
const VISITOR_SAYS: [(&str, &str); 4] = [
    ("Use at most ", " characters."),
    ("Please enter plain text.", ""),
    ("Choose one of the options.", ""),
    ("Enter an email address like name@example.com.", ""),
];

fn say(rule: Rule, says: &[(&str, &str); 4], detail: &str) -> String {
    match says.get((rule as usize).wrapping_sub(1)) {
        Some((before, after)) => cat(&[before, detail, after]),
        None => String::new(),
    }
}

fn broken_rule(value: &str, max_length: u32, choices: &[String], email: bool) -> Rule {
    // Characters, not bytes: count the bytes that start one (smaller than `chars().count()`).
    let chars = value.bytes().filter(|&b| (b as i8) >= -0x40).count();
    if chars > max_length as usize {
        Rule::TooLong
    } else if has_script(value) {
        Rule::Script
    } else if !choices.is_empty() && !value.is_empty() && !choices.iter().any(|c| c == value) {
        Rule::NotAChoice
    } else if email && !value.is_empty() && !is_email(value) {
        Rule::NotAnEmail
    } else {
        Rule::Kept
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
    let email = field.kind == FieldKind::Email;
    if value.is_empty() && field.required {
        return "Please fill in this field.".into();
    }
    let rule = broken_rule(value, field.max_length, &field.choices, email);
    let max = int_string(field.max_length.into());
    say(
        rule,
        &VISITOR_SAYS,
        if rule == Rule::TooLong { &max } else { "" },
    )
}

impl State {
    /// The form shows in place of the composer: the deployment has visible fields and the
    /// next conversation is a new one the visitor has not filled the form for.
    pub fn prechat_shown(&self) -> bool {
        self.conversation_id.is_none()
            && !self.prechat.submitted
            && !self.prechat.form.fields.is_empty()
    }

    /// The page's prefill of field `name` and whether the visitor may edit it.
    pub fn prechat_prefill(&self, name: &str) -> Option<(&str, bool)> {
        let (_, value) = self
            .prechat
            .prefill
            .prechat
            .iter()
            .find(|(n, _)| n == name)?;
        Some((value, !self.prechat.locked.iter().any(|n| n == name)))
    }

    /// The visitor submitted the form with `values` (one per visible field, in order).
    pub(super) fn submit_prechat(&mut self, values: Vec<String>, fx: &mut Vec<Effect>) {
        if !self.prechat_shown() {
            return;
        }
        let mut set = Vec::new();
        let mut remove = Vec::new();
        let mut errors = Vec::new();
        let mut refused = false;
        for (field, value) in self.prechat.form.fields.iter().zip(values) {
            // A field the page made read-only keeps the page's value.
            let value = match self.prechat_prefill(&field.name) {
                Some((v, false)) => v.to_owned(),
                _ => value.trim().to_owned(),
            };
            let error = field_error(field, &value);
            refused |= !error.is_empty();
            errors.push(error);
            if value.is_empty() {
                remove.push(field.name.clone());
            } else {
                set.push((field.name.clone(), value));
            }
        }
        if refused {
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
    pub(super) fn prefill_prechat(
        &mut self,
        set: Vec<(String, String)>,
        locked: Vec<String>,
        remove: &[String],
    ) {
        let p = &mut self.prechat;
        p.locked
            .retain(|n| !remove.contains(n) && !set.iter().any(|(s, _)| s == n));
        p.locked.extend(locked);
        p.prefill.change(ContextKind::Prechat, set, remove);
        p.epoch = p.epoch.wrapping_add(1);
    }

    /// `clearSession`: the next visitor fills the form again (the page's prefills stay).
    pub(super) fn forget_prechat(&mut self) {
        let p = &mut self.prechat;
        p.submitted = false;
        p.loaded_fired = false;
        p.errors.clear();
        p.epoch = p.epoch.wrapping_add(1);
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
