//! Start-up: read the deployment config the loader fetched, mount, fire Ready.

use em_protocol::{AuthMode, DeploymentConfig, ErrorCode, OutsideHours};
use js_sys::Reflect;
use wasm_bindgen::JsValue;
use web_sys::Element;

use crate::console;
use crate::error::Error;
use crate::events;
use crate::json::{self, Json};
use crate::runtime::Runtime;
use crate::settings::{self, InitArgs, Settings};
use crate::state::Prechat;
use crate::state::{Hours, Msg, State, WindowState};
use crate::storage;
use crate::view::{View, ViewConfig};
use crate::wire;

/// Everything from the loaded config to `onEmbeddedMessagingReady`. On error, the caller reports it.
///
/// The loader fetched the config (in parallel with the wasm) and waited for `<body>`;
/// `config` is `{ status, body }` (body as text) for an HTTP answer or `{ error }` when the
/// fetch failed.
pub fn boot(settings: Settings, args: InitArgs, config: &JsValue) -> Result<Runtime, Error> {
    let window = web_sys::window().ok_or_else(|| Error::Js("no window".into()))?;
    let doc = window
        .document()
        .ok_or_else(|| Error::Js("no document".into()))?;
    let config = read_config(&window, &args, config)?;
    let mount: Element = match settings.target_element.clone() {
        Some(el) => el,
        None => doc
            .body()
            .ok_or_else(|| Error::Js("the page has no <body>".into()))?
            .into(),
    };
    let b = &config.branding;
    let view_config = ViewConfig {
        title: b.title.clone(),
        greeting: b.greeting.clone(),
        button_label: b.button_label.clone(),
        placeholder: b.input_placeholder.clone(),
        hide_button: settings.hide_chat_button_on_load,
        position: settings.button_position.clone(),
        button_color: b.button_color.clone(),
        header_color: b.header_color.clone(),
        accent_color: b.accent_color.clone(),
        font_family: b.font_family.clone(),
        inline: settings.inline,
        links_same_tab: settings.links_same_tab,
    };
    let key = settings::storage_key(&args);
    let mut state = State::new(storage::load(&key), &b.agent_display_name);
    state.restore_outbox(storage::load_outbox(&key));
    state.seed((js_sys::Math::random() * f64::from(u32::MAX)) as u32);
    state.button_hidden = settings.hide_chat_button_on_load;
    state.verified = config.auth == AuthMode::Verified;
    state.hours = config.business_hours.map(|h| Hours {
        open: h.open,
        offline_button: h.outside_hours == OutsideHours::Offline,
    });
    state.inline = settings.inline;
    state.inline_launch = settings.inline && !settings.no_inline_auto_launch;
    state.participant_lines = settings.participant_lines;
    state.input_with_bot = settings.input_with_bot;
    if settings.minimize_on_new_tab
        && state.window == WindowState::Maximized
        && storage::first_page_in_tab()
    {
        state.window = WindowState::Minimized;
    }
    let hidden = state.launcher_hidden();
    // The pre-chat form; display `Session` brings back what this browser session submitted.
    let form = config.prechat_form.unwrap_or_default();
    let (prechat, values) = Prechat::new(form, storage::load_prechat(&key).as_deref());
    state.prechat = prechat;
    state.context.prechat = values;
    // The page the visitor chats from, for routing rules and the agent's context panel.
    state.context.page = Some(em_protocol::agent::PageContext {
        url: window.location().href().unwrap_or_default(),
        title: doc.title(),
    });
    let rt = Runtime::start(state, settings::socket_url(&args), key, |dispatch| {
        View::new(&doc, &mount, &view_config, dispatch)
    })?;
    if let Some(h) = &config.business_hours {
        rt.at(h.next_change_at, Msg::BusinessHoursBoundary);
    }
    let visibility = if hidden { "Hide" } else { "Show" };
    events::dispatch(
        "onEmbeddedMessagingButtonCreated",
        &events::to_js(&events::ButtonCreatedDetail {
            button_visibility: visibility,
        }),
    );
    // Ready (and what the stored record restores) in a microtask: by then the loader holds
    // the widget, so API calls from a Ready listener run at once instead of being queued.
    let (booted, dev_mode) = (rt.clone(), settings.dev_mode);
    wasm_bindgen_futures::spawn_local(async move {
        events::dispatch("onEmbeddedMessagingReady", &js_sys::Object::new());
        if dev_mode {
            console::info("ready.");
        }
        booted.dispatch(Msg::Booted);
    });
    Ok(rt)
}

/// Report a start-up failure: a console error and `onEmbeddedMessagingInitError {code, message}`.
pub fn report(err: &Error) {
    let message = err.message();
    console::error(message);
    events::dispatch(
        "onEmbeddedMessagingInitError",
        &events::to_js(&events::InitErrorDetail {
            code: err.code(),
            message,
        }),
    );
}

/// Classify the config answer; every failure says exactly what is wrong.
fn read_config(
    window: &web_sys::Window,
    args: &InitArgs,
    answer: &JsValue,
) -> Result<DeploymentConfig, Error> {
    let unreachable = |detail: &str| Error::Config {
        code: "server_unreachable",
        message: "Could not load the deployment config from ".to_owned()
            + &args.scrt2_url
            + " ("
            + detail
            + "). Check snippetConfig.scrt2URL in embeddedservice_bootstrap.init and that the messaging server is running and allows this origin (CORS).",
    };
    let field = |k: &str| Reflect::get(answer, &JsValue::from_str(k)).unwrap_or(JsValue::UNDEFINED);
    if let Some(e) = field("error").as_string() {
        return Err(unreachable(&e));
    }
    let status = field("status").as_f64().unwrap_or(0.0) as u16;
    let body = field("body")
        .as_string()
        .and_then(|t| Json::parse(&t))
        .unwrap_or(Json::Null);
    if status == 200 {
        return wire::read_config(&body).map_err(|f| {
            unreachable(&("unexpected config format: bad or missing \"".to_owned() + f + "\""))
        });
    }
    let status_text = "HTTP ".to_owned() + &json::int_string(i64::from(status));
    Err(match wire::read_config_error(&body) {
        Some((ErrorCode::UnknownDeployment, why)) => Error::Config {
            code: "unknown_deployment",
            message: "Unknown org or deployment: ".to_owned()
                + &args.scrt2_url
                + " says "
                + &why
                + ". Check the orgId (\""
                + &args.org_id
                + "\") and deploymentName (\""
                + &args.deployment_name
                + "\") passed to embeddedservice_bootstrap.init.",
        },
        Some((ErrorCode::OriginNotAllowed, _)) => Error::Config {
            code: "origin_not_allowed",
            message: "This page's origin (".to_owned()
                + &window.location().origin().unwrap_or_default()
                + ") is not allowed by deployment \""
                + &args.deployment_name
                + "\". Add it to the deployment's allowed origins on the server.",
        },
        Some((ErrorCode::DeploymentUnpublished, _)) => Error::Config {
            code: "deployment_unpublished",
            message: "Deployment \"".to_owned()
                + &args.deployment_name
                + "\" exists but is not published, so no button is shown. Publish it on the server (published = true).",
        },
        Some((_, message)) => unreachable(&(status_text + ": " + &message)),
        None => unreachable(&status_text),
    })
}
