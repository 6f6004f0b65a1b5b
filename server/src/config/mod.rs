//! The deployments file (TOML): deployments, queues and agents, validated once at start.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
mod branding;
mod origin;

pub use branding::BrandingConfig;
pub use origin::OriginPattern;

/// Everything the server is configured with. Immutable after start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub deployment: Vec<Deployment>,
    #[serde(default)]
    pub queue: Vec<Queue>,
    #[serde(default)]
    pub agent: Vec<Agent>,
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
    /// Parsed `allowed_origins`, filled by validation.
    #[serde(skip)]
    pub origins: Vec<OriginPattern>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub username: String,
    pub display_name: String,
    pub credential: String,
    pub capacity: u32,
    pub queues: Vec<String>,
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
        Self::parse(&text).map_err(|(p, m)| err(p, m))
    }

    /// Parses and validates TOML text; the error is (field path, what is wrong).
    pub fn parse(text: &str) -> Result<Self, (String, String)> {
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
        config.validate()?;
        Ok(config)
    }

    fn validate(&mut self) -> Result<(), (String, String)> {
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
        for (i, a) in self.agent.iter().enumerate() {
            let at = |f: &str| format!("agent[{i}].{f}");
            non_empty(&a.username, || at("username"))?;
            non_empty(&a.credential, || at("credential"))?;
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

    pub fn agent(&self, username: &str) -> Option<&Agent> {
        self.agent.iter().find(|a| a.username == username)
    }
}

impl Deployment {
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
