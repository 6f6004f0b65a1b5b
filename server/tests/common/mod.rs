//! Test harness: the real app on 127.0.0.1:0 with a temp SQLite file, a raw HTTP/1.1 client
//! and a JSON WebSocket client.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const ORG: &str = "00D000000000001";
pub const DEPLOYMENT: &str = "Test_Deployment";
pub const ORIGIN: &str = "http://127.0.0.1:5555";
pub const EVIL: &str = "http://evil.test";

/// `pw`, hashed with the fewest PBKDF2 iterations the config accepts (100,000; real configs
/// use the default, 600,000).
pub const PW_HASH: &str =
    "$pbkdf2-sha256$i=100000$FnSon9SqSImbL2h7B1oM/A$+6JQftlRyftTbe3jhUpJoaGmrqa+1+Ajl60XLv+xTMc";

/// An `[admin] token` long enough for the config check (32 characters or more).
pub const ADMIN_TOKEN: &str = "9178a2a317f0e51f10fe5298f0015da7cbcd64bfdd86fb79";

/// One deployment, one queue, agent `ada` with the given capacity.
pub fn config(capacity: u32) -> String {
    format!(
        r#"
[[deployment]]
org_id = "{ORG}"
name = "{DEPLOYMENT}"
allowed_origins = ["http://127.0.0.1:*", "https://shop.example.com"]
queue = "support"
[deployment.branding]
title = "Test chat"
[[queue]]
name = "support"
[[agent]]
username = "ada"
display_name = "Ada"
password_hash = "{PW_HASH}"
capacity = {capacity}
queues = ["support"]
"#
    )
}

/// `text` with `[deployment.limits]` far above what a test's crowd of visitors from
/// 127.0.0.1 reaches: tests of routing, faults and durability are not about limits (those are
/// tested in `limits.rs`).
pub fn generous(text: &str) -> String {
    text.replacen(
        "queue = \"support\"\n",
        "queue = \"support\"\nlimits = { connections_per_address = 100000, new_visitors_per_minute = 100000, \
         frames_per_second = 100000, messages_per_second = 100000, open_conversations = 100000, \
         conversations_per_hour = 100000 }\n",
        1,
    )
}

/// The address a spawned `em-server` prints in its `listening on http://…` line, waiting at
/// most `within` (a guard against a hang, not a measurement). The rest of its stdout keeps
/// being drained, so the server never writes into a full or closed pipe.
pub async fn listening_addr(child: &mut tokio::process::Child, within: Duration) -> SocketAddr {
    use tokio::io::AsyncBufReadExt;
    let stdout = child.stdout.take().expect("the server's stdout is piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = loop {
        let line = tokio::time::timeout(within, lines.next_line())
            .await
            .expect("the server prints its address in time")
            .unwrap()
            .expect("the server printed its address before exiting");
        if let Some(a) = line.strip_prefix("listening on http://") {
            break a.parse().unwrap();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    addr
}

pub struct Server {
    pub addr: SocketAddr,
    /// The app's state, for tests that reload the config or read the engine.
    pub state: em_server::AppState,
    pub dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(config: &str) -> Self {
        Self::start_with_clock(config, std::sync::Arc::new(em_server::clock::SystemClock)).await
    }

    /// Like `start`, with the given clock (a `ManualClock` scripts time).
    pub async fn start_with_clock(config: &str, clock: em_server::clock::SharedClock) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pkg")).unwrap();
        let config = em_server::Config::parse(config).unwrap();
        let state = em_server::AppState::with_clock(
            config,
            &em_server::Database::Sqlite(dir.path().join("em.sqlite")),
            dir.path().join("pkg"),
            clock,
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app_state = state.clone();
        let task = tokio::spawn(async move {
            em_server::serve(listener, em_server::app(state))
                .await
                .unwrap();
        });
        Server {
            addr,
            state: app_state,
            dir,
            task,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("em.sqlite")
    }

    pub fn widget_dir(&self) -> PathBuf {
        self.dir.path().join("pkg")
    }

    pub async fn get(&self, path: &str, origin: Option<&str>) -> Response {
        http_get(self.addr, path, origin).await
    }

    pub async fn visitor(&self) -> Ws {
        Ws::connect(self.addr, &visitor_path(), Some(ORIGIN))
            .await
            .unwrap()
    }

    pub async fn agent(&self) -> Ws {
        Ws::connect(self.addr, "/agent/ws", None).await.unwrap()
    }

    /// A visitor who said hello and created a conversation; returns (socket, conversation id).
    pub async fn visitor_with_conversation(&self) -> (Ws, String) {
        let (v, id, _) = self.visitor_with_credential().await;
        (v, id)
    }

    /// Like `visitor_with_conversation`, also returning the visitor's credential.
    pub async fn visitor_with_credential(&self) -> (Ws, String, String) {
        let mut v = self.visitor().await;
        let (_, credential) = v.hello(None).await;
        let id = uuid();
        v.send(json!({"type": "createConversation", "conversationId": id}))
            .await;
        assert_eq!(v.recv().await["type"], "conversation");
        (v, id, credential)
    }

    /// Agent `name` (password `pw`), signed in and Online.
    pub async fn agent_named(&self, name: &str) -> Ws {
        let mut a = self.agent().await;
        a.send(
            json!({"type": "hello", "protocolVersion": 1, "username": name, "credential": "pw"}),
        )
        .await;
        assert_eq!(a.recv().await["type"], "welcome");
        a.send(json!({"type": "setPresence", "presence": "Online"}))
            .await;
        assert_eq!(a.recv().await["presence"], "Online");
        a
    }

    /// Agent `ada`, signed in and Online.
    pub async fn agent_online(&self) -> Ws {
        let mut a = self.agent().await;
        a.send(
            json!({"type": "hello", "protocolVersion": 1, "username": "ada", "credential": "pw"}),
        )
        .await;
        assert_eq!(a.recv().await["type"], "welcome");
        a.send(json!({"type": "setPresence", "presence": "Online"}))
            .await;
        assert_eq!(
            a.recv().await,
            json!({"type": "presence", "presence": "Online"})
        );
        a
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn visitor_path() -> String {
    format!("/embeddedservice/v1/ws?orgId={ORG}&esConfigName={DEPLOYMENT}")
}

pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn send_message(conversation: &str, entry: &str, text: &str) -> Value {
    json!({"type": "sendMessage", "conversationId": conversation, "entryId": entry, "text": text,
           "clientTimestamp": 1_700_000_000_000i64})
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A minimal HTTP/1.1 GET with `Connection: close`; enough for fixed-length answers.
pub async fn http_get(addr: SocketAddr, path: &str, origin: Option<&str>) -> Response {
    match origin {
        Some(o) => http_get_with(addr, path, &[("Origin", o)]).await,
        None => http_get_with(addr, path, &[]).await,
    }
}

/// `http_get` with extra request headers.
pub async fn http_get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let extra: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

pub struct Ws(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Ws {
    /// Opens a WebSocket; the error is the HTTP status when the upgrade was refused.
    pub async fn connect(addr: SocketAddr, path: &str, origin: Option<&str>) -> Result<Ws, u16> {
        let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
        if let Some(o) = origin {
            req.headers_mut()
                .insert("Origin", HeaderValue::from_str(o).unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(Ws(ws)),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
            Err(e) => panic!("connect failed: {e}"),
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.0.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.0.send(Message::text(text)).await.unwrap();
    }

    /// The next text frame as JSON; `Value::Null` if the server closed.
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), self.0.next())
                .await
                .expect("no frame within 5 s");
            match msg {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Value::Null,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Skips frames until one satisfies `pred`.
    pub async fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.recv().await;
            assert!(!v.is_null(), "socket closed while waiting");
            if pred(&v) {
                return v;
            }
        }
    }

    /// Asserts nothing arrives for a short while.
    pub async fn assert_quiet(&mut self) {
        if let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(200), self.0.next()).await
        {
            panic!("unexpected frame {m:?}");
        }
    }

    /// Visitor `hello`; returns (endUserId, credential).
    pub async fn hello(&mut self, credential: Option<&str>) -> (String, String) {
        let mut frame = json!({"type": "hello", "protocolVersion": 1});
        if let Some(c) = credential {
            frame["credential"] = json!(c);
        }
        self.send(frame).await;
        let w = self.recv().await;
        assert_eq!(w["type"], "welcome", "{w}");
        (
            w["endUserId"].as_str().unwrap().into(),
            w["credential"].as_str().unwrap().into(),
        )
    }

    /// After `hello`: every stored entry of `conversation`, replayed from the start.
    pub async fn stored_history(
        &mut self,
        conversation: &str,
    ) -> Vec<em_protocol::ConversationEntry> {
        self.send(json!({"type": "resume", "conversationId": conversation, "afterSeq": 0}))
            .await;
        let state = self.recv_until(|f| f["type"] == "conversation").await;
        let last = state["lastSeq"].as_u64().unwrap();
        // The replay is the newest page, ending at `last`; older pages come by `history`.
        let mut entries: Vec<em_protocol::ConversationEntry> = Vec::new();
        while entries.last().is_none_or(|e| e.seq < last) && last > 0 {
            let f = self.recv_until(|f| f["type"] == "entry").await;
            entries.push(serde_json::from_value(f["entry"].clone()).unwrap());
        }
        while let Some(first) = entries.first().map(|e| e.seq).filter(|&s| s > 1) {
            self.send(
                json!({"type": "history", "conversationId": conversation, "beforeSeq": first}),
            )
            .await;
            let page = self.recv_until(|f| f["type"] == "history").await;
            let older: Vec<em_protocol::ConversationEntry> =
                serde_json::from_value(page["entries"].clone()).unwrap();
            assert!(!older.is_empty(), "history below {first} is empty");
            entries.splice(0..0, older);
        }
        entries
    }
}

/// The payload of an `entry` frame's entry, e.g. `entryType`.
pub fn payload(frame: &Value) -> &Value {
    &frame["entry"]["entryPayload"]
}

pub fn is_entry_type(frame: &Value, ty: &str) -> bool {
    frame["type"] == "entry" && payload(frame)["entryType"] == ty
}
