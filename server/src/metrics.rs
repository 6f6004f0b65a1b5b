//! Metrics from the store: per session (wait, first response, handle time, bot deflection,
//! transfers) and per queue and agent (volume, handle time), as JSON and as Prometheus text.
//!
//! Definitions (seconds): wait = first assignment − start of waiting; first response = first
//! agent message − start of waiting; handle = end − first assignment. An agent's or a queue's
//! handle time sums their finished assignments. A conversation is deflected when the bot
//! answered at least once and it never went to routing.

use std::collections::BTreeMap;
use std::fmt::Write;

use em_protocol::agent::Presence;
use serde::Serialize;

use crate::engine::Engine;
use crate::error::Result;
use crate::store::Store;

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
        let (waiting_now, agents_online) = self
            .run(|inner, _| {
                let online = inner
                    .routing
                    .loads()
                    .iter()
                    .filter(|l| l.1 == Presence::Online)
                    .count();
                Ok((inner.routing.waiting_count() as u64, online as u64))
            })
            .await?;
        let (db, clock, config) = (self.db.clone(), self.clock.clone(), self.config());
        tokio::task::spawn_blocking(move || {
            let reader = Store::open_reader(&db, clock)?;
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
            let finish = |m: BTreeMap<String, GroupReport>| {
                m.into_iter()
                    .map(|(name, mut g)| {
                        g.name = name;
                        g.average_handle_seconds =
                            (g.handled > 0).then(|| g.handle_seconds / g.handled as f64);
                        g
                    })
                    .collect()
            };
            Ok(Report {
                generated_at: reader.now(),
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

impl Report {
    /// Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let mut o = String::new();
        let t = &self.totals;
        let mut metric = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(o, "{name}{labels} {v}");
            }
        };
        let one = |v: u64| vec![(String::new(), v as f64)];
        metric(
            "em_conversations_total",
            "counter",
            "Conversations created.",
            one(t.conversations),
        );
        metric(
            "em_bot_conversations_total",
            "counter",
            "Conversations the bot took part in.",
            one(t.with_bot),
        );
        metric(
            "em_bot_deflected_total",
            "counter",
            "Conversations resolved by the bot alone.",
            one(t.deflected),
        );
        metric(
            "em_handoffs_total",
            "counter",
            "Conversations the bot handed to routing.",
            one(t.handed_off),
        );
        metric(
            "em_transfers_total",
            "counter",
            "Transfers between agents or queues.",
            one(t.transfers),
        );
        metric(
            "em_conversations_ended_total",
            "counter",
            "Conversations ended, by the agent or the visitor.",
            one(t.ended),
        );
        metric(
            "em_waiting_conversations",
            "gauge",
            "Conversations waiting for an agent now.",
            one(t.waiting_now),
        );
        metric(
            "em_agents_online",
            "gauge",
            "Agents Online now.",
            one(t.agents_online),
        );
        let sum = |f: fn(&SessionReport) -> Option<f64>| {
            let v: Vec<f64> = self.sessions.iter().filter_map(f).collect();
            vec![
                ("_sum".to_string(), v.iter().sum::<f64>()),
                ("_count".to_string(), v.len() as f64),
            ]
        };
        for (name, help, f) in [
            (
                "em_wait_seconds",
                "Time from waiting to the first assignment.",
                (|s: &SessionReport| s.wait_seconds) as fn(&SessionReport) -> Option<f64>,
            ),
            (
                "em_first_response_seconds",
                "Time from waiting to the first agent message.",
                |s: &SessionReport| s.first_response_seconds,
            ),
            (
                "em_handle_seconds",
                "Time from the first assignment to the end.",
                |s: &SessionReport| s.handle_seconds,
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} summary");
            for (suffix, v) in sum(f) {
                let _ = writeln!(o, "{name}{suffix} {v}");
            }
        }
        for (kind, groups) in [("queue", &self.queues), ("agent", &self.agents)] {
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
