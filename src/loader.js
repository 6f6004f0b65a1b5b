// embedded-messaging loader: defines `window.embeddedservice_bootstrap` synchronously, checks
// `init`, loads the WebAssembly widget from this script's own URL and forwards API calls to it
// (calls made before Ready are queued, not dropped). Runs inside the bundle's IIFE with the
// wasm-bindgen glue's `wasm_bindgen` in scope; nothing else becomes global.
var EM_P = "[embedded-messaging] ";
var emScript = document.currentScript;
if (window.embeddedservice_bootstrap) {
  console.error(EM_P + "embeddedservice_bootstrap is already defined: the script " +
    ((emScript && emScript.src) || "bootstrap.min.js") +
    " was loaded twice. Remove the duplicate <script> tag; this copy does nothing.");
} else {
  (function () {
    var inline = typeof EM_WASM_BASE64 === "string";
    // The bundle replaces this name with the content-hashed one (`xtask/src/bundle.rs`).
    var EM_WASM_FILE = "embedded_messaging_bg.wasm";
    var wasmUrl = new URL(EM_WASM_FILE, (emScript && emScript.src) || document.baseURI);
    // Start downloading the wasm now, in parallel with the rest of the page.
    var wasmResponse = inline ? null : fetch(wasmUrl, { credentials: "omit" });
    if (wasmResponse) wasmResponse.catch(function () {});

    var handle = null;   // the Rust `Widget` once Ready
    var failure = null;  // why it will never be Ready
    var queue = [];      // calls waiting for Ready
    var initialized = false;

    function emit(name, detail) {
      window.dispatchEvent(new CustomEvent(name, { detail: detail }));
    }

    // Forward `method(args)` to the widget, or queue it until Ready. Always a Promise.
    function whenReady(name, method, args) {
      if (handle) return Promise.resolve().then(function () { return handle[method].apply(handle, args); });
      if (failure) return Promise.reject(name + ": " + failure);
      console.info(EM_P + name + " was called before onEmbeddedMessagingReady; it is queued until Ready.");
      return new Promise(function (resolve, reject) {
        queue.push({ name: name, method: method, args: args, resolve: resolve, reject: reject });
      });
    }

    // A call with no answer to wait for (returns undefined): run now, or queue until Ready.
    function later(name, method, args) {
      whenReady(name, method, args).catch(function (e) { console.error(EM_P + e); });
    }

    // Before Ready, showing/hiding the button is a setting for when it is created.
    function buttonVisibility(hidden) {
      if (handle) return hidden ? handle.hideChatButton() : handle.showChatButton();
      if (failure) return false;
      api.settings.hideChatButtonOnLoad = hidden;
      return true;
    }

    function ready(widget) {
      handle = widget;
      queue.splice(0).forEach(function (q) { whenReady(q.name, q.method, q.args).then(q.resolve, q.reject); });
    }

    function failed(message) {
      failure = message;
      queue.splice(0).forEach(function (q) { q.reject(q.name + ": " + message); });
    }

    function isHttpUrl(value) {
      if (typeof value !== "string" || !value) return false;
      try {
        var u = new URL(value);
        return u.protocol === "https:" || u.protocol === "http:";
      } catch (e) {
        return false;
      }
    }

    function show(value) {
      try { return JSON.stringify(value); } catch (e) { return String(value); }
    }

    // The first problem with the `init` arguments, or "" when they are fine.
    function check(orgId, deploymentName, siteURL, snippetConfig) {
      if (typeof orgId !== "string" || !/^00D[a-zA-Z0-9]{12}([a-zA-Z0-9]{3})?$/.test(orgId))
        return "orgId must be the 15- or 18-character org id that starts with 00D (got " + show(orgId) + ").";
      if (typeof deploymentName !== "string" || !deploymentName)
        return "deploymentName must be the non-empty API name of the deployment (got " + show(deploymentName) + ").";
      if (!isHttpUrl(siteURL))
        return "siteURL must be an absolute http(s) URL, the deployment's site URL (got " + show(siteURL) + ").";
      if (!snippetConfig || typeof snippetConfig !== "object")
        return "snippetConfig must be an object such as { scrt2URL: \"https://messaging.example.com\" } (got " + show(snippetConfig) + ").";
      if (!isHttpUrl(snippetConfig.scrt2URL))
        return "snippetConfig.scrt2URL must be the absolute http(s) URL of the messaging server (got " + show(snippetConfig.scrt2URL) + ").";
      return "";
    }

    function decode(b64) {
      if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(b64);
      var bin = atob(b64), bytes = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      return bytes;
    }

    function load() {
      if (inline) {
        try {
          wasm_bindgen.initSync({ module: decode(EM_WASM_BASE64) });
          return Promise.resolve();
        } catch (e) {
          return Promise.reject(e);
        }
      }
      return wasm_bindgen({ module_or_path: wasmResponse });
    }

    // Compile and instantiate now, while the page goes on to `onload` and `init`.
    var loaded = load();
    loaded.catch(function () {});

    function init(orgId, deploymentName, siteURL, snippetConfig) {
      if (initialized) {
        console.error(EM_P + "embeddedservice_bootstrap.init: already initialized; the second call is ignored.");
        return;
      }
      var problem = check(orgId, deploymentName, siteURL, snippetConfig);
      if (problem) {
        var message = "embeddedservice_bootstrap.init: " + problem;
        console.error(EM_P + message);
        emit("onEmbeddedMessagingInitError", { code: "invalid_argument", message: message });
        throw new Error(message);
      }
      initialized = true;
      var settings = api.settings;
      settings.snippetConfig = snippetConfig;
      Object.keys(snippetConfig).forEach(function (key) {
        if (settings[key] === undefined) settings[key] = snippetConfig[key];
      });
      var args = { orgId: orgId, deploymentName: deploymentName, siteURL: siteURL, scrt2URL: snippetConfig.scrt2URL };
      // The deployment config, fetched while the wasm compiles; the widget reads the answer.
      var configUrl = snippetConfig.scrt2URL.replace(/\/+$/, "") +
        "/embeddedservice/v1/embedded-service-config?orgId=" + encodeURIComponent(orgId) +
        "&esConfigName=" + encodeURIComponent(deploymentName) +
        "&language=" + encodeURIComponent(settings.language || "en_US");
      var config = fetch(configUrl, { mode: "cors", credentials: "omit" }).then(function (r) {
        return r.text().then(function (body) { return { status: r.status, body: body }; });
      }, function (e) {
        return { error: (e && e.message) || String(e) };
      });
      // The widget mounts in <body>: wait for it when the script runs in <head>.
      var body = document.body ? null : new Promise(function (resolve) {
        document.addEventListener("DOMContentLoaded", resolve, { once: true });
      });
      loaded.then(function () {
        return Promise.all([config, body]).then(function (got) {
          var widget;
          try {
            widget = wasm_bindgen.start(settings, args, got[0]);
          } catch (e) {
            // The widget already logged it and fired onEmbeddedMessagingInitError.
            failed((e && e.message) || String(e));
            return;
          }
          ready(widget);
        });
      }, function (e) {
        var message = "could not load the widget's WebAssembly from " + wasmUrl + ": " + ((e && e.message) || e) +
          ". Serve " + EM_WASM_FILE + " next to bootstrap.min.js as application/wasm, with CORS " +
          "(Access-Control-Allow-Origin: * or this page's origin: it is fetched cross-origin), and allow " +
          "'wasm-unsafe-eval' in the page's script-src.";
        console.error(EM_P + message);
        emit("onEmbeddedMessagingInitError", { code: "wasm_load_failed", message: message });
        failed(message);
      });
    }

    var api = {
      settings: {},
      init: init,
      utilAPI: {
        launchChat: function () { return whenReady("utilAPI.launchChat", "launchChat", []); },
        sendTextMessage: function (text) { return whenReady("utilAPI.sendTextMessage", "sendTextMessage", [text]); },
        minimizeChat: function () { return whenReady("utilAPI.minimizeChat", "minimizeChat", []); },
        setSessionContext: function (obj) { later("utilAPI.setSessionContext", "setSessionContext", [obj]); },
        showChatButton: function () { return buttonVisibility(false); },
        hideChatButton: function () { return buttonVisibility(true); },
        removeAllComponents: function () {
          return whenReady("utilAPI.removeAllComponents", "removeAllComponents", []).then(function () {
            if (handle) handle.free();
            handle = null;
            failure = "the widget was removed by utilAPI.removeAllComponents()";
            if (window.embeddedservice_bootstrap === api) delete window.embeddedservice_bootstrap;
          });
        }
      }
    };
    api.userVerificationAPI = {
      // A boolean at once: before Ready the token is queued (the answer is logged if refused).
      setIdentityToken: function (t) {
        if (handle) return handle.setIdentityToken(t);
        if (failure) return false;
        later("userVerificationAPI.setIdentityToken", "setIdentityToken", [t]);
        return true;
      },
      clearSession: function (end) { return whenReady("userVerificationAPI.clearSession", "clearSession", [end]); }
    };
    // prechatAPI: each method passes its index (PRECHAT_API in src/state/prechat.rs) and its
    // argument as JSON text (undefined if it cannot be written); the widget checks the rest.
    api.prechatAPI = {};
    ["setHiddenPrechatFields", "removeHiddenPrechatFields", "setVisiblePrechatFields", "unsetVisiblePrechatFields"].forEach(function (m, i) {
      api.prechatAPI[m] = function (arg) {
        var json;
        try { json = JSON.stringify(arg); } catch (e) {}
        later("prechatAPI." + m, "prechat", [i, json]);
      };
    });
    api.autoResponseAPI = {
      setAutoResponseParameters: function (obj) { later("autoResponseAPI.setAutoResponseParameters", "setAutoResponseParameters", [obj]); },
      removeAutoResponseParameters: function (names) { later("autoResponseAPI.removeAutoResponseParameters", "removeAutoResponseParameters", [names]); }
    };
    // Names from the older product: using one says what replaced it instead of failing quietly.
    function legacy(target, name, owner, instead) {
      var say = function () {
        console.error(EM_P + owner + name + " is the legacy Embedded Service (embedded_svc) API and does nothing here; " + instead);
      };
      Object.defineProperty(target, name, { configurable: true, enumerable: false, get: function () { say(); }, set: say });
    }
    var EVENTS = "listen with window.addEventListener(\"onEmbeddedMessagingReady\", ...) and the other onEmbeddedMessaging* events.";
    legacy(api, "addEventHandler", "embeddedservice_bootstrap.", EVENTS);
    legacy(api, "displayHelpButton", "embeddedservice_bootstrap.", "use utilAPI.showChatButton() / hideChatButton().");
    legacy(api.settings, "displayHelpButton", "embeddedservice_bootstrap.settings.", "use settings.hideChatButtonOnLoad.");
    legacy(api.settings, "enabledFeatures", "embeddedservice_bootstrap.settings.", "Messaging for Web has one feature set; remove it.");
    legacy(api.settings, "entryFeature", "embeddedservice_bootstrap.settings.", "Messaging for Web has one feature set; remove it.");
    window.embeddedservice_bootstrap = api;
  })();
}
