//! Abuse benchmark: what hostile visitors cost honest ones, and what non-reading ones cost in
//! memory, against a running server (started by `cargo xtask bench`, `xtask/src/bench_abuse.rs`).
//!
//! `abuse throughput <url> <server pid> [seconds]`: 50 honest sockets, one message in flight
//! each, on `Bench_Honest`, alone and then while 10 abusive sockets hit `Demo_Deployment`'s
//! default limits (frame floods, conversation creation, sockets past the per-address cap);
//! prints both figures, their ratio and the CPU the server and this load generator used (both
//! run on the same machine: the generator's share is taken from the server).
//! `abuse memory <url> <server pid>`: the server's VmRSS with 1,000 visitors connected, 100 of
//! which never read, before, during and after a burst of messages and replays to them.
//!
//! Every client names its own address in `X-Forwarded-For` (the config trusts it from
//! 127.0.0.1), so per-address limits count honest and abusive clients apart.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use em_protocol::close::CloseCode;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const ORG: &str = "00D000000000001";
const ABUSED: &str = "Demo_Deployment";
const HONEST: &str = "Bench_Honest";

/// A maximal message (4,000 characters).
fn big_text() -> String {
    "x".repeat(em_protocol::MAX_TEXT_CHARS)
}

#[derive(Debug)]
enum Error {
    /// The upgrade was refused with this HTTP status (429: too many sockets from the address).
    Refused(u16),
    Socket(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Refused(status) => write!(f, "HTTP {status}"),
            Error::Socket(e) => f.write_str(e),
        }
    }
}

impl From<tungstenite::Error> for Error {
    fn from(e: tungstenite::Error) -> Self {
        match e {
            tungstenite::Error::Http(r) => Error::Refused(r.status().as_u16()),
            e => Error::Socket(e.to_string()),
        }
    }
}

fn text(v: Value) -> Message {
    Message::text(v.to_string())
}

/// Opens a visitor socket of `deployment` as the client at `address`.
async fn connect(base: &str, deployment: &str, address: &str) -> Result<Ws, Error> {
    let url = format!(
        "{}/embeddedservice/v1/ws?orgId={ORG}&esConfigName={deployment}",
        base.replacen("http", "ws", 1)
    );
    let mut req = url
        .into_client_request()
        .map_err(|e| Error::Socket(e.to_string()))?;
    let header = |v: &str| HeaderValue::from_str(v).map_err(|e| Error::Socket(e.to_string()));
    req.headers_mut()
        .insert("Origin", header("http://127.0.0.1:1")?);
    req.headers_mut()
        .insert("X-Forwarded-For", header(address)?);
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    Ok(ws)
}

/// The next frame of type `ty`; other frames are skipped, an `error` is returned as such.
async fn recv_type(ws: &mut Ws, ty: &str) -> Result<Value, Error> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value =
                    serde_json::from_str(&t).map_err(|e| Error::Socket(e.to_string()))?;
                if v["type"] == ty || v["type"] == "error" {
                    return Ok(v);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err(Error::Socket("closed".into())),
        }
    }
}

/// A visitor that said hello (with `credential`, or as a new one) and, without a credential,
/// created a conversation: (socket, credential, conversation id).
async fn visitor(
    base: &str,
    deployment: &str,
    address: &str,
    credential: Option<(&str, &str)>,
) -> Result<(Ws, String, String), Error> {
    let mut ws = connect(base, deployment, address).await?;
    let mut hello = json!({"type": "hello", "protocolVersion": 1});
    if let Some((c, _)) = credential {
        hello["credential"] = c.into();
    }
    ws.send(text(hello)).await?;
    let welcome = recv_type(&mut ws, "welcome").await?;
    let cred = welcome["credential"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let id = match credential {
        Some((_, id)) => id.to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let frame = json!({"type": "createConversation", "conversationId": id});
    ws.send(text(frame)).await?;
    let answer = recv_type(&mut ws, "conversation").await?;
    if answer["type"] == "error" {
        return Err(Error::Socket(format!("createConversation: {answer}")));
    }
    Ok((ws, cred, id))
}

fn send_message(conversation: &str, body: &str) -> Message {
    text(
        json!({"type": "sendMessage", "conversationId": conversation,
                "entryId": uuid::Uuid::new_v4().to_string(), "text": body, "clientTimestamp": 0}),
    )
}

/// What the abusive clients achieved and were refused.
#[derive(Default)]
struct Tally {
    frames_sent: AtomicU64,
    refused: Mutex<BTreeMap<String, u64>>,
    sockets_opened: AtomicU64,
}

impl Tally {
    fn refuse(&self, what: String) {
        *self
            .refused
            .lock()
            .expect("tally lock")
            .entry(what)
            .or_default() += 1;
    }

    /// Counts the error codes (and close codes) coming back on `ws` until it ends.
    async fn drain(self: Arc<Self>, mut rx: futures::stream::SplitStream<Ws>) {
        while let Some(Ok(m)) = rx.next().await {
            match m {
                Message::Text(t) => {
                    if let Ok(v) = serde_json::from_str::<Value>(&t)
                        && v["type"] == "error"
                    {
                        self.refuse(format!("error {}", v["code"].as_str().unwrap_or("?")));
                    }
                }
                Message::Close(Some(f)) => self.refuse(close_name(u16::from(f.code))),
                _ => {}
            }
        }
    }
}

fn close_name(code: u16) -> String {
    match CloseCode::from_code(code) {
        Some(c) => format!("close {code} ({})", c.reason()),
        None => format!("close {code}"),
    }
}

/// An abusive socket sending `frame()` as fast as the connection takes it until `stop`.
async fn flood(
    ws: Ws,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    frame: impl Fn() -> Message,
) -> Result<(), Error> {
    let (mut tx, rx) = ws.split();
    let reader = tokio::spawn(tally.clone().drain(rx));
    while !stop.load(Ordering::Relaxed) {
        if tx.send(frame()).await.is_err() {
            break; // closed by the server (counted by the reader)
        }
        tally.frames_sent.fetch_add(1, Ordering::Relaxed);
    }
    let _ = tx.close().await;
    let _ = reader.await;
    Ok(())
}

/// One address opening sockets (each saying hello as a new visitor) as fast as it can, keeping
/// those it gets, until `stop`.
async fn open_sockets(base: String, address: String, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut held = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match connect(&base, ABUSED, &address).await {
            Ok(mut ws) => {
                tally.sockets_opened.fetch_add(1, Ordering::Relaxed);
                let _ = ws
                    .send(text(json!({"type": "hello", "protocolVersion": 1})))
                    .await;
                let (_, rx) = ws.split();
                held.push(tokio::spawn(tally.clone().drain(rx)));
            }
            Err(Error::Refused(status)) => tally.refuse(format!("HTTP {status}")),
            Err(e) => tally.refuse(e.to_string()),
        }
    }
    for h in held {
        h.abort();
    }
}

/// The phases of the throughput run after warming up (0); honest messages are counted in
/// `ALONE` and `UNDER_ABUSE`.
const ALONE: u64 = 1;
const RAMP: u64 = 2;
const UNDER_ABUSE: u64 = 3;
const DONE: u64 = 4;

/// Honest traffic: the acked messages of each counted phase and their latencies.
#[derive(Default)]
struct Honest {
    phase: AtomicU64,
    latencies: Mutex<[Vec<Duration>; 2]>,
}

async fn honest(
    base: String,
    i: usize,
    h: Arc<Honest>,
    stop: Arc<AtomicBool>,
) -> Result<(), Error> {
    let address = format!("10.1.{}.{}", i / 250, i % 250 + 1);
    let (mut ws, _, id) = visitor(&base, HONEST, &address, None).await?;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let phase = h.phase.load(Ordering::Relaxed);
        n += 1;
        ws.send(send_message(&id, &format!("honest message {n}")))
            .await?;
        let ack = recv_type(&mut ws, "ack").await?;
        if ack["type"] == "error" {
            return Err(Error::Socket(format!("honest visitor refused: {ack}")));
        }
        let bucket = match phase {
            ALONE => 0,
            UNDER_ABUSE => 1,
            _ => continue,
        };
        h.latencies.lock().expect("latency lock")[bucket].push(t.elapsed());
    }
    Ok(())
}

fn summary(all: &mut [Duration], seconds: f64) -> (f64, String) {
    all.sort();
    let rate = all.len() as f64 / seconds;
    if all.is_empty() {
        return (rate, "no messages".into());
    }
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (
        rate,
        format!(
            "{:>7.0} messages/s (ack p50 {:?}, p99 {:?})",
            rate,
            pct(0.5),
            pct(0.99)
        ),
    )
}

async fn throughput(base: String, pid: u32, seconds: u64) {
    let server = pid.to_string();
    // CPU used (server, this load generator) during a window, as a share of one core.
    let cpu = || (cpu_seconds(&server), cpu_seconds("self"));
    let share = |a: (f64, f64), b: (f64, f64), secs: f64| {
        format!(
            "server {:.0} %, load generator {:.0} % of a core",
            (b.0 - a.0) / secs * 100.0,
            (b.1 - a.1) / secs * 100.0
        )
    };
    let h = Arc::new(Honest::default());
    let stop = Arc::new(AtomicBool::new(false));
    let honest_tasks: Vec<_> = (0..50)
        .map(|i| tokio::spawn(honest(base.clone(), i, h.clone(), stop.clone())))
        .collect();
    // Let every honest visitor connect before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let window = Duration::from_secs(seconds);
    h.phase.store(ALONE, Ordering::Relaxed);
    let cpu0 = cpu();
    tokio::time::sleep(window).await;
    let cpu1 = cpu();
    h.phase.store(RAMP, Ordering::Relaxed);

    // The abusers: 4 flood messages, 3 create conversations, 3 open sockets; each on its own
    // address. They start, then the second window is counted.
    let tally = Arc::new(Tally::default());
    let abuse_stop = Arc::new(AtomicBool::new(false));
    let mut abusers = Vec::new();
    let body = Arc::new(big_text());
    for j in 0..10 {
        let address = format!("10.2.0.{}", j + 1);
        let (base, tally, stop) = (base.clone(), tally.clone(), abuse_stop.clone());
        let body = body.clone();
        abusers.push(tokio::spawn(async move {
            match j {
                0..4 => {
                    let (ws, _, id) = visitor(&base, ABUSED, &address, None).await?;
                    flood(ws, tally, stop, move || send_message(&id, &body)).await
                }
                4..7 => {
                    let (ws, _, _) = visitor(&base, ABUSED, &address, None).await?;
                    flood(ws, tally, stop, || {
                        text(json!({"type": "createConversation",
                                    "conversationId": uuid::Uuid::new_v4().to_string()}))
                    })
                    .await
                }
                _ => {
                    open_sockets(base, address, tally, stop).await;
                    Ok(())
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    h.phase.store(UNDER_ABUSE, Ordering::Relaxed);
    let cpu2 = cpu();
    tokio::time::sleep(window).await;
    h.phase.store(DONE, Ordering::Relaxed);
    let cpu3 = cpu();
    abuse_stop.store(true, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for t in honest_tasks {
        if let Ok(Err(e)) = t.await {
            eprintln!("honest visitor: {e}");
        }
    }
    for a in abusers {
        if let Ok(Err(e)) = a.await {
            eprintln!("abusive client: {e}");
        }
    }
    let mut lat = std::mem::take(&mut *h.latencies.lock().expect("latency lock"));
    let secs = window.as_secs_f64();
    let (alone, alone_text) = summary(&mut lat[0], secs);
    let (abused, abused_text) = summary(&mut lat[1], secs);
    println!(
        "honest visitors under abuse (50 sockets, one message in flight each, {seconds} s windows):"
    );
    println!("  alone:                       {alone_text}");
    println!("                               {}", share(cpu0, cpu1, secs));
    println!("  with 10 abusive sockets:     {abused_text}");
    println!("                               {}", share(cpu2, cpu3, secs));
    println!(
        "  ratio (with abuse / alone):  {:.2}",
        if alone > 0.0 { abused / alone } else { 0.0 }
    );
    println!(
        "  the abusers sent {} frames and opened {} sockets; refused:",
        tally.frames_sent.load(Ordering::Relaxed),
        tally.sockets_opened.load(Ordering::Relaxed)
    );
    for (what, n) in tally.refused.lock().expect("tally lock").iter() {
        println!("    {what:<32} {n}");
    }
}

/// CPU seconds (user + system) used so far by process `pid` ("self" for this one), from
/// `/proc/<pid>/stat` (in USER_HZ ticks, 100 per second on Linux).
fn cpu_seconds(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            let ticks = |i: usize| rest.get(i)?.parse::<f64>().ok();
            Some((ticks(11)? + ticks(12)?) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// The server's resident memory in MB (`VmRSS` in `/proc/<pid>/status`).
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn memory(base: String, pid: u32) {
    let before_any = rss_mb(pid);
    // 1,000 visitors, each on its own address; the first 100 never read.
    let mut readers = Vec::new();
    let mut silent = Vec::new();
    for chunk in (0..1000).collect::<Vec<_>>().chunks(100) {
        let opened: Vec<_> = chunk
            .iter()
            .map(|&i| {
                let base = base.clone();
                tokio::spawn(async move {
                    let address = format!("10.3.{}.{}", i / 250, i % 250 + 1);
                    visitor(&base, ABUSED, &address, None)
                        .await
                        .map(|v| (i, address, v))
                })
            })
            .collect();
        for t in opened {
            match t.await {
                Ok(Ok((i, address, (ws, cred, id)))) if i < 100 => {
                    silent.push((address, ws, cred, id))
                }
                Ok(Ok((_, _, (ws, _, _)))) => readers.push(tokio::spawn(async move {
                    let (_tx, mut rx) = ws.split();
                    while let Some(Ok(_)) = rx.next().await {}
                })),
                Ok(Err(e)) => eprintln!("visitor: {e}"),
                Err(e) => eprintln!("visitor task: {e}"),
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected = rss_mb(pid);

    // The burst: for 5 s, a second socket of each silent visitor sends 4,000-character
    // messages at its limit (5/s after a burst of 10) into the conversation, while the silent
    // socket asks for the whole history again 10 times a second and reads nothing.
    let peak = Arc::new(Mutex::new(connected));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                let now = rss_mb(pid);
                {
                    let mut p = peak.lock().expect("peak lock");
                    *p = p.max(now);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let body = Arc::new(big_text());
    let burst = Duration::from_secs(5);
    let mut tasks = Vec::new();
    let mut silent_rx = Vec::new();
    for (address, ws, cred, id) in silent {
        let (mut tx, rx) = ws.split();
        silent_rx.push(rx);
        let (base, body) = (base.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let sender = async {
                let (ws, _, _) = visitor(&base, ABUSED, &address, Some((&cred, &id))).await?;
                let (mut stx, mut srx) = ws.split();
                let drain =
                    tokio::spawn(async move { while let Some(Ok(_)) = srx.next().await {} });
                let mut sent = 0u32;
                while start.elapsed() < burst {
                    stx.send(send_message(&id, &body)).await?;
                    sent += 1;
                    if sent >= 10 {
                        tokio::time::sleep(Duration::from_millis(210)).await;
                    }
                }
                drain.abort();
                Ok::<_, Error>(sent)
            };
            let resumer = async {
                let frame = json!({"type": "resume", "conversationId": id, "afterSeq": 0});
                while start.elapsed() < burst {
                    if tx.send(text(frame.clone())).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tx
            };
            let (sent, tx) = tokio::join!(sender, resumer);
            (sent, tx)
        }));
    }
    let mut sent = 0u32;
    let mut silent_tx = Vec::new();
    for t in tasks {
        if let Ok((s, tx)) = t.await {
            match s {
                Ok(n) => sent += n,
                Err(e) => eprintln!("sender: {e}"),
            }
            silent_tx.push(tx);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let after = rss_mb(pid);
    let peak = peak.lock().expect("peak lock").max(after);

    // What became of the silent sockets: read what the server left them, up to its close.
    let mut ends: BTreeMap<String, u32> = BTreeMap::new();
    for (mut rx, tx) in silent_rx.into_iter().zip(silent_tx) {
        let end = tokio::time::timeout(Duration::from_millis(500), async {
            while let Some(m) = rx.next().await {
                match m {
                    Ok(Message::Close(Some(f))) => return close_name(u16::from(f.code)),
                    Ok(Message::Close(None)) => return "close without a code".into(),
                    Ok(_) => {}
                    Err(_) => return "connection dropped".into(),
                }
            }
            "connection dropped".into()
        })
        .await
        .unwrap_or_else(|_| "open (its queue stayed within the limit)".into());
        *ends.entry(end).or_default() += 1;
        drop((rx, tx));
    }
    for r in &readers {
        r.abort();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let closed = rss_mb(pid);
    println!("server memory (VmRSS) with 1,000 visitors, 100 of them never reading:");
    println!("  before any visitor:                              {before_any:>7.1} MB");
    println!("  1,000 connected, idle:                           {connected:>7.1} MB");
    println!(
        "  peak during the burst ({sent} messages of 4,000 chars, 10 replays/s per silent socket, 5 s): {peak:>7.1} MB"
    );
    println!("  2 s after the burst:                             {after:>7.1} MB");
    println!("  3 s after every socket closed:                   {closed:>7.1} MB");
    println!("  the 100 silent sockets ended as:");
    for (end, n) in ends {
        println!("    {end:<40} {n}");
    }
}

#[tokio::main]
async fn main() {
    // 1,100 sockets and more: raise the soft open-files limit to the hard one.
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::increase_nofile_limit(hard);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["throughput", base, pid, ref secs @ ..] if pid.parse::<u32>().is_ok() => {
            let secs = secs.first().and_then(|s| s.parse().ok()).unwrap_or(10);
            throughput(base.into(), pid.parse().unwrap_or_default(), secs).await
        }
        ["memory", base, pid] if pid.parse::<u32>().is_ok() => {
            memory(base.into(), pid.parse().unwrap_or_default()).await
        }
        _ => {
            eprintln!(
                "usage: abuse throughput <url> <server pid> [seconds] | abuse memory <url> <server pid>"
            );
            std::process::exit(2);
        }
    }
}
