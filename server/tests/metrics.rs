// Proves the metrics: a scripted scenario on a manual clock gives exact wait, first response,
// handle time, deflection and transfer figures in the JSON report and in Prometheus `/metrics`.
mod common;

use common::*;
use em_server::clock::ManualClock;
use serde_json::{Value, json};

const BOT: &str = "Bot_Deployment";
const TOKEN: &str = ADMIN_TOKEN;

fn config() -> String {
    format!(
        r#"
[admin]
token = "{TOKEN}"
[[deployment]]
org_id = "{ORG}"
name = "{DEPLOYMENT}"
allowed_origins = ["http://127.0.0.1:*"]
queue = "support"
[[deployment]]
org_id = "{ORG}"
name = "{BOT}"
allowed_origins = ["http://127.0.0.1:*"]
queue = "support"
[deployment.bot]
greeting = "Hi!"
[[deployment.bot.intent]]
keywords = ["opening hours"]
answer = "9 to 5."
[[queue]]
name = "support"
[[queue]]
name = "billing"
[[agent]]
username = "ada"
display_name = "Ada"
password_hash = "{PW_HASH}"
capacity = 2
queues = ["support"]
[[agent]]
username = "grace"
display_name = "Grace"
password_hash = "{PW_HASH}"
capacity = 1
queues = ["support"]
"#
    )
}

async fn bot_visitor(s: &Server) -> (Ws, String) {
    let path = format!("/embeddedservice/v1/ws?orgId={ORG}&esConfigName={BOT}");
    let mut v = Ws::connect(s.addr, &path, Some(ORIGIN)).await.unwrap();
    v.hello(None).await;
    let id = uuid();
    v.send(json!({"type": "createConversation", "conversationId": id}))
        .await;
    v.recv().await;
    (v, id)
}

async fn first(v: &mut Ws, id: &str, text: &str) {
    v.send(send_message(id, &uuid(), text)).await;
    v.recv_until(|f| f["type"] == "ack").await;
}

async fn reply(a: &mut Ws, id: &str) {
    a.send(json!({"type": "sendMessage", "conversationId": id, "entryId": uuid(), "text": "hi"}))
        .await;
    a.recv_until(|f| f["type"] == "ack").await;
}

async fn presence(a: &mut Ws, p: &str) {
    a.send(json!({"type": "setPresence", "presence": p})).await;
    a.recv_until(|f| f["type"] == "presence").await;
}

async fn end(a: &mut Ws, id: &str) {
    a.send(json!({"type": "endSession", "conversationId": id}))
        .await;
    a.recv_until(|f| f["type"] == "released").await;
}

#[tokio::test]
// The scripted scenario's figures, exactly, in /admin/report and /metrics; the report needs the admin token.
async fn scripted_scenario_gives_exact_figures() {
    let clock = ManualClock::new(1_800_000_000_000);
    let s = Server::start_with_clock(&config(), clock.clone()).await;
    let mut ada = s.agent_named("ada").await;
    let mut grace = s.agent_named("grace").await;
    presence(&mut grace, "Busy").await;

    // A: assigned at once (wait 0), first reply after 30 s, transferred to grace at 120 s,
    // ended by grace at 180 s.
    let (mut va, a) = s.visitor_with_conversation().await;
    first(&mut va, &a, "A").await;
    ada.recv_until(|f| f["type"] == "assigned").await;
    clock.advance_secs(30);
    reply(&mut ada, &a).await;
    clock.advance_secs(90);
    presence(&mut grace, "Online").await;
    ada.send(json!({"type": "transfer", "conversationId": a, "toAgent": "grace"}))
        .await;
    grace.recv_until(|f| f["type"] == "assigned").await;
    clock.advance_secs(60);
    end(&mut grace, &a).await;

    // B: waits 45 s (ada Away, grace Busy), first reply 15 s after assignment, ended 60 s later.
    presence(&mut ada, "Away").await;
    presence(&mut grace, "Busy").await;
    let (mut vb, b) = s.visitor_with_conversation().await;
    first(&mut vb, &b, "B").await;
    clock.advance_secs(45);
    presence(&mut ada, "Online").await;
    ada.recv_until(|f| f["type"] == "assigned").await;
    clock.advance_secs(15);
    reply(&mut ada, &b).await;
    clock.advance_secs(60);
    end(&mut ada, &b).await;

    // C: the bot answers: deflected. D: straight to a person: handed off, assigned at once, open.
    let (mut vc, c) = bot_visitor(&s).await;
    first(&mut vc, &c, "opening hours?").await;
    let (mut vd, d) = bot_visitor(&s).await;
    first(&mut vd, &d, "talk to a person").await;
    ada.recv_until(|f| f["type"] == "assigned").await;

    let refused = s.get("/admin/report", None).await;
    assert_eq!(refused.status, 401);
    let r = http_get_with(
        s.addr,
        "/admin/report",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    )
    .await;
    assert_eq!(r.status, 200);
    let report = r.json();
    assert_eq!(
        report["totals"],
        json!({"conversations": 4, "withBot": 2, "deflected": 1, "handedOff": 1, "assigned": 3,
               "ended": 2, "transfers": 1, "waitingNow": 0, "agentsOnline": 1})
    );
    let session = |id: &str| -> Value {
        let all = report["sessions"].as_array().unwrap();
        let mut s = all
            .iter()
            .find(|s| s["conversationId"] == id)
            .unwrap()
            .clone();
        s.as_object_mut().unwrap().remove("conversationId");
        s
    };
    assert_eq!(
        session(&a),
        json!({"deploymentName": DEPLOYMENT, "status": "Ended", "queue": "support",
        "agent": "grace", "deflected": false, "waitSeconds": 0.0, "firstResponseSeconds": 30.0,
        "handleSeconds": 180.0, "transfers": 1})
    );
    assert_eq!(
        session(&b),
        json!({"deploymentName": DEPLOYMENT, "status": "Ended", "queue": "support",
        "agent": "ada", "deflected": false, "waitSeconds": 45.0, "firstResponseSeconds": 60.0,
        "handleSeconds": 75.0, "transfers": 0})
    );
    assert_eq!(
        session(&c),
        json!({"deploymentName": BOT, "status": "Active", "queue": "",
        "agent": null, "deflected": true, "waitSeconds": null, "firstResponseSeconds": null,
        "handleSeconds": null, "transfers": 0})
    );
    assert_eq!(
        session(&d),
        json!({"deploymentName": BOT, "status": "Active", "queue": "support",
        "agent": "ada", "deflected": false, "waitSeconds": 0.0, "firstResponseSeconds": null,
        "handleSeconds": null, "transfers": 0})
    );
    assert_eq!(
        report["agents"],
        json!([
        {"name": "ada", "volume": 3, "handled": 2, "handleSeconds": 195.0, "averageHandleSeconds": 97.5},
        {"name": "grace", "volume": 1, "handled": 1, "handleSeconds": 60.0, "averageHandleSeconds": 60.0}])
    );
    assert_eq!(
        report["queues"],
        json!([
        {"name": "billing", "volume": 0, "handled": 0, "handleSeconds": 0.0, "averageHandleSeconds": null},
        {"name": "support", "volume": 4, "handled": 3, "handleSeconds": 255.0, "averageHandleSeconds": 85.0}])
    );

    let m = http_get_with(
        s.addr,
        "/metrics",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    )
    .await;
    assert_eq!(m.status, 200);
    assert!(
        m.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = m.text();
    for line in [
        "em_conversations_total 4",
        "em_bot_deflected_total 1",
        "em_transfers_total 1",
        "em_wait_seconds_sum 45",
        "em_wait_seconds_count 3",
        "em_first_response_seconds_sum 90",
        "em_handle_seconds_sum 255",
        "em_agent_assignments_total{agent=\"ada\"} 3",
        "em_agent_handle_seconds_total{agent=\"ada\"} 195",
        "em_queue_handle_seconds_total{queue=\"support\"} 255",
        "em_agents_online 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}
