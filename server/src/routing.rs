//! Routing state: a FIFO of waiting conversations per queue, agent presence and capacity.
//!
//! Pure in-memory bookkeeping with no IO, so the choice of agent is unit-tested directly.
//! The engine peeks an [`Assignment`], writes it to the store, and only then commits it here,
//! all in one job on the store thread, so a conversation is never assigned twice.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use em_protocol::ConversationId;

use crate::config::Config;

#[derive(Debug, Default)]
struct AgentLoad {
    capacity: usize,
    queues: Vec<String>,
    online: bool,
    /// Open conversations, whether or not the agent is connected: idle ones still count.
    assigned: BTreeSet<ConversationId>,
}

/// A decision to give `conversation`, at the head of `queue`, to `agent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub queue: String,
    pub conversation: ConversationId,
    pub agent: String,
}

#[derive(Debug, Default)]
pub struct Routing {
    /// Per queue: (arrival number, conversation), oldest first.
    waiting: HashMap<String, VecDeque<(u64, ConversationId)>>,
    /// Every conversation in `waiting`, to refuse duplicates without scanning the queues.
    queued: HashSet<ConversationId>,
    agents: BTreeMap<String, AgentLoad>,
    arrivals: u64,
}

impl Routing {
    pub fn new(config: &Config) -> Self {
        let agents = config
            .agent
            .iter()
            .map(|a| {
                let load = AgentLoad {
                    capacity: a.capacity as usize,
                    queues: a.queues.clone(),
                    ..AgentLoad::default()
                };
                (a.username.clone(), load)
            })
            .collect();
        Self {
            agents,
            ..Self::default()
        }
    }

    /// Appends a conversation to its queue (ignored if it is already waiting anywhere).
    pub fn enqueue(&mut self, queue: &str, id: ConversationId) {
        if !self.queued.insert(id) {
            return;
        }
        self.arrivals += 1;
        self.waiting
            .entry(queue.to_string())
            .or_default()
            .push_back((self.arrivals, id));
    }

    /// Records an assignment that is already in the store (used when rebuilding at start).
    pub fn restore(&mut self, agent: &str, id: ConversationId) -> bool {
        self.agents
            .get_mut(agent)
            .map(|a| a.assigned.insert(id))
            .is_some()
    }

    pub fn set_online(&mut self, agent: &str, online: bool) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.online = online;
        }
    }

    pub fn online_agents(&self) -> Vec<String> {
        self.agents
            .iter()
            .filter(|(_, a)| a.online)
            .map(|(n, _)| n.clone())
            .collect()
    }

    pub fn assigned(&self, agent: &str) -> Vec<ConversationId> {
        self.agents
            .get(agent)
            .map(|a| a.assigned.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The next assignment to make, if any: the longest-waiting conversation that some online
    /// agent of its queue has room for, given to the agent with the most free capacity
    /// (ties: fewest assigned, then username).
    pub fn next(&self) -> Option<Assignment> {
        let mut heads: Vec<(u64, &String, ConversationId)> = self
            .waiting
            .iter()
            .filter_map(|(q, list)| list.front().map(|(n, c)| (*n, q, *c)))
            .collect();
        heads.sort();
        heads.into_iter().find_map(|(_, queue, conversation)| {
            let agent = self
                .agents
                .iter()
                .filter(|(_, a)| {
                    a.online && a.assigned.len() < a.capacity && a.queues.contains(queue)
                })
                .max_by(|(an, a), (bn, b)| {
                    let free = |l: &AgentLoad| l.capacity - l.assigned.len();
                    free(a)
                        .cmp(&free(b))
                        .then(b.assigned.len().cmp(&a.assigned.len()))
                        .then(bn.cmp(an))
                })?
                .0
                .clone();
            Some(Assignment {
                queue: queue.clone(),
                conversation,
                agent,
            })
        })
    }

    /// Applies an assignment returned by [`Routing::next`] once it is stored.
    pub fn commit(&mut self, a: &Assignment) {
        if let Some(list) = self.waiting.get_mut(&a.queue) {
            // The assigned conversation is the head of its queue (see `next`).
            match list.front() {
                Some((_, c)) if *c == a.conversation => {
                    list.pop_front();
                }
                _ => list.retain(|(_, c)| *c != a.conversation),
            }
        }
        self.queued.remove(&a.conversation);
        if let Some(agent) = self.agents.get_mut(&a.agent) {
            agent.assigned.insert(a.conversation);
        }
    }

    /// Frees the capacity a conversation used.
    pub fn release(&mut self, agent: &str, id: ConversationId) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.assigned.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn config() -> Config {
        Config::parse(
            r#"
            [[queue]]
            name = "q"
            [[agent]]
            username = "bob"
            display_name = "Bob"
            credential = "x"
            capacity = 1
            queues = ["q"]
            [[agent]]
            username = "ada"
            display_name = "Ada"
            credential = "x"
            capacity = 2
            queues = ["q"]
            "#,
        )
        .unwrap()
    }

    #[test]
    // FIFO order, most-free-capacity choice, capacity limits and presence are all respected.
    fn assigns_fifo_to_most_free_agent_within_capacity() {
        let mut r = Routing::new(&config());
        let ids: Vec<ConversationId> = (0..4).map(|_| ConversationId(Uuid::new_v4())).collect();
        for id in &ids {
            r.enqueue("q", *id);
        }
        assert_eq!(r.next(), None, "nobody online");
        r.set_online("ada", true);
        r.set_online("bob", true);
        let mut got = vec![];
        while let Some(a) = r.next() {
            r.commit(&a);
            got.push((a.conversation, a.agent));
        }
        let names: Vec<&str> = got.iter().map(|(_, a)| a.as_str()).collect();
        // ada has 2 free, then ada 1 vs bob 1 with ada having more assigned → bob, then ada.
        assert_eq!(names, ["ada", "bob", "ada"]);
        assert_eq!(got.iter().map(|(c, _)| *c).collect::<Vec<_>>(), ids[..3]);
        r.release("bob", ids[1]);
        assert_eq!(
            r.next().map(|a| (a.conversation, a.agent)),
            Some((ids[3], "bob".into()))
        );
    }
}
