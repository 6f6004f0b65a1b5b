//! The deployments file (TOML): deployments, queues, agents, routing and admin settings,
//! validated at start and on every reload.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
mod auth;
mod bot;
mod branding;
mod http;
mod labels;
mod limits;
mod origin;
mod password;
mod prechat;
mod rules;
pub mod signin;

pub use auth::{AuthConfig, VerifyingKey};
pub use bot::{BotConfig, Intent};
pub use branding::BrandingConfig;
pub use http::HttpSettings;
pub use labels::LabelsConfig;
pub use limits::{Limits, ProxySettings};
pub use origin::OriginPattern;
pub use password::{DEFAULT_ITERATIONS, MIN_ITERATIONS, PasswordHash};
pub use prechat::{FieldConfig, Kind as FieldKind, PrechatConfig};
pub use rules::{BusinessHours, Route, RoutingRule};

/// Everything the server is configured with. Replaced as a whole on reload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub deployment: Vec<Deployment>,
    #[serde(default)]
    pub queue: Vec<Queue>,
    #[serde(default)]
    pub agent: Vec<Agent>,
    #[serde(default)]
    pub routing: RoutingSettings,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub http: HttpSettings,
    #[serde(default)]
    pub proxy: ProxySettings,
    #[serde(default)]
    pub signin: signin::SigninSettings,
}

/// `[server]`: connection settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// A socket whose peer sent nothing (not even a pong) this long is closed.
    pub idle_close_seconds: u64,
    /// Bytes a socket may have waiting to be written; past that it is a slow consumer.
    pub max_queued_bytes: usize,
    /// Frames a socket may have waiting to be written; past that it is a slow consumer.
    pub max_queued_frames: usize,
    /// One frame not written within this is a slow consumer.
    pub write_timeout_seconds: u64,
    /// Longest wait for a close frame to go out and the peer's close to come back.
    pub close_timeout_seconds: u64,
    /// Entries one `resume` replays, one `history` answers, one `assigned` carries.
    pub replay_page_entries: usize,
    /// Several nodes: a node whose heartbeat (every second) is this much behind is gone,
    /// and its agents' connections with it.
    pub node_timeout_seconds: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            idle_close_seconds: 30,
            // A replay of 200 entries of 4,000 characters is ~0.9 MB (3.2 MB if every
            // character takes 4 bytes): a client reading at any normal pace never gets near.
            max_queued_bytes: 4 * 1024 * 1024,
            max_queued_frames: 2000,
            write_timeout_seconds: 10,
            close_timeout_seconds: 3,
            replay_page_entries: 200,
            node_timeout_seconds: 10,
        }
    }
}

impl ServerSettings {
    pub fn idle_close(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idle_close_seconds)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let range = |key: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err((
                    format!("server.{key}"),
                    format!("must be from {min} to {max}"),
                ))
            }
        };
        // Clients count on a dead socket being closed within 45 s (SPEC section 1).
        range("idle_close_seconds", self.idle_close_seconds, 1, 40)?;
        // At least a maximal frame plus room; at most what a thousand sockets can afford.
        let (bytes, frames) = (self.max_queued_bytes as u64, self.max_queued_frames as u64);
        range("max_queued_bytes", bytes, 64 * 1024, 256 << 20)?;
        range("max_queued_frames", frames, 16, 1_000_000)?;
        range("write_timeout_seconds", self.write_timeout_seconds, 1, 300)?;
        range("close_timeout_seconds", self.close_timeout_seconds, 1, 60)?;
        // A page must fit the outbound queue with room to spare (issue: one frame never grows
        // with the conversation).
        range(
            "replay_page_entries",
            self.replay_page_entries as u64,
            10,
            1000,
        )?;
        // Several heartbeats, so one slow second never declares a live node gone.
        range("node_timeout_seconds", self.node_timeout_seconds, 3, 600)
    }
}

/// `[routing]`: server-wide routing settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSettings {
    /// A visitor message in a conversation idle this long, whose agent is not Online, routes
    /// it again to whoever is available.
    pub reopen_after_seconds: u64,
    /// An `Active` conversation with no new entry for this long becomes `Inactive`.
    pub inactive_after_seconds: u64,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            reopen_after_seconds: 3600,
            inactive_after_seconds: 300,
        }
    }
}

/// `[admin]`: the bearer token of `/admin/*` and `/metrics`; without it those endpoints are
/// off (a separate `--metrics-listen` address still serves `/metrics`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub token: Option<String>,
}

/// Shortest admin token accepted: 32 characters of a random hex or base64 string are 128 bits
/// or more, beyond guessing over the network.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

impl AdminConfig {
    /// An empty token would admit anyone and a short one can be guessed: both are refused.
    fn validate(&self) -> Result<(), (String, String)> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let at = "[admin] token".to_string();
        if token.is_empty() {
            return Err((
                at,
                "is empty; leave the key out to turn the admin endpoints off, or set a random token of at least 32 characters (e.g. `openssl rand -hex 32`)".into(),
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err((
                at,
                "must be printable ASCII without spaces (it is sent in an Authorization header)"
                    .into(),
            ));
        }
        let n = token.chars().count();
        if n < MIN_ADMIN_TOKEN_CHARS {
            return Err((
                at,
                format!(
                    "is {n} characters; use a random token of at least {MIN_ADMIN_TOKEN_CHARS} (e.g. `openssl rand -hex 32`)"
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub org_id: String,
    pub name: String,
    pub allowed_origins: Vec<String>,
    pub queue: String,
    #[serde(default)]
    pub branding: BrandingConfig,
    #[serde(default)]
    pub routing_rule: Vec<RoutingRule>,
    pub bot: Option<BotConfig>,
    pub business_hours: Option<BusinessHours>,
    /// `false`: the config endpoint and the socket refuse it with `deployment_unpublished`.
    #[serde(default = "default_published")]
    pub published: bool,
    /// `[deployment.prechat]`; without it, `setContext` field names are not checked.
    pub prechat: Option<PrechatConfig>,
    /// `[deployment.labels.<lang>]`: the branding's words in other languages.
    #[serde(default)]
    pub labels: BTreeMap<String, LabelsConfig>,
    /// `[deployment.auth]`: anonymous (default) or verified visitors.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Ended conversations older than this many days are deleted; none keeps them forever.
    pub retention_days: Option<u32>,
    /// `[deployment.limits]`: quotas and rates per client, end user and socket.
    #[serde(default)]
    pub limits: Limits,
    /// Told to the visitor when nobody can take the conversation now.
    #[serde(default = "default_no_agent")]
    pub no_agent_message: String,
    /// Told to the visitor outside business hours.
    #[serde(default = "default_after_hours")]
    pub after_hours_message: String,
    /// Parsed `allowed_origins`, filled by validation.
    #[serde(skip)]
    pub origins: Vec<OriginPattern>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    pub name: String,
    /// Skills every agent taking this queue's work must have.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Used for the visitor's estimated wait.
    #[serde(default = "default_handle_seconds")]
    pub average_handle_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub username: String,
    pub display_name: String,
    /// PHC string from `em-server hash-password`.
    pub password_hash: String,
    pub capacity: u32,
    pub queues: Vec<String>,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(skip)]
    pub hash: Option<PasswordHash>,
}

fn default_published() -> bool {
    true
}
fn default_handle_seconds() -> u64 {
    300
}
fn default_no_agent() -> String {
    "Nobody is available right now. Leave your message here: we will answer in this conversation."
        .into()
}
fn default_after_hours() -> String {
    "We are closed right now. Leave your message here: we will answer in this conversation when we are back.".into()
}

impl Config {
    /// Reads, parses and validates `path`; any problem is one [`Error::Config`].
    pub fn load(path: &Path) -> Result<Self> {
        let file = path.display().to_string();
        let err = |path: String, message: String| Error::Config {
            file: file.clone(),
            path,
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
            file: file.clone(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        Self::parse_in(&text, base).map_err(|(p, m)| err(p, m))
    }

    /// Parses and validates TOML text; the error is (field path, what is wrong). Key files
    /// named in it are relative to the current directory.
    pub fn parse(text: &str) -> Result<Self, (String, String)> {
        Self::parse_in(text, Path::new(""))
    }

    /// [`Config::parse`] with key files relative to `base` (the config file's folder).
    pub fn parse_in(text: &str, base: &Path) -> Result<Self, (String, String)> {
        let line_of = |span: Option<std::ops::Range<usize>>| match span {
            Some(s) => format!(
                "line {}",
                text[..s.start.min(text.len())].lines().count().max(1)
            ),
            None => "(document)".to_string(),
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| (line_of(e.span()), e.message().to_string()))?;
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let path = if path == "." {
                line_of(inner.span())
            } else {
                path
            };
            (path, inner.message().to_string())
        })?;
        config.validate(base)?;
        Ok(config)
    }

    fn validate(&mut self, base: &Path) -> Result<(), (String, String)> {
        self.server.validate()?;
        self.proxy.validate()?;
        for (i, d) in self.deployment.iter().enumerate() {
            d.limits.validate(&format!("deployment[{i}].limits"))?;
        }
        self.admin.validate()?;
        self.http.validate()?;
        if self.routing.inactive_after_seconds == 0 {
            return Err((
                "routing.inactive_after_seconds".into(),
                "must be at least 1".into(),
            ));
        }
        let queues: HashSet<&str> = self.queue.iter().map(|q| q.name.as_str()).collect();
        unique(self.queue.iter().map(|q| q.name.as_str()), "queue", "name")?;
        for (i, q) in self.queue.iter().enumerate() {
            non_empty(&q.name, || format!("queue[{i}].name"))?;
        }
        unique(
            self.agent.iter().map(|a| a.username.as_str()),
            "agent",
            "username",
        )?;
        for (i, a) in self.agent.iter_mut().enumerate() {
            let at = |f: &str| format!("agent[{i}].{f}");
            non_empty(&a.username, || at("username"))?;
            let hash =
                PasswordHash::parse(&a.password_hash).map_err(|m| (at("password_hash"), m))?;
            if hash.iterations() < password::MIN_ITERATIONS {
                return Err((
                    format!("[[agent]] {} password_hash", a.username),
                    format!(
                        "{} PBKDF2 iterations are too few (at least {}); make a new hash with `em-server hash-password`",
                        hash.iterations(),
                        password::MIN_ITERATIONS
                    ),
                ));
            }
            a.hash = Some(hash);
            non_empty(&a.display_name, || at("display_name"))?;
            if a.capacity < 1 {
                return Err((at("capacity"), "must be at least 1".into()));
            }
            for (j, q) in a.queues.iter().enumerate() {
                if !queues.contains(q.as_str()) {
                    return Err((
                        format!("agent[{i}].queues[{j}]"),
                        format!("no [[queue]] named {q:?}"),
                    ));
                }
            }
        }
        let keys: Vec<String> = self
            .deployment
            .iter()
            .map(|d| format!("{}/{}", d.org_id, d.name))
            .collect();
        unique(keys.iter().map(String::as_str), "deployment", "name")?;
        for (i, d) in self.deployment.iter_mut().enumerate() {
            let at = |f: &str| format!("deployment[{i}].{f}");
            if !valid_org_id(&d.org_id) {
                return Err((
                    at("org_id"),
                    format!(
                        "{:?} is not an org id (expected 00D followed by 12 or 15 letters or digits)",
                        d.org_id
                    ),
                ));
            }
            if !valid_api_name(&d.name) {
                return Err((
                    at("name"),
                    format!(
                        "{:?} is not an API name (letters, digits and _, starting with a letter)",
                        d.name
                    ),
                ));
            }
            if !queues.contains(d.queue.as_str()) {
                return Err((at("queue"), format!("no [[queue]] named {:?}", d.queue)));
            }
            for (j, r) in d.routing_rule.iter().enumerate() {
                let at = |f: &str| at(&format!("routing_rule[{j}].{f}"));
                if let Some(q) = &r.queue
                    && !queues.contains(q.as_str())
                {
                    return Err((at("queue"), format!("no [[queue]] named {q:?}")));
                }
                if let Some(k) = r.when.keys().find(|k| !rules::valid_key(k)) {
                    return Err((
                        at("when"),
                        format!(
                            "{k:?} is not prechat.<field>, hidden.<field>, session.<name>, page.url, page.title or var.<name>"
                        ),
                    ));
                }
            }
            if let Some(bot) = &d.bot {
                bot.validate()
                    .map_err(|(f, m)| (at(&format!("bot.{f}")), m))?;
            }
            if let Some(h) = &d.business_hours {
                h.validate()
                    .map_err(|(f, m)| (at(&format!("business_hours.{f}")), m))?;
            }
            if let Some(p) = &d.prechat {
                p.validate()
                    .map_err(|(f, m)| (at(&format!("prechat.{f}")), m))?;
            }
            labels::validate(&d.branding, &d.labels).map_err(|(f, m)| (at(&f), m))?;
            d.auth
                .validate(base)
                .map_err(|(f, m)| (at(&format!("auth.{f}")), m))?;
            if d.retention_days == Some(0) {
                return Err((
                    at("retention_days"),
                    "must be at least 1 (leave it out to keep conversations forever)".into(),
                ));
            }
            if d.allowed_origins.is_empty() {
                return Err((
                    at("allowed_origins"),
                    "list at least one origin; no web page could use this deployment".into(),
                ));
            }
            d.origins = d
                .allowed_origins
                .iter()
                .enumerate()
                .map(|(j, o)| {
                    OriginPattern::parse(o).map_err(|m| (at(&format!("allowed_origins[{j}]")), m))
                })
                .collect::<Result<_, _>>()?;
            let b = &d.branding;
            for (field, value) in [
                ("button_color", &b.button_color),
                ("header_color", &b.header_color),
                ("accent_color", &b.accent_color),
            ] {
                non_empty(value, || at(&format!("branding.{field}")))?;
            }
            // Colors and fonts end up in the widget's stylesheet: refuse anything that could
            // close a declaration or a rule.
            for (field, value) in [
                ("button_color", &b.button_color),
                ("header_color", &b.header_color),
                ("accent_color", &b.accent_color),
                ("font_family", &b.font_family),
            ] {
                if value.contains([';', '{', '}', '<', '>', '\\', '\n', '\r']) {
                    return Err((
                        at(&format!("branding.{field}")),
                        format!("{value:?} is not a plain CSS value"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The deployment for this org id and API name.
    pub fn deployment(&self, org_id: &str, name: &str) -> Option<&Deployment> {
        self.deployment
            .iter()
            .find(|d| d.org_id == org_id && d.name == name)
    }

    /// A deployment's limits (the defaults if a reload removed it).
    pub fn limits(&self, org_id: &str, name: &str) -> Limits {
        self.deployment(org_id, name)
            .map(|d| d.limits.clone())
            .unwrap_or_default()
    }

    pub fn agent(&self, username: &str) -> Option<&Agent> {
        self.agent.iter().find(|a| a.username == username)
    }

    pub fn queue(&self, name: &str) -> Option<&Queue> {
        self.queue.iter().find(|q| q.name == name)
    }

    /// Valid but probably unintended: work that no configured agent could ever take. Logged
    /// at start and on reload.
    pub fn warnings(&self) -> Vec<String> {
        let can_take = |queue: &str, skills: &[String]| {
            self.agent.iter().any(|a| {
                a.queues.iter().any(|q| q == queue) && skills.iter().all(|s| a.skills.contains(s))
            })
        };
        let mut out = Vec::new();
        for q in &self.queue {
            if !can_take(&q.name, &q.skills) {
                out.push(format!(
                    "queue {:?}: no agent serves it with skills {:?}",
                    q.name, q.skills
                ));
            }
        }
        for d in &self.deployment {
            for (j, r) in d.routing_rule.iter().enumerate() {
                let queue = r.queue.as_deref().unwrap_or(&d.queue);
                let mut skills = r.skills.clone();
                skills.extend(self.queue(queue).into_iter().flat_map(|q| q.skills.clone()));
                if !can_take(queue, &skills) {
                    out.push(format!(
                        "deployment {:?} routing_rule[{j}]: no agent serves queue {queue:?} with skills {skills:?}",
                        d.name
                    ));
                }
            }
        }
        out
    }
}

impl Deployment {
    /// The first routing rule matching `ctx`, else the deployment's queue at priority 0.
    pub fn route(&self, ctx: &em_protocol::agent::ConversationContext) -> Route {
        match self.routing_rule.iter().find(|r| r.matches(ctx)) {
            Some(r) => Route {
                queue: r.queue.clone().unwrap_or_else(|| self.queue.clone()),
                priority: r.priority,
                skills: r.skills.clone(),
            },
            None => Route {
                queue: self.queue.clone(),
                priority: 0,
                skills: Vec::new(),
            },
        }
    }

    /// Whether the deployment is within business hours (always, without any).
    pub fn is_open(&self, now_ms: i64) -> bool {
        self.business_hours
            .as_ref()
            .is_none_or(|h| h.is_open(now_ms))
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|p| p.matches(origin))
    }
}

fn non_empty(value: &str, at: impl Fn() -> String) -> Result<(), (String, String)> {
    if value.trim().is_empty() {
        Err((at(), "must not be empty".into()))
    } else {
        Ok(())
    }
}

fn unique<'a>(
    names: impl Iterator<Item = &'a str>,
    table: &str,
    field: &str,
) -> Result<(), (String, String)> {
    let mut seen = HashSet::new();
    for (i, n) in names.enumerate() {
        if !seen.insert(n) {
            return Err((
                format!("{table}[{i}].{field}"),
                format!("duplicate {table} {n:?}"),
            ));
        }
    }
    Ok(())
}

fn valid_org_id(s: &str) -> bool {
    s.starts_with("00D")
        && matches!(s.len(), 15 | 18)
        && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn valid_api_name(s: &str) -> bool {
    s.len() <= 80
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[test]
    // The documented example file (server/demo/deployments.toml) loads and validates.
    fn demo_config_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/deployments.toml");
        let c = Config::load(&path).unwrap();
        assert!(c.deployment.iter().any(|d| d.bot.is_some()));
        assert!(
            c.agent
                .iter()
                .all(|a| a.hash.as_ref().is_some_and(|h| h.verify("demo-password")))
        );
        assert_eq!(c.warnings(), Vec::<String>::new());
    }

    #[test]
    // Work no agent could take is reported: a queue's skills, a rule's skills.
    fn warnings_name_unservable_work() {
        let hash = super::PasswordHash::create("x", super::MIN_ITERATIONS);
        let c = Config::parse(&format!(
            r#"
            [[deployment]]
            org_id = "00D000000000001"
            name = "D"
            allowed_origins = ["http://x"]
            queue = "q"
            [[deployment.routing_rule]]
            when = {{ "prechat.Lang" = "fr" }}
            skills = ["french"]
            [[queue]]
            name = "q"
            [[queue]]
            name = "vip"
            skills = ["vip"]
            [[agent]]
            username = "a"
            display_name = "A"
            password_hash = "{hash}"
            capacity = 1
            queues = ["q", "vip"]
            "#
        ))
        .unwrap();
        assert_eq!(
            c.warnings(),
            [
                r#"queue "vip": no agent serves it with skills ["vip"]"#,
                r#"deployment "D" routing_rule[0]: no agent serves queue "q" with skills ["french"]"#,
            ]
        );
    }
}
