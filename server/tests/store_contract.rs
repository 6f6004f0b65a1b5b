//! The storage contract: one set of tests written against `dyn Store` and `dyn Figures`, run
//! unchanged against SQLite (a temporary file) and PostgreSQL (a fresh database per test on
//! the test process's throwaway cluster), plus what only a shared database must guarantee:
//! two stores writing one conversation at once.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

use em_protocol::agent::{ConversationContext, PageContext};
use em_protocol::{
    ConversationEntry, ConversationId, EndUserId, EntryId, EntryPayload, Participant, Role,
    SessionStatus,
};
use em_server::clock::{ManualClock, SharedClock};
use em_server::config::Route;
use em_server::store::{Appended, Figures, NewEntry, Session, Store, Update};
use em_server::{Database, Error};

/// When the tests' clock starts (ms).
const START: i64 = 1_700_000_000_000;

const ORG: &str = "Org";
const DEPLOYMENT: &str = "Site";

/// One database of a test, and the clock its stores share.
struct Backend {
    db: Database,
    clock: Arc<ManualClock>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self {
            db: Database::Sqlite(dir.path().join("em.sqlite")),
            clock: ManualClock::new(START),
            _dir: Some(dir),
        }
    }

    fn postgres() -> Self {
        Self {
            db: Database::Postgres(support::postgres::fresh_database()),
            clock: ManualClock::new(START),
            _dir: None,
        }
    }

    fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    /// A writer, as the store thread has one (each call a connection of its own).
    fn store(&self) -> Box<dyn Store> {
        self.db.open(self.clock()).expect("open store")
    }

    fn figures(&self) -> Box<dyn Figures> {
        self.db.open_reader(self.clock()).expect("open reader")
    }

    /// An end user as stored before credentials were bound to a deployment, written as the
    /// old server did (the trait has no way to make one any more).
    fn legacy_end_user(&self, id: EndUserId, credential: &[u8]) {
        match &self.db {
            Database::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("sqlite");
                conn.execute(
                    "INSERT INTO messaging_end_user (id, credential_sha256, created_at) VALUES (?1, ?2, 0)",
                    rusqlite::params![id.to_string(), credential],
                )
                .expect("legacy end user");
            }
            Database::Postgres(url) => {
                let mut client = support::postgres::connect(url).expect("postgres");
                client
                    .execute(
                        "INSERT INTO messaging_end_user (id, credential_sha256, created_at)
                         VALUES ($1::text::uuid, $2, 0)",
                        &[&id.to_string(), &credential],
                    )
                    .expect("legacy end user");
            }
        }
    }
}

/// Runs each contract test against both databases.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&super::Backend::sqlite()); })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(&super::Backend::postgres()); })*
        }
    };
}

contract!(
    end_users_are_bound_to_their_deployment,
    verified_end_users_are_one_per_subject_and_deployment,
    a_session_round_trips_every_field,
    append_numbers_consecutively_and_dedupes_by_identifier,
    append_applies_status_and_agent,
    entries_page_takes_the_newest_or_oldest_within_bounds,
    a_rolled_back_savepoint_leaves_nothing,
    a_group_commits_or_rolls_back_as_one,
    routing_bot_and_lifecycle_marks_reach_the_figures,
    idle_sessions_are_active_assigned_and_quiet,
    retention_deletes_in_batches_and_keeps_end_users_in_use,
    auto_response_parameters_survive_set_context,
    read_marks_only_rise,
    the_schema_is_migrated_once_and_reopened,
);

fn conversation() -> ConversationId {
    ConversationId(uuid::Uuid::new_v4())
}

fn end_user(store: &mut dyn Store) -> EndUserId {
    let id = EndUserId(uuid::Uuid::new_v4());
    let credential: [u8; 32] = rand::random();
    store
        .create_end_user(id, &credential, ORG, DEPLOYMENT)
        .expect("end user");
    id
}

/// A new session of a new end user.
fn session(store: &mut dyn Store) -> ConversationId {
    let user = end_user(store);
    session_of(store, user, DEPLOYMENT)
}

fn session_of(store: &mut dyn Store, user: EndUserId, deployment: &str) -> ConversationId {
    let id = conversation();
    store
        .create_session(&Session::new(id, user, ORG, deployment))
        .expect("session");
    id
}

fn visitor() -> Participant {
    Participant {
        role: Role::EndUser,
        subject: "visitor".into(),
    }
}

fn text(words: &str) -> NewEntry {
    let identifier = EntryId(uuid::Uuid::new_v4());
    NewEntry {
        identifier,
        sender: visitor(),
        sender_display_name: "Guest".into(),
        client_timestamp: Some(START - 5),
        payload: EntryPayload::text(identifier, words),
    }
}

fn stored(appended: Appended) -> Vec<ConversationEntry> {
    match appended {
        Appended::Stored(entries) => entries,
        Appended::Duplicate { seq } => panic!("unexpected duplicate of seq {seq}"),
    }
}

fn seqs(entries: &[ConversationEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

/// Appends `n` text entries one by one.
fn append_texts(store: &mut dyn Store, id: ConversationId, n: usize) {
    for i in 0..n {
        stored(
            store
                .append(id, vec![text(&format!("m{i}"))], Update::default())
                .expect("append"),
        );
    }
}

fn end_users_are_bound_to_their_deployment(b: &Backend) {
    // A credential finds its end user only in the deployment that issued it; an end user from
    // before that binding is bound to the first deployment it comes back to.
    let mut store = b.store();
    let store = store.as_mut();
    let id = EndUserId(uuid::Uuid::new_v4());
    store
        .create_end_user(id, &[1; 32], ORG, DEPLOYMENT)
        .expect("create");
    assert_eq!(
        store
            .end_user_by_credential(&[1; 32], ORG, DEPLOYMENT)
            .unwrap(),
        Some(id)
    );
    assert_eq!(
        store
            .end_user_by_credential(&[1; 32], ORG, "Other")
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .end_user_by_credential(&[1; 32], "OtherOrg", DEPLOYMENT)
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .end_user_by_credential(&[2; 32], ORG, DEPLOYMENT)
            .unwrap(),
        None
    );

    let legacy = EndUserId(uuid::Uuid::new_v4());
    b.legacy_end_user(legacy, &[3; 32]);
    assert_eq!(
        store
            .end_user_by_credential(&[3; 32], ORG, "Other")
            .unwrap(),
        Some(legacy),
        "bound to the first deployment it returns to"
    );
    assert_eq!(
        store
            .end_user_by_credential(&[3; 32], ORG, DEPLOYMENT)
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .end_user_by_credential(&[3; 32], ORG, "Other")
            .unwrap(),
        Some(legacy)
    );

    // Open conversations are counted; ended ones are not.
    let first = session_of(store, id, DEPLOYMENT);
    session_of(store, id, DEPLOYMENT);
    assert_eq!(store.open_conversation_count(id).unwrap(), 2);
    stored(
        store
            .append(
                first,
                vec![],
                Update {
                    status: Some(SessionStatus::Ended),
                    agent: None,
                },
            )
            .unwrap(),
    );
    assert_eq!(store.open_conversation_count(id).unwrap(), 1);
}

fn verified_end_users_are_one_per_subject_and_deployment(b: &Backend) {
    // A verified subject is one end user per deployment, created on first sight, and its
    // newest open conversation is found; the session shows the proven subject.
    let mut store = b.store();
    let store = store.as_mut();
    let ann = store.verified_end_user(ORG, DEPLOYMENT, "ann").unwrap();
    assert_eq!(
        store.verified_end_user(ORG, DEPLOYMENT, "ann").unwrap(),
        ann
    );
    let elsewhere = store.verified_end_user(ORG, "Other", "ann").unwrap();
    let bob = store.verified_end_user(ORG, DEPLOYMENT, "bob").unwrap();
    assert_ne!(ann, elsewhere);
    assert_ne!(ann, bob);

    assert_eq!(store.open_conversation(ann, ORG, DEPLOYMENT).unwrap(), None);
    let older = session_of(store, ann, DEPLOYMENT);
    b.clock.advance_secs(1);
    let newer = session_of(store, ann, DEPLOYMENT);
    session_of(store, ann, "Other");
    assert_eq!(
        store.open_conversation(ann, ORG, DEPLOYMENT).unwrap(),
        Some(newer)
    );
    stored(
        store
            .append(
                newer,
                vec![],
                Update {
                    status: Some(SessionStatus::Ended),
                    agent: None,
                },
            )
            .unwrap(),
    );
    assert_eq!(
        store.open_conversation(ann, ORG, DEPLOYMENT).unwrap(),
        Some(older)
    );
    let s = store.session(older).unwrap().expect("session");
    assert_eq!(s.context.verified_subject.as_deref(), Some("ann"));
}

fn a_session_round_trips_every_field(b: &Backend) {
    // Every field of a session comes back as written: route, skills, context (with a NUL
    // character a visitor may send), the bot's state, status, agent, seq and times.
    let mut store = b.store();
    let store = store.as_mut();
    let user = end_user(store);
    let id = conversation();
    let new = Session::new(id, user, ORG, DEPLOYMENT);
    store.create_session(&new).unwrap();
    assert_eq!(
        store.session(id).unwrap(),
        Some(Session {
            updated_at: START,
            ..new.clone()
        })
    );
    assert_eq!(store.session(conversation()).unwrap(), None);

    let context = ConversationContext {
        prechat_fields: BTreeMap::from([("name".into(), "Zoë \u{0} \"quoted\"".into())]),
        hidden_fields: BTreeMap::from([("plan".into(), "gold".into())]),
        page: Some(PageContext {
            url: "https://example.com/shop".into(),
            title: "Shop".into(),
        }),
        variables: BTreeMap::from([("orderNumber".into(), "42".into())]),
        session_context: BTreeMap::from([("cart".into(), "3".into())]),
        // Never taken from the stored context: the end user has no subject.
        verified_subject: Some("forged".into()),
    };
    store.set_context(id, &context).unwrap();
    store
        .set_route(
            id,
            &Route {
                queue: "billing".into(),
                priority: -3,
                skills: vec!["fr".into(), "vip".into()],
            },
        )
        .unwrap();
    store.set_bot(id, "{\"step\":2}", true, false).unwrap();
    b.clock.advance_secs(2);
    let appended = stored(
        store
            .append(
                id,
                vec![text("hello \u{0} there")],
                Update {
                    status: Some(SessionStatus::Active),
                    agent: Some(Some("ann".into())),
                },
            )
            .unwrap(),
    );
    assert_eq!(seqs(&appended), [1]);
    assert_eq!(
        store.session(id).unwrap(),
        Some(Session {
            status: SessionStatus::Active,
            agent_username: Some("ann".into()),
            last_seq: 1,
            queue: "billing".into(),
            priority: -3,
            skills: vec!["fr".into(), "vip".into()],
            context: ConversationContext {
                verified_subject: None,
                ..context
            },
            bot_state: Some("{\"step\":2}".into()),
            updated_at: START + 2000,
            ..new
        })
    );
    assert_eq!(store.entries_after(id, 0).unwrap(), appended);

    // sessions_with_status: oldest activity first.
    let later = session(store);
    stored(
        store
            .append(
                later,
                vec![],
                Update {
                    status: Some(SessionStatus::Active),
                    agent: None,
                },
            )
            .unwrap(),
    );
    b.clock.advance_secs(1);
    let quiet = session(store);
    stored(
        store
            .append(
                quiet,
                vec![],
                Update {
                    status: Some(SessionStatus::Active),
                    agent: None,
                },
            )
            .unwrap(),
    );
    store.set_updated_at(quiet, START).unwrap();
    let active: Vec<ConversationId> = store
        .sessions_with_status(SessionStatus::Active)
        .unwrap()
        .into_iter()
        .map(|s| s.conversation_id)
        .collect();
    assert_eq!(active, [quiet, id, later]);
    assert!(
        store
            .sessions_with_status(SessionStatus::Waiting)
            .unwrap()
            .is_empty()
    );
}

fn append_numbers_consecutively_and_dedupes_by_identifier(b: &Backend) {
    // Seqs run 1, 2, 3… across appends; a resent first identifier returns the stored seq and
    // writes nothing (not the entry, not the session's time or status).
    let mut store = b.store();
    let store = store.as_mut();
    let id = session(store);
    let (a, bb, c) = (text("a"), text("b"), text("c"));
    let first = stored(
        store
            .append(id, vec![a.clone()], Update::default())
            .unwrap(),
    );
    assert_eq!(seqs(&first), [1]);
    assert_eq!(first[0].transcripted_timestamp, START);
    assert_eq!(first[0].client_timestamp, Some(START - 5));
    let more = stored(
        store
            .append(id, vec![bb.clone(), c.clone()], Update::default())
            .unwrap(),
    );
    assert_eq!(seqs(&more), [2, 3]);

    b.clock.advance_secs(5);
    for resent in [&a, &bb] {
        match store
            .append(
                id,
                vec![resent.clone(), text("never stored")],
                Update {
                    status: Some(SessionStatus::Ended),
                    agent: None,
                },
            )
            .unwrap()
        {
            Appended::Duplicate { seq } => {
                assert_eq!(Some(seq), store.seq_of(id, resent.identifier).unwrap())
            }
            Appended::Stored(e) => panic!("stored a resent entry again: {e:?}"),
        }
    }
    assert_eq!(store.seq_of(id, a.identifier).unwrap(), Some(1));
    assert_eq!(store.seq_of(id, c.identifier).unwrap(), Some(3));
    assert_eq!(
        store.seq_of(id, EntryId(uuid::Uuid::new_v4())).unwrap(),
        None
    );
    let s = store.session(id).unwrap().unwrap();
    assert_eq!(
        (s.last_seq, s.updated_at, s.status),
        (3, START, SessionStatus::New)
    );
    let all = store.entries_after(id, 0).unwrap();
    assert_eq!(seqs(&all), [1, 2, 3]);
    assert_eq!(all[..1], first[..]);
    assert_eq!(all[1..], more[..]);
    assert_eq!(seqs(&store.entries_after(id, 2).unwrap()), [3]);
    assert!(
        store
            .entries_after(id, u64::from(u32::MAX))
            .unwrap()
            .is_empty()
    );

    // An identifier is unique per conversation, not across conversations.
    let other = session(store);
    assert_eq!(
        seqs(&stored(
            store.append(other, vec![a], Update::default()).unwrap()
        )),
        [1]
    );
    // Appending to a conversation that does not exist fails.
    assert!(
        store
            .append(conversation(), vec![text("x")], Update::default())
            .is_err()
    );
}

fn append_applies_status_and_agent(b: &Backend) {
    // An append's update sets status and agent; `Some(None)` clears the agent and `None`
    // leaves it.
    let mut store = b.store();
    let store = store.as_mut();
    let id = session(store);
    let update = |status, agent| Update { status, agent };
    store
        .append(
            id,
            vec![text("a")],
            update(Some(SessionStatus::Waiting), None),
        )
        .unwrap();
    let s = store.session(id).unwrap().unwrap();
    assert_eq!((s.status, s.agent_username), (SessionStatus::Waiting, None));
    store
        .append(
            id,
            vec![],
            update(Some(SessionStatus::Active), Some(Some("ann".into()))),
        )
        .unwrap();
    store
        .append(id, vec![text("b")], update(None, None))
        .unwrap();
    let s = store.session(id).unwrap().unwrap();
    assert_eq!(
        (s.status, s.agent_username.as_deref(), s.last_seq),
        (SessionStatus::Active, Some("ann"), 2)
    );
    store
        .append(id, vec![], update(Some(SessionStatus::Waiting), Some(None)))
        .unwrap();
    let s = store.session(id).unwrap().unwrap();
    assert_eq!((s.status, s.agent_username), (SessionStatus::Waiting, None));
}

fn entries_page_takes_the_newest_or_oldest_within_bounds(b: &Backend) {
    // A page holds at most `limit` entries strictly between `after` and `before`, oldest
    // first: the first ones, or the last ones with `newest`; bounds beyond any seq (even past
    // i64) mean no bound.
    let mut store = b.store();
    let store = store.as_mut();
    let id = session(store);
    append_texts(store, id, 10);
    let page = |store: &mut dyn Store, after, before, limit, newest| {
        seqs(
            &store
                .entries_page(id, after, before, limit, newest)
                .unwrap(),
        )
    };
    assert_eq!(page(store, 0, u64::MAX, 3, true), [8, 9, 10]);
    assert_eq!(page(store, 0, u64::MAX, 3, false), [1, 2, 3]);
    assert_eq!(page(store, 2, 6, 10, false), [3, 4, 5]);
    assert_eq!(page(store, 2, 6, 2, true), [4, 5]);
    assert_eq!(page(store, 0, 8, 3, true), [5, 6, 7]);
    assert_eq!(page(store, 8, u64::MAX, 100, false), [9, 10]);
    assert_eq!(page(store, 0, 1, 5, true), Vec::<u64>::new());
    assert_eq!(page(store, u64::MAX, u64::MAX, 5, false), Vec::<u64>::new());
    assert_eq!(page(store, 0, u64::MAX, usize::MAX, false).len(), 10);
    assert_eq!(page(store, 0, u64::MAX, 0, true), Vec::<u64>::new());
    let entries = store.entries_page(id, 0, 3, 5, false).unwrap();
    assert_eq!(entries, store.entries_after(id, 0).unwrap()[..2]);
}

fn a_rolled_back_savepoint_leaves_nothing(b: &Backend) {
    // A job rolled back to its savepoint leaves nothing (its entries, its seqs, its session
    // changes), and the group's other jobs commit around it.
    let mut store = b.store();
    let store = store.as_mut();
    let id = session(store);
    let kept = text("kept");
    store.begin().unwrap();
    store.savepoint().unwrap();
    store
        .append(id, vec![text("first")], Update::default())
        .unwrap();
    store.release().unwrap();
    store.savepoint().unwrap();
    let gone = text("gone");
    store
        .append(
            id,
            vec![gone.clone()],
            Update {
                status: Some(SessionStatus::Ended),
                agent: Some(Some("ann".into())),
            },
        )
        .unwrap();
    store.mark_ended(id).unwrap();
    store
        .set_auto_response_parameters(id, &BTreeMap::from([("k".into(), "v".into())]))
        .unwrap();
    store.rollback_to().unwrap();
    // A statement the database refuses (a credential stored twice) fails only its job: the
    // savepoint is rolled back with the job's other writes, and the group goes on.
    store.savepoint().unwrap();
    store
        .create_end_user(EndUserId(uuid::Uuid::new_v4()), &[9; 32], ORG, DEPLOYMENT)
        .unwrap();
    assert!(
        store
            .create_end_user(EndUserId(uuid::Uuid::new_v4()), &[9; 32], ORG, DEPLOYMENT)
            .is_err()
    );
    store.rollback_to().unwrap();
    store.savepoint().unwrap();
    store
        .append(id, vec![kept.clone()], Update::default())
        .unwrap();
    store.release().unwrap();
    store.commit().unwrap();

    let mut other = b.store();
    let entries = other.entries_after(id, 0).unwrap();
    assert_eq!(seqs(&entries), [1, 2]);
    assert_eq!(entries[1].identifier, kept.identifier);
    assert_eq!(other.seq_of(id, gone.identifier).unwrap(), None);
    let s = other.session(id).unwrap().unwrap();
    assert_eq!(
        (s.status, s.agent_username, s.last_seq),
        (SessionStatus::New, None, 2)
    );
    assert!(other.auto_response_parameters(id).unwrap().is_empty());
    assert_eq!(
        other
            .end_user_by_credential(&[9; 32], ORG, DEPLOYMENT)
            .unwrap(),
        None
    );
}

fn a_group_commits_or_rolls_back_as_one(b: &Backend) {
    // Another connection sees a group's jobs only once it commits, all of them; a group
    // rolled back leaves nothing.
    let mut store = b.store();
    let mut other = b.store();
    let mut figures = b.figures();
    let id = session(store.as_mut());
    store.begin().unwrap();
    for words in ["a", "b"] {
        store.savepoint().unwrap();
        store
            .append(id, vec![text(words)], Update::default())
            .unwrap();
        store.release().unwrap();
    }
    let created = {
        store.savepoint().unwrap();
        let created = session(store.as_mut());
        store.release().unwrap();
        created
    };
    assert!(other.entries_after(id, 0).unwrap().is_empty());
    assert_eq!(other.session(created).unwrap(), None);
    store.commit().unwrap();
    assert_eq!(seqs(&other.entries_after(id, 0).unwrap()), [1, 2]);
    assert!(other.session(created).unwrap().is_some());
    assert_eq!(figures.session_totals().unwrap().conversations, 2);

    store.begin().unwrap();
    store.savepoint().unwrap();
    store
        .append(id, vec![text("c")], Update::default())
        .unwrap();
    let dropped = session(store.as_mut());
    store.release().unwrap();
    store.rollback();
    // Rolling back with no transaction open does nothing.
    store.rollback();
    assert_eq!(seqs(&other.entries_after(id, 0).unwrap()), [1, 2]);
    assert_eq!(other.session(dropped).unwrap(), None);
    assert_eq!(store.session(id).unwrap().unwrap().last_seq, 2);
    // And the store goes on with the next group.
    store.begin().unwrap();
    store
        .append(id, vec![text("d")], Update::default())
        .unwrap();
    store.commit().unwrap();
    assert_eq!(seqs(&other.entries_after(id, 0).unwrap()), [1, 2, 3]);
}

fn routing_bot_and_lifecycle_marks_reach_the_figures(b: &Backend) {
    // Routing, assignments, transfers, the bot's answers and handoff, first response and end
    // are each recorded once, and the figures and their totals add them up.
    let mut store = b.store();
    let store = store.as_mut();
    let route = |queue: &str| Route {
        queue: queue.into(),
        priority: 0,
        skills: vec![],
    };

    // Deflected: the bot answered and it never went to routing.
    let deflected = session(store);
    store.set_bot(deflected, "s1", true, false).unwrap();
    store.set_bot(deflected, "s2", true, false).unwrap();

    // Handed off by the bot, waited 10 s, answered after 15 s, transferred, ended at 40 s.
    let handled = session(store);
    store.set_bot(handled, "s", false, true).unwrap();
    store.set_route(handled, &route("sales")).unwrap();
    b.clock.advance_secs(5);
    store.set_route(handled, &route("sales")).unwrap(); // keeps the first waiting time
    b.clock.advance_secs(5);
    store.assignment_start(handled, "ann", "sales").unwrap();
    b.clock.advance_secs(5);
    store.mark_first_response(handled).unwrap();
    b.clock.advance_secs(5);
    store.mark_first_response(handled).unwrap(); // the first one counts
    store.assignment_end(handled, "ann", true).unwrap();
    store.assignment_start(handled, "bob", "billing").unwrap();
    b.clock.advance_secs(20);
    store.assignment_end(handled, "bob", false).unwrap();
    store.mark_ended(handled).unwrap();
    b.clock.advance_secs(5);
    store.mark_ended(handled).unwrap();

    // Still waiting.
    let waiting = session(store);
    store.set_route(waiting, &route("sales")).unwrap();

    let mut figures = b.figures();
    let sessions = figures.session_figures().unwrap();
    let ids: Vec<String> = sessions.iter().map(|s| s.conversation_id.clone()).collect();
    assert_eq!(
        ids,
        [deflected, handled, waiting].map(|id| id.to_string()),
        "oldest first"
    );
    let d = &sessions[0];
    assert!(d.bot && !d.handed_off && d.waiting_at.is_none());
    assert_eq!(
        (d.bot_answers, d.queue.as_str(), d.status.as_str()),
        (2, "", "New")
    );
    let h = &sessions[1];
    assert!(h.bot && h.handed_off);
    assert_eq!(h.deployment_name, DEPLOYMENT);
    assert_eq!(h.queue, "billing", "the queue of the latest assignment");
    assert_eq!(h.agent, None);
    assert_eq!(h.waiting_at, Some(START));
    assert_eq!(h.first_assigned_at, Some(START + 10_000));
    assert_eq!(h.first_response_at, Some(START + 15_000));
    assert_eq!(h.ended_at, Some(START + 40_000));
    assert_eq!(h.transfers, 1);
    assert!(!sessions[2].bot);

    let assignments = figures.assignment_figures().unwrap();
    let rows: Vec<(&str, &str, i64, Option<i64>)> = assignments
        .iter()
        .map(|a| {
            (
                a.agent.as_str(),
                a.queue.as_str(),
                a.assigned_at,
                a.released_at,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("ann", "sales", START + 10_000, Some(START + 20_000)),
            ("bob", "billing", START + 20_000, Some(START + 40_000)),
        ]
    );

    let t = figures.session_totals().unwrap();
    assert_eq!(
        (
            t.conversations,
            t.with_bot,
            t.deflected,
            t.handed_off,
            t.assigned,
            t.ended,
            t.transfers
        ),
        (3, 2, 1, 1, 1, 1, 1)
    );
    assert_eq!(t.wait, (10_000, 1));
    assert_eq!(t.first_response, (15_000, 1));
    assert_eq!(t.handle, (30_000, 1));

    let (mut queues, mut agents) = figures.group_totals().unwrap();
    queues.sort();
    agents.sort();
    assert_eq!(
        queues,
        [
            ("billing".to_string(), 1, 1, 20_000),
            ("sales".to_string(), 1, 1, 10_000)
        ]
    );
    assert_eq!(
        agents,
        [
            ("ann".to_string(), 1, 1, 10_000),
            ("bob".to_string(), 1, 1, 20_000)
        ]
    );
}

fn idle_sessions_are_active_assigned_and_quiet(b: &Backend) {
    // Idle: active, with an agent, nothing appended since the cut-off; oldest first.
    let mut store = b.store();
    let store = store.as_mut();
    let active = |store: &mut dyn Store, agent: Option<&str>| {
        let id = session(store);
        store
            .append(
                id,
                vec![text("hi")],
                Update {
                    status: Some(SessionStatus::Active),
                    agent: Some(agent.map(str::to_string)),
                },
            )
            .unwrap();
        id
    };
    let older = active(store, Some("ann"));
    b.clock.advance_secs(1);
    let newer = active(store, Some("bob"));
    let unassigned = active(store, None);
    let waiting = session(store);
    store
        .append(
            waiting,
            vec![],
            Update {
                status: Some(SessionStatus::Waiting),
                agent: Some(Some("ann".into())),
            },
        )
        .unwrap();
    b.clock.advance_secs(60);
    let recent = active(store, Some("ann"));
    let idle = |store: &mut dyn Store, before| -> Vec<ConversationId> {
        store
            .idle_sessions(before)
            .unwrap()
            .into_iter()
            .map(|s| s.conversation_id)
            .collect()
    };
    assert_eq!(idle(store, START + 1000), [older, newer]);
    assert_eq!(idle(store, START + 999), [older]);
    assert_eq!(idle(store, START - 1), Vec::<ConversationId>::new());
    assert_eq!(idle(store, START + 61_000), [older, newer, recent]);
    let _ = unassigned;
}

fn retention_deletes_in_batches_and_keeps_end_users_in_use(b: &Backend) {
    // Conversations of the deployment that ended before the cut-off go, at most `limit` per
    // call, with their entries and assignments; their end users go only when they have no
    // conversation left; end users without any conversation yet and other deployments stay.
    let mut store = b.store();
    let store = store.as_mut();
    let end = |store: &mut dyn Store, id| {
        store
            .append(
                id,
                vec![text("bye")],
                Update {
                    status: Some(SessionStatus::Ended),
                    agent: Some(None),
                },
            )
            .unwrap();
        store.mark_ended(id).unwrap();
    };
    let (gone_user, kept_user) = (
        EndUserId(uuid::Uuid::new_v4()),
        EndUserId(uuid::Uuid::new_v4()),
    );
    store
        .create_end_user(gone_user, &[1; 32], ORG, DEPLOYMENT)
        .unwrap();
    store
        .create_end_user(kept_user, &[2; 32], ORG, DEPLOYMENT)
        .unwrap();
    store
        .create_end_user(EndUserId(uuid::Uuid::new_v4()), &[3; 32], ORG, DEPLOYMENT)
        .unwrap();
    let mut ended = Vec::new();
    for user in [gone_user, gone_user, kept_user] {
        let id = session_of(store, user, DEPLOYMENT);
        store.assignment_start(id, "ann", "sales").unwrap();
        store.assignment_end(id, "ann", false).unwrap();
        end(store, id);
        ended.push(id);
    }
    let open = session_of(store, kept_user, DEPLOYMENT);
    let elsewhere_user = end_user(store);
    let elsewhere = session_of(store, elsewhere_user, "Other");
    end(store, elsewhere);
    b.clock.advance_secs(10);
    let late = session(store);
    end(store, late);

    let cut = START + 5_000;
    assert_eq!(
        store.delete_ended_before(ORG, DEPLOYMENT, cut, 2).unwrap(),
        2
    );
    assert_eq!(
        store.delete_ended_before(ORG, DEPLOYMENT, cut, 2).unwrap(),
        1
    );
    assert_eq!(
        store.delete_ended_before(ORG, DEPLOYMENT, cut, 2).unwrap(),
        0
    );
    for id in &ended {
        assert_eq!(store.session(*id).unwrap(), None);
        assert!(store.entries_after(*id, 0).unwrap().is_empty());
    }
    assert_eq!(
        store
            .end_user_by_credential(&[1; 32], ORG, DEPLOYMENT)
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .end_user_by_credential(&[2; 32], ORG, DEPLOYMENT)
            .unwrap(),
        Some(kept_user)
    );
    assert!(
        store
            .end_user_by_credential(&[3; 32], ORG, DEPLOYMENT)
            .unwrap()
            .is_some()
    );
    for id in [open, elsewhere, late] {
        assert!(store.session(id).unwrap().is_some());
    }
    assert_eq!(seqs(&store.entries_after(elsewhere, 0).unwrap()), [1]);
    let mut figures = b.figures();
    assert!(figures.assignment_figures().unwrap().is_empty());
    assert_eq!(figures.session_totals().unwrap().conversations, 3);
}

fn auto_response_parameters_survive_set_context(b: &Backend) {
    // The auto-response parameters stay when the context is replaced, and are replaced only by
    // their own setter; an unknown conversation has none.
    let mut store = b.store();
    let store = store.as_mut();
    let id = session(store);
    assert!(store.auto_response_parameters(id).unwrap().is_empty());
    assert!(
        store
            .auto_response_parameters(conversation())
            .unwrap()
            .is_empty()
    );
    let params = BTreeMap::from([
        ("orderNumber".to_string(), "42".to_string()),
        ("nul".to_string(), "a\u{0}b".to_string()),
    ]);
    store.set_auto_response_parameters(id, &params).unwrap();
    let context = ConversationContext {
        hidden_fields: BTreeMap::from([("plan".into(), "gold".into())]),
        ..ConversationContext::default()
    };
    store.set_context(id, &context).unwrap();
    store
        .set_context(id, &ConversationContext::default())
        .unwrap();
    store.set_context(id, &context).unwrap();
    assert_eq!(store.auto_response_parameters(id).unwrap(), params);
    assert_eq!(store.session(id).unwrap().unwrap().context, context);
    let fewer = BTreeMap::from([("orderNumber".to_string(), "43".to_string())]);
    store.set_auto_response_parameters(id, &fewer).unwrap();
    assert_eq!(store.auto_response_parameters(id).unwrap(), fewer);
    assert_eq!(store.session(id).unwrap().unwrap().context, context);
}

fn read_marks_only_rise(b: &Backend) {
    // A conversation's read mark starts at 0, rises, never falls, and outlives the
    // connection; an unknown conversation reads 0.
    let id = {
        let mut store = b.store();
        let store = store.as_mut();
        let id = session(store);
        append_texts(store, id, 5);
        assert_eq!(store.read_seq(id).unwrap(), 0);
        assert!(store.raise_read(id, 3).unwrap());
        assert!(!store.raise_read(id, 3).unwrap());
        assert!(!store.raise_read(id, 2).unwrap());
        assert_eq!(store.read_seq(id).unwrap(), 3);
        assert!(store.raise_read(id, 5).unwrap());
        assert!(!store.raise_read(conversation(), 1).unwrap());
        id
    };
    let mut store = b.store();
    assert_eq!(store.read_seq(id).unwrap(), 5);
    assert_eq!(store.read_seq(conversation()).unwrap(), 0);
}

fn the_schema_is_migrated_once_and_reopened(b: &Backend) {
    // Opening an existing database again keeps its data, and `now` is the injected clock.
    let id = {
        let mut store = b.store();
        let id = session(store.as_mut());
        append_texts(store.as_mut(), id, 2);
        id
    };
    b.clock.advance_secs(7);
    let mut store = b.store();
    assert_eq!(store.now(), START + 7000);
    assert_eq!(store.session(id).unwrap().unwrap().last_seq, 2);
    append_texts(store.as_mut(), id, 1);
    assert_eq!(seqs(&store.entries_after(id, 0).unwrap()), [1, 2, 3]);
}

// What only a database shared by several nodes must guarantee.

/// One append per group, as a node's store thread runs it.
fn append_in_group(store: &mut dyn Store, id: ConversationId, entries: Vec<NewEntry>) -> Appended {
    try_append_in_group(store, id, entries).expect("append in a group")
}

/// The same, failing as a value: a writer thread that panicked would leave the other one
/// waiting at the barrier for ever, so writers keep going and the test checks afterwards.
fn try_append_in_group(
    store: &mut dyn Store,
    id: ConversationId,
    entries: Vec<NewEntry>,
) -> Result<Appended, Error> {
    store.begin()?;
    let appended = store.savepoint().and_then(|()| {
        let appended = store.append(id, entries, Update::default())?;
        store.release()?;
        Ok(appended)
    });
    match appended {
        Ok(appended) => store.commit().map(|()| appended),
        Err(e) => {
            store.rollback();
            Err(e)
        }
    }
}

#[test]
fn postgres_two_writers_on_one_conversation_leave_no_gap_and_no_twin() {
    // Two stores (two nodes) appending to one conversation at once, each in its own
    // transactions, round after round: the seqs are exactly 1..=n, each once.
    const ROUNDS: usize = 150;
    let b = Backend::postgres();
    let id = session(b.store().as_mut());
    let start = Arc::new(Barrier::new(2));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let mut store = b.store();
            let start = start.clone();
            std::thread::spawn(move || {
                (0..ROUNDS)
                    .map(|round| {
                        start.wait();
                        // One or two entries, so the writers' allocations interleave unevenly.
                        let entries: Vec<NewEntry> =
                            (0..1 + (round + w) % 2).map(|_| text("race")).collect();
                        try_append_in_group(store.as_mut(), id, entries)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer"))
        .flat_map(|appended| seqs(&stored(appended.expect("append"))))
        .collect();
    let total = all.len() as u64;
    assert_eq!(total, (ROUNDS * 3) as u64);
    all.sort_unstable();
    assert_eq!(all, (1..=total).collect::<Vec<_>>(), "no gap, no duplicate");
    let mut store = b.store();
    assert_eq!(seqs(&store.entries_after(id, 0).unwrap()), all);
    assert_eq!(store.session(id).unwrap().unwrap().last_seq, total);
}

#[test]
fn postgres_the_same_entry_through_two_writers_is_stored_once() {
    // The same identifier appended by two stores at once: one stores it, the other answers
    // `Duplicate` with that seq; every round, and the seqs stay gapless.
    const ROUNDS: usize = 100;
    let b = Backend::postgres();
    let id = session(b.store().as_mut());
    let entries: Arc<Vec<NewEntry>> = Arc::new((0..ROUNDS).map(|_| text("twice")).collect());
    let start = Arc::new(Barrier::new(2));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let mut store = b.store();
            let (start, entries) = (start.clone(), entries.clone());
            std::thread::spawn(move || {
                entries
                    .iter()
                    .map(|entry| {
                        start.wait();
                        try_append_in_group(store.as_mut(), id, vec![entry.clone()])
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<Vec<Appended>> = writers
        .into_iter()
        .map(|w| {
            w.join()
                .expect("writer")
                .into_iter()
                .collect::<Result<_, _>>()
                .expect("append")
        })
        .collect();
    let mut store = b.store();
    for (round, entry) in entries.iter().enumerate() {
        let stored_seq = store.seq_of(id, entry.identifier).unwrap().expect("stored");
        let outcomes = [&results[0][round], &results[1][round]];
        let stored_by: Vec<u64> = outcomes
            .iter()
            .filter_map(|a| match a {
                Appended::Stored(e) => Some(e[0].seq),
                Appended::Duplicate { .. } => None,
            })
            .collect();
        let duplicates: Vec<u64> = outcomes
            .iter()
            .filter_map(|a| match a {
                Appended::Duplicate { seq } => Some(*seq),
                Appended::Stored(_) => None,
            })
            .collect();
        assert_eq!(stored_by, [stored_seq], "round {round}: stored once");
        assert_eq!(
            duplicates,
            [stored_seq],
            "round {round}: the other is told its seq"
        );
    }
    let all = seqs(&store.entries_after(id, 0).unwrap());
    assert_eq!(all, (1..=ROUNDS as u64).collect::<Vec<_>>());
}

#[test]
fn postgres_nodes_starting_at_once_migrate_once() {
    // Several nodes opening a fresh database at the same moment: one migrates, the others
    // wait on the lock and find the schema done; all of them then work.
    let b = Backend::postgres();
    let start = Arc::new(Barrier::new(4));
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let (db, clock, start) = (b.db.clone(), b.clock(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut store = db.open(clock).expect("open");
                session(store.as_mut())
            })
        })
        .collect();
    let ids: Vec<ConversationId> = nodes.into_iter().map(|n| n.join().expect("node")).collect();
    let mut store = b.store();
    for id in ids {
        assert!(store.session(id).unwrap().is_some());
    }
}

#[test]
fn postgres_a_newer_schema_is_refused() {
    // A database migrated by a newer server is not touched by this one.
    let b = Backend::postgres();
    drop(b.store());
    let Database::Postgres(url) = &b.db else {
        unreachable!()
    };
    let mut client = support::postgres::connect(url).expect("connect");
    client
        .execute("UPDATE em_schema SET version = version + 1", &[])
        .expect("bump");
    match b.db.open(b.clock()) {
        Err(Error::Corrupt(message)) => assert!(message.contains("newer"), "{message}"),
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("opened a newer schema"),
    }
}

#[test]
fn postgres_an_unreachable_database_is_one_line_without_the_password() {
    // A server nobody listens at: opening fails at once with one line naming the database,
    // never its password; the database's name as printed hides it too.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let db = Database::Postgres(format!("postgres://em:s3cret@127.0.0.1:{port}/em"));
    assert_eq!(db.to_string(), format!("postgres://em@127.0.0.1:{port}/em"));
    let error = match db.open(ManualClock::new(START)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("connected to nothing"),
    };
    assert!(
        error.starts_with(&format!(
            "cannot open database postgres://em@127.0.0.1:{port}/em: "
        )),
        "{error}"
    );
    assert!(error.contains("refused"), "{error}");
    assert!(
        !error.contains("s3cret") && !error.contains('\n'),
        "{error}"
    );
    let invalid = Database::Postgres("postgres://em:s3cret@127.0.0.1:notaport/em".into());
    assert!(!invalid.to_string().contains("s3cret"));
    assert!(invalid.open(ManualClock::new(START)).is_err());
}

#[test]
fn postgres_a_closed_connection_is_replaced_at_the_next_group() {
    // The server ends the store's connection (a PostgreSQL restart, a killed backend): the
    // call under way fails, and the next group runs on a new connection with nothing lost.
    let b = Backend::postgres();
    let mut store = b.store();
    let id = session(store.as_mut());
    append_texts(store.as_mut(), id, 1);
    let Database::Postgres(url) = &b.db else {
        unreachable!()
    };
    let mut admin = support::postgres::connect(url).expect("connect");
    let ended = admin
        .query(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .expect("terminate");
    // (With a timeout, `pg_terminate_backend` returns once the backend is gone.)
    assert_eq!(ended.len(), 1, "the store's one connection");
    assert!(store.session(id).is_err());
    assert_eq!(
        seqs(&stored(append_in_group(
            store.as_mut(),
            id,
            vec![text("after")]
        ))),
        [2]
    );
    assert_eq!(seqs(&store.entries_after(id, 0).unwrap()), [1, 2]);
}
