//! The agent socket: sign-in (password or session token, with backoff), presence, replies,
//! ending sessions and sign-out.

use std::net::{IpAddr, SocketAddr};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use em_protocol::agent::{AgentRef, Presence, ToAgent, ToServer};
use em_protocol::close::CloseCode;
use em_protocol::{EntryId, ErrorCode, ErrorFrame, PROTOCOL_VERSION};

use crate::AppState;
use crate::config::Config;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::http::{Refusal, origin_of};
use crate::hub::Outbox;
use crate::lifecycle::assigned_frame;
use crate::session::Outgoing;
use crate::signin::Session;
use crate::socket::{self, Handler, Sorted};

/// Longest username looked at; a longer one is refused without hashing or remembering it.
const MAX_USERNAME_BYTES: usize = 256;

/// `GET /agent/ws`. A browser page may open it only from the console's own origin or one
/// listed in `[signin] console_origins`: another site's page could otherwise use an agent's
/// network position to guess passwords, or a console's session token if it ever got one.
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let config = state.engine.config();
    if let Some(origin) = origin_of(&headers)
        && !console_origin_allowed(&config, &headers, &origin)
    {
        return Refusal(
            StatusCode::FORBIDDEN,
            ErrorCode::OriginNotAllowed,
            format!(
                "origin {origin} may not open the agent socket; add it to [signin] console_origins"
            ),
        )
        .into_response();
    }
    let (out, rx) = state.engine.hub.outbox(&config.server);
    let handler = AgentSocket {
        engine: state.engine.clone(),
        out,
        address: crate::client::address(peer, &headers, &config.proxy),
        username: None,
        session: None,
        refused: 0,
    };
    socket::upgrade(ws, rx, handler)
}

/// The console's own origin (`http(s)://` + the request's `Host`) or a configured one.
fn console_origin_allowed(config: &Config, headers: &HeaderMap, origin: &str) -> bool {
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            ["http://", "https://"]
                .iter()
                .any(|scheme| origin.eq_ignore_ascii_case(&format!("{scheme}{host}")))
        });
    own || config
        .signin
        .console_origins
        .iter()
        .any(|p| p.matches(origin))
}

/// Tells each socket why and closes it (sign-out, revoked rights); their cleanup follows.
pub fn sign_out(sockets: Vec<Outbox>, why: &str) {
    let mut seen = std::collections::HashSet::new();
    for out in sockets.into_iter().filter(|o| seen.insert(o.id)) {
        out.send(&ToAgent::Error(ErrorFrame {
            code: ErrorCode::Unauthorized,
            message: why.to_string(),
            entry_id: None,
            retry_after_ms: None,
        }));
        out.close(CloseCode::AccessRevoked);
    }
}

pub struct AgentSocket {
    pub engine: Arc<Engine>,
    pub out: Outbox,
    /// The client's address, which sign-in failures are counted against.
    pub address: IpAddr,
    /// Set by a successful `hello`.
    pub username: Option<String>,
    /// The session token this socket signed in with (or was given).
    pub session: Option<Session>,
    /// Sign-ins refused on this socket; at `[signin] close_after_failures` it is closed.
    pub refused: u32,
}

impl Handler for AgentSocket {
    type Frame = ToServer;
    type Reply = ToAgent;
    /// The `hello`'s username and proof.
    type Hello = (String, Proof);
    /// The agent's username.
    type Peer = String;
    const NAME: &'static str = "agent";

    fn error(frame: ErrorFrame) -> ToAgent {
        ToAgent::Error(frame)
    }

    fn sort(frame: ToServer) -> Sorted<ToServer, Self::Hello> {
        match frame {
            ToServer::Hello {
                protocol_version,
                username,
                credential,
                session_token,
            } => Sorted::Hello {
                version: protocol_version,
                sign_in: match (credential, session_token) {
                    (Some(pw), None) => Ok((username, Proof::Password(pw))),
                    (None, Some(token)) => Ok((username, Proof::Token(token))),
                    _ => Err(Error::peer(
                        ErrorCode::BadFrame,
                        "hello needs exactly one of credential and sessionToken",
                    )),
                },
            },
            ToServer::Unknown => Sorted::Unknown,
            ToServer::SendMessage { entry_id, .. } => Sorted::Frame(frame, Some(entry_id)),
            frame => Sorted::Frame(frame, None),
        }
    }

    fn out(&self) -> &Outbox {
        &self.out
    }

    fn signed_in(&self) -> Option<String> {
        self.username.clone()
    }

    /// A signed-in agent whose rights ended is signed out instead of answered.
    fn admit(&mut self, _entry_id: Option<EntryId>) -> ControlFlow<()> {
        if let Some(name) = &self.username
            && let Err(why) = self.still_signed_in(name)
        {
            sign_out(vec![self.out.clone()], why);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    async fn hello(&mut self, (username, proof): Self::Hello) -> Result<()> {
        let username = username.as_str();
        let config = self.engine.config();
        let settings = &config.signin;
        let signin = self.engine.signin.clone();
        let now = self.engine.clock.now_ms();
        // A token is 256 random bits, beyond guessing: a token sign-in waits out only the
        // address's backoff, so someone failing passwords as an agent cannot keep that agent's
        // signed-in consoles from reconnecting.
        let user_key = matches!(proof, Proof::Password(_)).then_some(username);
        if let Some(wait) = signin.wait(settings, now, self.address, user_key) {
            tracing::debug!(user = ?short(username), address = %self.address, "agent sign-in refused during backoff");
            return self.refuse_sign_in(Error::rate_limited(
                "too many failed sign-ins; wait before trying again",
                wait,
            ));
        }
        let (agent, session) = match proof {
            Proof::Token(token) => {
                let session = (username.len() <= MAX_USERNAME_BYTES)
                    .then(|| signin.redeem(now, &token, username, &config, &self.out))
                    .flatten();
                (
                    session.as_ref().and_then(|_| config.agent(username)),
                    session,
                )
            }
            Proof::Password(pw) => (self.check_password(&config, username, pw).await?, None),
        };
        let Some(agent) = agent.cloned() else {
            signin.failed(settings, now, self.address, user_key);
            tracing::warn!(user = ?short(username), address = %self.address, "agent sign-in failed");
            return self.refuse_sign_in(Error::peer(
                ErrorCode::Unauthorized,
                "unknown username, wrong credential, or a session token that expired or was revoked",
            ));
        };
        let (session, token) = match session {
            Some(s) => (s, None),
            None => {
                signin.succeeded(&agent.username);
                let (token, session, evicted) = signin.issue(
                    now,
                    settings.session_lifetime,
                    &agent.username,
                    &agent.password_hash,
                    &self.out,
                );
                sign_out(evicted, "signed out: too many sessions for this agent");
                (session, Some(token))
            }
        };
        tracing::info!(agent = %agent.username, address = %self.address, with_token = token.is_none(), "agent signed in");
        self.username = Some(agent.username.clone());
        self.session = Some(session);
        self.out.send(&ToAgent::Welcome {
            protocol_version: PROTOCOL_VERSION,
            username: agent.username.clone(),
            display_name: agent.display_name.clone(),
            capacity: agent.capacity,
            agents: config
                .agent
                .iter()
                .filter(|a| a.username != agent.username)
                .map(|a| AgentRef {
                    username: a.username.clone(),
                    display_name: a.display_name.clone(),
                })
                .collect(),
            queues: config.queue.iter().map(|q| q.name.clone()).collect(),
            session_token: token,
        });
        Ok(())
    }

    async fn handle(&mut self, name: String, frame: ToServer) -> Result<()> {
        let (engine, out) = (&self.engine, self.out.clone());
        match frame {
            ToServer::SignOut => {
                let mut sockets = vec![out];
                if let Some(session) = &self.session {
                    sockets.extend(engine.signin.revoke(&session.key));
                }
                tracing::info!(agent = %name, "signed out");
                sign_out(sockets, "signed out");
                Ok(())
            }
            ToServer::SetPresence { presence } => set_presence(engine, name, presence, out).await,
            ToServer::SendMessage {
                conversation_id,
                entry_id,
                text,
            } => {
                let m = Outgoing {
                    conversation_id,
                    entry_id,
                    text,
                    client_timestamp: None,
                };
                engine.agent_message(name, m, out).await
            }
            ToServer::EndSession { conversation_id } => {
                engine.end_session(name, conversation_id).await
            }
            ToServer::Transfer {
                conversation_id,
                to_agent,
                to_queue,
            } => {
                engine
                    .transfer(name, conversation_id, to_agent, to_queue)
                    .await
            }
            ToServer::Typing {
                conversation_id,
                typing,
            } => engine.agent_typing(name, conversation_id, typing).await,
            ToServer::MarkRead {
                conversation_id,
                seq,
            } => engine.agent_read(name, conversation_id, seq).await,
            ToServer::History {
                conversation_id,
                before_seq,
            } => {
                engine
                    .agent_history(name, conversation_id, before_seq, out)
                    .await
            }
            ToServer::Ping => {
                out.send(&ToAgent::Pong);
                Ok(())
            }
            ToServer::Hello { .. } | ToServer::Unknown => Ok(()), // the core answers these
        }
    }

    async fn on_close(self) {
        if let Some(session) = &self.session {
            self.engine.signin.detach(&session.key, self.out.id);
        }
        if let Some(name) = self.username {
            let id = self.out.id;
            let gone = self.engine.run(move |inner, ctx| {
                // The last connection of an agent going away makes them Offline: nobody is
                // there to take new work. Their open conversations stay assigned.
                if ctx.hub.remove(id, Some(&name)) == 0 {
                    inner.presence(&name, None)?;
                }
                Ok(())
            });
            if let Err(e) = gone.await {
                tracing::error!(error = %e, "agent cleanup failed");
            }
        } else {
            self.engine.hub.remove(self.out.id, None);
        }
    }

    fn idle_limit(&self) -> std::time::Duration {
        self.engine.config().server.idle_close()
    }
}

impl AgentSocket {
    /// PBKDF2 is slow on purpose: on a blocking thread, at most `max_concurrent_hashes` at
    /// once server-wide (a flood of sign-ins must not starve everything else). An unknown
    /// username costs the same as a known one.
    async fn check_password<'c>(
        &self,
        config: &'c Arc<Config>,
        username: &str,
        pw: String,
    ) -> Result<Option<&'c crate::config::Agent>> {
        if username.len() > MAX_USERNAME_BYTES {
            return Ok(None);
        }
        let wait = config.signin.hash_queue_wait;
        let Some(permit) = self.engine.signin.hash_permit(wait).await else {
            return Err(Error::rate_limited(
                "the server is busy checking other sign-ins; try again",
                Duration::from_secs(1),
            ));
        };
        let (c, user) = (config.clone(), username.to_string());
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let known = c.agent(&user);
            // An unknown username is checked against another agent's hash: same cost.
            let hash = known.or(c.agent.first()).and_then(|a| a.hash.as_ref());
            known.is_some() && hash.is_some_and(|h| h.verify(&pw))
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        Ok(config.agent(username).filter(|_| ok))
    }

    /// Answers a refused sign-in; the socket is closed once it has had its share of them.
    fn refuse_sign_in(&mut self, e: Error) -> Result<()> {
        self.refused += 1;
        if self.refused < self.engine.config().signin.close_after_failures {
            return Err(e);
        }
        self.refuse(&e, None);
        self.out.close(CloseCode::RateLimited);
        Ok(())
    }

    /// Rights end with the config or token that granted them: a frame after the agent was
    /// removed, their password hash changed, or the token expired closes the socket (a reload
    /// closes the sockets it knows of at once; this catches any it did not).
    fn still_signed_in(&self, name: &str) -> std::result::Result<(), &'static str> {
        let Some(session) = &self.session else {
            return Ok(());
        };
        let config = self.engine.config();
        if config.agent(name).map(|a| a.password_hash.as_str())
            != Some(session.password_hash.as_str())
        {
            return Err("your account changed on the server; sign in again");
        }
        if self.engine.clock.now_ms() >= session.expires_ms {
            return Err("your session expired; sign in again");
        }
        Ok(())
    }
}

/// What a `hello` proves its identity with.
pub enum Proof {
    Password(String),
    Token(String),
}

/// A username as logged: bounded, and shown with `Debug` so control characters are escaped.
fn short(username: &str) -> &str {
    match username.char_indices().nth(64) {
        Some((i, _)) => &username[..i],
        None => username,
    }
}

/// `setPresence`: replies `presence`; the connection's first one also registers it for the
/// agent's traffic and sends `assigned` for every open conversation (reconnect). Only
/// Online gets new work (and re-runs routing); Busy and Away keep what they have.
async fn set_presence(
    engine: &Arc<Engine>,
    name: String,
    presence: Presence,
    out: Outbox,
) -> Result<()> {
    engine
        .run(move |inner, ctx| {
            // Read everything that can fail before changing any state.
            let replay = if ctx.hub.has_agent_connection(&name, out.id) {
                Vec::new()
            } else {
                let ids = inner.routing.assigned(&name);
                let page = ctx.config().server.replay_page_entries;
                ids.into_iter()
                    .map(|id| assigned_frame(inner, id, page))
                    .collect::<Result<Vec<_>>>()?
            };
            ctx.hub.add_agent(&name, &out);
            inner.presence(&name, Some(presence))?;
            tracing::info!(agent = %name, ?presence, "presence");
            // Every connection of the agent shows the same presence.
            ctx.to_agent(inner, &name, &ToAgent::Presence { presence });
            for frame in replay {
                inner.send(&out, &frame);
            }
            if presence == Presence::Online {
                ctx.route(inner);
            }
            Ok(())
        })
        .await
}
