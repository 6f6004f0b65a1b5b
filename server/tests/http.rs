// Proves the HTTP surface: config endpoint with CORS and its errors, asset serving, console, health.
mod common;

use common::*;

fn config_path(org: &str, name: &str) -> String {
    format!(
        "/embeddedservice/v1/embedded-service-config?orgId={org}&esConfigName={name}&language=en_US"
    )
}

#[tokio::test]
// An allowed origin gets the deployment config, cacheable, with its origin echoed for CORS.
async fn config_endpoint_serves_deployment_with_cors() {
    let s = Server::start(&config(1)).await;
    let r = s.get(&config_path(ORG, DEPLOYMENT), Some(ORIGIN)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(r.header("cache-control"), Some("public, max-age=60"));
    assert_eq!(r.header("vary"), Some("Origin"));
    let body = r.json();
    assert_eq!(body["orgId"], ORG);
    assert_eq!(body["deploymentName"], DEPLOYMENT);
    assert_eq!(body["protocolVersion"], 1);
    assert_eq!(body["branding"]["title"], "Test chat");
    assert_eq!(
        body["branding"]["buttonColor"], "#0b5cab",
        "unset branding fields get defaults"
    );
}

#[tokio::test]
// Unknown org and unknown deployment name are 404 unknown_deployment, saying which one it is.
async fn unknown_deployment_is_404_and_says_which_part() {
    let s = Server::start(&config(1)).await;
    let r = s
        .get(&config_path("00D000000000002", DEPLOYMENT), Some(ORIGIN))
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "unknown_deployment");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown org id")
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "no deployment of that org allows the page: the refusal is opaque to it"
    );
    let r = s.get(&config_path(ORG, "Nope"), Some(ORIGIN)).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some(ORIGIN),
        "a page the org allows reads why"
    );
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no deployment named \"Nope\"")
    );
    let r = s
        .get(
            "/embeddedservice/v1/embedded-service-config?orgId=x",
            Some(ORIGIN),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "bad_frame");
}

#[tokio::test]
// A disallowed origin gets 403 origin_not_allowed over HTTP and no WebSocket upgrade.
async fn disallowed_origin_is_refused_over_http_and_websocket() {
    let s = Server::start(&config(1)).await;
    let r = s.get(&config_path(ORG, DEPLOYMENT), Some(EVIL)).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "origin_not_allowed");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(EVIL) && message.contains(DEPLOYMENT),
        "{message}"
    );
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "a foreign page cannot read the refusal"
    );
    assert!(
        s.get(
            &config_path(ORG, DEPLOYMENT),
            Some("https://shop.example.com")
        )
        .await
        .status
            == 200
    );

    assert_eq!(
        Ws::connect(s.addr, &visitor_path(), Some(EVIL)).await.err(),
        Some(403)
    );
    let unknown = format!("/embeddedservice/v1/ws?orgId={ORG}&esConfigName=Nope");
    assert_eq!(
        Ws::connect(s.addr, &unknown, Some(ORIGIN)).await.err(),
        Some(404)
    );
    assert!(
        Ws::connect(s.addr, &visitor_path(), Some(ORIGIN))
            .await
            .is_ok()
    );
}

#[tokio::test]
// Widget files are served under any `.../assets/js/` prefix, with aliases, types and no traversal.
async fn assets_are_served_from_the_widget_dir() {
    let s = Server::start(&config(1)).await;
    std::fs::write(s.widget_dir().join("bootstrap.min.js"), "/* loader */").unwrap();
    std::fs::write(s.widget_dir().join("embedded_messaging_bg.wasm"), b"\0asm").unwrap();
    std::fs::write(s.widget_dir().join("embedded_messaging.d.ts"), "export {}").unwrap();
    std::fs::write(s.dir.path().join("secret.txt"), "secret").unwrap();

    for path in [
        "/ESWDemo1700000000000/assets/js/bootstrap.min.js",
        "/assets/js/init.js",
        "/x/assets/js/init.min.js",
    ] {
        let r = s.get(path, Some(ORIGIN)).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "/* loader */"),
            "{path}"
        );
        assert_eq!(
            r.header("content-type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
    let etag = s
        .get("/assets/js/bootstrap.min.js", None)
        .await
        .header("etag")
        .unwrap()
        .to_string();
    let again = http_get_with(
        s.addr,
        "/assets/js/bootstrap.min.js",
        &[("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(
        (again.status, again.body.len()),
        (304, 0),
        "revalidation is a bodyless 304"
    );
    let wasm = s.get("/assets/js/embedded_messaging_bg.wasm", None).await;
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    let dts = s.get("/assets/js/embedded_messaging.d.ts", None).await;
    assert!(dts.header("content-type").unwrap().starts_with("text/"));

    let missing = s.get("/assets/js/nothing.js", None).await;
    assert_eq!(
        (missing.status, missing.text().as_str()),
        (404, "not found\n"),
        "generic: the widget directory is not told"
    );
    for bad in [
        "/assets/js/../secret.txt",
        "/assets/js/%2e%2e/secret.txt",
        "/assets/js/..%2fsecret.txt",
    ] {
        let r = s.get(bad, None).await;
        assert_eq!(r.status, 404, "{bad}");
        assert!(!r.text().contains("secret\n") && r.text() != "secret");
    }
}

#[tokio::test]
// The console page, its script and stylesheet are served, with a CSP that forbids inline code.
async fn console_and_health() {
    let s = Server::start(&config(1)).await;
    let page = s.get("/console", None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = page.text();
    assert!(html.contains("console.js") && html.contains("console.css"));
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );
    assert_eq!(
        s.get("/console/console.js", None)
            .await
            .header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(s.get("/console/console.css", None).await.status, 200);
    let health = s.get("/healthz", None).await;
    assert_eq!((health.status, health.text().as_str()), (200, "ok"));
}
