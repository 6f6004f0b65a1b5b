//! `[deployment.prechat]`: the pre-chat form (visible and hidden fields), validated at start.

use std::collections::HashSet;

use em_protocol::config::{FieldKind, HiddenField, PrechatDisplay, PrechatField, PrechatForm};
use serde::Deserialize;

/// Longest `max_length` a field may declare: a field is a short value, not a message.
pub const MAX_FIELD_LENGTH: u32 = 4000;

/// `[deployment.prechat]`: shown per conversation or per browser session.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrechatConfig {
    #[serde(default)]
    pub display: Display,
    /// `[[deployment.prechat.field]]`: visible fields, in display order.
    #[serde(default)]
    pub field: Vec<FieldConfig>,
    /// `[[deployment.prechat.hidden_field]]`: fields only the page sets.
    #[serde(default)]
    pub hidden_field: Vec<HiddenFieldConfig>,
}

/// `display = "conversation" | "session"` (the wire spells them `Conversation`, `Session`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Display {
    #[default]
    Conversation,
    Session,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    pub name: String,
    /// Defaults to the name.
    #[serde(default)]
    pub label: String,
    #[serde(rename = "type", default)]
    pub kind: Kind,
    #[serde(default)]
    pub required: bool,
    #[serde(default = "default_max_length")]
    pub max_length: u32,
    /// The allowed values of a `choice` field.
    #[serde(default)]
    pub choices: Vec<String>,
}

/// `type = "text" | "email" | "choice"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Text,
    Email,
    Choice,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HiddenFieldConfig {
    pub name: String,
    #[serde(default = "default_max_length")]
    pub max_length: u32,
}

fn default_max_length() -> u32 {
    255
}

impl PrechatConfig {
    /// Errors are (field path under `prechat.`, what is wrong).
    pub fn validate(&self) -> Result<(), (String, String)> {
        // One namespace for both kinds: a name means one thing in routing rules and for agents.
        let mut seen = HashSet::new();
        for (i, f) in self.field.iter().enumerate() {
            let at = |k: &str| format!("field[{i}].{k}");
            check_name(&f.name, &mut seen).map_err(|m| (at("name"), m))?;
            check_length(f.max_length).map_err(|m| (at("max_length"), m))?;
            match f.kind {
                Kind::Choice if f.choices.is_empty() => {
                    return Err((
                        at("choices"),
                        "a choice field needs at least one choice".into(),
                    ));
                }
                Kind::Text | Kind::Email if !f.choices.is_empty() => {
                    return Err((at("choices"), "only a choice field has choices".into()));
                }
                _ => {}
            }
            let mut distinct = HashSet::new();
            for (j, c) in f.choices.iter().enumerate() {
                let at = || at(&format!("choices[{j}]"));
                if c.trim().is_empty() {
                    return Err((at(), "must not be empty".into()));
                }
                if c.chars().count() > f.max_length as usize {
                    return Err((at(), format!("longer than max_length {}", f.max_length)));
                }
                if !distinct.insert(c.as_str()) {
                    return Err((at(), format!("duplicate choice {c:?}")));
                }
            }
        }
        for (i, f) in self.hidden_field.iter().enumerate() {
            let at = |k: &str| format!("hidden_field[{i}].{k}");
            check_name(&f.name, &mut seen).map_err(|m| (at("name"), m))?;
            check_length(f.max_length).map_err(|m| (at("max_length"), m))?;
        }
        Ok(())
    }

    pub fn visible(&self, name: &str) -> Option<&FieldConfig> {
        self.field.iter().find(|f| f.name == name)
    }

    pub fn hidden(&self, name: &str) -> Option<&HiddenFieldConfig> {
        self.hidden_field.iter().find(|f| f.name == name)
    }

    /// The form as the config endpoint sends it.
    pub fn to_wire(&self) -> PrechatForm {
        PrechatForm {
            display: match self.display {
                Display::Conversation => PrechatDisplay::Conversation,
                Display::Session => PrechatDisplay::Session,
            },
            fields: self
                .field
                .iter()
                .map(|f| PrechatField {
                    name: f.name.clone(),
                    label: if f.label.is_empty() {
                        f.name.clone()
                    } else {
                        f.label.clone()
                    },
                    kind: match f.kind {
                        Kind::Text => FieldKind::Text,
                        Kind::Email => FieldKind::Email,
                        Kind::Choice => FieldKind::Choice,
                    },
                    required: f.required,
                    max_length: f.max_length,
                    choices: f.choices.clone(),
                })
                .collect(),
            hidden_fields: self
                .hidden_field
                .iter()
                .map(|f| HiddenField {
                    name: f.name.clone(),
                    max_length: f.max_length,
                })
                .collect(),
        }
    }
}

/// Names are what the page passes to `prechatAPI` and what routing rules say after
/// `prechat.` / `hidden.`: letters, digits and `_`, at most 100.
fn check_name<'a>(name: &'a str, seen: &mut HashSet<&'a str>) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 100
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(format!(
            "{name:?} is not a field name (1 to 100 letters, digits and _)"
        ));
    }
    if !seen.insert(name) {
        return Err(format!("duplicate field name {name:?}"));
    }
    Ok(())
}

fn check_length(max_length: u32) -> Result<(), String> {
    if max_length == 0 || max_length > MAX_FIELD_LENGTH {
        return Err(format!(
            "{max_length} is not between 1 and {MAX_FIELD_LENGTH}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(toml_text: &str) -> Result<(), (String, String)> {
        let c: PrechatConfig =
            toml::from_str(toml_text).map_err(|e| ("toml".into(), e.to_string()))?;
        c.validate()
    }

    #[test]
    // Each form mistake is refused with the field path and the reason.
    fn form_mistakes_are_named() {
        let ok = r#"
            display = "session"
            [[field]]
            name = "_email"
            type = "email"
            [[field]]
            name = "Topic"
            type = "choice"
            choices = ["Billing", "Other"]
            [[hidden_field]]
            name = "Plan"
            max_length = 20
        "#;
        assert_eq!(form(ok), Ok(()));
        let err = |t: &str| form(t).unwrap_err();
        assert_eq!(
            err("[[field]]\nname = \"A\"\n[[hidden_field]]\nname = \"A\""),
            (
                "hidden_field[0].name".into(),
                "duplicate field name \"A\"".into()
            )
        );
        assert_eq!(
            err("[[field]]\nname = \"T\"\ntype = \"choice\""),
            (
                "field[0].choices".into(),
                "a choice field needs at least one choice".into()
            )
        );
        assert_eq!(
            err("[[field]]\nname = \"T\"\nmax_length = 0").0,
            "field[0].max_length"
        );
        assert_eq!(
            err("[[hidden_field]]\nname = \"T\"\nmax_length = 4001").1,
            "4001 is not between 1 and 4000"
        );
        assert!(
            err("[[field]]\nname = \"T\"\ntype = \"date\"")
                .1
                .contains("unknown variant `date`")
        );
        assert_eq!(err("[[field]]\nname = \"a b\"").0, "field[0].name");
        assert_eq!(
            err("[[field]]\nname = \"T\"\ntype = \"choice\"\nchoices = [\"x\", \"x\"]").1,
            "duplicate choice \"x\""
        );
        assert_eq!(
            err("[[field]]\nname = \"T\"\nchoices = [\"x\"]").1,
            "only a choice field has choices"
        );
    }

    #[test]
    // The wire form keeps the order and kinds; a missing label is the name.
    fn wire_form() {
        let c: PrechatConfig = toml::from_str(
            "[[field]]\nname = \"_firstName\"\nrequired = true\nmax_length = 40\n[[hidden_field]]\nname = \"Plan\"",
        )
        .unwrap();
        let w = c.to_wire();
        assert_eq!(w.display, PrechatDisplay::Conversation);
        assert_eq!(
            (
                w.fields[0].label.as_str(),
                w.fields[0].required,
                w.fields[0].max_length
            ),
            ("_firstName", true, 40)
        );
        assert_eq!(w.hidden_fields[0].max_length, 255);
    }
}
