// Agent console: signs in on the agent socket, shows assigned conversations live, replies and
// ends sessions. No framework; every text from the network goes through textContent.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const PROTOCOL_VERSION = 1;

  const state = {
    ws: null,
    username: "",
    credential: "",
    signedIn: false,      // the server accepted us at least once; reconnects are automatic
    authed: false,        // the current connection got `welcome`
    wantOnline: false,    // what the agent chose; restored after a reconnect
    presence: "Offline",
    conversations: new Map(), // id -> { summary, entries: Map(seq -> entry), pending: Map(entryId -> text), unread, ended }
    selected: null,
    backoff: 500,
    retryTimer: null,
    pingTimer: null,
  };

  // ---- socket -------------------------------------------------------------------------

  function connect() {
    clearTimeout(state.retryTimer);
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/agent/ws");
    state.ws = ws;
    state.authed = false;
    setStatus(state.signedIn ? "Reconnecting…" : "Signing in…", "problem");
    ws.addEventListener("open", () => {
      send({ type: "hello", protocolVersion: PROTOCOL_VERSION, username: state.username, credential: state.credential });
    });
    ws.addEventListener("message", (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch { console.warn("console: ignoring a frame that is not JSON"); return; }
      onFrame(frame);
    });
    ws.addEventListener("close", () => {
      if (state.ws !== ws) return;
      state.ws = null;
      clearInterval(state.pingTimer);
      if (!state.signedIn) { showSignin("Cannot reach the server."); return; }
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
        $("who").textContent = `${f.displayName} (${f.username}, capacity ${f.capacity})`;
        $("signin").hidden = true;
        $("workspace").hidden = false;
        $("presence").hidden = false;
        send({ type: "setPresence", presence: state.wantOnline ? "Online" : "Offline" });
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
        if (state.selected !== c.summary.conversationId && f.entry.sender.role === "EndUser") c.unread += 1;
        renderList();
        if (state.selected === c.summary.conversationId) renderThread();
        break;
      }
      case "ack":
        break; // the entry itself arrives on the same socket and replaces the pending bubble
      case "released": {
        const c = state.conversations.get(f.conversationId);
        if (c) { c.ended = true; c.summary.status = "Ended"; }
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
    // Refused at sign-in (also on a reconnect, e.g. after a config change): ask again.
    if (!state.authed && (f.code === "unauthorized" || f.code === "unsupported_version")) {
      const ws = state.ws;
      state.ws = null;
      ws?.close();
      showSignin(f.code === "unauthorized" ? "Wrong username or credential." : "This console does not match the server; reload the page.");
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
      c = { summary: { conversationId: id, status: "New" }, entries: new Map(), pending: new Map(), failed: new Set(), unread: 0, ended: false };
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
    setStatus(online ? "Online" : "Offline", online ? "online" : "offline");
    const b = $("presence");
    b.setAttribute("aria-pressed", String(online));
    b.textContent = online ? "Go offline" : "Go online";
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
      const button = el("button", { type: "button", "data-testid": "console-conversation", "data-conversation-id": id });
      if (state.selected === id) button.setAttribute("aria-current", "true");
      button.append(el("span", {}, visitorName(c)));
      const last = lastMessage(c);
      button.append(el("span", { className: "sub" }, last ? textOf(last).slice(0, 60) : "No messages yet"));
      button.append(el("span", { className: "sub" }, c.summary.status));
      if (c.unread) button.append(el("span", { className: "unread" }, `${c.unread} unread`));
      button.addEventListener("click", () => select(id));
      const li = el("li");
      li.append(button);
      ul.append(li);
    }
    $("no-conversations").hidden = items.length > 0;
  }

  function select(id) {
    state.selected = id;
    const c = state.conversations.get(id);
    if (c) c.unread = 0;
    $("notice").textContent = "";
    renderList();
    renderThread();
    $("input").focus();
  }

  function renderThread() {
    const c = state.selected && state.conversations.get(state.selected);
    const list = $("messages");
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.replaceChildren();
    if (!c) {
      $("thread-heading").textContent = "Select a conversation";
      setComposer(false);
      return;
    }
    $("thread-heading").textContent = `${visitorName(c)} · ${c.summary.status}`;
    for (const e of [...c.entries.values()].sort((a, b) => a.seq - b.seq)) list.append(entryItem(e));
    for (const [entryId, text] of c.pending) {
      const li = el("li", { "data-testid": "console-message", "data-role": "Agent", "data-status": c.failed.has(entryId) ? "failed" : "pending" });
      li.append(el("div", { className: "meta" }, c.failed.has(entryId) ? "Not sent" : "Sending…"), el("p", { className: "text" }, text));
      list.append(li);
    }
    if (nearBottom) list.scrollTop = list.scrollHeight;
    setComposer(!c.ended);
  }

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
    return li;
  }

  function textOf(e) {
    const p = e.entryPayload;
    switch (p.entryType) {
      case "Message": return p.abstractMessage?.staticContent?.text ?? "(unsupported message)";
      case "ParticipantChanged": return p.entries.map((x) => `${x.displayName} ${x.operation === "add" ? "joined" : "left"}`).join(", ");
      case "SessionStatusChanged": return `Session ${p.sessionStatus}`;
      case "RoutingResult": return p.failureType ? `Routing failed: ${p.failureType}` : "Routed to the queue";
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
  }

  function showSignin(message) {
    state.signedIn = false;
    $("signin").hidden = false;
    $("workspace").hidden = true;
    $("presence").hidden = true;
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
    state.credential = $("credential").value;
    if (!state.username || !state.credential) { $("signin-error").textContent = "Enter a username and a credential."; return; }
    $("signin-error").textContent = "";
    $("signin-button").disabled = true;
    connect();
  });

  $("presence").addEventListener("click", () => {
    state.wantOnline = state.presence !== "Online";
    send({ type: "setPresence", presence: state.wantOnline ? "Online" : "Offline" });
  });

  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const c = state.selected && state.conversations.get(state.selected);
    const text = $("input").value;
    if (!c || c.ended || !text.trim()) return;
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
})();
