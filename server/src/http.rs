//! Plain HTTP: the deployment config endpoint, the agent console, health, metrics and admin.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use em_protocol::config::ConfigErrorBody;
use em_protocol::{ConfigError, DeploymentConfig, ErrorCode, PROTOCOL_VERSION};

use crate::AppState;
use crate::config::{Config, Deployment};

/// Why a deployment lookup was refused: a status and the `ConfigError` body.
#[derive(Debug)]
pub struct Refusal(pub StatusCode, pub ErrorCode, pub String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = ConfigError {
            error: ConfigErrorBody {
                code: self.1,
                message: self.2,
            },
        };
        (self.0, Json(body)).into_response()
    }
}

/// The `Origin` request header, if any and readable.
pub fn origin_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Finds the deployment and checks the page origin against it. A request without `Origin`
/// is not from a browser page, so there is no page to protect and it is let through.
/// An unpublished deployment is refused after the origin check, so a page that may not use
/// it learns nothing about its state.
pub fn check_deployment<'a>(
    config: &'a Config,
    org_id: Option<&String>,
    name: Option<&String>,
    origin: Option<&str>,
) -> Result<&'a Deployment, Refusal> {
    let (Some(org_id), Some(name)) = (
        org_id.filter(|s| !s.is_empty()),
        name.filter(|s| !s.is_empty()),
    ) else {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadFrame,
            "query parameters orgId and esConfigName are required".into(),
        ));
    };
    let Some(d) = config.deployment(org_id, name) else {
        let message = if config.deployment.iter().any(|d| d.org_id == *org_id) {
            format!("org {org_id} has no deployment named {name:?}")
        } else {
            format!("unknown org id {org_id}")
        };
        return Err(Refusal(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownDeployment,
            message,
        ));
    };
    match origin {
        Some(o) if !d.allows(o) => Err(Refusal(
            StatusCode::FORBIDDEN,
            ErrorCode::OriginNotAllowed,
            format!("origin {o} is not allowed by deployment {name}; add it to allowed_origins"),
        )),
        _ if !d.published => Err(Refusal(
            StatusCode::NOT_FOUND,
            ErrorCode::DeploymentUnpublished,
            format!("deployment {name} is not published"),
        )),
        _ => Ok(d),
    }
}

/// `GET /embeddedservice/v1/embedded-service-config?orgId=&esConfigName=&language=`.
pub async fn deployment_config(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let origin = origin_of(&headers);
    let config = state.engine.config();
    let checked = check_deployment(
        &config,
        q.get("orgId"),
        q.get("esConfigName"),
        origin.as_deref(),
    );
    // Only a page the org allows may read the answer (CORS): the deployment's own origins, and
    // for a refusal any origin another deployment of that org allows, so the org's own pages
    // can read why (a misspelt name, a page not yet added, unpublished). Any other page gets an
    // opaque answer: it cannot tell an existing deployment from an unknown one.
    let readable = origin.as_deref().filter(|o| match &checked {
        Ok(_) => true,
        Err(_) => q.get("orgId").is_some_and(|org| {
            config
                .deployment
                .iter()
                .any(|d| d.org_id == *org && d.allows(o))
        }),
    });
    let readable = readable.and_then(|o| HeaderValue::from_str(o).ok());
    let mut response = match checked {
        Ok(d) => {
            let body = DeploymentConfig {
                org_id: d.org_id.clone(),
                deployment_name: d.name.clone(),
                protocol_version: PROTOCOL_VERSION,
                branding: d.branding_for(q.get("language").map(String::as_str)),
                auth: d.auth.mode,
                prechat_form: d.prechat.as_ref().map(|p| p.to_wire()),
                // From the clock at request time; the response may be cached for 60 s, but
                // the widget flips at `nextChangeAt` by itself.
                business_hours: d
                    .business_hours
                    .as_ref()
                    .map(|h| h.status(state.engine.clock.now_ms())),
            };
            let mut r = Json(body).into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            r
        }
        Err(refusal) => refusal.into_response(),
    };
    let h = response.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(o) = readable {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
    }
    response
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// Strict CSP: the console has no inline script or style.
const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                           img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub async fn console_html() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONSOLE_CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("console/console.html"),
    )
        .into_response()
}

pub async fn console_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("console/console.js"),
    )
        .into_response()
}

pub async fn console_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("console/console.css"),
    )
        .into_response()
}

/// Ready when the store thread answers (the database is open and not stuck, its group
/// committed) and, with several nodes, the connection that hears the others is up.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.engine.listening.as_ref().is_some_and(|l| !l.is_up()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not hearing the other nodes",
        )
            .into_response();
    }
    let probe = state.engine.run(|inner, _| Ok(inner.store.now()));
    match tokio::time::timeout(std::time::Duration::from_secs(2), probe).await {
        Ok(Ok(_)) => "ready".into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "store not ready").into_response(),
    }
}

/// `GET /metrics` (admin token): Prometheus text, agents' user names included.
pub async fn prometheus(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = admin(&state, &headers) {
        return *r;
    }
    metrics_text(&state, true).await
}

/// `GET /metrics` on the `--metrics-listen` address: no token, no agents' names.
pub async fn prometheus_open(State(state): State<AppState>) -> Response {
    metrics_text(&state, false).await
}

async fn metrics_text(state: &AppState, with_agents: bool) -> Response {
    match state.metrics.get(&state.engine).await {
        Ok(summary) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            summary.prometheus(with_agents),
        )
            .into_response(),
        Err(e) => internal(&e),
    }
}

/// `GET /admin/report` (admin token): the JSON report.
pub async fn report(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = admin(&state, &headers) {
        return *r;
    }
    match state.engine.report().await {
        Ok(r) => Json(r).into_response(),
        Err(e) => internal(&e),
    }
}

/// `POST /admin/reload` (admin token): re-reads the deployments file.
pub async fn admin_reload(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = admin(&state, &headers) {
        return *r;
    }
    match state.reload().await {
        Ok(()) => "reloaded".into_response(),
        Err(e @ (crate::Error::Config { .. } | crate::Error::ConfigRead { .. })) => {
            (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response()
        }
        Err(e) => internal(&e),
    }
}

fn internal(e: &crate::Error) -> Response {
    tracing::error!(error = %e, "request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
}

/// `Authorization: Bearer <[admin] token>`, compared in constant time. Without a configured
/// token the admin endpoints and `/metrics` are off (404).
fn admin(state: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    use subtle::ConstantTimeEq;
    let config = state.engine.config();
    let Some(token) = config.admin.token.as_deref() else {
        return Err(Box::new(
            (
                StatusCode::NOT_FOUND,
                "admin endpoints are off: set [admin] token",
            )
                .into_response(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let same = given.len() == token.len() && bool::from(given.as_bytes().ct_eq(token.as_bytes()));
    if same {
        Ok(())
    } else {
        Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "wrong or missing admin token",
            )
                .into_response(),
        ))
    }
}
