//! The pre-chat form: labelled fields in the window, in place of the composer, until the
//! visitor submits it (the rules and the gate are in `state/prechat.rs`).

use em_protocol::{FieldKind, PrechatForm};
use js_sys::Reflect;
use wasm_bindgen::JsValue;

use super::*;
use crate::json::int_string;

/// The form's elements and what of the state they last showed.
pub(super) struct Form {
    form: HtmlElement,
    /// Per visible field: its `<input>`/`<select>`, its error line, and the attribute that
    /// makes it read-only (`readonly`; a `<select>` has none, so `disabled`).
    fields: Vec<(HtmlElement, HtmlElement, &'static str)>,
    /// Which fields the page prefilled at the last render.
    prefilled: Vec<bool>,
    pub(super) shown: bool,
    epoch: Option<u32>,
    errors: Vec<String>,
    _listeners: [EventListener; 2],
}

impl Form {
    /// Build the (hidden) form for `spec` at the end of `parent`.
    pub(super) fn new(
        parent: &Element,
        spec: &PrechatForm,
        dispatch: &Dispatch,
    ) -> Result<Form, Error> {
        let form = dom::child(
            parent,
            "form",
            &[
                ("class", "prechat"),
                ("data-testid", "prechat"),
                ("aria-label", "Before we start"),
                // Our own checks show their errors in place, not the browser's bubbles.
                ("novalidate", ""),
                ("hidden", ""),
            ],
        )?;
        let mut fields = Vec::new();
        for (i, f) in spec.fields.iter().enumerate() {
            let id = "em-f".to_owned() + &int_string(i as i64);
            let error_id = id.clone() + "-e";
            let row = dom::child(&form, "div", &[("class", "field")])?;
            let label = if f.label.is_empty() {
                &f.name
            } else {
                &f.label
            };
            let mark = if f.required { "req" } else { "" };
            dom::text_child(&row, "label", &[("for", &id), ("class", mark)], label)?;
            let max = int_string(f.max_length.into());
            let mut attrs = vec![
                ("id", id.as_str()),
                ("name", f.name.as_str()),
                ("data-testid", "prechat-field"),
                ("aria-describedby", error_id.as_str()),
            ];
            if f.required {
                attrs.extend([("required", ""), ("aria-required", "true")]);
            }
            let (input, lock) = if f.kind == FieldKind::Choice {
                let select = dom::child(&row, "select", &attrs)?;
                dom::text_child(&select, "option", &[("value", "")], "Choose…")?;
                for c in &f.choices {
                    dom::text_child(&select, "option", &[("value", c)], c)?;
                }
                (select, "disabled")
            } else {
                let kind = if f.kind == FieldKind::Email {
                    "email"
                } else {
                    "text"
                };
                attrs.extend([("type", kind), ("maxlength", &max)]);
                (dom::child(&row, "input", &attrs)?, "readonly")
            };
            let error = dom::child(
                &row,
                "p",
                &[
                    ("id", &error_id),
                    ("class", "error"),
                    ("data-testid", "prechat-error"),
                ],
            )?;
            fields.push((input, error, lock));
        }
        dom::text_child(
            &form,
            "button",
            &[
                ("type", "submit"),
                ("class", "new-conv"),
                ("data-testid", "prechat-submit"),
            ],
            "Start chatting",
        )?;

        let inputs: Vec<HtmlElement> = fields.iter().map(|f| f.0.clone()).collect();
        let d = dispatch.clone();
        let submit = Rc::new(move || {
            d(Msg::PrechatSubmitted {
                values: inputs.iter().map(value).collect(),
            })
        });
        let on_submit = submit.clone();
        let prevent = EventListenerOptions::enable_prevent_default();
        let listeners = [
            EventListener::new_with_options(&form, "submit", prevent, move |e| {
                e.prevent_default();
                on_submit();
            }),
            // Enter submits from a `<select>` too (browsers only submit from text fields).
            EventListener::new_with_options(&form, "keydown", prevent, move |e| {
                let on_select = e
                    .target()
                    .and_then(|t| t.dyn_into::<Element>().ok())
                    .is_some_and(|t| t.tag_name() == "SELECT");
                if on_select
                    && e.dyn_ref::<KeyboardEvent>()
                        .is_some_and(|k| k.key() == "Enter")
                {
                    e.prevent_default();
                    submit();
                }
            }),
        ];
        Ok(Form {
            form,
            prefilled: vec![false; fields.len()],
            fields,
            shown: false,
            epoch: None,
            errors: Vec::new(),
            _listeners: listeners,
        })
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
            let specs = &state.prechat.form.fields;
            for ((spec, (input, _, lock)), was) in
                specs.iter().zip(&self.fields).zip(&mut self.prefilled)
            {
                let prefill = state.prechat_prefill(&spec.name);
                if let Some((_, v, _)) = prefill {
                    set_value(input, v);
                } else if *was {
                    set_value(input, "");
                }
                *was = prefill.is_some();
                dom::set_flag(input, lock, prefill.is_some_and(|p| !p.2));
            }
        }
        if self.errors != state.prechat.errors {
            self.errors.clone_from(&state.prechat.errors);
            for (i, (input, error, _)) in self.fields.iter().enumerate() {
                let text = self.errors.get(i).map_or("", String::as_str);
                error.set_text_content(Some(text));
                let invalid = if text.is_empty() { "false" } else { "true" };
                let _ = input.set_attribute("aria-invalid", invalid);
            }
        }
        toggled
    }

    /// Focus the first field in error, else the first field; false when the form is hidden.
    pub(super) fn focus(&self) -> bool {
        let first_bad = self.errors.iter().position(|e| !e.is_empty());
        match self.fields.get(first_bad.unwrap_or(0)) {
            Some((input, _, _)) if self.shown => input.focus().is_ok(),
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
