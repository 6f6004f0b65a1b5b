//! The transcript: lines keyed by `Item::key`, cloned from templates, patched in place; only
//! the newest `State::shown` are in the DOM.

use super::*;

/// A rendered line.
pub(super) struct Row {
    li: HtmlElement,
    time: HtmlElement,
    /// The failure note and its retry button, while the line is failed.
    error: Option<(HtmlElement, HtmlElement)>,
    seq: Option<u64>,
    status: &'static str,
    time_ms: i64,
}

impl Win {
    /// Patch the list from the state's changed lines; true when a new last line wants scrolling.
    pub(super) fn render_lines(&mut self, state: &mut State) -> bool {
        let mut scroll = false;
        // Only the newest `state.shown` lines are in the DOM (older ones on scrolling up).
        let len = state.items.len();
        let floor = len.saturating_sub(state.shown);
        let dirty = state.take_dirty();
        let mut order: Vec<usize> = if state.epoch != self.epoch {
            self.epoch = state.epoch;
            self.list.set_text_content(None);
            self.rows.clear();
            self.rendered = 0;
            (floor..len).rev().collect()
        } else {
            dirty
        };
        if state.shown > self.shown {
            // Scrolled up: add the lines between the new floor and the oldest rendered one.
            let top = (floor..len)
                .find(|&i| self.row(state.items[i].key).is_some())
                .unwrap_or(len);
            // (Descending like the dirty list, so each line's successor is already placed.)
            order.extend((floor..top).rev());
        }
        self.shown = state.shown;
        for i in order {
            let Some(item) = state.items.get(i) else {
                continue;
            };
            let key = item.key as usize;
            if self.rows.len() <= key {
                self.rows.resize_with(key + 1, || None);
            }
            if self.rows[key].is_none() && i < floor {
                continue; // above the shown history
            }
            let next = state.items[i + 1..]
                .iter()
                .find_map(|n| self.row(n.key))
                .map(|r| r.li.clone());
            let place = match &mut self.rows[key] {
                Some(row) => {
                    patch(row, item);
                    let moved = row.seq != item.seq;
                    row.seq = item.seq;
                    moved.then(|| row.li.clone())
                }
                None => match build_row(&self.templates, item, self.links_same_tab) {
                    Ok(row) => {
                        let li = row.li.clone();
                        self.rows[key] = Some(row);
                        self.rendered += 1;
                        Some(li)
                    }
                    Err(_) => None,
                },
            };
            if let Some(li) = place {
                // A new last line scrolls into view if the visitor was at the end or wrote it.
                scroll |= next.is_none() && (state.at_bottom || item.role == Role::EndUser);
                let _ = self
                    .list
                    .insert_before(&li, next.as_ref().map(|n| n.as_ref()));
            }
        }
        // Lines pushed above the shown history by new ones leave the DOM (every line from
        // the floor up is rendered, so the rest are below it).
        for item in state.items[..floor].iter().rev() {
            if self.rendered <= len - floor {
                break;
            }
            if let Some(row) = self.rows.get_mut(item.key as usize).and_then(Option::take) {
                row.li.remove();
                self.rendered -= 1;
            }
        }
        scroll
    }

    /// Buttons under the line of the active quick replies; gone once the state drops them.
    pub(super) fn render_menu(&mut self, state: &State) {
        let active = state.menu.as_ref().map(|m| m.0);
        if self.menu.as_ref().map(|m| m.0) == active {
            return;
        }
        if let Some((_, group)) = self.menu.take() {
            group.remove();
        }
        if let Some((key, options)) = &state.menu
            && let Some(row) = self.row(*key)
            && let Ok(group) = dom::child(&row.li, "div", &[])
        {
            // Real buttons (Tab, Enter, Space) named by their title; their clicks reach the
            // list's one listener, which reads the title back from `value`.
            for option in options {
                let title = &option.title_item.title;
                let _ = dom::text_child(
                    &group,
                    "button",
                    &[("data-testid", "quick-reply"), ("value", title)],
                    title,
                );
            }
            self.menu = Some((*key, group));
        }
    }

    pub(super) fn row(&self, key: u32) -> Option<&Row> {
        self.rows.get(key as usize)?.as_ref()
    }

    pub(super) fn request_scroll(&mut self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        if let Some(id) = self.raf.take() {
            let _ = window.cancel_animation_frame(id);
        }
        self.raf = window
            .request_animation_frame(self.scroll_to_end.as_ref().unchecked_ref())
            .ok();
    }
}

/// Row skeletons, cloned per line (one native clone instead of ~20 calls across the
/// wasm boundary): agent/bot line with a sender name, line without, centred notice.
pub(super) fn row_templates(doc: &Document) -> Result<[HtmlElement; 3], Error> {
    let row = |class: &str| dom::el(doc, "li", &[("class", class), ("data-testid", "message")]);
    let named = row("msg")?;
    dom::child(
        &named,
        "span",
        &[("class", "sender"), ("data-testid", "message-sender")],
    )?;
    let plain = row("msg")?;
    let notice = row("msg notice")?;
    for li in [&named, &plain] {
        dom::child(
            li,
            "div",
            &[("class", "bubble"), ("data-testid", "message-text")],
        )?;
    }
    dom::child(&notice, "span", &[("data-testid", "message-text")])?;
    for li in [&named, &plain, &notice] {
        dom::child(
            li,
            "time",
            &[("class", "meta"), ("data-testid", "message-time")],
        )?;
    }
    Ok([named, plain, notice])
}

pub(super) fn build_row(
    templates: &[HtmlElement; 3],
    item: &Item,
    links_same_tab: bool,
) -> Result<Row, Error> {
    let missing = || Error::Js("row template".into());
    let (which, role, text) = match &item.body {
        Body::Notice(text) => (2, "System", text),
        Body::Text(text)
            if matches!(item.role, Role::Agent | Role::Chatbot) && !item.sender_name.is_empty() =>
        {
            (0, role_str(item.role), text)
        }
        Body::Text(text) => (1, role_str(item.role), text),
    };
    let li: HtmlElement = templates[which]
        .clone_node_with_deep(true)?
        .unchecked_into();
    li.set_attribute("data-role", role)?;
    li.set_attribute("data-entry-id", &crate::wire::id_string(&item.id.0))?;
    let time: HtmlElement = li
        .last_element_child()
        .ok_or_else(missing)?
        .unchecked_into();
    let body = time.previous_element_sibling().ok_or_else(missing)?;
    // Text goes in as text nodes, http(s) URLs as links (never markup from the message).
    for (run, is_link) in crate::state::link_runs(text) {
        if is_link {
            let a = dom::child(&body, "a", &[("href", run), ("rel", "noopener noreferrer")])?;
            if !links_same_tab {
                a.set_attribute("target", "_blank")?;
            }
            a.set_text_content(Some(run));
        } else {
            body.append_with_str_1(run)?;
        }
    }
    if which == 0 {
        li.first_element_child()
            .ok_or_else(missing)?
            .set_text_content(Some(&item.sender_name));
    }
    let mut row = Row {
        li,
        time,
        error: None,
        seq: item.seq,
        status: "",
        time_ms: i64::MIN,
    };
    patch(&mut row, item);
    Ok(row)
}

/// Update a row's changing parts: seq, delivery status, time, failure note.
pub(super) fn patch(row: &mut Row, item: &Item) {
    if let Some(seq) = item.seq {
        let _ = row
            .li
            .set_attribute("data-seq", &crate::json::int_string(seq as i64));
    }
    let status = item.delivery.as_str();
    if row.status != status {
        row.status = status;
        let _ = row.li.set_attribute("data-status", status);
    }
    if row.time_ms != item.time {
        row.time_ms = item.time;
        set_time(&row.time, item.time);
    }
    match (&item.delivery, &row.error) {
        (Delivery::Failed(reason), None) => {
            let text = "Not delivered: ".to_owned() + reason;
            let note = dom::text_child(
                &row.li,
                "p",
                &[("class", "error"), ("data-testid", "message-error")],
                &text,
            );
            // A real button (Tab, Enter, Space); its clicks reach the list's one listener.
            let retry = dom::text_child(
                &row.li,
                "button",
                &[
                    ("type", "button"),
                    ("class", "retry"),
                    ("data-testid", "message-retry"),
                    ("aria-label", &("Retry sending: ".to_owned() + reason)),
                ],
                "Retry",
            );
            row.error = note.ok().zip(retry.ok());
        }
        (Delivery::Failed(_), Some(_)) => {}
        (_, Some((note, retry))) => {
            note.remove();
            retry.remove();
            row.error = None;
        }
        (_, None) => {}
    }
}

/// `<time datetime="ISO">HH:MM</time>` in local time.
pub(super) fn set_time(el: &HtmlElement, ms: i64) {
    if ms.unsigned_abs() > 8_640_000_000_000_000 {
        return;
    }
    let _ = el.set_attribute("datetime", &iso_time(ms));
    let date = js_sys::Date::new(&(ms as f64).into());
    let mut text = String::with_capacity(5);
    push2(&mut text, date.get_hours());
    text.push(':');
    push2(&mut text, date.get_minutes());
    el.set_text_content(Some(&text));
}

pub(super) fn push2(out: &mut String, n: u32) {
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (what `toISOString` gives for
/// years 0–9999), computed here to save two boundary crossings per line.
pub fn iso_time(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = String::with_capacity(24);
    let y = year.clamp(0, 9999) as u32;
    push2(&mut out, y / 100);
    push2(&mut out, y % 100);
    for (sep, n) in [
        ('-', month),
        ('-', day),
        ('T', rem / 3_600_000),
        (':', rem / 60_000 % 60),
        (':', rem / 1000 % 60),
    ] {
        out.push(sep);
        push2(&mut out, n as u32);
    }
    out.push('.');
    let milli = (rem % 1000) as u32;
    out.push(char::from(b'0' + (milli / 100) as u8));
    push2(&mut out, milli % 100);
    out.push('Z');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso_time_matches_to_iso_string() {
        // The datetime attribute is exactly what Date.prototype.toISOString gives.
        assert_eq!(super::iso_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::iso_time(1_700_000_060_000),
            "2023-11-14T22:14:20.000Z"
        );
        assert_eq!(super::iso_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(super::iso_time(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            super::iso_time(253_402_300_799_999),
            "9999-12-31T23:59:59.999Z"
        );
    }
}
