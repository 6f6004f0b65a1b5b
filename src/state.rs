//! The pure core: one `State`, the `Msg`s that change it and the `Effect`s it asks for.
//!
//! Nothing here touches the browser, so every transition is tested natively
//! (`cargo test -p embedded-messaging`). The runtime feeds `Msg`s in and carries out the
//! `Effect`s; the view reads the `State` (and drains its dirty list) to patch the DOM.

use em_protocol::visitor::{ToServer, ToVisitor};
use em_protocol::{
    AbstractMessage, Choices, ConversationEntry, ConversationId, EndUserId, EntryId, EntryPayload,
    ErrorCode, OptionItem, PROTOCOL_VERSION, Participant, ParticipantOperation, Role,
    SessionStatus, StaticContent,
};

mod context;
mod frames;
mod health;
mod hours;
mod identity;
mod lines;
mod outbox;
mod prechat;
mod tabs;

pub use context::{Context, ContextKind};
pub use hours::Hours;
pub use identity::check_token;
pub use prechat::{PRECHAT_API, Prechat, cat};

/// Shortest and longest reconnect delays (ms); the delay doubles in between.
pub const RETRY_MIN_MS: u32 = 500;
pub const RETRY_MAX_MS: u32 = 30_000;
/// How many of the newest lines are in the DOM; scrolling to the top shows this many more.
pub const HISTORY_PAGE: usize = 200;
/// How often a live socket sends `ping` (many proxies drop sockets idle for 60 s). A socket
/// that has not answered by the next tick is dead: noticed within two ticks (< 45 s).
pub const KEEPALIVE_MS: u32 = 20_000;

/// What the visitor sees of the chat window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WindowState {
    #[default]
    Closed,
    Maximized,
    Minimized,
}

/// The one localStorage record per org + deployment (`v` is 1; anything else is discarded).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Persisted {
    pub v: u32,
    pub end_user_id: Option<EndUserId>,
    pub credential: Option<String>,
    pub conversation_id: Option<ConversationId>,
    pub last_seq: u64,
    /// Highest `seq` the visitor has seen (window open, tab visible) in any tab: agent lines
    /// after it are unread, in every tab and after coming back hours later.
    pub read_seq: u64,
    pub window: WindowState,
}

/// A visitor message the server has not stored yet: the persisted outbox (`…:outbox`).
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub id: EntryId,
    pub text: String,
    /// Client time of writing (ms since the epoch).
    pub time: i64,
    /// Why the server refused it; `None` while it waits to be sent.
    pub failed: Option<String>,
}

/// Where the visitor socket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// No socket, none wanted yet (no conversation, window never opened).
    Offline,
    /// A socket is being opened.
    Connecting,
    /// Open; `hello` sent, waiting for `welcome`.
    Handshaking,
    /// Welcomed; `createConversation`/`resume` sent, waiting for `conversation`.
    Joining,
    /// The conversation is open: messages go straight out.
    Live,
    /// Closed; a retry is scheduled.
    Backoff,
}

/// What a rendered line holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// A chat bubble.
    Text(String),
    /// A small centred line: someone joined or left, the session ended.
    Notice(String),
}

/// Delivery of a line (only the visitor's own messages are ever pending or failed).
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    Pending,
    Sent,
    Failed(String),
}

impl Delivery {
    pub fn as_str(&self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Sent => "sent",
            Delivery::Failed(_) => "failed",
        }
    }
}

/// One line of the conversation as the view shows it, keyed by the entry id.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Unique per line in this page (0, 1, 2...): the view's index for its element.
    pub key: u32,
    pub id: EntryId,
    pub seq: Option<u64>,
    pub role: Role,
    pub sender_name: String,
    pub sender_subject: String,
    pub body: Body,
    /// Milliseconds since the epoch: server time once persisted, client time while pending.
    pub time: i64,
    pub client_time: Option<i64>,
    pub delivery: Delivery,
    sent_event_fired: bool,
    dirty: bool,
}

/// A window event to dispatch (the runtime names it and builds its `detail`).
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    ButtonClicked,
    WindowMaximized,
    WindowMinimized,
    WindowClosed,
    InitSuccess,
    ConversationStarted(ConversationId),
    ConversationOpened,
    MessageSent(ConversationEntry),
    ParticipantChanged(ConversationEntry),
    SessionStatusUpdate(ConversationEntry),
    ConversationClosed(ConversationEntry),
    ConversationRouted(ConversationEntry),
    FirstBotMessageSent,
    /// Ours: agent/bot messages not yet seen because the window was not open.
    UnreadCountChanged(u32),
    // Pre-chat form (state/prechat.rs).
    PrechatLoaded(em_protocol::PrechatDisplay),
    PrechatSubmitted(em_protocol::PrechatDisplay),
    /// `onEmbeddedMessagingReady` again, after `clearSession`.
    Ready,
    /// The server stored the visitor's message (`onEmbeddedMessageDelivered`).
    MessageDelivered(ConversationEntry),
    /// The agent read the visitor's message (`onEmbeddedMessageRead`).
    MessageRead(ConversationEntry),
    LinkClicked(ConversationEntry, String),
    IdentityTokenExpired,
    BusinessHoursStarted,
    BusinessHoursEnded,
}

/// Something that happened: a click, a frame, a timer.
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    /// The widget is mounted; restore what the stored record says.
    Booted,
    LauncherClicked,
    /// `utilAPI.launchChat()`.
    LaunchRequested,
    MinimizeClicked,
    RestoreClicked,
    CloseClicked,
    EscapePressed,
    /// The visitor submitted the composer; the edge supplies a fresh id and the clock.
    SendClicked {
        text: String,
        entry_id: EntryId,
        now: i64,
    },
    SocketOpened,
    SocketClosed,
    FrameReceived(ToVisitor),
    RetryTimerFired,
    /// The wait a `rate_limited` asked for is over.
    LimitPassed,
    ConversationIdGenerated(ConversationId),
    /// The visitor scrolled the transcript: to its latest line, or up to its oldest shown one.
    Scrolled {
        at_bottom: bool,
        at_top: bool,
    },
    /// The browser is about to paint: socket traffic since the last frame gets rendered.
    AnimationFrame,
    /// "Start a new conversation" after the session ended.
    NewConversationClicked,
    /// Every `KEEPALIVE_MS`: keeps idle proxies from closing a quiet socket.
    KeepAliveTick,
    /// Another tab of this site wrote the stored record.
    StoredRecordChanged(Persisted),
    /// `utilAPI.sendTextMessage(text)`: like the composer, but the composer is left alone.
    SendTextRequested {
        text: String,
        entry_id: EntryId,
        now: i64,
    },
    /// The visitor clicked a quick reply: sent as a message with its title as text.
    ChoiceClicked {
        title: String,
        entry_id: EntryId,
        now: i64,
    },
    /// `utilAPI.minimizeChat()`.
    MinimizeRequested,
    /// The visitor asked to send a failed message again.
    RetryClicked {
        entry_id: EntryId,
    },
    /// The browser is back online (`online` event): reconnect now instead of waiting.
    BrowserOnline,
    /// The browser went offline (`offline` event): messages wait in the outbox, not in a
    /// socket that may be dead without knowing it.
    BrowserOffline,
    /// Another tab of this site wrote the stored outbox.
    StoredOutboxChanged(Vec<Outgoing>),
    /// The page's tab was hidden or shown (`visibilitychange`).
    VisibilityChanged {
        hidden: bool,
    },
    /// Every second while the title blinks.
    BlinkTick,
    /// `utilAPI.showChatButton()` / `hideChatButton()` (refused by the runtime while the
    /// window shows).
    ButtonVisibilityRequested {
        hidden: bool,
    },
    /// `userVerificationAPI.setIdentityToken` with a token `check_token` accepted.
    IdentityTokenSet(String),
    /// `userVerificationAPI.clearSession(end)`.
    ClearSessionRequested {
        end: bool,
    },
    /// Another tab cleared the session (its stored record was removed).
    StoredRecordCleared,
    /// The visitor ended the conversation (header button).
    EndConversationClicked,
    /// The business-hours boundary `nextChangeAt` passed.
    BusinessHoursBoundary,
    /// The visitor started or stopped typing in the composer.
    Typing(bool),
    // Pre-chat form (state/prechat.rs).
    /// The visitor submitted the pre-chat form: one value per visible field, in order.
    PrechatSubmitted {
        values: Vec<String>,
    },
    /// `prechatAPI.setVisiblePrechatFields` / `unsetVisiblePrechatFields` (already checked);
    /// `locked`: those of `set` the visitor may not edit.
    PrechatPrefilled {
        set: Vec<(String, String)>,
        locked: Vec<String>,
        remove: Vec<String>,
    },
    /// The visitor clicked a link in a message (`onEmbeddedMessageLinkClicked`).
    LinkClicked {
        entry_id: EntryId,
        link: String,
    },
    /// The page or the pre-chat form set (and removed) context values; already validated.
    ContextChanged {
        kind: ContextKind,
        set: Vec<(String, String)>,
        remove: Vec<String>,
    },
    // One connection per browser (state/tabs.rs, src/link.js).
    /// The tab holding the shared connection changed: this one (`here`) or another.
    LeaderChanged {
        here: bool,
    },
}

/// Something to do: the runtime carries these out in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Open the visitor socket (dropping any old one).
    Connect,
    Send(ToServer),
    ScheduleRetry {
        delay_ms: u32,
    },
    /// Answer with `Msg::LimitPassed` after this long (a `rate_limited` wait).
    WaitForLimit {
        delay_ms: u32,
    },
    /// Write `State::persisted()` to storage (coalesced by the runtime).
    Persist,
    /// Write `State::outbox()` to storage (coalesced by the runtime).
    PersistOutbox,
    Emit(Event),
    /// Answer with `Msg::ConversationIdGenerated` carrying a fresh UUID v4.
    NewConversationId,
    FocusInput,
    FocusLauncher,
    FocusMinimized,
    ClearInput,
    /// Say this in the polite live region.
    Announce(String),
    /// A console warning (bad frame, failed message).
    Warn(String),
    /// Start (true) or stop the title blink (`BlinkTick` every second).
    Blink(bool),
    /// Pre-chat display `Session`: remember the submitted values (JSON) in sessionStorage.
    RememberPrechat(String),
    /// Send `setContext` with the whole `State::context` to this conversation.
    SendContext(ConversationId),
    /// Close the socket and stay offline (no retry).
    Disconnect,
    /// Remove the stored record and outbox (clearSession; other tabs follow).
    ClearStorage,
    /// clearSession: the shared connection speaks for the old visitor; renew it for every tab.
    ResetLink,
}

/// The whole widget state.
#[derive(Clone, Debug)]
pub struct State {
    pub window: WindowState,
    pub link: Link,
    /// The conversation was live at least once in this page: a drop shows "Reconnecting…".
    pub was_live: bool,
    pub attempt: u32,
    /// A heartbeat tick passed with no frame since (a second one means the socket is dead).
    heartbeat_pending: bool,
    /// xorshift state for the reconnect jitter (seeded by the edge).
    rng: u32,
    pub end_user_id: Option<EndUserId>,
    pub credential: Option<String>,
    pub conversation_id: Option<ConversationId>,
    pub session: Option<SessionStatus>,
    /// Display name of the agent or bot in the conversation, if one joined.
    pub agent: Option<String>,
    /// Ordered: sequenced lines by `seq`, then pending ones in the order they were written.
    pub items: Vec<Item>,
    /// Every `seq` handled in this page (rendered or deliberately not), sorted.
    /// (Sorted `Vec`s and short scans from the end instead of maps: lines nearly always
    /// arrive in order at the end, and B-trees cost ~15 KB of wasm.)
    seen: Vec<u64>,
    next_key: u32,
    /// Highest `seq` seen in this page (the next `resume` starts after the unbroken run
    /// below it, see `resume_after`).
    pub max_seq: u64,
    stored_seq: u64,
    /// Entries with `seq` above this are live (they fire events and are announced).
    live_after: u64,
    opened_fired: bool,
    welcomed_once: bool,
    first_bot_fired: bool,
    /// The quick replies of the latest `ChoicesMessage` and the key of its (text) line, until
    /// the visitor sends anything or a newer menu comes: only the latest menu is active.
    pub menu: Option<(u32, Vec<OptionItem>)>,
    /// Agent/bot messages after `read_seq` (not yet seen in any tab).
    pub unread: u32,
    pub read_seq: u64,
    /// The agent side read the conversation up to this `seq` (the visitor's lines up to it
    /// fired `MessageRead`).
    agent_read: u64,
    /// The transcript shows its latest line (new lines then scroll into view).
    pub at_bottom: bool,
    /// The launcher is hidden (`hideChatButtonOnLoad`, `utilAPI.hideChatButton()`).
    pub button_hidden: bool,
    /// The page's tab is hidden: agent messages count as unread and the title blinks.
    pub page_hidden: bool,
    /// The title blinks (tab hidden, unread messages) and currently shows the count.
    blinking: bool,
    /// This tab holds the browser's one connection: only it blinks (one notification).
    leader: bool,
    pub title_flash: bool,
    /// How many of the newest lines the view shows (older ones load on scrolling up).
    pub shown: usize,
    /// How many lines are marked `dirty` (changed since the view last rendered).
    dirty: usize,
    /// Bumped when lines are removed: the view then rebuilds the list.
    pub epoch: u32,
    agent_fallback_name: String,
    /// Sent with `setContext` whenever the conversation opens and when it changes.
    pub context: Context,
    /// The deployment's pre-chat form and whether it was filled (state/prechat.rs).
    pub prechat: Prechat,
    /// The deployment requires verified visitors (`auth: "verified"`).
    pub verified: bool,
    /// The page's identity token: memory only, never stored.
    identity_token: Option<String>,
    /// The server said the token expired; the next one goes out as `identify`.
    token_expired: bool,
    /// The deployment's business hours, if it has any.
    pub hours: Option<Hours>,
    /// The visitor is typing (as last told to the server).
    typing: bool,
    /// Who is typing on the other side (agent or bot display name).
    pub other_typing: Option<String>,
    /// Page settings the core needs (see `settings.rs`).
    pub inline: bool,
    /// Inline, and the window opens on load (not `disableInlineAutoLaunch`).
    pub inline_launch: bool,
    pub participant_lines: bool,
    pub input_with_bot: bool,
    /// The bot (not a person) leads the conversation now.
    pub bot_leads: bool,
    /// Place in the queue while waiting for an agent (1 = next).
    pub queue_position: Option<u32>,
    /// The credential of the visitor `clearSession` forgot: a late write of it by another
    /// tab is stale, not a visitor to adopt.
    forgotten: Option<String>,
    /// The server said `rate_limited` on this connection: frames wait for `LimitPassed`.
    throttled: bool,
    /// The running replay stops at this seq (one page); then resume again after it.
    replay_to: Option<u64>,
    /// A `history` (older entries, on scrolling up) is on its way.
    history_pending: bool,
}

impl State {
    /// A state restored from storage (`Persisted::default()` for a new visitor).
    pub fn new(stored: Persisted, agent_fallback_name: &str) -> State {
        let stored = if stored.v == 1 {
            stored
        } else {
            Persisted::default()
        };
        State {
            window: stored.window,
            link: Link::Offline,
            was_live: false,
            attempt: 0,
            heartbeat_pending: false,
            throttled: false,
            replay_to: None,
            history_pending: false,
            rng: 0x9E37_79B9,
            end_user_id: stored.end_user_id,
            credential: stored.credential,
            conversation_id: stored.conversation_id,
            session: None,
            agent: None,
            items: Vec::new(),
            seen: Vec::new(),
            next_key: 0,
            max_seq: 0,
            stored_seq: stored.last_seq,
            live_after: u64::MAX,
            opened_fired: false,
            welcomed_once: false,
            first_bot_fired: false,
            menu: None,
            unread: 0,
            read_seq: stored.read_seq,
            agent_read: 0,
            at_bottom: true,
            button_hidden: false,
            page_hidden: false,
            blinking: false,
            leader: true,
            title_flash: false,
            shown: HISTORY_PAGE,
            dirty: 0,
            epoch: 0,
            agent_fallback_name: agent_fallback_name.to_owned(),
            context: Context::default(),
            prechat: Prechat::default(),
            verified: false,
            identity_token: None,
            token_expired: false,
            hours: None,
            typing: false,
            other_typing: None,
            inline: false,
            inline_launch: false,
            participant_lines: true,
            input_with_bot: true,
            bot_leads: false,
            queue_position: None,
            forgotten: None,
        }
    }

    /// The record to store.
    pub fn persisted(&self) -> Persisted {
        Persisted {
            v: 1,
            end_user_id: self.end_user_id,
            credential: self.credential.clone(),
            conversation_id: self.conversation_id,
            last_seq: self.max_seq.max(self.stored_seq),
            read_seq: self.read_seq,
            window: self.window,
        }
    }

    /// The status line under the title.
    pub fn status_text(&self) -> String {
        match self.link {
            _ if self.prechat_shown() => "Fill in the form to start".into(),
            Link::Backoff | Link::Connecting | Link::Handshaking | Link::Joining
                if self.was_live =>
            {
                "Reconnecting…".into()
            }
            Link::Offline
            | Link::Connecting
            | Link::Handshaking
            | Link::Joining
            | Link::Backoff => "Connecting…".into(),
            Link::Live => match (self.session, &self.agent) {
                (Some(SessionStatus::Ended), _) => "Conversation ended".into(),
                (_, Some(name)) => match &self.other_typing {
                    Some(who) => who.clone() + " is typing…",
                    None => name.clone() + " joined",
                },
                (
                    Some(SessionStatus::Waiting | SessionStatus::Active | SessionStatus::Inactive),
                    None,
                ) => match self.queue_position {
                    Some(n) => {
                        "Waiting for an agent: you are number ".to_owned()
                            + &crate::json::int_string(i64::from(n))
                            + " in line"
                    }
                    None => "Waiting for an agent…".into(),
                },
                (Some(SessionStatus::New) | None, None) => "Send a message to start".into(),
            },
        }
    }

    /// Ids of lines changed since the last call, as indices into `items`, last first
    /// (so each line's successor is already in place when the view inserts it).
    pub fn take_dirty(&mut self) -> Vec<usize> {
        let mut found = Vec::with_capacity(self.dirty);
        // Changed lines are nearly always the last ones: scan back until all are found.
        for (i, item) in self.items.iter_mut().enumerate().rev() {
            if found.len() == self.dirty {
                break;
            }
            if std::mem::take(&mut item.dirty) {
                found.push(i);
            }
        }
        self.dirty = 0;
        found
    }

    /// Mark line `i` as changed for the view.
    fn touch(&mut self, i: usize) {
        if let Some(item) = self.items.get_mut(i)
            && !item.dirty
        {
            item.dirty = true;
            self.dirty += 1;
        }
    }

    /// Handle one `Msg`; return what to do, in order.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        let mut fx = Vec::new();
        match msg {
            Msg::Booted => {
                match self.window {
                    WindowState::Closed => {}
                    WindowState::Maximized => fx.push(Effect::Emit(Event::WindowMaximized)),
                    WindowState::Minimized => fx.push(Effect::Emit(Event::WindowMinimized)),
                }
                if self.inline_launch && self.window == WindowState::Closed {
                    // Inline: the window is the widget; it opens on load unless told not to.
                    self.open(&mut fx);
                }
                // A conversation to resume, an open window, or messages left to send.
                if self.link == Link::Offline
                    && (self.conversation_id.is_some()
                        || self.window != WindowState::Closed
                        || self.items.iter().any(|i| i.delivery == Delivery::Pending))
                {
                    self.connect(&mut fx);
                }
            }
            Msg::LauncherClicked => {
                fx.push(Effect::Emit(Event::ButtonClicked));
                self.open(&mut fx);
            }
            Msg::LaunchRequested => {
                if self.window != WindowState::Maximized {
                    fx.push(Effect::Emit(Event::ButtonClicked));
                    self.open(&mut fx);
                }
            }
            Msg::RestoreClicked => self.open(&mut fx),
            Msg::MinimizeClicked | Msg::EscapePressed => {
                if self.window == WindowState::Maximized {
                    self.window = WindowState::Minimized;
                    fx.extend([
                        Effect::Emit(Event::WindowMinimized),
                        Effect::Persist,
                        Effect::FocusMinimized,
                    ]);
                }
            }
            Msg::CloseClicked => {
                if self.window != WindowState::Closed {
                    self.window = WindowState::Closed;
                    fx.extend([
                        Effect::Emit(Event::WindowClosed),
                        Effect::Persist,
                        Effect::FocusLauncher,
                    ]);
                }
            }
            Msg::SendClicked {
                text,
                entry_id,
                now,
            } => {
                if self.send_text(text, entry_id, now, &mut fx) {
                    fx.push(Effect::ClearInput);
                    // The message itself ends "typing" for the agent.
                    self.typing = false;
                }
            }
            Msg::SendTextRequested {
                text,
                entry_id,
                now,
            } => {
                self.send_text(text, entry_id, now, &mut fx);
            }
            Msg::ChoiceClicked {
                title,
                entry_id,
                now,
            } => {
                // A second click before the menu left the DOM sends nothing.
                if self.menu.is_some() && self.send_text(title, entry_id, now, &mut fx) {
                    fx.push(Effect::FocusInput);
                }
            }
            Msg::VisibilityChanged { hidden } => {
                self.page_hidden = hidden;
                if hidden {
                    self.blink(&mut fx);
                } else {
                    self.wake(&mut fx);
                    if self.blinking {
                        self.blinking = false;
                        fx.push(Effect::Blink(false));
                    }
                    self.title_flash = false;
                    if self.window == WindowState::Maximized {
                        self.mark_read(&mut fx);
                    }
                }
            }
            Msg::BlinkTick => self.title_flash = self.blinking && !self.title_flash,
            Msg::MinimizeRequested => {
                if self.window == WindowState::Maximized {
                    self.window = WindowState::Minimized;
                    fx.extend([Effect::Emit(Event::WindowMinimized), Effect::Persist]);
                }
            }
            Msg::ButtonVisibilityRequested { hidden } => {
                if !hidden || self.window == WindowState::Closed {
                    self.button_hidden = hidden;
                }
            }
            Msg::SocketOpened => {
                self.heartbeat_pending = false;
                // A new connection starts with a clean slate; the server says if it still minds.
                self.throttled = false;
                self.replay_to = None;
                self.history_pending = false;
                self.link = Link::Handshaking;
                fx.push(self.hello());
            }
            Msg::SocketClosed => {
                if !matches!(self.link, Link::Offline | Link::Backoff) {
                    self.link = Link::Backoff;
                    let delay_ms = self.jitter(retry_delay(self.attempt));
                    self.attempt = self.attempt.saturating_add(1);
                    fx.push(Effect::ScheduleRetry { delay_ms });
                }
            }
            Msg::LimitPassed => self.limit_passed(&mut fx),
            Msg::RetryTimerFired => {
                if self.link == Link::Backoff {
                    self.connect(&mut fx);
                }
            }
            Msg::ConversationIdGenerated(id) => {
                if self.conversation_id.is_none() && self.link == Link::Joining {
                    self.conversation_id = Some(id);
                    fx.push(Effect::Persist);
                    fx.push(Effect::Send(ToServer::CreateConversation {
                        conversation_id: id,
                    }));
                }
            }
            Msg::FrameReceived(frame) => {
                self.heartbeat_pending = false;
                self.frame(frame, &mut fx)
            }
            Msg::Scrolled { at_bottom, at_top } => {
                self.at_bottom = at_bottom;
                if at_top && self.items.len() > self.shown {
                    self.shown += HISTORY_PAGE;
                } else if at_top {
                    self.ask_history(&mut fx);
                }
            }
            Msg::AnimationFrame => {}
            Msg::StoredRecordChanged(other) => {
                self.read_elsewhere(&other, &mut fx);
                self.adopt(other, &mut fx);
            }
            Msg::KeepAliveTick => self.heartbeat(&mut fx),
            Msg::NewConversationClicked => {
                if self.session == Some(SessionStatus::Ended) {
                    self.new_conversation(&mut fx);
                    fx.push(Effect::FocusInput);
                }
            }
            Msg::RetryClicked { entry_id } => self.retry(entry_id, &mut fx),
            Msg::BrowserOnline => self.wake(&mut fx),
            Msg::BrowserOffline => {
                if !matches!(self.link, Link::Offline | Link::Backoff) {
                    self.link = Link::Backoff;
                    let delay_ms = self.jitter(retry_delay(self.attempt));
                    self.attempt = self.attempt.saturating_add(1);
                    fx.push(Effect::ScheduleRetry { delay_ms });
                }
            }
            Msg::IdentityTokenSet(token) => self.set_identity_token(token, &mut fx),
            Msg::ClearSessionRequested { end } => self.clear_session(end, false, &mut fx),
            Msg::StoredRecordCleared => {
                // Another tab cleared the session: follow.
                if self.credential.is_some() || self.conversation_id.is_some() {
                    self.clear_session(false, true, &mut fx);
                }
            }
            Msg::EndConversationClicked => {
                if let (Link::Live, Some(conversation_id)) = (self.link, self.conversation_id)
                    && self.session != Some(SessionStatus::Ended)
                {
                    fx.push(Effect::Send(ToServer::EndConversation { conversation_id }));
                }
            }
            Msg::BusinessHoursBoundary => self.hours_boundary(&mut fx),
            Msg::Typing(typing) => {
                if let (Link::Live, Some(conversation_id)) = (self.link, self.conversation_id)
                    && typing != self.typing
                {
                    self.typing = typing;
                    fx.push(Effect::Send(ToServer::Typing {
                        conversation_id,
                        typing,
                    }));
                }
            }
            Msg::PrechatSubmitted { values } => self.submit_prechat(values, &mut fx),
            Msg::PrechatPrefilled {
                set,
                locked,
                remove,
            } => self.prefill_prechat(set, locked, &remove),
            Msg::LinkClicked { entry_id, link } => {
                if let (Some(i), Some(conversation_id)) =
                    (self.index_of(entry_id), self.conversation_id)
                {
                    let entry = frames::entry_of(&self.items[i], conversation_id);
                    fx.push(Effect::Emit(Event::LinkClicked(entry, link)));
                }
            }
            Msg::ContextChanged { kind, set, remove } => {
                self.change_context(kind, set, &remove, &mut fx)
            }
            Msg::LeaderChanged { here } => self.leader_changed(here, &mut fx),
            Msg::StoredOutboxChanged(outbox) => {
                // Another tab's unsent messages: show them, and send them too (the server
                // deduplicates by entry id), so closing that tab loses nothing.
                for o in outbox {
                    if o.failed.is_some() || self.index_of(o.id).is_some() {
                        continue;
                    }
                    self.push_own(o);
                    self.send_last(&mut fx);
                }
            }
        }
        self.prechat_loaded(&mut fx);
        fx
    }

    /// Start the title blink if the tab is hidden with unread messages.
    fn blink(&mut self, fx: &mut Vec<Effect>) {
        if self.leader && self.page_hidden && self.unread > 0 && !self.blinking {
            self.blinking = true;
            fx.push(Effect::Blink(true));
        }
    }

    fn connect(&mut self, fx: &mut Vec<Effect>) {
        if !self.may_connect() {
            self.link = Link::Offline;
            return;
        }
        self.heartbeat_pending = false;
        self.link = Link::Connecting;
        fx.push(Effect::Connect);
    }

    fn hello(&self) -> Effect {
        // Verified: the token is the credential (a stored one is not accepted there).
        Effect::Send(ToServer::Hello {
            protocol_version: PROTOCOL_VERSION,
            credential: self.credential.clone().filter(|_| !self.verified),
            identity_token: self.identity_token.clone().filter(|_| self.verified),
        })
    }

    fn open(&mut self, fx: &mut Vec<Effect>) {
        if self.window != WindowState::Maximized {
            self.window = WindowState::Maximized;
            self.at_bottom = true;
            fx.extend([Effect::Emit(Event::WindowMaximized), Effect::Persist]);
        }
        self.mark_read(fx);
        fx.push(Effect::FocusInput);
        if self.link == Link::Offline {
            self.connect(fx);
        }
    }

    /// The composer takes input: not while the bot offers choices, if the page said so
    /// (`enableUserInputForConversationWithBot: false`).
    pub fn input_enabled(&self) -> bool {
        self.input_with_bot || !self.bot_leads || self.menu.is_none()
    }

    /// `onEmbeddedMessagingConversationOpened` has fired for the current conversation.
    pub fn conversation_open(&self) -> bool {
        self.opened_fired && self.conversation_id.is_some()
    }
}

/// `text` cut into runs of plain text (`false`) and http(s) links (`true`), in order. A link
/// runs to the next whitespace, without trailing punctuation (`.`, `,`, `)`...).
pub fn link_runs(text: &str) -> Vec<(&str, bool)> {
    // `get` instead of indexing: no slicing panic (and its formatting code) in the wasm; an
    // ASCII `h` or space byte is always a char boundary anyway.
    let part = |a: usize, b: usize| text.get(a..b).unwrap_or_default();
    let mut runs = Vec::new();
    let (mut plain_from, mut i) = (0, 0);
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let rest = part(i, bytes.len());
        if bytes[i] == b'h' && (rest.starts_with("https://") || rest.starts_with("http://")) {
            let mut end = i + rest
                .bytes()
                .position(|b| b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            while end > i && b".,;:!?)]}'\"".contains(&bytes[end - 1]) {
                end -= 1;
            }
            if end > i + 8 {
                if plain_from < i {
                    runs.push((part(plain_from, i), false));
                }
                runs.push((part(i, end), true));
                plain_from = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    if plain_from < bytes.len() {
        runs.push((part(plain_from, bytes.len()), false));
    }
    runs
}

/// Reconnect delay after `attempt` failures: 0.5 s, 1 s, 2 s, ... capped at 30 s.
pub fn retry_delay(attempt: u32) -> u32 {
    RETRY_MIN_MS
        .saturating_mul(1u32 << attempt.min(16))
        .min(RETRY_MAX_MS)
}

fn send_frame(conversation_id: ConversationId, item: Option<&Item>) -> ToServer {
    let (entry_id, text, client_timestamp) = match item {
        Some(Item {
            id,
            body: Body::Text(text),
            time,
            ..
        }) => (*id, text.clone(), *time),
        _ => return ToServer::Ping,
    };
    ToServer::SendMessage {
        conversation_id,
        entry_id,
        text,
        client_timestamp,
    }
}

/// The wire name of a role (`data-role`, event details).
pub fn role_str(role: Role) -> &'static str {
    match role {
        Role::EndUser => "EndUser",
        Role::Agent => "Agent",
        Role::Chatbot => "Chatbot",
        Role::System => "System",
        Role::Unknown => "Unknown",
    }
}

#[cfg(test)]
#[path = "state_durable_tests.rs"]
mod durable_tests;
#[cfg(test)]
#[path = "state_prechat_tests.rs"]
mod prechat_tests;
#[cfg(test)]
#[path = "state_session_tests.rs"]
mod session_tests;
#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
