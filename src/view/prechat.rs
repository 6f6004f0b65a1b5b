//! The pre-chat form's DOM: labelled fields in place of the composer until submitted.
//!
//! The rules and the gate on a new conversation are in `state/prechat.rs`.

use em_protocol::{FieldKind, PrechatForm};
use js_sys::Reflect;
use wasm_bindgen::{JsValue, UnwrapThrowExt};

use super::*;
use crate::json::int_string;
use crate::state::cat;

/// The form's elements and what of the state they last showed.
pub(super) struct Form {
    form: HtmlElement,
    fields: Vec<Field>,
    pub(super) shown: bool,
    epoch: Option<u32>,
    errors: Vec<String>,
    _submit: EventListener,
}

/// One visible field.
struct Field {
    /// The `<input>` or `<select>`.
    input: HtmlElement,
    /// Its error line (`aria-describedby`).
    error: HtmlElement,
    /// What makes it read-only: `readonly` (a `<select>` has none, so `disabled`).
    lock: &'static str,
    /// The page prefilled it at the last render.
    prefilled: bool,
}

/// `dom::child` + text. Tags and attribute names here are constants, so creating cannot
/// fail short of a browser bug: throwing then keeps a cleanup path per element (~2 KB of
/// wasm) out of the build.
fn add(parent: &Element, tag: &str, attrs: &[(&str, &str)], text: &str) -> HtmlElement {
    let e = dom::child(parent, tag, attrs).expect_throw("pre-chat form");
    if !text.is_empty() {
        e.set_text_content(Some(text));
    }
    e
}

impl Form {
    /// Build the (hidden) form for `spec` at the end of `parent`.
    pub(super) fn new(parent: &Element, spec: &PrechatForm, dispatch: &Dispatch) -> Form {
        let form_attrs = [
            ("class", "prechat"),
            ("data-testid", "prechat"),
            ("aria-label", "Before we start"),
            // Our own checks show their errors in place, not the browser's bubbles.
            ("novalidate", ""),
            ("hidden", ""),
        ];
        let form = add(parent, "form", &form_attrs, "");
        let (mut fields, mut inputs) = (Vec::new(), Vec::new());
        for (i, f) in spec.fields.iter().enumerate() {
            let id = int_string(i as i64);
            let (id, error_id) = (cat(&["em-f", &id]), cat(&["em-e", &id]));
            let row = add(&form, "div", &[], "");
            let label = if f.label.is_empty() {
                &f.name
            } else {
                &f.label
            };
            let mark = if f.required { "req" } else { "" };
            add(&row, "label", &[("for", &id), ("class", mark)], label);
            let choice = f.kind == FieldKind::Choice;
            let kind = if f.kind == FieldKind::Email {
                "email"
            } else {
                "text"
            };
            let required = if f.required { "true" } else { "false" };
            let max = int_string(f.max_length.into());
            let attrs = [
                ("id", id.as_str()),
                ("name", &f.name),
                ("data-testid", "prechat-field"),
                ("aria-describedby", &error_id),
                ("aria-required", required),
                ("type", kind),
                ("maxlength", &max),
            ];
            // A `<select>` takes neither `type` nor `maxlength`.
            let (tag, attrs) = if choice {
                ("select", &attrs[..5])
            } else {
                ("input", &attrs[..])
            };
            let input = add(&row, tag, attrs, "");
            dom::set_flag(&input, "required", f.required);
            if choice {
                add(&input, "option", &[("value", "")], "Choose…");
                for c in &f.choices {
                    add(&input, "option", &[("value", c)], c);
                }
            }
            let error_attrs = [
                ("id", error_id.as_str()),
                ("class", "error"),
                ("data-testid", "prechat-error"),
            ];
            inputs.push(input.clone());
            fields.push(Field {
                input,
                error: add(&row, "p", &error_attrs, ""),
                lock: if choice { "disabled" } else { "readonly" },
                prefilled: false,
            });
        }
        let submit_attrs = [
            ("type", "submit"),
            ("class", "new-conv"),
            ("data-testid", "prechat-submit"),
        ];
        add(&form, "button", &submit_attrs, "Start chatting");

        let d = dispatch.clone();
        let prevent = EventListenerOptions::enable_prevent_default();
        // Enter in a text field submits (implicit submission), as does the button.
        let submit = EventListener::new_with_options(&form, "submit", prevent, move |e| {
            e.prevent_default();
            d(Msg::PrechatSubmitted {
                values: inputs.iter().map(value).collect(),
            });
        });
        Form {
            form,
            fields,
            shown: false,
            epoch: None,
            errors: Vec::new(),
            _submit: submit,
        }
    }

    /// Bring the form up to date with `state`; true when it was shown or hidden.
    pub(super) fn render(&mut self, state: &State) -> bool {
        let shown = state.prechat_shown();
        let toggled = self.shown != shown;
        if toggled {
            self.shown = shown;
            dom::set_hidden(&self.form, !shown);
        }
        if !shown {
            return toggled;
        }
        if self.epoch != Some(state.prechat.epoch) {
            self.epoch = Some(state.prechat.epoch);
            for (spec, field) in state.prechat.form.fields.iter().zip(&mut self.fields) {
                let prefill = state.prechat_prefill(&spec.name);
                match prefill {
                    Some((v, _)) => set_value(&field.input, v),
                    None if field.prefilled => set_value(&field.input, ""),
                    None => {}
                }
                field.prefilled = prefill.is_some();
                let locked = prefill.is_some_and(|(_, editable)| !editable);
                dom::set_flag(&field.input, field.lock, locked);
            }
        }
        if self.errors != state.prechat.errors {
            self.errors.clone_from(&state.prechat.errors);
            for (i, field) in self.fields.iter().enumerate() {
                let text = self.errors.get(i).map_or("", String::as_str);
                field.error.set_text_content(Some(text));
                let invalid = if text.is_empty() { "false" } else { "true" };
                let _ = field.input.set_attribute("aria-invalid", invalid);
            }
        }
        toggled
    }

    /// Focus the first field in error, else the first field; false when the form is hidden.
    pub(super) fn focus(&self) -> bool {
        let first_bad = self.errors.iter().position(|e| !e.is_empty());
        match self.fields.get(first_bad.unwrap_or(0)) {
            Some(field) if self.shown => field.input.focus().is_ok(),
            _ => false,
        }
    }
}

fn value(input: &HtmlElement) -> String {
    Reflect::get(input, &JsValue::from_str("value"))
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

fn set_value(input: &HtmlElement, v: &str) {
    let _ = Reflect::set(input, &JsValue::from_str("value"), &JsValue::from_str(v));
}
