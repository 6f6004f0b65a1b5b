//! The rule bot: what it says to a visitor message, given its script and its state.
//!
//! Pure (no store, no clock) so every path is unit-tested; `session.rs` stores what it says.
//! States, kept in `messaging_session.bot_state`: `menu` (triaging), `collect:<intent index>`
//! (waiting for a value), `handoff` (done; the conversation went to routing).

use std::collections::BTreeMap;

use em_protocol::Choices;

use crate::config::BotConfig;

/// One thing the bot says.
#[derive(Debug, Clone, PartialEq)]
pub enum Say {
    Text(String),
    Choices(Choices),
}

/// The bot's answer to one visitor message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Turn {
    pub say: Vec<Say>,
    pub state: String,
    /// An intent was answered (counts towards deflection).
    pub answered: bool,
    /// The message meant something to the bot (not the fallback).
    pub matched: bool,
    pub handoff: bool,
    pub collected: Option<(String, String)>,
}

pub const HANDOFF: &str = "handoff";

/// The greeting and the menu, said when the bot joins.
pub fn greet(bot: &BotConfig, params: &BTreeMap<String, String>) -> Vec<Say> {
    let mut say = vec![greeting(bot, params)];
    say.extend(menu(bot));
    say
}

/// The greeting with the visitor's auto-response parameters filled in.
pub fn greeting(bot: &BotConfig, params: &BTreeMap<String, String>) -> Say {
    Say::Text(crate::context::fill(&bot.greeting, params))
}

fn menu(bot: &BotConfig) -> Option<Say> {
    (!bot.menu.is_empty()).then(|| Say::Choices(Choices::quick_replies(&bot.menu_text, &bot.menu)))
}

/// What the bot does with `text` in `state`; `vars` are the variables collected so far.
pub fn reply(bot: &BotConfig, state: &str, text: &str, vars: &BTreeMap<String, String>) -> Turn {
    let lower = text.trim().to_lowercase();
    let mut turn = Turn {
        state: "menu".into(),
        ..Turn::default()
    };
    if let Some(i) = state
        .strip_prefix("collect:")
        .and_then(|i| i.parse::<usize>().ok())
        && let Some(intent) = bot.intent.get(i)
    {
        let value = text.trim().to_string();
        let ok = match intent.pattern.as_str() {
            "digits" => !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
            _ => !value.is_empty(),
        };
        if !ok && !is_handoff(bot, &lower) {
            turn.say.push(Say::Text(intent.prompt.clone()));
            turn.state = state.to_string();
            return turn;
        }
        if ok {
            turn.matched = true;
            let name = intent.collect.clone().unwrap_or_default();
            let mut vars = vars.clone();
            vars.insert(name.clone(), value.clone());
            turn.collected = Some((name, value));
            return finish(bot, intent, &vars, turn);
        }
    }
    turn.matched = true;
    if is_handoff(bot, &lower) {
        return handoff(bot, turn);
    }
    let found = bot.intent.iter().enumerate().find(|(_, i)| {
        i.keywords
            .iter()
            .any(|k| !k.trim().is_empty() && lower.contains(&k.trim().to_lowercase()))
    });
    match found {
        Some((i, intent)) if intent.collect.is_some() => {
            turn.say.push(Say::Text(intent.prompt.clone()));
            turn.state = format!("collect:{i}");
            turn
        }
        Some((_, intent)) => finish(bot, intent, vars, turn),
        None => {
            turn.matched = false;
            turn.say.push(Say::Text(bot.fallback_message.clone()));
            turn.say.extend(menu(bot));
            turn
        }
    }
}

fn is_handoff(bot: &BotConfig, lower: &str) -> bool {
    bot.handoff_keywords
        .iter()
        .any(|k| !k.trim().is_empty() && lower.contains(&k.trim().to_lowercase()))
}

fn finish(
    bot: &BotConfig,
    intent: &crate::config::Intent,
    vars: &BTreeMap<String, String>,
    mut turn: Turn,
) -> Turn {
    if !intent.answer.trim().is_empty() {
        let mut answer = intent.answer.clone();
        for (k, v) in vars {
            answer = answer.replace(&format!("{{{k}}}"), v);
        }
        turn.say.push(Say::Text(answer));
        turn.answered = true;
    }
    if intent.handoff {
        return handoff(bot, turn);
    }
    turn.say.extend(menu(bot));
    turn
}

fn handoff(bot: &BotConfig, mut turn: Turn) -> Turn {
    turn.say.push(Say::Text(bot.handoff_message.clone()));
    turn.state = HANDOFF.into();
    turn.handoff = true;
    turn
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn bot() -> BotConfig {
        let c = Config::parse(
            r#"
            [[queue]]
            name = "q"
            [[deployment]]
            org_id = "00D000000000001"
            name = "D"
            allowed_origins = ["http://x"]
            queue = "q"
            [deployment.bot]
            greeting = "Hi!"
            menu = ["Opening hours", "Order status", "Talk to a person"]
            [[deployment.bot.intent]]
            keywords = ["opening hours", "open"]
            answer = "9 to 5."
            [[deployment.bot.intent]]
            keywords = ["order status"]
            collect = "orderNumber"
            prompt = "Your order number?"
            pattern = "digits"
            answer = "Thanks, order {orderNumber} noted."
            handoff = true
            "#,
        )
        .unwrap();
        c.deployment[0].bot.clone().unwrap()
    }

    #[test]
    // Menu choice → answer and the menu again; unknown text → fallback and the menu.
    fn menu_answer_and_fallback() {
        let b = bot();
        assert!(
            matches!(&greet(&b, &BTreeMap::new())[..], [Say::Text(t), Say::Choices(c)] if t == "Hi!" && c.option_items.len() == 3)
        );
        let t = reply(&b, "menu", "Opening hours", &BTreeMap::new());
        assert_eq!(t.say[0], Say::Text("9 to 5.".into()));
        assert!(t.answered && !t.handoff && matches!(t.say[1], Say::Choices(_)));
        let t = reply(&b, "menu", "blah", &BTreeMap::new());
        assert_eq!(t.say[0], Say::Text("Sorry, I did not get that.".into()));
        assert!(!t.answered);
    }

    #[test]
    // Collecting re-asks until the value fits, then answers with it and hands off; handoff words work anywhere.
    fn collect_then_handoff() {
        let b = bot();
        let t = reply(&b, "menu", "Order status", &BTreeMap::new());
        assert_eq!(
            (t.say.clone(), t.state.as_str()),
            (vec![Say::Text("Your order number?".into())], "collect:1")
        );
        let again = reply(&b, "collect:1", "abc", &BTreeMap::new());
        assert_eq!(again.state, "collect:1");
        let t = reply(&b, "collect:1", " 12345 ", &BTreeMap::new());
        assert_eq!(t.collected, Some(("orderNumber".into(), "12345".into())));
        assert_eq!(t.say[0], Say::Text("Thanks, order 12345 noted.".into()));
        assert!(t.handoff && t.state == HANDOFF);
        assert!(reply(&b, "collect:1", "Talk to a person", &BTreeMap::new()).handoff);
        assert!(reply(&b, "menu", "can I talk to a person?", &BTreeMap::new()).handoff);
    }
}
