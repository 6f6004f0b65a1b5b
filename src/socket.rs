//! The visitor WebSocket: JSON text frames in and out as protocol enums.
//!
//! Each callback only turns the browser event into a `Msg`; a malformed or unknown frame is
//! logged and ignored. Dropping the `Socket` removes its listeners and closes it.

use std::rc::Rc;

use em_protocol::visitor::{ToServer, ToVisitor};
use gloo::events::EventListener;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, WebSocket};

use crate::console;
use crate::error::Error;
use crate::json::Json;
use crate::state::Msg;
use crate::wire;

/// An open (or opening) visitor socket.
pub struct Socket {
    ws: WebSocket,
    _listeners: [EventListener; 3],
}

impl Socket {
    /// Start connecting; `dispatch` receives `SocketOpened`, `FrameReceived`, `SocketClosed`.
    pub fn open(url: &str, dispatch: Rc<dyn Fn(Msg)>) -> Result<Socket, Error> {
        let ws = WebSocket::new(url)?;
        let (d1, d2, d3) = (dispatch.clone(), dispatch.clone(), dispatch);
        let listeners = [
            EventListener::new(&ws, "open", move |_| d1(Msg::SocketOpened)),
            EventListener::new(&ws, "message", move |e| {
                if let Some(frame) = e.dyn_ref::<MessageEvent>().and_then(parse) {
                    d2(Msg::FrameReceived(frame));
                }
            }),
            EventListener::new(&ws, "close", move |_| d3(Msg::SocketClosed)),
        ];
        Ok(Socket {
            ws,
            _listeners: listeners,
        })
    }

    /// Send one frame as JSON text (only once open; before that the state does not send).
    pub fn send(&self, frame: &ToServer) -> Result<(), Error> {
        self.send_text(&wire::write_frame(frame))
    }

    /// A frame already written as JSON text.
    pub fn send_text(&self, text: &str) -> Result<(), Error> {
        self.ws.send_with_str(text).map_err(Error::from)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = self.ws.close();
    }
}

/// A text frame → `ToVisitor`; anything else is logged and dropped.
fn parse(event: &MessageEvent) -> Option<ToVisitor> {
    let Some(text) = event.data().as_string() else {
        console::warn("ignoring a non-text frame from the server.");
        return None;
    };
    let Some(value) = Json::parse(&text) else {
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
