//! Routing rules and business hours of a deployment: data in the config, evaluated here.

use std::collections::BTreeMap;

use em_protocol::agent::ConversationContext;
use serde::Deserialize;

/// `[[deployment.routing_rule]]`: when every `when` pattern matches, route to `queue` with
/// `priority` and the required `skills`. The first matching rule wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    /// Keys `prechat.<Field>`, `hidden.<Field>`, `page.url`, `page.title`, `var.<name>`;
    /// values are case-insensitive patterns where `*` matches any text.
    #[serde(default)]
    pub when: BTreeMap<String, String>,
    /// Defaults to the deployment's queue.
    pub queue: Option<String>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub skills: Vec<String>,
}

/// Where a conversation goes: the outcome of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub queue: String,
    pub priority: i32,
    pub skills: Vec<String>,
}

impl RoutingRule {
    pub fn matches(&self, ctx: &ConversationContext) -> bool {
        self.when.iter().all(|(key, pattern)| {
            lookup(ctx, key)
                .is_some_and(|value| glob(&pattern.to_lowercase(), &value.to_lowercase()))
        })
    }
}

/// Whether a `when` key is one this server knows.
pub fn valid_key(key: &str) -> bool {
    matches!(key, "page.url" | "page.title")
        || ["prechat.", "hidden.", "var."]
            .iter()
            .any(|p| key.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
}

fn lookup<'a>(ctx: &'a ConversationContext, key: &str) -> Option<&'a str> {
    let page = ctx.page.as_ref();
    match key {
        "page.url" => page.map(|p| p.url.as_str()),
        "page.title" => page.map(|p| p.title.as_str()),
        _ => {
            let (map, name) = if let Some(n) = key.strip_prefix("prechat.") {
                (&ctx.prechat_fields, n)
            } else if let Some(n) = key.strip_prefix("hidden.") {
                (&ctx.hidden_fields, n)
            } else {
                (&ctx.variables, key.strip_prefix("var.")?)
            };
            map.get(name).map(String::as_str)
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// `[deployment.business_hours]`: open on `days` from `open` to `close` (HH:MM, local time at
/// `utc_offset_minutes`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    pub days: Vec<String>,
    pub open: String,
    pub close: String,
    #[serde(default)]
    pub utc_offset_minutes: i32,
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

impl BusinessHours {
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, d) in self.days.iter().enumerate() {
            if !DAYS.contains(&d.as_str()) {
                return Err((
                    format!("days[{i}]"),
                    format!("{d:?} is not one of {DAYS:?}"),
                ));
            }
        }
        for (field, v) in [("open", &self.open), ("close", &self.close)] {
            if minutes(v).is_none() {
                return Err((field.into(), format!("{v:?} is not a time HH:MM")));
            }
        }
        Ok(())
    }

    /// Whether `now_ms` (Unix milliseconds) is within business hours.
    pub fn is_open(&self, now_ms: i64) -> bool {
        let local_min = now_ms.div_euclid(60_000) + i64::from(self.utc_offset_minutes);
        let day_index = (local_min.div_euclid(1440) + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
        let minute = local_min.rem_euclid(1440) as u32;
        let (Some(open), Some(close)) = (minutes(&self.open), minutes(&self.close)) else {
            return true;
        };
        self.days.iter().any(|d| d == DAYS[day_index]) && open <= minute && minute < close
    }
}

fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // Glob patterns, rule keys over every context source, and business hours by weekday and time.
    fn rules_and_hours() {
        assert!(glob("*checkout*", "https://x/checkout/1"));
        assert!(glob("billing", "billing"));
        assert!(!glob("billing", "billing2"));
        assert!(glob("a*c", "abc") && !glob("a*c", "abd"));
        let mut ctx = ConversationContext::default();
        ctx.prechat_fields.insert("Topic".into(), "Billing".into());
        ctx.variables.insert("orderNumber".into(), "123".into());
        let rule = RoutingRule {
            when: [
                ("prechat.Topic".into(), "billing".into()),
                ("var.orderNumber".into(), "*".into()),
            ]
            .into(),
            queue: None,
            priority: 1,
            skills: vec![],
        };
        assert!(rule.matches(&ctx));
        ctx.variables.clear();
        assert!(!rule.matches(&ctx));
        assert!(
            valid_key("hidden.Plan")
                && valid_key("page.url")
                && !valid_key("var.")
                && !valid_key("x")
        );
        let h = BusinessHours {
            days: vec!["Mon".into()],
            open: "09:00".into(),
            close: "17:00".into(),
            utc_offset_minutes: 60,
        };
        // 2026-11-23 is a Monday; 08:30 UTC is 09:30 at +01:00.
        let monday_0830_utc = 1_795_422_600_000;
        assert!(h.is_open(monday_0830_utc));
        assert!(!h.is_open(monday_0830_utc - 3_600_000));
        assert!(!h.is_open(monday_0830_utc + 86_400_000));
    }
}
