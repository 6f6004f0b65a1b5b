//! Routing state: waiting conversations in priority-then-arrival order, and agents with
//! presence, skills and capacity.
//!
//! Pure in-memory bookkeeping with no IO, so the choice of agent is unit-tested directly.
//! The engine peeks an [`Assignment`], writes it to the store, and only then commits it here,
//! all in one job on the store thread, so a conversation is never assigned twice.
//!
//! Every change goes through one [`Change`] and [`Routing::apply`]: on several nodes the
//! engine logs the changes it applies (`cluster.rs`), and the other nodes apply the same
//! changes in the same order, so every node holds the same state.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use em_protocol::ConversationId;
use em_protocol::agent::Presence;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Route};

#[derive(Debug)]
struct AgentLoad {
    capacity: usize,
    queues: Vec<String>,
    skills: Vec<String>,
    presence: Presence,
    /// Open conversations, whether or not the agent is connected: idle ones still count.
    assigned: BTreeSet<ConversationId>,
    /// The server nodes the agent has a connection on: none left is Offline.
    nodes: BTreeSet<String>,
}

impl AgentLoad {
    fn free(&self) -> usize {
        self.capacity.saturating_sub(self.assigned.len())
    }

    fn can_serve(&self, queue: &str, skills: &[String]) -> bool {
        self.queues.iter().any(|q| q == queue) && skills.iter().all(|s| self.skills.contains(s))
    }
}

/// A decision to give `conversation`, waiting in `queue`, to `agent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub queue: String,
    pub conversation: ConversationId,
    pub agent: String,
}

/// Priority order: higher priority first, then earlier arrival.
type Key = (Reverse<i32>, u64);

#[derive(Debug, Clone)]
struct Waiting {
    key: Key,
    queue: String,
    /// The rule's skills plus the queue's.
    skills: Vec<String>,
    /// The position the visitor was last told, if any (see [`Routing::moved`]).
    told: Option<u32>,
}

/// Where a waiting conversation stands, for the visitor's `RoutingResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// 1 = next among the conversations of its queue.
    pub position: u32,
    /// Capacity of the agents who could take it, whatever their presence now.
    pub serving_capacity: usize,
    /// Whether an Online agent could take it (now or when capacity frees).
    pub agent_online: bool,
}

/// One change of the routing state, as the node that made it logs it for the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "camelCase")]
pub enum Change {
    /// A conversation starts waiting (ignored if it already is).
    Enqueue { id: ConversationId, route: Route },
    /// A conversation leaves the waiting list without an agent (ended).
    Dequeue { id: ConversationId },
    /// The visitor of a waiting conversation was told this position.
    Tell { id: ConversationId, position: u32 },
    /// An assignment (routing's or a transfer's) is stored.
    Commit(Assignment),
    /// The agent no longer holds the conversation.
    Release { agent: String, id: ConversationId },
    /// A connection of the agent on `node` set its presence.
    Present {
        agent: String,
        node: String,
        presence: Presence,
    },
    /// The agent's last connection on `node` went away.
    Left { agent: String, node: String },
    /// A node stopped (or was found dead): its agents' connections are gone.
    NodeGone { node: String },
}

#[derive(Debug, Default)]
pub struct Routing {
    waiting: BTreeMap<Key, ConversationId>,
    index: HashMap<ConversationId, Waiting>,
    agents: BTreeMap<String, AgentLoad>,
    queue_skills: HashMap<String, Vec<String>>,
    arrivals: u64,
}

impl Routing {
    pub fn new(config: &Config) -> Self {
        let mut r = Self::default();
        r.reconfigure(config);
        r
    }

    /// Applies a (re)loaded config: agents' capacity, queues and skills, queues' skills.
    /// Presence and assignments are kept; a removed agent keeps their open conversations
    /// until they end.
    pub fn reconfigure(&mut self, config: &Config) {
        self.queue_skills = config
            .queue
            .iter()
            .map(|q| (q.name.clone(), q.skills.clone()))
            .collect();
        for a in &config.agent {
            let load = self.agents.entry(a.username.clone()).or_insert(AgentLoad {
                capacity: 0,
                queues: vec![],
                skills: vec![],
                presence: Presence::Offline,
                assigned: BTreeSet::new(),
                nodes: BTreeSet::new(),
            });
            load.capacity = a.capacity as usize;
            load.queues = a.queues.clone();
            load.skills = a.skills.clone();
        }
        for (name, load) in &mut self.agents {
            if config.agent(name).is_none() {
                load.capacity = 0;
                load.presence = Presence::Offline;
            }
        }
    }

    /// Applies one change: the only way the state changes after a rebuild.
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Enqueue { id, route } => self.enqueue(*id, route),
            Change::Dequeue { id } => self.dequeue(*id),
            Change::Tell { id, position } => self.tell(*id, *position),
            Change::Commit(a) => self.commit(a),
            Change::Release { agent, id } => self.release(agent, *id),
            Change::Present {
                agent,
                node,
                presence,
            } => {
                if let Some(a) = self.agents.get_mut(agent) {
                    a.nodes.insert(node.clone());
                    a.presence = *presence;
                }
            }
            Change::Left { agent, node } => {
                if let Some(a) = self.agents.get_mut(agent) {
                    a.nodes.remove(node);
                    if a.nodes.is_empty() {
                        a.presence = Presence::Offline;
                    }
                }
            }
            Change::NodeGone { node } => {
                for a in self.agents.values_mut() {
                    if a.nodes.remove(node) && a.nodes.is_empty() {
                        a.presence = Presence::Offline;
                    }
                }
            }
        }
    }

    /// Adds a conversation to the waiting list (ignored if it is already waiting).
    fn enqueue(&mut self, id: ConversationId, route: &Route) {
        if self.index.contains_key(&id) {
            return;
        }
        self.arrivals += 1;
        let key = (Reverse(route.priority), self.arrivals);
        let mut skills = route.skills.clone();
        for s in self.queue_skills.get(&route.queue).into_iter().flatten() {
            if !skills.contains(s) {
                skills.push(s.clone());
            }
        }
        self.waiting.insert(key, id);
        self.index.insert(
            id,
            Waiting {
                key,
                queue: route.queue.clone(),
                skills,
                told: None,
            },
        );
    }

    /// Records the position the visitor of a waiting conversation was told.
    fn tell(&mut self, id: ConversationId, position: u32) {
        if let Some(w) = self.index.get_mut(&id) {
            w.told = Some(position);
        }
    }

    /// Waiting conversations whose visitor was told a position that is no longer true (the
    /// queue moved), with their standing now (the caller tells them, with [`Change::Tell`]).
    /// One pass over the waiting list, since this runs after every routing run.
    pub fn moved(&self) -> Vec<(ConversationId, Standing)> {
        let mut seen: HashMap<&str, u32> = HashMap::new();
        let mut changed = Vec::new();
        for id in self.waiting.values() {
            let w = &self.index[id];
            let position = seen.entry(w.queue.as_str()).or_insert(0);
            *position += 1;
            if w.told.is_some_and(|told| told != *position) {
                changed.push((*id, self.standing_at(w, *position)));
            }
        }
        changed
    }

    /// Takes a conversation out of the waiting list, if it is there.
    fn dequeue(&mut self, id: ConversationId) {
        if let Some(w) = self.index.remove(&id) {
            self.waiting.remove(&w.key);
        }
    }

    pub fn is_waiting(&self, id: ConversationId) -> bool {
        self.index.contains_key(&id)
    }

    pub fn waiting_count(&self) -> usize {
        self.waiting.len()
    }

    /// Records an assignment that is already in the store (used when rebuilding at start).
    pub fn restore(&mut self, agent: &str, id: ConversationId) -> bool {
        self.agents
            .get_mut(agent)
            .map(|a| a.assigned.insert(id))
            .is_some()
    }

    pub fn presence(&self, agent: &str) -> Presence {
        self.agents
            .get(agent)
            .map_or(Presence::Offline, |a| a.presence)
    }

    /// The presence of every connected agent, as changes that set it again (kept across a
    /// failed commit's reload).
    pub fn presences(&self) -> Vec<Change> {
        self.agents
            .iter()
            .flat_map(|(agent, a)| {
                a.nodes.iter().map(|node| Change::Present {
                    agent: agent.clone(),
                    node: node.clone(),
                    presence: a.presence,
                })
            })
            .collect()
    }

    pub fn assigned(&self, agent: &str) -> Vec<ConversationId> {
        self.agents
            .get(agent)
            .map(|a| a.assigned.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every agent's (presence, open conversations, capacity), for metrics.
    pub fn loads(&self) -> Vec<(String, Presence, usize, usize)> {
        self.agents
            .iter()
            .map(|(n, a)| (n.clone(), a.presence, a.assigned.len(), a.capacity))
            .collect()
    }

    /// The next assignment to make, if any: the first waiting conversation (priority, then
    /// arrival) that an Online agent serving its queue with its skills has room for, given
    /// to the agent with the most free capacity (ties: fewest assigned, then username).
    pub fn next(&self) -> Option<Assignment> {
        let mut free: Vec<(&String, &AgentLoad)> = self
            .agents
            .iter()
            .filter(|(_, a)| a.presence == Presence::Online && a.free() > 0)
            .collect();
        if free.is_empty() {
            return None;
        }
        free.sort_by(|(an, a), (bn, b)| {
            b.free()
                .cmp(&a.free())
                .then(a.assigned.len().cmp(&b.assigned.len()))
                .then(an.cmp(bn))
        });
        self.waiting.values().find_map(|id| {
            let w = &self.index[id];
            let (agent, _) = free
                .iter()
                .find(|(_, a)| a.can_serve(&w.queue, &w.skills))?;
            Some(Assignment {
                queue: w.queue.clone(),
                conversation: *id,
                agent: (*agent).clone(),
            })
        })
    }

    /// Applies an assignment returned by [`Routing::next`] (or a transfer) once it is stored.
    fn commit(&mut self, a: &Assignment) {
        self.dequeue(a.conversation);
        if let Some(agent) = self.agents.get_mut(&a.agent) {
            agent.assigned.insert(a.conversation);
        }
    }

    /// Frees the capacity a conversation used.
    fn release(&mut self, agent: &str, id: ConversationId) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.assigned.remove(&id);
        }
    }

    /// Whether `agent` is Online with room (a transfer's target).
    pub fn can_take(&self, agent: &str) -> bool {
        self.agents
            .get(agent)
            .is_some_and(|a| a.presence == Presence::Online && a.free() > 0)
    }

    /// Where a waiting conversation stands; `None` if it is not waiting.
    pub fn standing(&self, id: ConversationId) -> Option<Standing> {
        let w = self.index.get(&id)?;
        let ahead = self
            .waiting
            .range(..w.key)
            .filter(|(_, other)| self.index[*other].queue == w.queue)
            .count();
        Some(self.standing_at(w, ahead as u32 + 1))
    }

    /// The standing of a waiting conversation known to be at `position` in its queue.
    fn standing_at(&self, w: &Waiting, position: u32) -> Standing {
        let serving = self
            .agents
            .values()
            .filter(|a| a.can_serve(&w.queue, &w.skills));
        let (mut capacity, mut online) = (0, false);
        for a in serving {
            capacity += a.capacity;
            online |= a.presence == Presence::Online;
        }
        Standing {
            position,
            serving_capacity: capacity,
            agent_online: online,
        }
    }
}

#[cfg(test)]
mod tests {
    /// A connection on the one test node sets the agent's presence.
    fn set_presence(r: &mut Routing, agent: &str, presence: Presence) {
        r.apply(&Change::Present {
            agent: agent.into(),
            node: "n1".into(),
            presence,
        });
    }

    /// What the engine does after a routing run: the moved ones are told their new position.
    fn tell_moved(r: &mut Routing) -> Vec<(ConversationId, Standing)> {
        let moved = r.moved();
        for (id, st) in &moved {
            r.tell(*id, st.position);
        }
        moved
    }

    use super::*;
    use uuid::Uuid;

    fn config() -> Config {
        let hash = crate::config::PasswordHash::create("x", crate::config::MIN_ITERATIONS);
        Config::parse(&format!(
            r#"
            [[queue]]
            name = "q"
            [[queue]]
            name = "vip"
            skills = ["french"]
            [[agent]]
            username = "bob"
            display_name = "Bob"
            password_hash = "{hash}"
            capacity = 1
            queues = ["q"]
            [[agent]]
            username = "ada"
            display_name = "Ada"
            password_hash = "{hash}"
            capacity = 2
            queues = ["q", "vip"]
            skills = ["french"]
            "#
        ))
        .unwrap()
    }

    fn route(queue: &str, priority: i32) -> Route {
        Route {
            queue: queue.into(),
            priority,
            skills: vec![],
        }
    }

    fn ids(n: usize) -> Vec<ConversationId> {
        (0..n).map(|_| ConversationId(Uuid::new_v4())).collect()
    }

    fn drain(r: &mut Routing) -> Vec<(ConversationId, String)> {
        let mut got = vec![];
        while let Some(a) = r.next() {
            r.commit(&a);
            got.push((a.conversation, a.agent));
        }
        got
    }

    #[test]
    // FIFO order, most-free-capacity choice, capacity limits and presence are all respected.
    fn assigns_fifo_to_most_free_agent_within_capacity() {
        let mut r = Routing::new(&config());
        let ids = ids(4);
        for id in &ids {
            r.enqueue(*id, &route("q", 0));
        }
        assert_eq!(r.next(), None, "nobody online");
        set_presence(&mut r, "ada", Presence::Online);
        set_presence(&mut r, "bob", Presence::Online);
        let got = drain(&mut r);
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

    #[test]
    // Higher priority goes first whatever its arrival; equal priorities stay FIFO.
    fn priority_then_fifo() {
        let mut r = Routing::new(&config());
        let ids = ids(4);
        r.enqueue(ids[0], &route("q", 0));
        r.enqueue(ids[1], &route("q", 5));
        r.enqueue(ids[2], &route("q", 0));
        r.enqueue(ids[3], &route("q", 5));
        assert_eq!(r.standing(ids[2]).unwrap().position, 4);
        assert_eq!(r.standing(ids[3]).unwrap().position, 2);
        set_presence(&mut r, "ada", Presence::Online);
        set_presence(&mut r, "bob", Presence::Online);
        let order: Vec<_> = drain(&mut r).into_iter().map(|(c, _)| c).collect();
        assert_eq!(order, [ids[1], ids[3], ids[0]]);
    }

    #[test]
    // Queue skills and rule skills restrict who can take a conversation; others are not blocked behind it.
    fn skills_are_required() {
        let mut r = Routing::new(&config());
        let ids = ids(3);
        r.enqueue(ids[0], &route("vip", 0)); // needs french: ada only
        r.enqueue(
            ids[1],
            &Route {
                queue: "q".into(),
                priority: 0,
                skills: vec!["german".into()],
            },
        ); // nobody
        r.enqueue(ids[2], &route("q", 0));
        set_presence(&mut r, "bob", Presence::Online);
        assert_eq!(drain(&mut r), [(ids[2], "bob".to_string())]);
        set_presence(&mut r, "ada", Presence::Online);
        assert_eq!(drain(&mut r), [(ids[0], "ada".to_string())]);
        assert!(r.is_waiting(ids[1]));
        assert!(!r.standing(ids[1]).unwrap().agent_online);
    }

    #[test]
    // Busy and Away keep their conversations but get no new ones; Online again resumes routing.
    fn presence_states() {
        let mut r = Routing::new(&config());
        let ids = ids(2);
        set_presence(&mut r, "ada", Presence::Online);
        r.enqueue(ids[0], &route("q", 0));
        assert_eq!(drain(&mut r).len(), 1);
        for p in [Presence::Busy, Presence::Away, Presence::Offline] {
            set_presence(&mut r, "ada", p);
            r.enqueue(ids[1], &route("q", 0));
            assert_eq!(r.next(), None, "{p:?}");
            assert_eq!(r.assigned("ada"), [ids[0]]);
        }
        set_presence(&mut r, "ada", Presence::Online);
        assert_eq!(drain(&mut r), [(ids[1], "ada".to_string())]);
    }

    #[test]
    // Queue updates go to each told conversation whose position changed, once, per queue;
    // conversations never told a position, or in another queue, get none.
    fn moved_reports_changed_positions_once() {
        let mut r = Routing::new(&config());
        let ids = ids(5);
        for id in &ids[..3] {
            r.enqueue(*id, &route("q", 0));
            let position = r.standing(*id).unwrap().position;
            r.tell(*id, position);
        }
        r.enqueue(ids[3], &route("q", 0)); // never told (nobody could take it then)
        r.enqueue(ids[4], &route("vip", 0));
        r.tell(ids[4], 1);
        assert_eq!(tell_moved(&mut r), [], "nothing moved yet");

        set_presence(&mut r, "bob", Presence::Online);
        assert_eq!(drain(&mut r), [(ids[0], "bob".to_string())]);
        let moved: Vec<(ConversationId, u32)> = tell_moved(&mut r)
            .iter()
            .map(|(id, st)| (*id, st.position))
            .collect();
        assert_eq!(moved, [(ids[1], 1), (ids[2], 2)]);
        assert_eq!(tell_moved(&mut r), [], "each change is reported once");

        // A higher priority arrival pushes the others back.
        let urgent = ConversationId(Uuid::new_v4());
        r.enqueue(urgent, &route("q", 9));
        let moved: Vec<(ConversationId, u32)> = tell_moved(&mut r)
            .iter()
            .map(|(id, st)| (*id, st.position))
            .collect();
        assert_eq!(moved, [(ids[1], 2), (ids[2], 3)]);
        r.dequeue(urgent);
        r.dequeue(ids[1]);
        let moved: Vec<(ConversationId, u32)> = tell_moved(&mut r)
            .iter()
            .map(|(id, st)| (*id, st.position))
            .collect();
        assert_eq!(moved, [(ids[2], 1)]);
    }
}
