// Proves the rule bot: greeting and quick-reply menu, answers, collecting a value and handing
// off with it, and the "nobody is available" path whose human reply arrives later in the same thread.
mod common;

use common::*;
use em_server::clock::ManualClock;
use serde_json::{Value, json};

fn bot_config() -> String {
    format!(
        r#"
[[deployment]]
org_id = "{ORG}"
name = "{DEPLOYMENT}"
allowed_origins = ["http://127.0.0.1:*"]
queue = "support"
after_hours_message = "We are closed; we will answer here tomorrow."
[deployment.business_hours]
days = ["Mon", "Tue", "Wed", "Thu", "Fri"]
open = "09:00"
close = "17:00"
[deployment.bot]
name = "Assistant"
greeting = "Hi, I'm the assistant."
menu = ["Opening hours", "Order status", "Talk to a person"]
[[deployment.bot.intent]]
keywords = ["opening hours"]
answer = "9:00 to 17:00, Monday to Friday."
[[deployment.bot.intent]]
keywords = ["order status"]
collect = "orderNumber"
prompt = "What is your order number?"
pattern = "digits"
answer = "Thanks, a person will check order {{orderNumber}}."
handoff = true
[[deployment.routing_rule]]
when = {{ "var.orderNumber" = "*" }}
priority = 5
skills = ["orders"]
[[queue]]
name = "support"
[[agent]]
username = "ada"
display_name = "Ada"
password_hash = "{PW_HASH}"
capacity = 2
queues = ["support"]
skills = ["orders"]
"#
    )
}

/// Monday 2026-11-23 10:00 UTC: open.
const MONDAY_10: i64 = 1_795_428_000_000;

fn text(f: &Value) -> Option<&str> {
    payload(f)["abstractMessage"]["staticContent"]["text"].as_str()
}

/// The next bot message (text or choices).
async fn bot_says(v: &mut Ws) -> Value {
    let f = v
        .recv_until(|f| is_entry_type(f, "Message") && f["entry"]["sender"]["role"] == "Chatbot")
        .await;
    assert_eq!(f["entry"]["senderDisplayName"], "Assistant");
    f
}

async fn say(v: &mut Ws, id: &str, t: &str) {
    v.send(send_message(id, &uuid(), t)).await;
    v.recv_until(|f| f["type"] == "ack").await;
}

#[tokio::test]
// The first message gets the greeting and a ChoicesMessage menu; choosing "Opening hours" gets the answer and the menu again.
async fn menu_then_answer() {
    let s = Server::start_with_clock(&bot_config(), ManualClock::new(MONDAY_10)).await;
    let (mut v, id) = s.visitor_with_conversation().await;
    say(&mut v, &id, "hi").await;
    let joined = v
        .recv_until(|f| is_entry_type(f, "ParticipantChanged"))
        .await;
    assert_eq!(
        payload(&joined)["entries"][0]["participant"]["role"],
        "Chatbot"
    );
    assert_eq!(
        text(&bot_says(&mut v).await),
        Some("Hi, I'm the assistant.")
    );
    let menu = bot_says(&mut v).await;
    let choices = &payload(&menu)["abstractMessage"];
    assert_eq!(choices["messageType"], "ChoicesMessage");
    assert_eq!(choices["choices"]["formatType"], "QuickReplies");
    let titles: Vec<&str> = choices["choices"]["optionItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["titleItem"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["Opening hours", "Order status", "Talk to a person"]
    );

    say(&mut v, &id, "Opening hours").await;
    assert_eq!(
        text(&bot_says(&mut v).await),
        Some("9:00 to 17:00, Monday to Friday.")
    );
    assert_eq!(
        payload(&bot_says(&mut v).await)["abstractMessage"]["messageType"],
        "ChoicesMessage"
    );
    v.assert_quiet().await;
}

#[tokio::test]
// The bot collects an order number (re-asking for a bad one), hands off, and the agent gets
// the conversation with the variable, matched by a rule on it, and the bot's part in history.
async fn collected_value_reaches_the_agent() {
    let s = Server::start_with_clock(&bot_config(), ManualClock::new(MONDAY_10)).await;
    let mut ada = s.agent_online().await;
    let (mut v, id) = s.visitor_with_conversation().await;
    say(&mut v, &id, "Order status").await;
    assert_eq!(
        text(&bot_says(&mut v).await),
        Some("Hi, I'm the assistant.")
    );
    assert_eq!(
        text(&bot_says(&mut v).await),
        Some("What is your order number?")
    );
    say(&mut v, &id, "it's the blue one").await;
    assert_eq!(
        text(&bot_says(&mut v).await),
        Some("What is your order number?")
    );
    ada.assert_quiet().await;
    say(&mut v, &id, "12345").await;
    assert_eq!(
        text(&bot_says(&mut v).await),
        Some("Thanks, a person will check order 12345.")
    );
    assert_eq!(
        text(&bot_says(&mut v).await),
        Some("Let me connect you with a person.")
    );

    let f = ada.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(f["conversation"]["conversationId"], id);
    assert_eq!(
        f["conversation"]["context"]["variables"],
        json!({"orderNumber": "12345"})
    );
    let roles: Vec<&str> = f["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["sender"]["role"].as_str().unwrap())
        .collect();
    assert!(roles.contains(&"Chatbot") && roles.contains(&"EndUser"));
    let joined = v
        .recv_until(|f| {
            is_entry_type(f, "ParticipantChanged")
                && payload(f)["entries"][0]["participant"]["role"] == "Agent"
        })
        .await;
    assert_eq!(
        payload(&joined)["entries"][0]["participant"]["subject"],
        "ada"
    );
}

#[tokio::test]
// With nobody Online the bot says so and the conversation stays open; the visitor leaves, an
// agent comes later, and the reply is in the same thread when the visitor resumes.
async fn no_agent_then_reply_later_in_the_same_thread() {
    let s = Server::start_with_clock(&bot_config(), ManualClock::new(MONDAY_10)).await;
    let (mut v, id, credential) = s.visitor_with_credential().await;
    say(&mut v, &id, "hello").await;
    bot_says(&mut v).await;
    say(&mut v, &id, "Talk to a person").await;
    assert_eq!(
        text(&bot_says(&mut v).await),
        Some("Let me connect you with a person.")
    );
    let routed = v.recv_until(|f| is_entry_type(f, "RoutingResult")).await;
    assert_eq!(payload(&routed)["failureType"], "NoAgentAvailable");
    let sorry = bot_says(&mut v).await;
    assert!(text(&sorry).unwrap().starts_with("Nobody is available"));
    say(&mut v, &id, "my parcel never came").await;
    drop(v);

    let mut ada = s.agent_online().await;
    let f = ada.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(f["conversation"]["conversationId"], id);
    ada.send(json!({"type": "sendMessage", "conversationId": id, "entryId": uuid(), "text": "Sorry! Checking now."}))
        .await;
    ada.recv_until(|f| f["type"] == "ack").await;

    let mut back = s.visitor().await;
    back.hello(Some(&credential)).await;
    back.send(json!({"type": "resume", "conversationId": id, "afterSeq": 0}))
        .await;
    let reply = back
        .recv_until(|f| f["type"] == "entry" && f["entry"]["sender"]["role"] == "Agent")
        .await;
    assert_eq!(text(&reply), Some("Sorry! Checking now."));
}

#[tokio::test]
// Outside business hours with nobody Online, the visitor is told the deployment's after-hours message.
async fn after_hours_message() {
    let saturday = MONDAY_10 - 2 * 86_400_000;
    let s = Server::start_with_clock(&bot_config(), ManualClock::new(saturday)).await;
    let (mut v, id) = s.visitor_with_conversation().await;
    say(&mut v, &id, "Talk to a person").await;
    let routed = v.recv_until(|f| is_entry_type(f, "RoutingResult")).await;
    assert_eq!(payload(&routed)["failureType"], "OutsideBusinessHours");
    let closed = bot_says(&mut v).await;
    assert_eq!(
        text(&closed),
        Some("We are closed; we will answer here tomorrow.")
    );
}

#[tokio::test]
// A reload that removes the bot mid-conversation hands the visitor's next message to routing.
async fn bot_removed_by_reload_hands_off() {
    let s = Server::start_with_clock(&bot_config(), ManualClock::new(MONDAY_10)).await;
    let (mut v, id) = s.visitor_with_conversation().await;
    say(&mut v, &id, "hi").await;
    bot_says(&mut v).await;
    let without_bot = bot_config().replace("[deployment.bot]", "[deployment.bot_removed]");
    let without_bot = without_bot
        .split("[deployment.bot_removed]")
        .next()
        .unwrap()
        .to_string()
        + "[[queue]]\nname = \"support\"\n[[agent]]\nusername = \"ada\"\ndisplay_name = \"Ada\"\n"
        + &format!("password_hash = \"{PW_HASH}\"\ncapacity = 1\nqueues = [\"support\"]\n");
    let config = em_server::Config::parse(&without_bot).unwrap();
    s.state.engine.reload(config).await.unwrap();
    let mut ada = s.agent_online().await;
    say(&mut v, &id, "still there?").await;
    let f = ada.recv_until(|f| f["type"] == "assigned").await;
    assert_eq!(f["conversation"]["conversationId"], id);
}
