// embedded-messaging link: one visitor connection per browser. The tab holding the Web Lock
// named after the storage key (the leader) owns the WebSocket; the other tabs of the site reach
// the server through it over a BroadcastChannel of the same name. The widget (src/socket.rs)
// sees one socket either way. Bundled inside the loader's IIFE, so nothing here is global.

/**
 * What the leader does with a tab's `hello` on its socket `hub` ({ hello: the hello text that
 * opened it or null, fresh: that hello had no credential, welcome: the answer or null }):
 * "send" it first (opening a socket if none), "answer" with the welcome the socket got, "wait"
 * for the welcome on its way, or "renew" the socket (closing it sends every tab through a
 * reconnect, whose first hello opens the next one). Renewed: a tab asking again after a silent
 * socket (`again`), and a new visitor's hello (after clearSession) on an old visitor's socket.
 * Any other credential shares the socket's identity: one visitor per browser, as the tabs'
 * shared record already says.
 */
function emHelloRoute(hub, credential, again) {
  if (hub.hello === null) return "send";
  if (again || (!credential && !hub.fresh)) return "renew";
  return hub.welcome === null ? "wait" : "answer";
}

/**
 * The connection of one widget. `name` is the lock and channel name ("" = not shared: this tab
 * is its own leader); `onEvent(kind, text)` gets 0 opened, 1 a frame's text, 2 closed,
 * 3 this tab leads, 4 another tab leads. Methods: `connect()` (a new link: opened soon after),
 * `send(text)`, `disconnect()`, `reset()` (clearSession: a new visitor needs a new socket),
 * `free()` (releases the lock, closes channel and socket).
 */
function emLink(url, name, onEvent) {
  var leader = false, known = false, freed = false;
  var linked = false, wanted = false, again = false, generation = 0;
  var channel = null, abort = null, release = null;
  // The leader's socket and what was said on it.
  var ws = null, open = false, hub = { hello: null, fresh: false, welcome: null };

  function peek(text) {
    try { return JSON.parse(text) || {}; } catch (e) { return {}; }
  }

  // This tab's own link: opened asynchronously, like a real socket.
  function openLink() {
    if (!wanted || !known || linked) return;
    linked = true;
    var g = generation;
    Promise.resolve().then(function () { if (g === generation && linked) onEvent(0); });
  }

  function dropLink(notify) {
    generation++;
    if (linked && notify) onEvent(2);
    linked = false;
  }

  // Leader: a frame from the server goes to this tab and every other.
  function deliver(text) {
    if (channel) channel.postMessage({ f: text });
    if (linked) onEvent(1, text);
  }

  function closeSocket() {
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.close();
    }
    ws = null;
    open = false;
    hub = { hello: null, fresh: false, welcome: null };
  }

  function socketClosed() {
    if (freed) return;
    closeSocket();
    if (channel) channel.postMessage({ c: 1 });
    dropLink(true);
  }

  function openSocket() {
    try {
      ws = new WebSocket(url);
    } catch (e) {
      console.error("[embedded-messaging] cannot open the messaging socket: " + e);
      return Promise.resolve().then(socketClosed);
    }
    ws.onopen = function () {
      open = true;
      if (hub.hello !== null) ws.send(hub.hello);
    };
    ws.onmessage = function (e) {
      if (typeof e.data !== "string") return;
      var frame = peek(e.data);
      if (frame.type === "welcome") hub.welcome = e.data;
      // An unknown credential: the next hello (without one) goes out on the same socket.
      if (frame.type === "error" && frame.code === "unauthorized" && hub.welcome === null) hub.hello = null;
      deliver(e.data);
    };
    ws.onclose = socketClosed;
  }

  // Leader: a frame from a tab (this one or another).
  function fromTab(text, askedAgain) {
    var frame = peek(text);
    if (frame.type !== "hello") {
      if (open && hub.welcome !== null) ws.send(text);
      return;
    }
    var route = emHelloRoute(hub, frame.credential, askedAgain);
    if (route === "renew") {
      socketClosed();
    } else if (route === "answer") {
      deliver(hub.welcome);
    } else if (route === "send") {
      hub.hello = text;
      hub.fresh = !frame.credential;
      if (!ws) openSocket();
      else if (open) ws.send(text);
    }
  }

  function lead() {
    if (freed) return;
    leader = known = true;
    if (channel) channel.postMessage({ l: 1 });
    // A follower's link went through the old leader: the widget reconnects through this tab.
    dropLink(false);
    onEvent(3);
    openLink();
    return new Promise(function (resolve) { release = resolve; });
  }

  function follow() {
    known = true;
    dropLink(false);
    onEvent(4);
    openLink();
  }

  if (name && typeof BroadcastChannel === "function" && navigator.locks) {
    channel = new BroadcastChannel(name);
    channel.onmessage = function (e) {
      var m = e.data || {};
      if (leader) {
        if (typeof m.s === "string") fromTab(m.s, m.a);
        else if (m.r) socketClosed();
      } else if (typeof m.f === "string") {
        if (linked) onEvent(1, m.f);
      } else if (m.c) {
        dropLink(true);
      } else if (m.l && known) {
        follow();
      }
    };
    abort = new AbortController();
    navigator.locks.request(name, { ifAvailable: true }, function (lock) {
      if (lock) return lead();
      if (freed) return;
      follow();
      // Next in line: granted the moment the leader's tab closes.
      navigator.locks.request(name, { signal: abort.signal }, lead).catch(function () {});
    }).catch(function () {});
  } else {
    lead();
  }

  return {
    connect: function () {
      again = linked;
      dropLink(false);
      wanted = true;
      openLink();
    },
    send: function (text) {
      if (!linked) return;
      var askedAgain = again && text.indexOf('"type":"hello"') > 0;
      if (askedAgain) again = false;
      if (leader) fromTab(text, askedAgain);
      else channel.postMessage({ s: text, a: askedAgain });
    },
    // clearSession: the socket speaks for the old visitor and must not answer the next hello
    // with its welcome; closing it sends every tab through a fresh one.
    reset: function () {
      if (leader) socketClosed();
      else if (channel) channel.postMessage({ r: 1 });
    },
    disconnect: function () {
      wanted = again = false;
      dropLink(false);
    },
    free: function () {
      freed = true;
      wanted = false;
      dropLink(false);
      closeSocket();
      if (abort) abort.abort();
      if (release) release();
      if (channel) channel.close();
    }
  };
}
