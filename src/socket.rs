//! The visitor connection, one per browser: `src/link.js` (bundled with the loader) holds the
//! WebSocket in the leader tab and relays it to the others; here its events become `Msg`s.
//!
//! Each callback only turns a link event into a `Msg`; a malformed or unknown frame is logged
//! and ignored. Dropping the `Socket` closes the link, releases the lock and the channel.

use std::rc::Rc;

use em_protocol::visitor::{ToServer, ToVisitor};
use js_sys::Function;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::console;
use crate::json::Json;
use crate::state::Msg;
use crate::wire;

#[wasm_bindgen]
extern "C" {
    /// `emLink` of `src/link.js`: in scope of the glue inside the bundle's IIFE.
    type Link;
    #[wasm_bindgen(catch, js_name = emLink)]
    fn new_link(url: &str, name: &str, on_event: &Function) -> Result<Link, JsValue>;
    #[wasm_bindgen(method)]
    fn connect(this: &Link);
    #[wasm_bindgen(method)]
    fn send(this: &Link, text: &str);
    #[wasm_bindgen(method)]
    fn disconnect(this: &Link);
    #[wasm_bindgen(method)]
    fn reset(this: &Link);
    #[wasm_bindgen(method)]
    fn free(this: &Link);
}

/// The widget's connection (opened and closed as the state asks, many times).
pub struct Socket {
    link: Link,
    _on_event: Closure<dyn Fn(u32, Option<String>)>,
}

impl Socket {
    /// The link to `url`, shared by the tabs that use the same `name` ("" = not shared);
    /// `dispatch` receives `SocketOpened`, `FrameReceived`, `SocketClosed`, `LeaderChanged`.
    /// `None` without the loader's `emLink` (a test page): the widget then stays offline.
    pub fn new(url: &str, name: &str, dispatch: Rc<dyn Fn(Msg)>) -> Option<Socket> {
        let on_event = Closure::<dyn Fn(u32, Option<String>)>::new(
            move |kind, text: Option<String>| match kind {
                0 => dispatch(Msg::SocketOpened),
                1 => {
                    if let Some(frame) = text.as_deref().and_then(parse) {
                        dispatch(Msg::FrameReceived(frame));
                    }
                }
                2 => dispatch(Msg::SocketClosed),
                _ => dispatch(Msg::LeaderChanged { here: kind == 3 }),
            },
        );
        let link = new_link(url, name, on_event.as_ref().unchecked_ref()).ok()?;
        Some(Socket {
            link,
            _on_event: on_event,
        })
    }

    /// Drop the current link (if any) and open a new one: `SocketOpened` follows.
    pub fn connect(&self) {
        self.link.connect();
    }

    /// Close the current link; nothing more arrives until `connect`.
    pub fn disconnect(&self) {
        self.link.disconnect();
    }

    /// The session was cleared: the shared socket (the old visitor's) is closed for every tab,
    /// so the next `hello` gets a new identity instead of the old visitor's cached `welcome`.
    pub fn reset(&self) {
        self.link.reset();
    }

    /// Send one frame as JSON text (only once open; before that the state does not send).
    pub fn send(&self, frame: &ToServer) {
        self.send_text(&wire::write_frame(frame));
    }

    /// A frame already written as JSON text.
    pub fn send_text(&self, text: &str) {
        self.link.send(text);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.link.free();
    }
}

/// A text frame → `ToVisitor`; anything else is logged and dropped.
fn parse(text: &str) -> Option<ToVisitor> {
    let Some(value) = Json::parse(text) else {
        console::warn("ignoring a frame that is not JSON.");
        return None;
    };
    match wire::read_frame(&value) {
        Ok(ToVisitor::Unknown) => None,
        Ok(frame) => Some(frame),
        Err(field) => {
            console::warn(
                &("ignoring a malformed frame (bad or missing \"".to_owned() + field + "\")."),
            );
            None
        }
    }
}
