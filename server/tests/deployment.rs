// Proves what the deployment config tells the widget (pre-chat form, auth mode, business hours,
// labels per language, unpublished deployments) and how `setContext` is checked against it.
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use em_server::clock::ManualClock;
use serde_json::{Value, json};

/// 2026-11-23 08:30 UTC, a Monday.
const MONDAY_0830: i64 = 1_795_422_600_000;
const HOUR: i64 = 3_600_000;

/// `Test_Deployment` with a form, labels, hours and placeholders; `Plain` with none of them;
/// `Hidden` unpublished; `Greeter` with a bot whose greeting has a placeholder.
fn deployments() -> String {
    format!(
        r#"
[[deployment]]
org_id = "{ORG}"
name = "{DEPLOYMENT}"
allowed_origins = ["http://127.0.0.1:*"]
queue = "support"
no_agent_message = "Sorry {{Name}}, nobody is here; {{Unknown}} stays."
[deployment.branding]
title = "Chat with us"
language = "en"
[deployment.labels.fr]
title = "Discutez avec nous"
button_label = "Discuter"
[deployment.labels.pt_BR]
title = "Fale conosco"
[deployment.business_hours]
days = ["Mon", "Tue", "Wed", "Thu", "Fri"]
open = "09:00"
close = "17:00"
outside_hours = "offline"
[deployment.prechat]
display = "session"
[[deployment.prechat.field]]
name = "_firstName"
label = "First name"
required = true
max_length = 40
[[deployment.prechat.field]]
name = "_email"
label = "Email"
type = "email"
required = true
max_length = 80
[[deployment.prechat.field]]
name = "Topic"
type = "choice"
choices = ["Billing", "Orders", "Other"]
[[deployment.prechat.hidden_field]]
name = "Plan"
max_length = 20
[[deployment.prechat.hidden_field]]
name = "CustomerId"
max_length = 40
[[deployment.routing_rule]]
when = {{ "session.tier" = "gold" }}
queue = "vip"

[[deployment]]
org_id = "{ORG}"
name = "Plain"
allowed_origins = ["http://127.0.0.1:*"]
queue = "support"

[[deployment]]
org_id = "{ORG}"
name = "Hidden"
allowed_origins = ["http://127.0.0.1:*"]
queue = "support"
published = false

[[deployment]]
org_id = "{ORG}"
name = "Greeter"
allowed_origins = ["http://127.0.0.1:*"]
queue = "support"
[deployment.bot]
greeting = "Hi {{Name}}, I'm the assistant."

[[queue]]
name = "support"
[[queue]]
name = "vip"
[[agent]]
username = "ada"
display_name = "Ada"
password_hash = "{PW_HASH}"
capacity = 5
queues = ["support", "vip"]
"#
    )
}

fn config_path(name: &str, language: Option<&str>) -> String {
    let mut path =
        format!("/embeddedservice/v1/embedded-service-config?orgId={ORG}&esConfigName={name}");
    if let Some(l) = language {
        path.push_str(&format!("&language={l}"));
    }
    path
}

async fn manual_server() -> (Server, Arc<ManualClock>) {
    let clock = ManualClock::new(MONDAY_0830);
    let s = Server::start_with_clock(&deployments(), clock.clone()).await;
    (s, clock)
}

/// The next `error` frames, exactly `n` of them, as their messages (all `invalid_field`).
async fn invalid_fields(v: &mut Ws, n: usize) -> BTreeSet<String> {
    let mut messages = BTreeSet::new();
    for _ in 0..n {
        let f = v.recv().await;
        assert_eq!(f["type"], "error", "{f}");
        assert_eq!(f["code"], "invalid_field", "{f}");
        messages.insert(f["message"].as_str().unwrap().to_string());
    }
    messages
}

#[tokio::test]
// The config endpoint serves the pre-chat form as configured, the default auth mode, and
// whether business hours are open with the exact next boundary, from the server clock.
async fn config_serves_form_auth_and_hours() {
    let (s, clock) = manual_server().await;
    let body = s
        .get(&config_path(DEPLOYMENT, None), Some(ORIGIN))
        .await
        .json();
    assert_eq!(body["auth"], "anonymous");
    assert_eq!(
        body["prechatForm"],
        json!({
            "display": "Session",
            "fields": [
                {"name": "_firstName", "label": "First name", "type": "text", "required": true, "maxLength": 40},
                {"name": "_email", "label": "Email", "type": "email", "required": true, "maxLength": 80},
                {"name": "Topic", "label": "Topic", "type": "choice", "required": false, "maxLength": 255,
                 "choices": ["Billing", "Orders", "Other"]}
            ],
            "hiddenFields": [{"name": "Plan", "maxLength": 20}, {"name": "CustomerId", "maxLength": 40}]
        })
    );
    assert_eq!(
        body["businessHours"],
        json!({"open": false, "nextChangeAt": MONDAY_0830 + HOUR / 2, "outsideHours": "offline"})
    );
    clock.advance_secs(3600);
    let body = s
        .get(&config_path(DEPLOYMENT, None), Some(ORIGIN))
        .await
        .json();
    assert_eq!(
        body["businessHours"],
        json!({"open": true, "nextChangeAt": MONDAY_0830 + HOUR * 17 / 2, "outsideHours": "offline"})
    );
    // Friday after closing: the next change is Monday's opening.
    clock.advance_secs(4 * 86_400 + 9 * 3600);
    let body = s
        .get(&config_path(DEPLOYMENT, None), Some(ORIGIN))
        .await
        .json();
    assert_eq!(body["businessHours"]["open"], false);
    assert_eq!(
        body["businessHours"]["nextChangeAt"],
        MONDAY_0830 + 7 * 24 * HOUR + HOUR / 2
    );

    let plain = s
        .get(&config_path("Plain", None), Some(ORIGIN))
        .await
        .json();
    assert_eq!(plain["auth"], "anonymous");
    assert!(plain.get("prechatForm").is_none() && plain.get("businessHours").is_none());
    assert_eq!(plain["branding"]["language"], "en");
}

#[tokio::test]
// `language` picks the labels: exact tag (either separator), else the primary subtag, else
// the default; `branding.language` says which, and unset keys keep the default's words.
async fn language_resolution() {
    let (s, _) = manual_server().await;
    let branding = |v: Value| v["branding"].clone();
    let b = branding(
        s.get(&config_path(DEPLOYMENT, Some("fr")), Some(ORIGIN))
            .await
            .json(),
    );
    assert_eq!(
        (&b["language"], &b["title"], &b["buttonLabel"]),
        (
            &json!("fr"),
            &json!("Discutez avec nous"),
            &json!("Discuter")
        )
    );
    assert_eq!(b["inputPlaceholder"], "Type your message");
    let b = branding(
        s.get(&config_path(DEPLOYMENT, Some("fr_CA")), Some(ORIGIN))
            .await
            .json(),
    );
    assert_eq!(
        (&b["language"], &b["title"]),
        (&json!("fr"), &json!("Discutez avec nous"))
    );
    let b = branding(
        s.get(&config_path(DEPLOYMENT, Some("pt-BR")), Some(ORIGIN))
            .await
            .json(),
    );
    assert_eq!(
        (&b["language"], &b["title"]),
        (&json!("pt_BR"), &json!("Fale conosco"))
    );
    for fallback in [Some("de_DE"), Some("en_US"), Some("pt"), None] {
        let b = branding(
            s.get(&config_path(DEPLOYMENT, fallback), Some(ORIGIN))
                .await
                .json(),
        );
        assert_eq!(
            (&b["language"], &b["title"]),
            (&json!("en"), &json!("Chat with us")),
            "{fallback:?}"
        );
    }
}

#[tokio::test]
// An unpublished deployment is refused by the config endpoint and the visitor socket with
// `deployment_unpublished`; a disallowed origin still only learns that it is not allowed.
async fn unpublished_deployment_is_refused() {
    let (s, _) = manual_server().await;
    let r = s.get(&config_path("Hidden", None), Some(ORIGIN)).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"error": {"code": "deployment_unpublished", "message": "deployment Hidden is not published"}})
    );
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    let path = format!("/embeddedservice/v1/ws?orgId={ORG}&esConfigName=Hidden");
    assert_eq!(
        Ws::connect(s.addr, &path, Some(ORIGIN)).await.err(),
        Some(404)
    );
    let r = s.get(&config_path("Hidden", None), Some(EVIL)).await;
    assert_eq!(r.json()["error"]["code"], "origin_not_allowed");
}

#[tokio::test]
// Every bad field of a setContext gets its own invalid_field naming the field and the reason;
// the good ones are stored and reach the agent (pre-chat, hidden, session context; again when
// they change after assignment), and a routing rule can match the session context.
async fn set_context_checks_each_field() {
    let (s, _) = manual_server().await;
    let (mut v, id) = s.visitor_with_conversation().await;
    let many: serde_json::Map<String, Value> =
        (0..49).map(|i| (format!("k{i:02}"), json!("v"))).collect();
    v.send(json!({"type": "setContext", "conversationId": id, "sessionContext": many}))
        .await;
    let mut frame = json!({
        "type": "setContext", "conversationId": id,
        "prechatFields": {
            "_firstName": "Ada", "_email": "ada@example", "Topic": "Shoes", "Nickname": "x"
        },
        "hiddenFields": {"Plan": "x".repeat(21), "CustomerId": "C-42", "Secret": "1"},
        "sessionContext": {"tier": "gold", "evil": "<SCRIPT>", "k": "x".repeat(1001),
                           "zz_one_too_many": "x"},
        "autoResponseParameters": {"Name": "Ada", "Link": " javascript:alert(1)"},
        "page": {"url": "https://shop.example.com/cart"}
    });
    frame["autoResponseParameters"]["x".repeat(101)] = json!("long name");
    v.send(frame).await;
    let expected: BTreeSet<String> = [
        r#"prechat field "_email": not an email address"#,
        r#"prechat field "Topic": not one of the choices (Billing, Orders, Other)"#,
        r#"prechat field "Nickname": not a field of the pre-chat form"#,
        r#"hidden field "Plan": longer than 20 characters"#,
        r#"hidden field "Secret": not a hidden field of the deployment"#,
        r#"session context "evil": contains <script"#,
        r#"session context "k": longer than 1000 characters"#,
        r#"session context "zz_one_too_many": more than 50 entries"#,
        r#"auto-response parameter "Link": contains a javascript: URL"#,
    ]
    .into_iter()
    .map(String::from)
    .chain([format!(
        "auto-response parameter {:?}: names are 1 to 100 characters",
        "x".repeat(101)
    )])
    .collect();
    assert_eq!(invalid_fields(&mut v, expected.len()).await, expected);
    v.send(json!({"type": "setContext", "conversationId": id,
                  "prechatFields": {"_firstName": " "}, "hiddenFields": {"Plan": "Gold"}}))
        .await;
    assert_eq!(
        invalid_fields(&mut v, 1).await,
        [r#"prechat field "_firstName": required, but empty"#.to_string()].into()
    );

    let mut ada = s.agent_online().await;
    v.send(send_message(&id, &uuid(), "hello")).await;
    let f = ada.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(f["conversation"]["queue"], "vip", "routed by session.tier");
    let context = &f["conversation"]["context"];
    assert_eq!(context["prechatFields"], json!({"_firstName": "Ada"}));
    assert_eq!(
        context["hiddenFields"],
        json!({"CustomerId": "C-42", "Plan": "Gold"})
    );
    assert_eq!(context["sessionContext"]["tier"], "gold");
    assert_eq!(context["sessionContext"].as_object().unwrap().len(), 50);
    assert_eq!(context["page"]["url"], "https://shop.example.com/cart");
    assert!(
        context.get("autoResponseParameters").is_none(),
        "parameters are for automated messages, not the agent: {context}"
    );

    // Later context reaches the agent who has the conversation as `context` alone.
    v.send(
        json!({"type": "setContext", "conversationId": id, "sessionContext": {"tier": "silver"}}),
    )
    .await;
    let f = ada.recv_until(|f| f["type"] == "context").await;
    assert_eq!(f["context"]["sessionContext"]["tier"], "silver");
    assert_eq!(f["context"]["page"]["url"], "https://shop.example.com/cart");
    assert_eq!(f["conversationId"], json!(id));
}

#[tokio::test]
// Another visitor's conversation is not_found, with no field errors and nothing stored.
async fn set_context_needs_the_owner() {
    let (s, _) = manual_server().await;
    let (_owner, id) = s.visitor_with_conversation().await;
    let mut other = s.visitor().await;
    other.hello(None).await;
    other
        .send(json!({"type": "setContext", "conversationId": id, "hiddenFields": {"Secret": "1"}}))
        .await;
    let f = other.recv().await;
    assert_eq!(
        (&f["type"], &f["code"]),
        (&json!("error"), &json!("not_found"))
    );
    other.assert_quiet().await;
}

#[tokio::test]
// Automated messages fill `{Name}` from the auto-response parameters (kept across later
// context updates) and leave unknown placeholders; a bot's greeting is filled too.
async fn placeholders_in_automated_messages() {
    let (s, clock) = manual_server().await;
    clock.advance_secs(3600); // open: nobody Online gets `no_agent_message`
    let (mut v, id) = s.visitor_with_conversation().await;
    v.send(json!({"type": "setContext", "conversationId": id,
                  "autoResponseParameters": {"Name": "Ada"}}))
        .await;
    v.send(json!({"type": "setContext", "conversationId": id,
                  "hiddenFields": {"Plan": "Gold"}, "sessionContext": {"cart": "3"}}))
        .await;
    v.send(send_message(&id, &uuid(), "hello")).await;
    let said = v
        .recv_until(|f| {
            f["type"] == "entry"
                && f["entry"]["sender"]["role"] == "System"
                && payload(f)["entryType"] == "Message"
        })
        .await;
    assert_eq!(
        payload(&said)["abstractMessage"]["staticContent"]["text"],
        "Sorry Ada, nobody is here; {Unknown} stays."
    );

    let path = format!("/embeddedservice/v1/ws?orgId={ORG}&esConfigName=Greeter");
    let mut g = Ws::connect(s.addr, &path, Some(ORIGIN)).await.unwrap();
    g.hello(None).await;
    let gid = uuid();
    g.send(json!({"type": "createConversation", "conversationId": gid}))
        .await;
    g.recv_until(|f| f["type"] == "conversation").await;
    g.send(json!({"type": "setContext", "conversationId": gid,
                  "autoResponseParameters": {"Name": "Grace"}}))
        .await;
    g.send(send_message(&gid, &uuid(), "hi")).await;
    let greeting = g
        .recv_until(|f| f["type"] == "entry" && f["entry"]["sender"]["role"] == "Chatbot")
        .await;
    assert_eq!(
        payload(&greeting)["abstractMessage"]["staticContent"]["text"],
        "Hi Grace, I'm the assistant."
    );
}

#[test]
// The demo file's deployments for the widget: Demo_Prechat's form, Demo_Closed closed now
// with an offline button, French labels on Demo_Deployment.
fn demo_deployments() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/deployments.toml");
    let config = em_server::Config::load(&path).unwrap();
    let demo = |name| config.deployment(ORG, name).unwrap();
    let form = demo("Demo_Prechat").prechat.as_ref().unwrap().to_wire();
    assert_eq!(
        form.display,
        em_protocol::config::PrechatDisplay::Conversation
    );
    let names: Vec<&str> = form.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["_firstName", "_email", "Topic"]);
    let hidden: Vec<&str> = form.hidden_fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(hidden, ["Plan", "CustomerId"]);
    let now = em_server::clock::Clock::now_ms(&em_server::clock::SystemClock);
    let closed = demo("Demo_Closed")
        .business_hours
        .as_ref()
        .unwrap()
        .status(now);
    assert!(!closed.open);
    assert_eq!(
        closed.outside_hours,
        em_protocol::config::OutsideHours::Offline
    );
    let fr = demo("Demo_Deployment").branding_for(Some("fr_FR"));
    assert_eq!(
        (fr.language.as_str(), fr.title.as_str()),
        ("fr", "Discutez avec nous")
    );
    assert!(demo("Demo_Deployment").business_hours.is_none());
}
