// Agent console: signs in on the agent socket, sets presence, shows assigned conversations live
// with their context, replies (with a typing indicator), transfers and ends sessions, signs out.
// No framework; every text from the network goes through textContent.
//
// The password is sent once, in the sign-in `hello`, and never kept: the server's `welcome`
// gives a session token, which reconnects use. The token is in sessionStorage, so reloading
// the tab stays signed in while closing it forgets the token, and other tabs sign in on their own.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const PROTOCOL_VERSION = 1;
  const SESSION_KEY = "em.console.session";
  const ACCESS_REVOKED = 4005; // close code: signed out, or the account changed on the server

  const state = {
    ws: null,
    username: "",
    token: "",            // the session token; never the password
    signedIn: false,      // the server accepted us at least once; reconnects are automatic
    withPassword: false,  // the current connection signs in with the form's password
    refusal: "",          // why the last sign-in was refused, shown on the form
    authed: false,        // the current connection got `welcome`
    wantPresence: "Offline", // what the agent chose; restored after a reconnect
    presence: "Offline",
    agents: [],           // other agents, for transfers
    queues: [],
    typingIn: null,       // the conversation we told the visitor we type in
    typingTimer: null,
    conversations: new Map(), // id -> { summary, entries: Map(seq -> entry), pending: Map(entryId -> text), unread, ended }
    selected: null,
    backoff: 500,
    retryTimer: null,
    pingTimer: null,
  };

  // ---- socket -------------------------------------------------------------------------

  // `password` only for a sign-in from the form; reconnects use the session token.
  function connect(password) {
    clearTimeout(state.retryTimer);
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/agent/ws");
    state.ws = ws;
    state.authed = false;
    state.withPassword = password !== undefined;
    setStatus(state.signedIn ? "Reconnecting…" : "Signing in…", "problem");
    let secret = password;
    ws.addEventListener("open", () => {
      const proof = secret !== undefined ? { credential: secret } : { sessionToken: state.token };
      secret = undefined; // not kept once sent
      send({ type: "hello", protocolVersion: PROTOCOL_VERSION, username: state.username, ...proof });
    });
    ws.addEventListener("message", (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch { console.warn("console: ignoring a frame that is not JSON"); return; }
      onFrame(frame);
    });
    ws.addEventListener("close", (ev) => {
      if (state.ws !== ws) return;
      state.ws = null;
      clearInterval(state.pingTimer);
      if (ev.code === ACCESS_REVOKED) { signOutLocally("You were signed out; sign in again."); return; }
      if (!state.signedIn) { showSignin(state.refusal || "Cannot reach the server."); return; }
      const delay = Math.min(state.backoff, 10000) * (0.75 + Math.random() / 2);
      state.backoff = Math.min(state.backoff * 2, 10000);
      setStatus(`Disconnected; reconnecting in ${Math.max(1, Math.ceil(delay / 1000))} s…`, "problem");
      state.retryTimer = setTimeout(connect, delay);
    });
  }

  function send(frame) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) { state.ws.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function onFrame(f) {
    switch (f.type) {
      case "welcome":
        state.signedIn = true;
        state.authed = true;
        state.backoff = 500;
        state.refusal = "";
        if (f.sessionToken) state.token = f.sessionToken;
        $("credential").value = "";
        saveSession();
        $("signout").hidden = false;
        $("who").textContent = `${f.displayName} (${f.username}, capacity ${f.capacity})`;
        $("signin").hidden = true;
        $("workspace").hidden = false;
        $("presence").hidden = false;
        $("presence-label").hidden = false;
        state.agents = f.agents || [];
        state.queues = f.queues || [];
        renderTransferTargets();
        send({ type: "setPresence", presence: state.wantPresence });
        clearInterval(state.pingTimer);
        state.pingTimer = setInterval(() => send({ type: "ping" }), 25000);
        resendPending();
        break;
      case "presence":
        state.presence = f.presence;
        renderPresence();
        break;
      case "assigned": {
        const c = conversation(f.conversation.conversationId);
        c.summary = f.conversation;
        c.ended = f.conversation.status === "Ended";
        c.gone = false;
        c.readSent = 0; // a new connection (or server) may not know what was read
        for (const e of f.history) addEntry(c, e);
        if (!state.selected) state.selected = c.summary.conversationId;
        renderList();
        if (state.selected === c.summary.conversationId) renderThread();
        break;
      }
      case "entry": {
        const c = state.conversations.get(f.entry.conversationId);
        if (!c) break; // not (yet) ours: `assigned` will carry it in its history
        addEntry(c, f.entry);
        if (f.entry.sender.role === "EndUser") c.visitorTyping = false;
        if (state.selected !== c.summary.conversationId && f.entry.sender.role === "EndUser") c.unread += 1;
        renderList();
        if (state.selected === c.summary.conversationId) renderThread();
        break;
      }
      case "history": {
        // An older page of a conversation (asked for by "Load earlier messages").
        const c = state.conversations.get(f.conversationId);
        if (!c) break;
        c.historyAsked = false;
        for (const e of f.entries) addEntry(c, e);
        if (state.selected === f.conversationId) renderThread({ keepTop: true });
        break;
      }
      case "context": {
        // The visitor's page or fields changed: only the context panel, not the thread.
        const c = state.conversations.get(f.conversationId);
        if (c) { c.summary.context = f.context; if (state.selected === f.conversationId) renderContext(c); }
        break;
      }
      case "typing": {
        const c = state.conversations.get(f.conversationId);
        if (c) { c.visitorTyping = f.typing; if (state.selected === f.conversationId) renderTyping(c); }
        break;
      }
      case "ack":
        break; // the entry itself arrives on the same socket and replaces the pending bubble
      case "released": {
        // Ended, or transferred away: either way no longer ours to answer.
        const c = state.conversations.get(f.conversationId);
        if (c) { c.gone = true; if (c.summary.status !== "Ended") c.summary.status = "Transferred"; }
        renderList();
        renderThread();
        break;
      }
      case "error":
        onError(f);
        break;
      default:
        break; // pong, and frame types from a newer server, are ignored
    }
  }

  function onError(f) {
    // Refused at sign-in (also on a reconnect with a token that expired or was revoked): ask again.
    if (!state.authed && (f.code === "unauthorized" || f.code === "unsupported_version")) {
      const ws = state.ws;
      state.ws = null;
      ws?.close();
      const message = f.code !== "unauthorized" ? "This console does not match the server; reload the page."
        : state.withPassword ? "Wrong username or credential." : "Your session ended; sign in again.";
      signOutLocally(message);
      return;
    }
    // Too many failed sign-ins: a reconnect waits and tries again; a person is told how long.
    if (!state.authed && f.code === "rate_limited") {
      const wait = Math.max(1000, f.retryAfterMs || 0);
      if (state.signedIn && !state.withPassword) {
        const ws = state.ws;
        state.ws = null;
        ws?.close();
        setStatus(`Reconnecting in ${Math.ceil(wait / 1000)} s…`, "problem");
        state.retryTimer = setTimeout(() => connect(), wait);
      } else {
        state.refusal = `Too many attempts; try again in ${Math.ceil(wait / 1000)} s.`;
        const ws = state.ws;
        state.ws = null;
        ws?.close();
        showSignin(state.refusal);
      }
      return;
    }
    if (f.entryId) {
      for (const c of state.conversations.values()) {
        if (c.pending.has(f.entryId)) { c.failed.add(f.entryId); }
      }
      renderThread();
    }
    $("notice").textContent = f.message || f.code;
  }

  // ---- model --------------------------------------------------------------------------

  function conversation(id) {
    let c = state.conversations.get(id);
    if (!c) {
      c = { summary: { conversationId: id, status: "New" }, entries: new Map(), pending: new Map(), failed: new Set(), unread: 0, ended: false, gone: false };
      state.conversations.set(id, c);
    }
    return c;
  }

  function addEntry(c, e) {
    c.entries.set(e.seq, e); // keyed by seq: a replayed entry replaces itself, never duplicates
    c.pending.delete(e.identifier);
    c.failed.delete(e.identifier);
    if (e.entryPayload.entryType === "SessionStatusChanged") {
      c.summary.status = e.entryPayload.sessionStatus;
      c.ended = c.summary.status === "Ended";
    }
  }

  function resendPending() {
    for (const [id, c] of state.conversations) {
      for (const [entryId, text] of c.pending) send({ type: "sendMessage", conversationId: id, entryId, text });
    }
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // ---- view ---------------------------------------------------------------------------

  function el(tag, props = {}, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === "dataset") Object.assign(node.dataset, v);
      else if (k === "className") node.className = v;
      else node.setAttribute(k, v);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setStatus(text, kind) {
    const s = $("status");
    s.textContent = text;
    s.className = `status ${kind}`;
  }

  function renderPresence() {
    const online = state.presence === "Online";
    setStatus(state.presence, online ? "online" : "offline");
    const b = $("presence");
    b.setAttribute("aria-pressed", String(online));
    b.textContent = online ? "Go offline" : "Go online";
    $("presence-state").value = state.presence;
  }

  function renderTransferTargets() {
    const sel = $("transfer-target");
    sel.replaceChildren();
    for (const a of state.agents) sel.append(el("option", { value: `agent:${a.username}` }, `Agent: ${a.displayName}`));
    for (const q of state.queues) sel.append(el("option", { value: `queue:${q}` }, `Queue: ${q}`));
  }

  function renderContext(c) {
    const dl = $("context-list");
    dl.replaceChildren();
    const rows = [];
    if (c) {
      const ctx = c.summary.context || {};
      if (c.summary.queue) rows.push(["queue", "Queue", c.summary.queue]);
      if (ctx.page?.url) rows.push(["page.url", "Page", ctx.page.title ? `${ctx.page.title} (${ctx.page.url})` : ctx.page.url]);
      for (const [k, v] of Object.entries(ctx.prechatFields || {})) rows.push([`prechat.${k}`, `Pre-chat: ${k}`, v]);
      for (const [k, v] of Object.entries(ctx.hiddenFields || {})) rows.push([`hidden.${k}`, `Hidden: ${k}`, v]);
      for (const [k, v] of Object.entries(ctx.variables || {})) rows.push([`var.${k}`, `Bot: ${k}`, v]);
      for (const [k, v] of Object.entries(ctx.sessionContext || {})) rows.push([`session.${k}`, `Session: ${k}`, v]);
      if (ctx.verifiedSubject) rows.push(["verifiedSubject", "Verified identity", ctx.verifiedSubject]);
      rows.push(["visitor", "Visitor", c.summary.endUserId || ""]);
    }
    for (const [key, label, value] of rows) {
      dl.append(el("dt", {}, label), el("dd", { "data-testid": "console-context-item", "data-key": key }, value));
    }
    $("no-context").hidden = rows.length > 0;
  }

  function renderTyping(c) {
    $("typing").textContent = c && c.visitorTyping && !c.gone ? `${visitorName(c)} is typing…` : "";
  }

  function stopTyping() {
    clearTimeout(state.typingTimer);
    if (state.typingIn) send({ type: "typing", conversationId: state.typingIn, typing: false });
    state.typingIn = null;
  }

  function visitorName(c) {
    const id = c.summary.endUserId || "";
    return `Visitor ${id.slice(0, 8)}`;
  }

  function renderList() {
    const ul = $("conversations");
    ul.replaceChildren();
    const items = [...state.conversations.values()].sort((a, b) => lastTime(b) - lastTime(a));
    for (const c of items) {
      const id = c.summary.conversationId;
      const button = el("button", { type: "button", "data-testid": "console-conversation", "data-conversation-id": id, className: c.gone ? "gone" : "" });
      if (state.selected === id) button.setAttribute("aria-current", "true");
      button.append(el("span", {}, visitorName(c)));
      const last = lastMessage(c);
      button.append(el("span", { className: "sub" }, last ? textOf(last).slice(0, 60) : "No messages yet"));
      button.append(el("span", { className: "sub" }, c.summary.status));
      if (c.unread) button.append(el("span", { className: "unread", "data-testid": "console-unread" }, `${c.unread} unread`));
      button.addEventListener("click", () => select(id));
      const li = el("li");
      li.append(button);
      ul.append(li);
    }
    $("no-conversations").hidden = items.length > 0;
  }

  function select(id) {
    if (state.selected !== id) stopTyping();
    state.selected = id;
    const c = state.conversations.get(id);
    if (c) c.unread = 0;
    $("notice").textContent = "";
    renderList();
    renderThread();
    $("input").focus();
  }

  function renderThread({ keepTop = false } = {}) {
    const c = state.selected && state.conversations.get(state.selected);
    const list = $("messages");
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const fromBottom = list.scrollHeight - list.scrollTop;
    list.replaceChildren();
    renderContext(c);
    renderTyping(c);
    if (!c) {
      $("thread-heading").textContent = "Select a conversation";
      setComposer(false);
      return;
    }
    $("thread-heading").textContent = `${visitorName(c)} · ${c.summary.status}`;
    const sorted = [...c.entries.values()].sort((a, b) => a.seq - b.seq);
    // `assigned` carries the newest page; older pages come on request.
    if (sorted.length && sorted[0].seq > 1) list.append(loadEarlier(c, sorted[0].seq));
    for (const e of sorted) list.append(entryItem(e));
    for (const [entryId, text] of c.pending) {
      const li = el("li", { "data-testid": "console-message", "data-role": "Agent", "data-status": c.failed.has(entryId) ? "failed" : "pending" });
      li.append(el("div", { className: "meta" }, c.failed.has(entryId) ? "Not sent" : "Sending…"), el("p", { className: "text" }, text));
      list.append(li);
    }
    if (keepTop) list.scrollTop = list.scrollHeight - fromBottom; // older lines went in above
    else if (nearBottom) list.scrollTop = list.scrollHeight;
    setComposer(!c.ended && !c.gone);
    markRead(c);
  }

  function loadEarlier(c, oldest) {
    const li = el("li", { className: "earlier" });
    const button = el("button", { type: "button", "data-testid": "console-load-earlier" }, "Load earlier messages");
    button.disabled = Boolean(c.historyAsked);
    button.addEventListener("click", () => {
      if (send({ type: "history", conversationId: c.summary.conversationId, beforeSeq: oldest })) {
        c.historyAsked = true;
        button.disabled = true;
      }
    });
    li.append(button);
    return li;
  }

  // The agent has seen what the open conversation shows, if the tab is visible: the visitor
  // gets a read receipt. Only a newer seq is sent (the server relays only a rise anyway).
  function markRead(c) {
    if (c.gone || document.visibilityState !== "visible") return;
    let newest = 0;
    for (const seq of c.entries.keys()) newest = Math.max(newest, seq);
    if (newest > (c.readSent || 0) && send({ type: "markRead", conversationId: c.summary.conversationId, seq: newest })) c.readSent = newest;
  }
  document.addEventListener("visibilitychange", () => {
    const c = state.selected && state.conversations.get(state.selected);
    if (c) markRead(c);
  });

  function entryItem(e) {
    const role = e.sender.role === "EndUser" || e.sender.role === "Agent" || e.sender.role === "Chatbot" ? e.sender.role : "System";
    const li = el("li", { "data-testid": "console-message", "data-role": role, "data-seq": String(e.seq) });
    const time = new Date(e.transcriptedTimestamp);
    const stamp = el("time", { datetime: time.toISOString() }, time.toLocaleTimeString());
    if (role === "System") {
      // Status and routing notes: one quiet line.
      li.append(el("span", {}, `${textOf(e)} · `), stamp);
      return li;
    }
    const meta = el("div", { className: "meta" });
    meta.append(el("span", {}, e.senderDisplayName), stamp);
    li.append(meta, el("p", { className: "text" }, textOf(e)));
    const choices = e.entryPayload.abstractMessage?.choices?.optionItems;
    if (choices) {
      const row = el("div", { className: "choices" });
      for (const o of choices) row.append(el("span", {}, o.titleItem?.title ?? ""));
      li.append(row);
    }
    return li;
  }

  function textOf(e) {
    const p = e.entryPayload;
    switch (p.entryType) {
      case "Message": return p.abstractMessage?.staticContent?.text ?? p.abstractMessage?.choices?.text ?? "(unsupported message)";
      case "ParticipantChanged": return p.entries.map((x) => `${x.displayName} ${x.operation === "add" ? "joined" : "left"}`).join(", ");
      case "SessionStatusChanged": return `Session ${p.sessionStatus}`;
      case "RoutingResult": {
        if (p.failureType) return `Routing: ${p.failureType}`;
        const w = p.estimatedWaitTime;
        const kind = p.routingType && p.routingType !== "Initial" ? ` (${p.routingType})` : "";
        return w ? `Queued${kind}: position ${w.position}, about ${Math.ceil(w.estimatedWaitTimeInSeconds / 60)} min` : `Routed${kind}`;
      }
      default: return `(${p.entryType})`;
    }
  }

  function lastMessage(c) {
    let last = null;
    for (const e of c.entries.values()) if (e.entryPayload.entryType === "Message" && (!last || e.seq > last.seq)) last = e;
    return last;
  }

  function lastTime(c) {
    let t = 0;
    for (const e of c.entries.values()) t = Math.max(t, e.transcriptedTimestamp);
    return t;
  }

  function setComposer(enabled) {
    $("input").disabled = !enabled;
    $("send").disabled = !enabled;
    $("end").disabled = !enabled;
    const canTransfer = enabled && $("transfer-target").options.length > 0;
    $("transfer-target").disabled = !canTransfer;
    $("transfer").disabled = !canTransfer;
  }

  function saveSession() {
    try {
      sessionStorage.setItem(SESSION_KEY, JSON.stringify({ username: state.username, token: state.token, presence: state.wantPresence }));
    } catch { /* storage off: the session lasts as long as the page */ }
  }

  function loadSession() {
    try {
      const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      return s && typeof s.username === "string" && typeof s.token === "string" && s.token ? s : null;
    } catch { return null; }
  }

  // The token is void (signed out, expired, revoked) or given up: forget it and ask again.
  function signOutLocally(message) {
    state.token = "";
    try { sessionStorage.removeItem(SESSION_KEY); } catch { /* nothing stored */ }
    showSignin(message);
  }

  function showSignin(message) {
    state.signedIn = false;
    clearTimeout(state.retryTimer);
    clearInterval(state.pingTimer);
    $("signin").hidden = false;
    $("workspace").hidden = true;
    $("presence").hidden = true;
    $("presence-label").hidden = true;
    $("signout").hidden = true;
    $("signin-button").disabled = false;
    $("signin-error").textContent = message;
    setStatus(message, "problem");
  }

  // ---- events -------------------------------------------------------------------------

  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const username = $("username").value.trim();
    if (username !== state.username) {
      // Another agent on this page: forget the previous one's conversations.
      state.conversations.clear();
      state.selected = null;
      renderList();
      renderThread();
    }
    state.username = username;
    const password = $("credential").value;
    if (!state.username || !password) { $("signin-error").textContent = "Enter a username and a credential."; return; }
    $("signin-error").textContent = "";
    $("signin-button").disabled = true;
    state.refusal = "";
    connect(password);
  });

  // Sign-out: the server revokes the token and closes every socket signed in with it.
  $("signout").addEventListener("click", () => {
    const ws = state.ws;
    state.ws = null;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "signOut" }));
    else if (state.token) revokeLater(state.username, state.token);
    ws?.close(); // sent after the signOut frame
    state.conversations.clear();
    state.selected = null;
    state.wantPresence = "Offline";
    renderList();
    renderThread();
    signOutLocally("Signed out.");
  });

  // Signed out while disconnected: one more socket signs in with the token only to revoke it
  // (if the server is unreachable the token simply expires).
  function revokeLater(username, token) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/agent/ws");
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "hello", protocolVersion: PROTOCOL_VERSION, username, sessionToken: token })));
    ws.addEventListener("message", (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch { f = null; }
      if (f?.type === "welcome") ws.send(JSON.stringify({ type: "signOut" }));
      ws.close();
    });
  }

  $("presence").addEventListener("click", () => {
    state.wantPresence = state.presence === "Online" ? "Offline" : "Online";
    saveSession();
    send({ type: "setPresence", presence: state.wantPresence });
  });

  $("presence-state").addEventListener("change", () => {
    state.wantPresence = $("presence-state").value;
    saveSession();
    send({ type: "setPresence", presence: state.wantPresence });
  });

  $("transfer-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const c = state.selected && state.conversations.get(state.selected);
    const target = $("transfer-target").value;
    if (!c || c.gone || !target) return;
    stopTyping();
    const [kind, name] = [target.slice(0, target.indexOf(":")), target.slice(target.indexOf(":") + 1)];
    send(kind === "agent"
      ? { type: "transfer", conversationId: c.summary.conversationId, toAgent: name }
      : { type: "transfer", conversationId: c.summary.conversationId, toQueue: name });
  });

  // Typing indicator: started on the first keystroke, stopped after 3 s without one or on send.
  $("input").addEventListener("input", () => {
    const id = state.selected;
    if (!id) return;
    if (state.typingIn !== id) {
      stopTyping();
      if ($("input").value.trim()) {
        state.typingIn = id;
        send({ type: "typing", conversationId: id, typing: true });
      }
    }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(stopTyping, 3000);
  });

  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const c = state.selected && state.conversations.get(state.selected);
    const text = $("input").value;
    if (!c || c.ended || !text.trim()) return;
    stopTyping();
    const entryId = uuid();
    c.pending.set(entryId, text);
    send({ type: "sendMessage", conversationId: c.summary.conversationId, entryId, text });
    $("input").value = "";
    $("notice").textContent = "";
    renderThread();
  });

  $("input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("composer").requestSubmit();
    }
  });

  $("end").addEventListener("click", () => {
    if (state.selected) send({ type: "endSession", conversationId: state.selected });
  });

  // A reload of a signed-in tab reconnects with the stored token, without the form.
  const saved = loadSession();
  if (saved) {
    state.username = saved.username;
    state.token = saved.token;
    state.wantPresence = ["Online", "Busy", "Away", "Offline"].includes(saved.presence) ? saved.presence : "Offline";
    state.signedIn = true;
    $("username").value = saved.username;
    $("signin").hidden = true;
    connect();
  }
})();
