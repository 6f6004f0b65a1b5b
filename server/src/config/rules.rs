//! Routing rules and business hours of a deployment: data in the config, evaluated here.

use std::collections::BTreeMap;

use em_protocol::agent::ConversationContext;
use em_protocol::config::{BusinessHoursStatus, OutsideHours};
use serde::Deserialize;

/// `[[deployment.routing_rule]]`: when every `when` pattern matches, route to `queue` with
/// `priority` and the required `skills`. The first matching rule wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    /// Keys `prechat.<Field>`, `hidden.<Field>`, `session.<name>`, `page.url`, `page.title`,
    /// `var.<name>`;
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
        || ["prechat.", "hidden.", "session.", "var."]
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
            } else if let Some(n) = key.strip_prefix("session.") {
                (&ctx.session_context, n)
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
/// `utc_offset_minutes`); `outside_hours` says what the widget's button does while closed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    pub days: Vec<String>,
    pub open: String,
    pub close: String,
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// `"hide"` (default) or `"offline"`.
    #[serde(default)]
    pub outside_hours: OutsideHours,
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 1440 * MINUTE_MS;

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
        if minutes(&self.close) <= minutes(&self.open) {
            return Err((
                "close".into(),
                format!("{:?} is not later than open {:?}", self.close, self.open),
            ));
        }
        if self.utc_offset_minutes.abs() > 18 * 60 {
            return Err((
                "utc_offset_minutes".into(),
                format!("{} is not between -1080 and 1080", self.utc_offset_minutes),
            ));
        }
        Ok(())
    }

    /// Open now or not, and the exact time of the next change, for the config endpoint.
    pub fn status(&self, now_ms: i64) -> BusinessHoursStatus {
        let open = self.is_open(now_ms);
        BusinessHoursStatus {
            open,
            next_change_at: self.next_change(now_ms, open),
            outside_hours: self.outside_hours,
        }
    }

    /// The first opening or closing time after `now_ms` where the state really flips (a
    /// `24:00` close followed by a `00:00` open is not a change). Every boundary is an open
    /// or close time within the next 8 days (a week, plus today's remainder); a schedule
    /// that never flips (no days) answers a week from now, when the widget asks again.
    fn next_change(&self, now_ms: i64, open_now: bool) -> i64 {
        let (Some(open), Some(close)) = (minutes(&self.open), minutes(&self.close)) else {
            return now_ms + 7 * DAY_MS;
        };
        let offset_ms = i64::from(self.utc_offset_minutes) * MINUTE_MS;
        let local_midnight = (now_ms + offset_ms).div_euclid(DAY_MS) * DAY_MS - offset_ms;
        (0..=8)
            .flat_map(|day| {
                [open, close].map(|m| local_midnight + day * DAY_MS + i64::from(m) * MINUTE_MS)
            })
            .filter(|&t| t > now_ms && self.is_open(t) != open_now)
            .min()
            .unwrap_or(now_ms + 7 * DAY_MS)
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
        let session_rule = RoutingRule {
            when: [("session.tier".into(), "GOLD".into())].into(),
            queue: None,
            priority: 1,
            skills: vec![],
        };
        assert!(!session_rule.matches(&ctx));
        ctx.session_context.insert("tier".into(), "gold".into());
        assert!(session_rule.matches(&ctx) && valid_key("session.tier"));
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
            outside_hours: OutsideHours::Hide,
        };
        // 2026-11-23 is a Monday; 08:30 UTC is 09:30 at +01:00.
        let monday_0830_utc = 1_795_422_600_000;
        assert!(h.is_open(monday_0830_utc));
        assert!(!h.is_open(monday_0830_utc - 3_600_000));
        assert!(!h.is_open(monday_0830_utc + 86_400_000));
    }

    fn hours(days: &[&str], open: &str, close: &str, offset: i32) -> BusinessHours {
        BusinessHours {
            days: days.iter().map(|d| d.to_string()).collect(),
            open: open.into(),
            close: close.into(),
            utc_offset_minutes: offset,
            outside_hours: OutsideHours::Offline,
        }
    }

    /// 2026-11-23 00:00 UTC, a Monday.
    const MONDAY: i64 = 1_795_392_000_000;
    const HOUR: i64 = 3_600_000;

    #[test]
    // The next boundary is the exact next open or close: same day, over a weekend, and a
    // week ahead when only one day is open (the week wraps).
    fn next_change_finds_the_next_boundary() {
        let week = hours(&["Mon", "Tue", "Wed", "Thu", "Fri"], "09:00", "17:00", 0);
        let at = |h: &BusinessHours, now: i64| {
            let s = h.status(now);
            (s.open, s.next_change_at)
        };
        assert_eq!(
            at(&week, MONDAY + 8 * HOUR + 30 * 60_000),
            (false, MONDAY + 9 * HOUR)
        );
        assert_eq!(at(&week, MONDAY + 9 * HOUR), (true, MONDAY + 17 * HOUR));
        assert_eq!(
            at(&week, MONDAY + 12 * HOUR + 1),
            (true, MONDAY + 17 * HOUR)
        );
        let friday_close = MONDAY + 4 * DAY_MS + 17 * HOUR;
        let next_monday_open = MONDAY + 7 * DAY_MS + 9 * HOUR;
        assert_eq!(at(&week, friday_close - 1), (true, friday_close));
        assert_eq!(at(&week, friday_close), (false, next_monday_open));
        assert_eq!(
            at(&week, MONDAY + 5 * DAY_MS + 10 * HOUR),
            (false, next_monday_open)
        );
        assert_eq!(
            at(&week, next_monday_open - 30_000),
            (false, next_monday_open)
        );
        assert_eq!(week.status(MONDAY).outside_hours, OutsideHours::Offline);

        let sundays = hours(&["Sun"], "09:00", "17:00", 0);
        let sunday = MONDAY + 6 * DAY_MS;
        assert_eq!(
            at(&sundays, sunday + 18 * HOUR),
            (false, sunday + 7 * DAY_MS + 9 * HOUR)
        );
        assert_eq!(at(&sundays, MONDAY), (false, sunday + 9 * HOUR));
    }

    #[test]
    // Offsets move the boundaries (also across UTC midnight); 24:00 followed by 00:00 is no
    // change; a schedule that never flips answers a week ahead.
    fn next_change_with_offsets_and_whole_days() {
        let paris = hours(&["Mon"], "09:00", "17:00", 60);
        assert_eq!(
            paris.status(MONDAY + 8 * HOUR + 1).next_change_at,
            MONDAY + 16 * HOUR
        );
        // UTC-5: Monday 03:00 UTC is Sunday 22:00 there; it opens Monday 09:00 local = 14:00 UTC.
        let new_york = hours(&["Mon"], "09:00", "17:00", -300);
        let s = new_york.status(MONDAY + 3 * HOUR);
        assert_eq!((s.open, s.next_change_at), (false, MONDAY + 14 * HOUR));

        let two_days = hours(&["Mon", "Tue"], "00:00", "24:00", 0);
        let s = two_days.status(MONDAY + 10 * HOUR);
        assert_eq!((s.open, s.next_change_at), (true, MONDAY + 2 * DAY_MS));
        let always = hours(&DAYS, "00:00", "24:00", 0);
        let s = always.status(MONDAY + 1);
        assert_eq!((s.open, s.next_change_at), (true, MONDAY + 1 + 7 * DAY_MS));
        let never = hours(&[], "09:00", "17:00", 0);
        let s = never.status(MONDAY);
        assert_eq!((s.open, s.next_change_at), (false, MONDAY + 7 * DAY_MS));
    }

    #[test]
    // Hours that could never be open, and absurd offsets, are refused with the field.
    fn hours_validation() {
        assert_eq!(hours(&[], "09:00", "17:00", 0).validate(), Ok(()));
        assert_eq!(
            hours(&["Mon"], "17:00", "09:00", 0)
                .validate()
                .unwrap_err()
                .0,
            "close"
        );
        assert_eq!(
            hours(&["Mon"], "09:00", "09:00", 0)
                .validate()
                .unwrap_err()
                .1,
            "\"09:00\" is not later than open \"09:00\""
        );
        assert_eq!(
            hours(&["Mon"], "09:00", "17:00", 1200)
                .validate()
                .unwrap_err()
                .0,
            "utc_offset_minutes"
        );
        assert_eq!(
            hours(&["Mo"], "09:00", "17:00", 0)
                .validate()
                .unwrap_err()
                .0,
            "days[0]"
        );
    }
}
