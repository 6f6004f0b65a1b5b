//! Small DOM helpers shared by the view (create, attributes, SVG icons, stylesheets).

use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CssStyleSheet, Document, Element, HtmlElement};

use crate::error::Error;

const SVG_NS: &str = "http://www.w3.org/2000/svg";

/// `document.createElement(tag)` with attributes.
pub fn el(doc: &Document, tag: &str, attrs: &[(&str, &str)]) -> Result<HtmlElement, Error> {
    let e = doc.create_element(tag)?;
    for (k, v) in attrs {
        e.set_attribute(k, v)?;
    }
    Ok(e.unchecked_into())
}

/// Like `el`, appended to `parent`.
pub fn child(parent: &Element, tag: &str, attrs: &[(&str, &str)]) -> Result<HtmlElement, Error> {
    let doc = parent
        .owner_document()
        .ok_or_else(|| Error::Js("element without a document".into()))?;
    let e = el(&doc, tag, attrs)?;
    parent.append_child(&e)?;
    Ok(e)
}

/// `child` with text content.
pub fn text_child(
    parent: &Element,
    tag: &str,
    attrs: &[(&str, &str)],
    text: &str,
) -> Result<HtmlElement, Error> {
    let e = child(parent, tag, attrs)?;
    e.set_text_content(Some(text));
    Ok(e)
}

/// A 24×24 decorative SVG icon made of one path, appended to `parent`.
pub fn icon(parent: &Element, path: &str) -> Result<(), Error> {
    let doc = parent
        .owner_document()
        .ok_or_else(|| Error::Js("element without a document".into()))?;
    let svg = doc.create_element_ns(Some(SVG_NS), "svg")?;
    svg.set_attribute("viewBox", "0 0 24 24")?;
    svg.set_attribute("aria-hidden", "true")?;
    svg.set_attribute("focusable", "false")?;
    let p = doc.create_element_ns(Some(SVG_NS), "path")?;
    p.set_attribute("d", path)?;
    svg.append_child(&p)?;
    parent.append_child(&svg)?;
    Ok(())
}

/// Set or remove the boolean `hidden` attribute.
pub fn set_hidden(e: &Element, hidden: bool) {
    set_flag(e, "hidden", hidden);
}

/// A boolean attribute present (`""`) or absent.
pub fn set_flag(e: &Element, name: &str, on: bool) {
    let _ = e.toggle_attribute_with_force(name, on);
}

/// A constructable stylesheet (works under a strict `style-src` CSP).
pub fn sheet(css: &str) -> Result<CssStyleSheet, Error> {
    let s = CssStyleSheet::new()?;
    s.replace_sync(css)?;
    Ok(s)
}

/// Append `sheet` to the document's adopted stylesheets, keeping the page's own.
pub fn adopt_in_document(doc: &Document, sheet: &CssStyleSheet) {
    let sheets = doc.adopted_style_sheets();
    sheets.push(sheet);
    doc.set_adopted_style_sheets(&sheets);
}

/// Remove `sheet` from the document's adopted stylesheets.
pub fn unadopt_in_document(doc: &Document, sheet: &CssStyleSheet) {
    let target: &JsValue = sheet;
    let kept = doc
        .adopted_style_sheets()
        .filter(&mut |s, _, _| s != *target);
    doc.set_adopted_style_sheets(&kept);
}

/// Icon paths (Material-style, 24×24).
pub mod icons {
    pub const CHAT: &str = "M12 3C6.48 3 2 6.58 2 11c0 2.4 1.33 4.55 3.43 6.02L4.5 21l4.37-2.3c.98.2 2.03.3 3.13.3 5.52 0 10-3.58 10-8s-4.48-8-10-8z";
    pub const MINIMIZE: &str = "M5 11h14v2H5z";
    pub const CLOSE: &str = "M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z";
    pub const SEND: &str = "M3.4 20.4 21.85 12 3.4 3.6 3.39 10.13 16 12 3.39 13.87z";
}
