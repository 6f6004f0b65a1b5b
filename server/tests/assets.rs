// Proves how widget files are sent: encoding chosen by Accept-Encoding, per-encoding ETags and
// 304s, year-long caching only for content-hashed names, and a 404 that tells nothing.
mod common;

use common::*;

const SCRIPT: &str = "/ESWDemo1700000000000/assets/js/bootstrap.min.js";
const WASM: &str = "embedded_messaging_bg.0123456789abcdef.wasm";

/// A widget directory as the build leaves it: the script and the hashed wasm, each with a
/// `.br` and a `.gz` beside it (distinct bytes, so the body says which file was sent).
async fn built() -> Server {
    let s = Server::start(&config(1)).await;
    let dir = s.widget_dir();
    for (name, body) in [
        ("bootstrap.min.js", &b"/* identity */"[..]),
        ("bootstrap.min.js.br", b"BR"),
        ("bootstrap.min.js.gz", b"GZ"),
        (WASM, b"\0asm\x01\0\0\0 identity"),
        (&format!("{WASM}.br"), b"WASM-BR"),
        (&format!("{WASM}.gz"), b"WASM-GZ"),
    ] {
        std::fs::write(dir.join(name), body).unwrap();
    }
    s
}

async fn get(s: &Server, path: &str, headers: &[(&str, &str)]) -> Response {
    http_get_with(s.addr, path, headers).await
}

#[tokio::test]
// br, gzip or identity, as Accept-Encoding asks, always with the script's own type.
async fn encoding_follows_accept_encoding() {
    let s = built().await;
    for (accept, body, encoding) in [
        (Some("gzip, deflate, br, zstd"), "BR", Some("br")),
        (Some("gzip"), "GZ", Some("gzip")),
        (Some("br;q=0, gzip"), "GZ", Some("gzip")),
        (Some("gzip;q=0.5, br;q=0.4"), "GZ", Some("gzip")),
        (Some("identity"), "/* identity */", None),
        (Some("br;q=0, gzip;q=0"), "/* identity */", None),
        (None, "/* identity */", None),
    ] {
        let headers: Vec<(&str, &str)> =
            accept.map(|a| ("Accept-Encoding", a)).into_iter().collect();
        let r = get(&s, SCRIPT, &headers).await;
        assert_eq!((r.status, r.text().as_str()), (200, body), "{accept:?}");
        assert_eq!(r.header("content-encoding"), encoding, "{accept:?}");
        assert_eq!(
            r.header("content-type"),
            Some("text/javascript; charset=utf-8"),
            "{accept:?}"
        );
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    }
}

#[tokio::test]
// A missing compressed file falls back to the next acceptable encoding, then to identity;
// with identity refused too, the answer is 406, not a coding the client refused.
async fn missing_compressed_file_falls_back() {
    let s = built().await;
    std::fs::remove_file(s.widget_dir().join("bootstrap.min.js.br")).unwrap();
    let r = get(&s, SCRIPT, &[("Accept-Encoding", "br, gzip")]).await;
    assert_eq!(
        (r.text().as_str(), r.header("content-encoding")),
        ("GZ", Some("gzip"))
    );
    let r = get(&s, SCRIPT, &[("Accept-Encoding", "br")]).await;
    assert_eq!(
        (r.text().as_str(), r.header("content-encoding")),
        ("/* identity */", None)
    );
    let r = get(&s, SCRIPT, &[("Accept-Encoding", "br, identity;q=0")]).await;
    assert_eq!(r.status, 406);
}

#[tokio::test]
// Each encoding has its own strong ETag; If-None-Match with it is a bodyless 304 for that
// encoding only, and a rewritten file gets a new tag.
async fn each_encoding_revalidates_with_its_own_etag() {
    let s = built().await;
    let mut tags = Vec::new();
    for accept in ["br", "gzip", "identity"] {
        let r = get(&s, SCRIPT, &[("Accept-Encoding", accept)]).await;
        let etag = r.header("etag").unwrap().to_string();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "strong: {etag}"
        );
        let again = get(
            &s,
            SCRIPT,
            &[("Accept-Encoding", accept), ("If-None-Match", &etag)],
        )
        .await;
        assert_eq!((again.status, again.body.len()), (304, 0), "{accept}");
        assert_eq!(again.header("etag"), Some(etag.as_str()));
        assert_eq!(again.header("cache-control"), Some("no-cache"));
        assert_eq!(again.header("vary"), Some("Accept-Encoding"));
        tags.push(etag);
    }
    assert!(
        tags[0] != tags[1] && tags[1] != tags[2] && tags[0] != tags[2],
        "{tags:?}"
    );
    // The brotli file's tag does not validate the gzip one.
    let r = get(
        &s,
        SCRIPT,
        &[("Accept-Encoding", "gzip"), ("If-None-Match", &tags[0])],
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, "GZ"));
    // A rebuilt script: the old tag no longer matches, the new bytes come with a new tag.
    std::fs::write(s.widget_dir().join("bootstrap.min.js.br"), b"BR, rebuilt").unwrap();
    let r = get(
        &s,
        SCRIPT,
        &[("Accept-Encoding", "br"), ("If-None-Match", &tags[0])],
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, "BR, rebuilt"));
    assert_ne!(r.header("etag"), Some(tags[0].as_str()));
}

#[tokio::test]
// The hashed wasm is cached for a year as application/wasm, compressed; the script (and its
// snippet aliases) stays revalidated.
async fn hashed_wasm_is_immutable_and_script_is_revalidated() {
    let s = built().await;
    let wasm = get(
        &s,
        &format!("/ESWDemo1700000000000/assets/js/{WASM}"),
        &[("Accept-Encoding", "gzip, deflate, br"), ("Origin", ORIGIN)],
    )
    .await;
    assert_eq!((wasm.status, wasm.text().as_str()), (200, "WASM-BR"));
    assert_eq!(wasm.header("content-type"), Some("application/wasm"));
    assert_eq!(wasm.header("content-encoding"), Some("br"));
    assert_eq!(
        wasm.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(wasm.header("access-control-allow-origin"), Some("*"));
    for path in [SCRIPT, "/assets/js/init.js", "/x/assets/js/init.min.js"] {
        let r = get(&s, path, &[("Accept-Encoding", "br")]).await;
        assert_eq!((r.status, r.text().as_str()), (200, "BR"), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{path}");
        assert!(r.header("etag").is_some(), "{path}");
    }
}

#[tokio::test]
// A missing widget file is a plain 404: the body names neither the file system nor the build.
async fn not_found_is_generic() {
    let s = built().await;
    let dir = s.widget_dir().display().to_string();
    for path in [
        "/assets/js/nothing.js",
        "/assets/js/embedded_messaging_bg.ffffffffffffffff.wasm",
        "/assets/js/../secret.txt",
        "/nothing/here",
    ] {
        let r = get(&s, path, &[("Accept-Encoding", "br")]).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (404, "not found\n"),
            "{path}"
        );
        assert!(!r.text().contains(&dir));
    }
}
