//! One owner, one queue: callbacks push `Msg`s; one loop updates the state, runs the
//! effects, dispatches window events (with no borrow held) and renders.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use em_protocol::ConversationId;
use gloo::events::EventListener;
use gloo::timers::callback::{Interval, Timeout};
use js_sys::{Function, Promise};
use uuid::Uuid;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use crate::console;
use crate::events;
use crate::socket::Socket;
use crate::state::{Effect, Event, KEEPALIVE_MS, Msg, State, WindowState};
use crate::storage;
use crate::view::{Dispatch, View};

/// The running widget; cheap to clone (shared handle).
#[derive(Clone)]
pub struct Runtime {
    inner: Rc<Inner>,
}

struct Inner {
    queue: RefCell<VecDeque<Msg>>,
    busy: Cell<bool>,
    core: RefCell<Option<Core>>,
    /// `launchChat()` promises waiting for the window to be maximized.
    launches: RefCell<Vec<Function>>,
}

/// Everything the loop owns: dropping it removes the DOM, listeners, socket and timer.
struct Core {
    state: State,
    view: View,
    /// The browser's one visitor connection (`None` on a page without the loader).
    socket: Option<Socket>,
    retry: Option<Timeout>,
    /// A `rate_limited` wait.
    limit: Option<Timeout>,
    /// The business-hours boundary.
    timer: Option<Timeout>,
    _keepalive: Interval,
    _other_tabs: Option<EventListener>,
    _visibility: Option<EventListener>,
    _online: Option<[EventListener; 2]>,
    blink: Option<Interval>,
    storage_key: String,
    dispatch: Dispatch,
    persist: bool,
    /// The outbox changed; written with the record (`…:outbox`).
    persist_outbox: bool,
    /// The outbox text last written (or read), so unchanged outboxes are not rewritten.
    saved_outbox: String,
    /// The last record written (a change of `lastSeq` alone can wait for the next frame).
    saved: crate::state::Persisted,
    focus: Option<Effect>,
    frame: Option<i32>,
    on_frame: Closure<dyn FnMut()>,
}

impl Runtime {
    /// Mount the view (built by `build` with this runtime's dispatcher); `Msg::Booted` starts it.
    pub fn start(
        state: State,
        socket_url: String,
        storage_key: String,
        build: impl FnOnce(Dispatch) -> Result<View, crate::error::Error>,
    ) -> Result<Runtime, crate::error::Error> {
        let inner = Rc::new(Inner {
            queue: RefCell::new(VecDeque::new()),
            busy: Cell::new(false),
            core: RefCell::new(None),
            launches: RefCell::new(Vec::new()),
        });
        let weak = Rc::downgrade(&inner);
        let dispatch: Dispatch = Rc::new(move |msg| {
            if let Some(inner) = weak.upgrade() {
                run(&inner, msg);
            }
        });
        let view = build(dispatch.clone())?;
        let d = dispatch.clone();
        let keepalive = Interval::new(KEEPALIVE_MS, move || d(Msg::KeepAliveTick));
        let d = dispatch.clone();
        let on_frame = Closure::<dyn FnMut()>::new(move || d(Msg::AnimationFrame));
        let saved = state.persisted();
        let d = dispatch.clone();
        let visibility = web_sys::window().and_then(|w| w.document()).map(|doc| {
            let target = doc.clone();
            EventListener::new(&doc, "visibilitychange", move |_| {
                d(Msg::VisibilityChanged {
                    hidden: target.hidden(),
                })
            })
        });
        let (d, key) = (dispatch.clone(), storage_key.clone());
        let outbox_key = storage::outbox_key(&key);
        let other_tabs = web_sys::window().map(|w| {
            EventListener::new(&w, "storage", move |e| {
                let Some(e) = e.dyn_ref::<web_sys::StorageEvent>() else {
                    return;
                };
                let changed = e.key();
                if changed.as_deref() == Some(key.as_str()) {
                    match e.new_value() {
                        Some(text) => {
                            if let Some(record) = storage::parse(&text) {
                                d(Msg::StoredRecordChanged(record));
                            }
                        }
                        // Removed: another tab called clearSession.
                        None => d(Msg::StoredRecordCleared),
                    }
                } else if changed.as_deref() == Some(outbox_key.as_str()) {
                    let outbox = e.new_value().map(|v| storage::parse_outbox(&v));
                    d(Msg::StoredOutboxChanged(outbox.unwrap_or_default()));
                }
            })
        });
        let d = dispatch.clone();
        let online = web_sys::window().map(|w| {
            let d2 = d.clone();
            [
                EventListener::new(&w, "online", move |_| d(Msg::BrowserOnline)),
                EventListener::new(&w, "offline", move |_| d2(Msg::BrowserOffline)),
            ]
        });
        let saved_outbox = storage::write_outbox(&state.outbox());
        // Verified visitors keep one connection per tab: their identity token is the page's.
        let shared = if state.verified { "" } else { &storage_key };
        let socket = Socket::new(&socket_url, shared, dispatch.clone());
        *inner.core.borrow_mut() = Some(Core {
            state,
            view,
            socket,
            retry: None,
            limit: None,
            timer: None,
            _keepalive: keepalive,
            _other_tabs: other_tabs,
            _visibility: visibility,
            _online: online,
            blink: None,
            storage_key,
            dispatch,
            persist: false,
            persist_outbox: false,
            saved_outbox,
            saved,
            focus: None,
            frame: None,
            on_frame,
        });
        Ok(Runtime { inner })
    }

    pub fn dispatch(&self, msg: Msg) {
        run(&self.inner, msg);
    }

    /// `utilAPI.launchChat()`: resolves once the window is maximized (at once if it is).
    pub fn launch_chat(&self) -> Promise {
        let inner = self.inner.clone();
        let promise =
            Promise::new(&mut |resolve, _reject| inner.launches.borrow_mut().push(resolve));
        self.dispatch(Msg::LaunchRequested);
        promise
    }

    /// Dispatch `msg` at `at_ms` (ms since the epoch), if a timer reaches that far (~24 days).
    pub fn at(&self, at_ms: i64, msg: Msg) {
        let delay = at_ms - js_sys::Date::now() as i64;
        if let (Ok(delay), Some(core)) =
            (u32::try_from(delay), self.inner.core.borrow_mut().as_mut())
            && delay <= i32::MAX as u32
        {
            let d = core.dispatch.clone();
            core.timer = Some(Timeout::new(delay, move || d(msg)));
        }
    }

    /// Read the state (`None` after `shut_down`).
    pub fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> Option<T> {
        self.inner
            .core
            .try_borrow()
            .ok()?
            .as_ref()
            .map(|core| f(&core.state))
    }

    /// Take everything down: elements, listeners, socket, timer (the stored record stays).
    pub fn shut_down(&self) {
        let core = self.inner.core.borrow_mut().take();
        drop(core);
        self.inner.queue.borrow_mut().clear();
    }
}

/// Queue `msg`; unless a loop is already running, drain the queue now.
fn run(inner: &Rc<Inner>, msg: Msg) {
    inner.queue.borrow_mut().push_back(msg);
    if inner.busy.replace(true) {
        return;
    }
    // What the visitor did shows at once; socket traffic is rendered at the next frame.
    let mut now = false;
    loop {
        let Some(msg) = inner.queue.borrow_mut().pop_front() else {
            break;
        };
        now |= !matches!(
            msg,
            Msg::FrameReceived(_)
                | Msg::SocketOpened
                | Msg::SocketClosed
                | Msg::RetryTimerFired
                | Msg::KeepAliveTick
                | Msg::ConversationIdGenerated(_)
                | Msg::Scrolled { .. }
                | Msg::StoredRecordChanged(_)
                | Msg::StoredOutboxChanged(_)
                | Msg::BrowserOnline
                | Msg::BrowserOffline
                | Msg::LeaderChanged { .. }
        );
        let emitted = match inner.core.borrow_mut().as_mut() {
            Some(core) => core.step(msg),
            None => Vec::new(),
        };
        // Page listeners may call back into the widget: no borrow is held here.
        for event in &emitted {
            events::emit(event);
        }
    }
    let maximized = {
        let mut core = inner.core.borrow_mut();
        match core.as_mut() {
            Some(core) => {
                if now {
                    core.finish();
                } else {
                    core.save(false);
                    core.request_frame();
                }
                core.state.window == WindowState::Maximized
            }
            None => false,
        }
    };
    if maximized {
        let waiting: Vec<Function> = inner.launches.borrow_mut().drain(..).collect();
        for resolve in waiting {
            let _ = resolve.call1(&JsValue::NULL, &JsValue::from_str("Maximized"));
        }
    }
    inner.busy.set(false);
}

impl Drop for Core {
    fn drop(&mut self) {
        if let (Some(id), Some(w)) = (self.frame.take(), web_sys::window()) {
            let _ = w.cancel_animation_frame(id);
        }
    }
}

impl Core {
    /// Update the state with one `Msg` and carry out its effects; return the events to emit.
    fn step(&mut self, msg: Msg) -> Vec<Event> {
        let mut emitted = Vec::new();
        for effect in self.state.update(msg) {
            match effect {
                Effect::Connect => self.connect(),
                Effect::Send(frame) => {
                    if let Some(socket) = &self.socket {
                        socket.send(&frame);
                    }
                }
                Effect::ScheduleRetry { delay_ms } => {
                    self.disconnect();
                    let d = self.dispatch.clone();
                    self.retry = Some(Timeout::new(delay_ms, move || d(Msg::RetryTimerFired)));
                }
                Effect::WaitForLimit { delay_ms } => {
                    let d = self.dispatch.clone();
                    self.limit = Some(Timeout::new(delay_ms, move || d(Msg::LimitPassed)));
                }
                Effect::Persist => self.persist = true,
                Effect::PersistOutbox => self.persist_outbox = true,
                Effect::Emit(event) => emitted.push(event),
                Effect::NewConversationId => {
                    (self.dispatch)(Msg::ConversationIdGenerated(ConversationId(Uuid::new_v4())))
                }
                Effect::FocusInput | Effect::FocusLauncher | Effect::FocusMinimized => {
                    self.focus = Some(effect)
                }
                Effect::ClearInput => self.view.clear_input(),
                Effect::Announce(text) => self.view.announce(&text),
                Effect::Warn(text) => console::warn(&text),
                Effect::RememberPrechat(values) => {
                    storage::save_prechat(&self.storage_key, &values)
                }
                Effect::SendContext(id) => {
                    let text = crate::wire::write_context(id, &self.state.context);
                    if let Some(socket) = &self.socket {
                        socket.send_text(&text);
                    }
                }
                Effect::Disconnect => {
                    self.disconnect();
                    self.retry = None;
                }
                Effect::ResetLink => {
                    if let Some(socket) = &self.socket {
                        socket.reset();
                    }
                }
                Effect::ClearStorage => {
                    storage::clear(&self.storage_key);
                    self.saved = self.state.persisted();
                    self.saved_outbox = storage::write_outbox(&[]);
                    self.persist = false;
                    self.persist_outbox = false;
                }
                Effect::Blink(on) => {
                    let d = self.dispatch.clone();
                    self.blink = on.then(|| Interval::new(1000, move || d(Msg::BlinkTick)));
                }
            }
        }
        emitted
    }

    fn connect(&mut self) {
        self.retry = None;
        if let Some(socket) = &self.socket {
            socket.connect();
        }
    }

    fn disconnect(&self) {
        if let Some(socket) = &self.socket {
            socket.disconnect();
        }
    }

    /// Write the record if it changed; with `all` false, a change of `lastSeq` alone waits.
    fn save(&mut self, all: bool) {
        if std::mem::take(&mut self.persist_outbox) {
            let outbox = self.state.outbox();
            let text = storage::write_outbox(&outbox);
            if text != self.saved_outbox {
                storage::save_outbox(&self.storage_key, &outbox);
                self.saved_outbox = text;
            }
        }
        if !self.persist {
            return;
        }
        let record = self.state.persisted();
        let only_seq = crate::state::Persisted {
            last_seq: self.saved.last_seq,
            ..record.clone()
        } == self.saved;
        if all || !only_seq {
            storage::save(&self.storage_key, &record);
            self.saved = record;
            self.persist = false;
        }
    }

    fn request_frame(&mut self) {
        if self.frame.is_none() {
            self.frame = web_sys::window().and_then(|w| {
                w.request_animation_frame(self.on_frame.as_ref().unchecked_ref())
                    .ok()
            });
        }
    }

    /// After the queue is drained: store once, render once, then move focus.
    fn finish(&mut self) {
        if let (Some(id), Some(w)) = (self.frame.take(), web_sys::window()) {
            let _ = w.cancel_animation_frame(id);
        }
        self.save(true);
        self.view.render(&mut self.state);
        match self.focus.take() {
            Some(Effect::FocusInput) => self.view.focus_input(),
            Some(Effect::FocusLauncher) => self.view.focus_launcher(),
            Some(Effect::FocusMinimized) => self.view.focus_minimized(),
            _ => {}
        }
    }
}
