//! Console output, always prefixed `[embedded-messaging]`.

use wasm_bindgen::JsValue;

const PREFIX: &str = "[embedded-messaging] ";

pub fn error(message: &str) {
    web_sys::console::error_1(&JsValue::from_str(&(PREFIX.to_owned() + message)));
}

pub fn warn(message: &str) {
    web_sys::console::warn_1(&JsValue::from_str(&(PREFIX.to_owned() + message)));
}

pub fn info(message: &str) {
    web_sys::console::info_1(&JsValue::from_str(&(PREFIX.to_owned() + message)));
}
