//! The visitor socket: upgrade checks, handshake and identity, conversation frames.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use em_protocol::config::AuthMode;
use em_protocol::visitor::{ToServer, ToVisitor};
use em_protocol::{ConversationId, EndUserId, EntryId, ErrorCode, ErrorFrame, PROTOCOL_VERSION};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::config::{Config, Deployment, Limits};
use crate::context::ContextUpdate;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::http::{check_deployment, origin_of};
use crate::hub::Outbox;
use crate::identity::{self, Verified};
use crate::limits::{DeploymentKey, Rate, SocketRate, SocketSlot};
use crate::session::{Outgoing, Visitor};
use crate::socket::{self, Handler, Sorted};

/// How long a client refused for too many open sockets is told to wait.
const SOCKETS_RETRY_AFTER: Duration = Duration::from_secs(10);

/// `GET /embeddedservice/v1/ws?orgId=&esConfigName=`: refuses unknown deployments (404),
/// disallowed origins (403) and an address with too many open sockets (429) before upgrading.
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let origin = origin_of(&headers);
    let config = state.engine.config();
    let deployment = match check_deployment(
        &config,
        q.get("orgId"),
        q.get("esConfigName"),
        origin.as_deref(),
    ) {
        Ok(d) => d,
        Err(refusal) => return refusal.into_response(),
    };
    let client = crate::client::address(peer, &headers, &config.proxy);
    let key = deployment_key(deployment);
    let max = deployment.limits.connections_per_address;
    let Some(slot) = state.engine.limiter.open_socket(key.clone(), client, max) else {
        tracing::debug!(%client, "visitor socket refused: too many open from this address");
        return too_many_sockets(max);
    };
    let (out, rx) = state.engine.hub.outbox(&config.server);
    let mut handler = VisitorSocket::new(state.engine.clone(), out, deployment, client);
    handler.slot = Some(slot);
    socket::upgrade(ws, rx, handler)
}

/// 429 with `Retry-After` and a `rate_limited` body: a place frees up when a socket closes.
fn too_many_sockets(max: u32) -> Response {
    let refusal = crate::http::Refusal(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        format!("at most {max} visitor sockets may be open from one address; close one first"),
    );
    let mut response = refusal.into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(SOCKETS_RETRY_AFTER.as_secs()),
    );
    response
}

/// The key per-deployment counters use.
fn deployment_key(d: &Deployment) -> DeploymentKey {
    Arc::from(format!("{}/{}", d.org_id, d.name))
}

/// Per-connection state of a visitor socket.
pub struct VisitorSocket {
    pub engine: Arc<Engine>,
    pub out: Outbox,
    pub org_id: String,
    pub deployment_name: String,
    /// Set by a successful `hello`.
    pub visitor: Option<Visitor>,
    /// Verified deployments: the token's subject and its expiry timer.
    pub verified: Option<Verified>,
    /// Whom per-address limits count this socket against.
    pub client: IpAddr,
    key: DeploymentKey,
    frames: SocketRate,
    messages: SocketRate,
    /// This socket's place among its address's open sockets, given back when it ends.
    slot: Option<SocketSlot>,
}

impl Handler for VisitorSocket {
    type Frame = ToServer;
    type Reply = ToVisitor;
    /// The `hello`'s credential and identity token.
    type Hello = (Option<String>, Option<String>);
    type Peer = Visitor;
    const NAME: &'static str = "visitor";

    fn error(frame: ErrorFrame) -> ToVisitor {
        ToVisitor::Error(frame)
    }

    fn sort(frame: ToServer) -> Sorted<ToServer, Self::Hello> {
        match frame {
            ToServer::Hello {
                protocol_version,
                credential,
                identity_token,
            } => Sorted::Hello {
                version: protocol_version,
                sign_in: Ok((credential, identity_token)),
            },
            ToServer::Unknown => Sorted::Unknown,
            ToServer::SendMessage { entry_id, .. } => Sorted::Frame(frame, Some(entry_id)),
            frame => Sorted::Frame(frame, None),
        }
    }

    fn out(&self) -> &Outbox {
        &self.out
    }

    fn signed_in(&self) -> Option<Visitor> {
        self.visitor.clone()
    }

    /// Counted before parsing: malformed frames cost the server too.
    fn admit_text(&mut self, text: &str) -> ControlFlow<()> {
        let n = self.limits().frames_per_second;
        if let Err(wait) = self.frames.take(Rate::per_second(n)) {
            let e = Error::rate_limited(format!("more than {n} frames per second"), wait);
            self.refuse(&e, entry_id_of(text));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    /// A `sendMessage` (the one frame with an entry id) also counts against the message rate.
    fn admit(&mut self, entry_id: Option<EntryId>) -> ControlFlow<()> {
        if entry_id.is_none() {
            return ControlFlow::Continue(());
        }
        let n = self.limits().messages_per_second;
        if let Err(wait) = self.messages.take(Rate::per_second(n)) {
            let e = Error::rate_limited(format!("more than {n} messages per second"), wait);
            self.refuse(&e, entry_id);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    /// Verified deployments: checks the identity token and maps its `sub` to one end user.
    /// Anonymous ones: issues a new identity, or recognizes a returning one by its
    /// credential (an identity token is ignored there).
    async fn hello(&mut self, (credential, identity_token): Self::Hello) -> Result<()> {
        let config = self.engine.config();
        let auth = &self.deployment(&config)?.auth;
        let (org, name) = (self.org_id.clone(), self.deployment_name.clone());
        if auth.mode == AuthMode::Verified {
            let Some(token) = identity_token else {
                return Err(Error::peer(
                    ErrorCode::IdentityRequired,
                    "this deployment verifies visitors: say hello with an identityToken \
                     (a credential alone is not accepted)",
                ));
            };
            let now = self.engine.clock.now_ms();
            let identity = identity::verify(auth, &token, now)?;
            let subject = identity.subject.clone();
            let (end_user_id, conversation_id) = self
                .engine
                .run(move |inner, _| {
                    let id = inner.store.verified_end_user(&org, &name, &subject)?;
                    Ok((id, inner.store.open_conversation(id, &org, &name)?))
                })
                .await?;
            self.welcome_verified(
                end_user_id,
                conversation_id,
                identity,
                now,
                auth.grace_seconds,
            );
            return Ok(());
        }
        if credential.is_none() {
            let n = self.limits().new_visitors_per_minute;
            let rate = Rate::per(n, Duration::from_secs(60));
            if let Err(wait) = self
                .engine
                .limiter
                .new_visitor(self.key.clone(), self.client, rate)
            {
                return Err(Error::rate_limited(
                    format!("more than {n} new visitors per minute from this address"),
                    wait,
                ));
            }
        }
        let (end_user_id, credential, conversation_id) = self
            .engine
            .run(move |inner, _| match credential {
                Some(c) => match inner.store.end_user_by_credential(
                    &Sha256::digest(c.as_bytes()),
                    &org,
                    &name,
                )? {
                    Some(id) => Ok((id, c, inner.store.open_conversation(id, &org, &name)?)),
                    None => Err(Error::peer(
                        ErrorCode::Unauthorized,
                        "unknown credential; say hello without one for a new identity",
                    )),
                },
                None => {
                    let secret: [u8; 32] = rand::random();
                    let c = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
                    let id = EndUserId(uuid::Uuid::new_v4());
                    inner
                        .store
                        .create_end_user(id, &Sha256::digest(c.as_bytes()), &org, &name)?;
                    Ok((id, c, None))
                }
            })
            .await?;
        self.welcome(end_user_id, credential, conversation_id);
        Ok(())
    }

    async fn handle(&mut self, v: Visitor, frame: ToServer) -> Result<()> {
        let (engine, out) = (&self.engine, self.out.clone());
        match frame {
            ToServer::CreateConversation { conversation_id } => {
                engine.create_conversation(v, conversation_id, out).await
            }
            ToServer::Resume {
                conversation_id,
                after_seq,
            } => {
                // Seqs are stored as SQLite integers: anything above is no seq at all.
                if after_seq > i64::MAX as u64 {
                    return Err(Error::peer(
                        ErrorCode::BadFrame,
                        format!("afterSeq {after_seq} is out of range"),
                    ));
                }
                engine.resume(v, conversation_id, after_seq, out).await
            }
            ToServer::SendMessage {
                conversation_id,
                entry_id,
                text,
                client_timestamp,
            } => {
                let m = Outgoing {
                    conversation_id,
                    entry_id,
                    text,
                    client_timestamp: Some(client_timestamp),
                };
                engine.visitor_message(v, m, out).await
            }
            ToServer::SetContext {
                conversation_id,
                prechat_fields,
                hidden_fields,
                page,
                session_context,
                auto_response_parameters,
            } => {
                let update = ContextUpdate {
                    prechat_fields,
                    hidden_fields,
                    page,
                    session_context,
                    auto_response_parameters,
                };
                engine.set_context(v, conversation_id, update, out).await
            }
            ToServer::Typing {
                conversation_id,
                typing,
            } => engine.visitor_typing(v, conversation_id, typing).await,
            ToServer::History {
                conversation_id,
                before_seq,
            } => {
                engine
                    .visitor_history(v, conversation_id, before_seq, out)
                    .await
            }
            ToServer::Identify { identity_token } => self.identify(v, &identity_token).await,
            ToServer::EndConversation { conversation_id } => {
                engine.end_conversation(v, conversation_id).await
            }
            ToServer::Ping => {
                out.send(&ToVisitor::Pong);
                Ok(())
            }
            ToServer::Hello { .. } | ToServer::Unknown => Ok(()), // the core answers these
        }
    }

    async fn on_close(self) {
        self.engine.hub.remove(self.out.id, None);
    }

    fn idle_limit(&self) -> std::time::Duration {
        self.engine.config().server.idle_close()
    }
}

/// The `entryId` of a `sendMessage`, read without a full parse (for a refusal's answer).
fn entry_id_of(text: &str) -> Option<EntryId> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        entry_id: Option<EntryId>,
    }
    serde_json::from_str::<Probe>(text).ok()?.entry_id
}

impl VisitorSocket {
    pub fn new(engine: Arc<Engine>, out: Outbox, deployment: &Deployment, client: IpAddr) -> Self {
        Self {
            engine,
            out,
            org_id: deployment.org_id.clone(),
            deployment_name: deployment.name.clone(),
            visitor: None,
            verified: None,
            client,
            key: deployment_key(deployment),
            frames: SocketRate::new(),
            messages: SocketRate::new(),
            slot: None,
        }
    }

    /// This deployment's limits as configured now (a reload applies at once).
    fn limits(&self) -> Limits {
        self.engine
            .config()
            .limits(&self.org_id, &self.deployment_name)
    }

    /// `identify`: a fresh token for the same subject renews the session (a new expiry timer)
    /// and is answered by `welcome`; another subject is refused and the session goes on.
    async fn identify(&mut self, v: Visitor, token: &str) -> Result<()> {
        let Some(subject) = self.verified.as_ref().map(|s| s.subject.clone()) else {
            return Err(Error::peer(
                ErrorCode::BadFrame,
                "identify is for verified deployments; this connection is anonymous",
            ));
        };
        let config = self.engine.config();
        let auth = &self.deployment(&config)?.auth;
        let now = self.engine.clock.now_ms();
        let identity = identity::verify(auth, token, now)?;
        if identity.subject != subject {
            return Err(Error::peer(
                ErrorCode::IdentityInvalid,
                "identity token refused: its sub is not this connection's; \
                 open a new connection for another user",
            ));
        }
        let (org, name, id) = (v.org_id, v.deployment_name, v.end_user_id);
        let conversation_id = self
            .engine
            .run(move |inner, _| inner.store.open_conversation(id, &org, &name))
            .await?;
        self.welcome_verified(id, conversation_id, identity, now, auth.grace_seconds);
        Ok(())
    }

    /// This socket's deployment in `config` (a reload may have removed it).
    fn deployment<'c>(&self, config: &'c Config) -> Result<&'c Deployment> {
        config
            .deployment(&self.org_id, &self.deployment_name)
            .ok_or_else(|| {
                Error::peer(
                    ErrorCode::UnknownDeployment,
                    format!("deployment {} no longer exists", self.deployment_name),
                )
            })
    }

    /// Welcome a verified visitor (the token is its credential: none is issued) and watch the
    /// token's expiry, replacing the watch of an earlier token.
    fn welcome_verified(
        &mut self,
        end_user_id: EndUserId,
        conversation_id: Option<ConversationId>,
        identity: identity::Identity,
        now_ms: i64,
        grace_seconds: u64,
    ) {
        self.welcome(end_user_id, String::new(), conversation_id);
        self.verified = Some(Verified::watch(
            identity,
            now_ms,
            grace_seconds,
            self.out.clone(),
        ));
    }

    fn welcome(
        &mut self,
        end_user_id: EndUserId,
        credential: String,
        conversation_id: Option<ConversationId>,
    ) {
        self.visitor = Some(Visitor {
            end_user_id,
            org_id: self.org_id.clone(),
            deployment_name: self.deployment_name.clone(),
        });
        self.out.send(&ToVisitor::Welcome {
            protocol_version: PROTOCOL_VERSION,
            end_user_id,
            credential,
            conversation_id,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;

    use axum::extract::ws::Message;
    use futures::channel::mpsc;
    use futures::{SinkExt, StreamExt};
    use serde_json::{Value, json};

    use super::VisitorSocket;
    use crate::config::Config;
    use crate::engine::Engine;
    use crate::hub::Outbox;
    use crate::socket;

    const CONFIG: &str = r#"
        [[deployment]]
        org_id = "00D000000000001"
        name = "Demo"
        allowed_origins = ["http://127.0.0.1:*"]
        queue = "q"
        [[queue]]
        name = "q"
    "#;

    async fn next(rx: &mut mpsc::UnboundedReceiver<Message>) -> Value {
        match rx.next().await {
            Some(Message::Text(t)) => serde_json::from_str(t.as_str()).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    #[tokio::test]
    // The visitor handler runs over plain channels (no network): handshake, errors, ping, close.
    async fn visitor_socket_over_channels() {
        let dir = tempfile::tempdir().unwrap();
        let config = Arc::new(Config::parse(CONFIG).unwrap());
        let clock = Arc::new(crate::clock::SystemClock);
        let engine = Arc::new(
            Engine::open(
                config,
                &crate::store::Database::Sqlite(dir.path().join("em.sqlite")),
                clock,
            )
            .unwrap(),
        );
        let (out, rx) = Outbox::new();
        let deployment = engine.config().deployment[0].clone();
        let handler = VisitorSocket::new(engine, out, &deployment, [127, 0, 0, 1].into());
        let (mut client, from_client) = mpsc::unbounded::<Result<Message, Infallible>>();
        let (to_client, mut server) = mpsc::unbounded::<Message>();
        let task = tokio::spawn(socket::serve(to_client, from_client, rx, handler));

        let text = |v: Value| Ok(Message::Text(v.to_string().into()));
        client.send(text(json!({"type": "ping"}))).await.unwrap();
        assert_eq!(next(&mut server).await["code"], "handshake_required");
        client
            .send(text(json!({"type": "hello", "protocolVersion": 1})))
            .await
            .unwrap();
        assert_eq!(next(&mut server).await["type"], "welcome");
        client.send(Ok(Message::Text("nope".into()))).await.unwrap();
        assert_eq!(next(&mut server).await["code"], "bad_frame");
        client
            .send(Ok(Message::Binary(vec![1, 2].into())))
            .await
            .unwrap();
        assert_eq!(next(&mut server).await["code"], "bad_frame");
        client.send(text(json!({"type": "ping"}))).await.unwrap();
        assert_eq!(next(&mut server).await, json!({"type": "pong"}));
        drop(client);
        task.await.unwrap();
    }
}
