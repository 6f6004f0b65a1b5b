//! `setContext`: each field checked against the deployment's pre-chat form, the good ones
//! merged into the session's context, each bad one answered with its own `invalid_field`.

use std::collections::BTreeMap;

use em_protocol::agent::{ConversationContext, PageContext, ToAgent};
use em_protocol::visitor::ToVisitor;
use em_protocol::{ConversationId, ErrorCode, ErrorFrame, SessionStatus};

use crate::config::{FieldKind, PrechatConfig};
use crate::engine::Engine;
use crate::error::Result;
use crate::hub::Outbox;
use crate::session::{Visitor, owned_session};

/// Names of free-form maps (and of fields without a form) are at most this many characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Values of free-form maps (and of fields without a form) are at most this many characters.
pub const MAX_VALUE_CHARS: usize = 1000;
/// Entries a session keeps in each map: pre-chat and hidden fields (when no form names
/// them), `sessionContext`, and its auto-response parameters.
pub const MAX_ENTRIES: usize = 50;
/// Longest page URL kept (browsers and proxies handle about this much).
pub const MAX_URL_CHARS: usize = 2048;
/// Longest page title kept.
pub const MAX_TITLE_CHARS: usize = 300;

/// What one `setContext` frame carries.
#[derive(Debug, Clone, Default)]
pub struct ContextUpdate {
    pub prechat_fields: BTreeMap<String, String>,
    pub hidden_fields: BTreeMap<String, String>,
    pub page: Option<PageContext>,
    pub session_context: BTreeMap<String, String>,
    pub auto_response_parameters: BTreeMap<String, String>,
}

/// The update's acceptable part, and one message per refused field.
#[derive(Debug, Default, PartialEq)]
pub struct Checked {
    pub prechat_fields: BTreeMap<String, String>,
    pub hidden_fields: BTreeMap<String, String>,
    pub page: Option<PageContext>,
    pub session_context: BTreeMap<String, String>,
    pub auto_response_parameters: BTreeMap<String, String>,
    /// E.g. `hidden field "Plan": longer than 20 characters`.
    pub errors: Vec<String>,
}

/// Checks every field of `update`. `form` is the deployment's pre-chat form (without one,
/// field names are not checked, only sizes, scripts and how many); `stored` and
/// `stored_params` are what the session already holds, so the entry limits apply to the
/// merged result.
pub fn check(
    form: Option<&PrechatConfig>,
    update: &ContextUpdate,
    stored: &ConversationContext,
    stored_params: &BTreeMap<String, String>,
) -> Checked {
    let mut out = Checked::default();
    for (name, value) in &update.prechat_fields {
        let what = format!("prechat field {name:?}");
        let verdict = match form {
            Some(form) => match form.visible(name) {
                None => Err("not a field of the pre-chat form".to_string()),
                Some(field) => visible_value(field, value),
            },
            None => free_form(name, value)
                .and_then(|()| room(&stored.prechat_fields, &out.prechat_fields, name)),
        };
        keep(
            &mut out.prechat_fields,
            &mut out.errors,
            what,
            name,
            value,
            verdict,
        );
    }
    for (name, value) in &update.hidden_fields {
        let what = format!("hidden field {name:?}");
        let verdict = match form {
            Some(form) => match form.hidden(name) {
                None => Err("not a hidden field of the deployment".to_string()),
                Some(field) => bounded(value, field.max_length as usize),
            },
            None => free_form(name, value)
                .and_then(|()| room(&stored.hidden_fields, &out.hidden_fields, name)),
        };
        keep(
            &mut out.hidden_fields,
            &mut out.errors,
            what,
            name,
            value,
            verdict,
        );
    }
    if let Some(page) = &update.page {
        match page_of(page) {
            Ok(page) => out.page = Some(page),
            Err(reason) => out.errors.push(format!("page: {reason}")),
        }
    }
    for (label, given, stored, kept) in [
        (
            "session context",
            &update.session_context,
            &stored.session_context,
            &mut out.session_context,
        ),
        (
            "auto-response parameter",
            &update.auto_response_parameters,
            stored_params,
            &mut out.auto_response_parameters,
        ),
    ] {
        for (name, value) in given {
            let verdict = free_form(name, value).and_then(|()| room(stored, kept, name));
            keep(
                kept,
                &mut out.errors,
                format!("{label} {name:?}"),
                name,
                value,
                verdict,
            );
        }
    }
    out
}

/// Whether `name` fits in a map that holds `stored` plus the `kept` part of this update:
/// replacing a value always does, a new name only below [`MAX_ENTRIES`].
fn room(
    stored: &BTreeMap<String, String>,
    kept: &BTreeMap<String, String>,
    name: &str,
) -> Result<(), String> {
    let new_names = kept.keys().filter(|k| !stored.contains_key(*k)).count();
    if stored.len() + new_names >= MAX_ENTRIES && !stored.contains_key(name) {
        Err(format!("more than {MAX_ENTRIES} entries"))
    } else {
        Ok(())
    }
}

/// The page the visitor is on: an http(s) URL and a title, both of bounded length.
fn page_of(page: &PageContext) -> Result<PageContext, String> {
    let url = page.url.trim();
    let n = url.chars().count();
    if n > MAX_URL_CHARS {
        return Err(format!(
            "url has {n} characters; at most {MAX_URL_CHARS} are kept"
        ));
    }
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) || !url.contains("://") {
        return Err("url must be an http or https URL".into());
    }
    let title = page.title.trim();
    let n = title.chars().count();
    if n > MAX_TITLE_CHARS {
        return Err(format!(
            "title has {n} characters; at most {MAX_TITLE_CHARS} are kept"
        ));
    }
    if let Some(problem) = script_in(title) {
        return Err(format!("title {problem}"));
    }
    Ok(PageContext {
        url: url.to_string(),
        title: title.to_string(),
    })
}

fn keep(
    kept: &mut BTreeMap<String, String>,
    errors: &mut Vec<String>,
    what: String,
    name: &str,
    value: &str,
    verdict: Result<(), String>,
) {
    match verdict {
        Ok(()) => {
            kept.insert(name.to_string(), value.to_string());
        }
        Err(reason) => errors.push(format!("{what}: {reason}")),
    }
}

/// A visible field's value: its length, scripts, required, then what its type allows. An
/// empty value of an optional field clears it.
fn visible_value(field: &crate::config::FieldConfig, value: &str) -> Result<(), String> {
    bounded(value, field.max_length as usize)?;
    if value.trim().is_empty() {
        return if field.required {
            Err("required, but empty".into())
        } else {
            Ok(())
        };
    }
    match field.kind {
        FieldKind::Text => Ok(()),
        FieldKind::Email if looks_like_email(value.trim()) => Ok(()),
        FieldKind::Email => Err("not an email address".into()),
        FieldKind::Choice if field.choices.iter().any(|c| c == value) => Ok(()),
        FieldKind::Choice => Err(format!(
            "not one of the choices ({})",
            field.choices.join(", ")
        )),
    }
}

/// Names and values that no form describes: sizes and scripts only.
fn free_form(name: &str, value: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(format!("names are 1 to {MAX_NAME_CHARS} characters"));
    }
    bounded(value, MAX_VALUE_CHARS)
}

fn bounded(value: &str, max_chars: usize) -> Result<(), String> {
    if value.chars().count() > max_chars {
        return Err(format!("longer than {max_chars} characters"));
    }
    match script_in(value) {
        Some(problem) => Err(problem.into()),
        None => Ok(()),
    }
}

/// Values end up in agents' screens and in pages: refuse what a careless renderer would run.
/// Browsers ignore whitespace and control characters inside a scheme, so those are dropped
/// before looking for `javascript:`.
fn script_in(value: &str) -> Option<&'static str> {
    let lower = value.trim().to_lowercase();
    let compact: String = lower
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect();
    if compact.contains("javascript:") {
        Some("contains a javascript: URL")
    } else if lower.contains("<script") {
        Some("contains <script")
    } else {
        None
    }
}

/// `local@domain.tld`: one `@`, no spaces, a dotted domain without empty labels.
fn looks_like_email(v: &str) -> bool {
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !v.chars().any(char::is_whitespace)
        && !domain.contains('@')
        && domain.contains('.')
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
}

/// `{Name}` placeholders of an automated text replaced by the visitor's auto-response
/// parameters; unknown ones stay as written. One pass: a value is never substituted again.
pub fn fill(text: &str, params: &BTreeMap<String, String>) -> String {
    if params.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|close| Some((params.get(&after[..close])?, close)))
        {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

impl Engine {
    /// `setContext`: only the owner may set it (`not_found`). Good fields are merged into the
    /// context (a later value replaces an earlier one; the page is replaced), auto-response
    /// parameters are kept beside it, and each bad field gets one `invalid_field`. An agent
    /// who already has the conversation gets the new context alone (`context`): a visitor
    /// frame never makes the server resend the history, whatever its length.
    pub async fn set_context(
        &self,
        v: Visitor,
        id: ConversationId,
        update: ContextUpdate,
        out: Outbox,
    ) -> Result<()> {
        self.run(move |inner, ctx| {
            let s = owned_session(inner, &v, id)?;
            let config = ctx.config();
            let form = config
                .deployment(&s.org_id, &s.deployment_name)
                .and_then(|d| d.prechat.as_ref());
            let mut params = inner.store.auto_response_parameters(id)?;
            let checked = check(form, &update, &s.context, &params);
            let mut context = s.context.clone();
            context.prechat_fields.extend(checked.prechat_fields);
            context.hidden_fields.extend(checked.hidden_fields);
            context.session_context.extend(checked.session_context);
            if checked.page.is_some() {
                context.page = checked.page;
            }
            if context != s.context {
                inner.store.set_context(id, &context)?;
                if let Some(agent) = s.agent_username.as_deref()
                    && s.status != SessionStatus::Ended
                {
                    let frame = ToAgent::Context {
                        conversation_id: id,
                        context,
                    };
                    ctx.to_agent(inner, agent, &frame);
                }
            }
            if !checked.auto_response_parameters.is_empty() {
                params.extend(checked.auto_response_parameters);
                inner.store.set_auto_response_parameters(id, &params)?;
            }
            for message in checked.errors {
                tracing::debug!(conversation = %id, %message, "setContext field refused");
                let frame = ErrorFrame {
                    code: ErrorCode::InvalidField,
                    message,
                    entry_id: None,
                    retry_after_ms: None,
                };
                inner.send(&out, &ToVisitor::Error(frame));
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> PrechatConfig {
        toml::from_str(
            r#"
            [[field]]
            name = "_firstName"
            required = true
            max_length = 40
            [[field]]
            name = "_email"
            type = "email"
            max_length = 80
            [[field]]
            name = "Topic"
            type = "choice"
            choices = ["Billing", "Orders", "Other"]
            [[hidden_field]]
            name = "Plan"
            max_length = 20
            "#,
        )
        .unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    // Every rule of a declared form, one message per bad field, good fields kept.
    fn fields_checked_against_the_form() {
        let update = ContextUpdate {
            prechat_fields: map(&[
                ("_firstName", "Ada"),
                ("_email", "ada@example"),
                ("Topic", "billing"),
                ("Nickname", "x"),
            ]),
            hidden_fields: map(&[("Plan", "Platinum plus extra large"), ("Secret", "1")]),
            ..ContextUpdate::default()
        };
        let c = check(
            Some(&form()),
            &update,
            &ConversationContext::default(),
            &BTreeMap::new(),
        );
        assert_eq!(c.prechat_fields, map(&[("_firstName", "Ada")]));
        assert_eq!(
            c.errors,
            [
                r#"prechat field "Nickname": not a field of the pre-chat form"#,
                r#"prechat field "Topic": not one of the choices (Billing, Orders, Other)"#,
                r#"prechat field "_email": not an email address"#,
                r#"hidden field "Plan": longer than 20 characters"#,
                r#"hidden field "Secret": not a hidden field of the deployment"#,
            ]
        );
        let update = ContextUpdate {
            prechat_fields: map(&[
                ("_firstName", "  "),
                ("_email", " ada@example.com "),
                ("Topic", "Orders"),
            ]),
            hidden_fields: map(&[("Plan", " JavaScript:alert(1)")]),
            ..ContextUpdate::default()
        };
        let c = check(
            Some(&form()),
            &update,
            &ConversationContext::default(),
            &BTreeMap::new(),
        );
        assert_eq!(
            c.errors,
            [
                r#"prechat field "_firstName": required, but empty"#,
                r#"hidden field "Plan": contains a javascript: URL"#,
            ]
        );
        assert_eq!(c.prechat_fields.len(), 2);
    }

    #[test]
    // Scripts are found in any case and spacing; emails need a dotted domain.
    fn scripts_and_emails() {
        assert_eq!(
            script_in("java\tscript:x"),
            Some("contains a javascript: URL")
        );
        assert_eq!(script_in("hi <SCRIPT src=x>"), Some("contains <script"));
        assert_eq!(script_in("a description of scripts"), None);
        assert!(looks_like_email("a.b+c@mail.example.org"));
        for bad in [
            "a@b", "@b.c", "a b@c.d", "a@b..c", "a@b@c.d", "a@-b.c", "plain",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }

    #[test]
    // Free-form maps: name and value sizes, scripts, and at most 50 entries after merging;
    // without a form any field name is accepted.
    fn free_form_maps() {
        let long = "x".repeat(1001);
        let stored: BTreeMap<String, String> =
            (0..49).map(|i| (format!("k{i:02}"), "v".into())).collect();
        let update = ContextUpdate {
            prechat_fields: map(&[("Anything", "ok")]),
            session_context: map(&[
                ("k00", "replaced"),
                ("new1", "fits"),
                ("new2", "one too many"),
                ("", "x"),
            ]),
            auto_response_parameters: map(&[("Name", &long), ("Shop", "<script>")]),
            ..ContextUpdate::default()
        };
        let stored = ConversationContext {
            session_context: stored,
            ..ConversationContext::default()
        };
        let c = check(None, &update, &stored, &BTreeMap::new());
        assert_eq!(c.prechat_fields, map(&[("Anything", "ok")]));
        assert_eq!(
            c.session_context,
            map(&[("k00", "replaced"), ("new1", "fits")])
        );
        assert_eq!(
            c.errors,
            [
                r#"session context "": names are 1 to 100 characters"#,
                r#"session context "new2": more than 50 entries"#,
                r#"auto-response parameter "Name": longer than 1000 characters"#,
                r#"auto-response parameter "Shop": contains <script"#,
            ]
        );
    }

    #[test]
    // Without a form, pre-chat and hidden maps hold at most 50 names too; a page is kept only
    // with an http(s) URL and a title of bounded length.
    fn every_map_and_the_page_are_bounded() {
        let stored = ConversationContext {
            prechat_fields: (0..50).map(|i| (format!("p{i:02}"), "v".into())).collect(),
            ..ConversationContext::default()
        };
        let update = ContextUpdate {
            prechat_fields: map(&[("p00", "replaced"), ("p50", "one too many")]),
            hidden_fields: (0..51).map(|i| (format!("h{i:02}"), "v".into())).collect(),
            page: Some(PageContext {
                url: format!("javascript:alert(1)//{}", "x".repeat(20_000)),
                title: String::new(),
            }),
            ..ContextUpdate::default()
        };
        let c = check(None, &update, &stored, &BTreeMap::new());
        assert_eq!(c.prechat_fields, map(&[("p00", "replaced")]));
        assert_eq!(c.hidden_fields.len(), 50);
        assert_eq!(c.page, None);
        assert_eq!(
            c.errors,
            [
                r#"prechat field "p50": more than 50 entries"#,
                r#"hidden field "h50": more than 50 entries"#,
                "page: url has 20021 characters; at most 2048 are kept",
            ]
        );
        for (url, title, verdict) in [
            ("https://shop.example.com/a?b=c", "Cart", Ok(())),
            (" HTTP://shop.example.com/ ", "", Ok(())),
            (
                "javascript:alert(1)",
                "",
                Err("page: url must be an http or https URL"),
            ),
            (
                "data:text/html,hi",
                "",
                Err("page: url must be an http or https URL"),
            ),
            (
                "https:no-slashes",
                "",
                Err("page: url must be an http or https URL"),
            ),
            (
                "https://a.example/",
                "<script>x",
                Err("page: title contains <script"),
            ),
        ] {
            let update = ContextUpdate {
                page: Some(PageContext {
                    url: url.into(),
                    title: title.into(),
                }),
                ..ContextUpdate::default()
            };
            let c = check(
                None,
                &update,
                &ConversationContext::default(),
                &BTreeMap::new(),
            );
            match verdict {
                Ok(()) => assert_eq!(c.page.unwrap().url, url.trim(), "{url}"),
                Err(e) => assert_eq!(c.errors, [e], "{url}"),
            }
        }
        let long_title = "t".repeat(301);
        let update = ContextUpdate {
            page: Some(PageContext {
                url: "https://a.example/".into(),
                title: long_title,
            }),
            ..ContextUpdate::default()
        };
        let c = check(
            None,
            &update,
            &ConversationContext::default(),
            &BTreeMap::new(),
        );
        assert_eq!(
            c.errors,
            ["page: title has 301 characters; at most 300 are kept"]
        );
    }

    #[test]
    // Known placeholders are replaced once; unknown ones and stray braces stay.
    fn placeholders() {
        let p = map(&[("Name", "Ada {Shop}"), ("Shop", "Acme")]);
        assert_eq!(
            fill("Hi {Name}, {Unknown} at {Shop} {", &p),
            "Hi Ada {Shop}, {Unknown} at Acme {"
        );
        assert_eq!(fill("{{Shop}}", &p), "{Acme}");
        assert_eq!(
            fill("no params {Name}", &BTreeMap::new()),
            "no params {Name}"
        );
    }
}
