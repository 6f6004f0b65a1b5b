//! Metrics from the store: per session (wait, first response, handle time, bot deflection,
//! transfers) and per queue and agent (volume, handle time), as JSON (the full report) and as
//! Prometheus text (totals only, cached).
//!
//! Definitions (seconds): wait = first assignment − start of waiting; first response = first
//! agent message − start of waiting; handle = end − first assignment. An agent's or a queue's
//! handle time sums their finished assignments. A conversation is deflected when the bot
//! answered at least once and it never went to routing.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use em_protocol::agent::Presence;
use serde::Serialize;

use crate::engine::Engine;
use crate::error::Result;

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub generated_at: i64,
    pub totals: Totals,
    pub sessions: Vec<SessionReport>,
    pub queues: Vec<GroupReport>,
    pub agents: Vec<GroupReport>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub conversations: u64,
    pub with_bot: u64,
    pub deflected: u64,
    pub handed_off: u64,
    pub assigned: u64,
    pub ended: u64,
    pub transfers: u64,
    pub waiting_now: u64,
    pub agents_online: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionReport {
    pub conversation_id: String,
    pub deployment_name: String,
    pub status: String,
    pub queue: String,
    pub agent: Option<String>,
    pub deflected: bool,
    pub wait_seconds: Option<f64>,
    pub first_response_seconds: Option<f64>,
    pub handle_seconds: Option<f64>,
    pub transfers: i64,
}

/// A queue's or an agent's figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GroupReport {
    pub name: String,
    /// Assignments (a transferred conversation counts once per agent or queue it reached).
    pub volume: u64,
    /// Finished assignments and their summed handle time.
    pub handled: u64,
    pub handle_seconds: f64,
    pub average_handle_seconds: Option<f64>,
}

fn secs(from: Option<i64>, to: Option<i64>) -> Option<f64> {
    Some((to? - from?) as f64 / 1000.0)
}

impl Engine {
    /// The whole report. The live gauges come from the store thread (a tiny job); the figures
    /// are read on a read-only connection in a blocking task, so a scrape never holds up
    /// messages however large the tables are.
    pub async fn report(&self) -> Result<Report> {
        let (waiting_now, agents_online) = self.live_gauges().await?;
        let (db, clock, config) = (self.db.clone(), self.clock.clone(), self.config());
        tokio::task::spawn_blocking(move || {
            let clock_now = clock.now_ms();
            let mut reader = db.open_reader(clock)?;
            let sessions = reader.session_figures()?;
            let assignments = reader.assignment_figures()?;
            let mut totals = Totals {
                waiting_now,
                agents_online,
                ..Totals::default()
            };
            let mut out = Vec::with_capacity(sessions.len());
            for s in sessions {
                let deflected =
                    s.bot && s.bot_answers > 0 && !s.handed_off && s.waiting_at.is_none();
                totals.conversations += 1;
                totals.with_bot += u64::from(s.bot);
                totals.deflected += u64::from(deflected);
                totals.handed_off += u64::from(s.handed_off);
                totals.assigned += u64::from(s.first_assigned_at.is_some());
                totals.ended += u64::from(s.ended_at.is_some());
                totals.transfers += s.transfers as u64;
                out.push(SessionReport {
                    wait_seconds: secs(s.waiting_at, s.first_assigned_at),
                    first_response_seconds: secs(s.waiting_at, s.first_response_at),
                    handle_seconds: secs(s.first_assigned_at, s.ended_at),
                    conversation_id: s.conversation_id,
                    deployment_name: s.deployment_name,
                    status: s.status,
                    queue: s.queue,
                    agent: s.agent,
                    deflected,
                    transfers: s.transfers,
                });
            }
            let mut queues: BTreeMap<String, GroupReport> = BTreeMap::new();
            let mut agents: BTreeMap<String, GroupReport> = BTreeMap::new();
            for q in &config.queue {
                queues.entry(q.name.clone()).or_default();
            }
            for a in &config.agent {
                agents.entry(a.username.clone()).or_default();
            }
            for a in &assignments {
                for g in [
                    queues.entry(a.queue.clone()).or_default(),
                    agents.entry(a.agent.clone()).or_default(),
                ] {
                    g.volume += 1;
                    if let Some(done) = a.released_at {
                        g.handled += 1;
                        g.handle_seconds += (done - a.assigned_at) as f64 / 1000.0;
                    }
                }
            }
            Ok(Report {
                generated_at: clock_now,
                totals,
                sessions: out,
                queues: finish(queues),
                agents: finish(agents),
            })
        })
        .await
        .map_err(|e| crate::Error::Io(std::io::Error::other(e)))?
    }
}

/// What `/metrics` shows: totals, duration summaries, per queue and per agent. Added up by
/// SQLite (no row is read into memory), and cached by [`Cache`].
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub totals: Totals,
    /// (sum in seconds, count) of wait, first response and handle time.
    pub wait: (f64, u64),
    pub first_response: (f64, u64),
    pub handle: (f64, u64),
    pub queues: Vec<GroupReport>,
    pub agents: Vec<GroupReport>,
}

/// How long a [`Summary`] is shown before the tables are read again: a scraper every 15 s
/// sees fresh figures, a flood of scrapes costs one read per period.
pub const SUMMARY_MAX_AGE: Duration = Duration::from_secs(5);

/// The last [`Summary`] and when it was made. Scrapes that arrive while one is being made
/// wait for it instead of starting their own.
#[derive(Debug, Default)]
pub struct Cache {
    last: tokio::sync::Mutex<Option<(Instant, Arc<Summary>)>>,
}

impl Cache {
    pub async fn get(&self, engine: &Engine) -> Result<Arc<Summary>> {
        let mut last = self.last.lock().await;
        if let Some((at, summary)) = &*last
            && at.elapsed() < SUMMARY_MAX_AGE
        {
            return Ok(summary.clone());
        }
        let summary = Arc::new(engine.summary().await?);
        *last = Some((Instant::now(), summary.clone()));
        Ok(summary)
    }
}

impl Engine {
    /// The [`Summary`]: live gauges from the store thread, the rest on a read-only connection
    /// in a blocking task.
    pub async fn summary(&self) -> Result<Summary> {
        let (waiting_now, agents_online) = self.live_gauges().await?;
        let (db, clock, config) = (self.db.clone(), self.clock.clone(), self.config());
        tokio::task::spawn_blocking(move || {
            let mut reader = db.open_reader(clock)?;
            let t = reader.session_totals()?;
            let (queues, agents) = reader.group_totals()?;
            let n = |v: i64| u64::try_from(v).unwrap_or(0);
            let secs = |(ms, count): (i64, i64)| (ms as f64 / 1000.0, n(count));
            let groups = |rows: Vec<(String, i64, i64, i64)>, names: Vec<String>| {
                let mut m: BTreeMap<String, GroupReport> = names
                    .into_iter()
                    .map(|k| (k, GroupReport::default()))
                    .collect();
                for (name, volume, handled, ms) in rows {
                    let g = m.entry(name).or_default();
                    g.volume = n(volume);
                    g.handled = n(handled);
                    g.handle_seconds = ms as f64 / 1000.0;
                }
                finish(m)
            };
            Ok(Summary {
                totals: Totals {
                    conversations: n(t.conversations),
                    with_bot: n(t.with_bot),
                    deflected: n(t.deflected),
                    handed_off: n(t.handed_off),
                    assigned: n(t.assigned),
                    ended: n(t.ended),
                    transfers: n(t.transfers),
                    waiting_now,
                    agents_online,
                },
                wait: secs(t.wait),
                first_response: secs(t.first_response),
                handle: secs(t.handle),
                queues: groups(
                    queues,
                    config.queue.iter().map(|q| q.name.clone()).collect(),
                ),
                agents: groups(
                    agents,
                    config.agent.iter().map(|a| a.username.clone()).collect(),
                ),
            })
        })
        .await
        .map_err(|e| crate::Error::Io(std::io::Error::other(e)))?
    }

    /// Conversations waiting and agents Online now (a tiny job on the store thread).
    async fn live_gauges(&self) -> Result<(u64, u64)> {
        self.run(|inner, _| {
            let online = inner
                .routing
                .loads()
                .iter()
                .filter(|l| l.1 == Presence::Online)
                .count();
            Ok((inner.routing.waiting_count() as u64, online as u64))
        })
        .await
    }
}

/// Names each group and works out its average handle time.
fn finish(m: BTreeMap<String, GroupReport>) -> Vec<GroupReport> {
    m.into_iter()
        .map(|(name, mut g)| {
            g.name = name;
            g.average_handle_seconds = (g.handled > 0).then(|| g.handle_seconds / g.handled as f64);
            g
        })
        .collect()
}

impl Summary {
    /// Prometheus text exposition format (version 0.0.4). Per-agent series (agents' user
    /// names) only `with_agents`: the unauthenticated metrics listener leaves them out.
    pub fn prometheus(&self, with_agents: bool) -> String {
        let mut o = String::new();
        let t = &self.totals;
        let mut metric = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        metric(
            "em_conversations_total",
            "counter",
            "Conversations created.",
            t.conversations,
        );
        metric(
            "em_bot_conversations_total",
            "counter",
            "Conversations the bot took part in.",
            t.with_bot,
        );
        metric(
            "em_bot_deflected_total",
            "counter",
            "Conversations resolved by the bot alone.",
            t.deflected,
        );
        metric(
            "em_handoffs_total",
            "counter",
            "Conversations the bot handed to routing.",
            t.handed_off,
        );
        metric(
            "em_transfers_total",
            "counter",
            "Transfers between agents or queues.",
            t.transfers,
        );
        metric(
            "em_conversations_ended_total",
            "counter",
            "Conversations ended, by the agent or the visitor.",
            t.ended,
        );
        metric(
            "em_waiting_conversations",
            "gauge",
            "Conversations waiting for an agent now.",
            t.waiting_now,
        );
        metric(
            "em_agents_online",
            "gauge",
            "Agents Online now.",
            t.agents_online,
        );
        for (name, help, (sum, count)) in [
            (
                "em_wait_seconds",
                "Time from waiting to the first assignment.",
                self.wait,
            ),
            (
                "em_first_response_seconds",
                "Time from waiting to the first agent message.",
                self.first_response,
            ),
            (
                "em_handle_seconds",
                "Time from the first assignment to the end.",
                self.handle,
            ),
        ] {
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} summary\n{name}_sum {sum}\n{name}_count {count}"
            );
        }
        let mut groups = vec![("queue", &self.queues)];
        if with_agents {
            groups.push(("agent", &self.agents));
        }
        for (kind, groups) in groups {
            for (what, help, value) in [
                (
                    "assignments_total",
                    "Assignments.",
                    (|g: &GroupReport| g.volume as f64) as fn(&GroupReport) -> f64,
                ),
                (
                    "handle_seconds_total",
                    "Summed handle time of finished assignments.",
                    |g: &GroupReport| g.handle_seconds,
                ),
            ] {
                let name = format!("em_{kind}_{what}");
                let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
                for g in groups {
                    let _ = writeln!(o, "{name}{{{kind}=\"{}\"}} {}", escape(&g.name), value(g));
                }
            }
        }
        o
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
