//! The agent socket: sign-in, presence, replies and ending sessions.

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use em_protocol::agent::{AgentRef, Presence, ToAgent, ToServer};
use em_protocol::{ErrorCode, ErrorFrame, PROTOCOL_VERSION};
use futures::StreamExt;

use crate::AppState;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::hub::Outbox;
use crate::lifecycle::assigned_frame;
use crate::session::Outgoing;
use crate::socket::{self, Handler};

/// `GET /agent/ws`.
pub async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let (out, rx) = state.engine.hub.outbox(&state.engine.config().server);
    let handler = AgentSocket {
        engine: state.engine.clone(),
        out,
        username: None,
    };
    socket::limits(ws).on_upgrade(move |ws| {
        let (write, read) = ws.split();
        socket::serve(write, read, rx, handler)
    })
}

pub struct AgentSocket {
    pub engine: Arc<Engine>,
    pub out: Outbox,
    /// Set by a successful `hello`.
    pub username: Option<String>,
}

impl Handler for AgentSocket {
    async fn on_text(&mut self, text: &str) {
        let frame = match socket::parse_frame::<ToServer>(text) {
            Ok((ToServer::Unknown, ty)) => {
                return self.out.send(&ToAgent::Error(socket::unknown_type(&ty)));
            }
            Ok((f, _)) => f,
            Err(e) => return self.out.send(&ToAgent::Error(e)),
        };
        let entry_id = match &frame {
            ToServer::SendMessage { entry_id, .. } => Some(*entry_id),
            _ => None,
        };
        if let Err(e) = self.handle(frame).await {
            if !e.is_peer() {
                tracing::error!(agent = ?self.username, error = %e, "agent frame failed");
            }
            self.out.send(&ToAgent::Error(e.to_frame(entry_id)));
        }
    }

    fn on_binary(&mut self) {
        self.out.send(&ToAgent::Error(socket::bad_frame(
            "binary frames are not supported; send JSON text",
        )));
    }

    async fn on_close(self) {
        if let Some(name) = self.username {
            let id = self.out.id;
            let gone = self.engine.run(move |inner, ctx| {
                // The last connection of an agent going away makes them Offline: nobody is
                // there to take new work. Their open conversations stay assigned.
                if ctx.hub.remove(id, Some(&name)) == 0 {
                    inner.routing.set_presence(&name, Presence::Offline);
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
    async fn handle(&mut self, frame: ToServer) -> Result<()> {
        let Some(name) = self.username.clone() else {
            return match frame {
                ToServer::Hello {
                    protocol_version,
                    username,
                    credential,
                } => self.hello(protocol_version, &username, &credential).await,
                _ => Err(Error::peer(
                    ErrorCode::HandshakeRequired,
                    "the first frame must be hello",
                )),
            };
        };
        let (engine, out) = (&self.engine, self.out.clone());
        match frame {
            ToServer::Hello { .. } => Err(Error::peer(
                ErrorCode::BadFrame,
                "hello was already accepted on this connection",
            )),
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
            ToServer::Ping => {
                out.send(&ToAgent::Pong);
                Ok(())
            }
            ToServer::Unknown => Ok(()), // answered in on_text
        }
    }

    async fn hello(&mut self, version: u32, username: &str, credential: &str) -> Result<()> {
        if version != PROTOCOL_VERSION {
            self.out.send(&ToAgent::Error(ErrorFrame {
                code: ErrorCode::UnsupportedVersion,
                message: format!(
                    "this server speaks protocol version {PROTOCOL_VERSION}, not {version}"
                ),
                entry_id: None,
                retry_after_ms: None,
            }));
            self.out
                .close(em_protocol::close::CloseCode::UnsupportedVersion);
            return Ok(());
        }
        // PBKDF2 is slow on purpose: off the async threads. An unknown username costs the same.
        let config = self.engine.config();
        let (user, pw) = (username.to_string(), credential.to_string());
        let agent = tokio::task::spawn_blocking(move || {
            let known = config.agent(&user);
            // An unknown username is checked against another agent's hash: same cost.
            let hash = known.or(config.agent.first()).and_then(|a| a.hash.as_ref());
            let ok = hash.is_some_and(|h| h.verify(&pw));
            known.filter(|_| ok).cloned()
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let Some(agent) = agent else {
            return Err(Error::peer(
                ErrorCode::Unauthorized,
                "unknown username or wrong credential",
            ));
        };
        self.username = Some(agent.username.clone());
        let config = self.engine.config();
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
        });
        Ok(())
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
                ids.into_iter()
                    .map(|id| assigned_frame(inner, id))
                    .collect::<Result<Vec<_>>>()?
            };
            ctx.hub.add_agent(&name, &out);
            inner.routing.set_presence(&name, presence);
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
