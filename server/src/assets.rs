//! Static files: the built widget under any `.../assets/js/` path (compressed, validated,
//! cached), and the demo site.

mod encoding;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::AppState;

/// Fallback of the main router: `<any prefix>/assets/js/<file>` from the widget directory,
/// so a snippet's `.../ESWName123/assets/js/bootstrap.min.js` works unchanged.
///
/// The build writes `<file>.br` and `<file>.gz` beside each file; the one the client prefers
/// is sent (`Vary: Accept-Encoding`) with a strong ETag of the bytes sent. Content-hashed
/// names (the wasm) are cached for a year; the rest (`bootstrap.min.js`, whose URL the
/// snippet fixes) are revalidated on each use (`no-cache`) and usually answered with a 304.
/// CORS `*` on every file: pages on other origins fetch the wasm with CORS.
pub async fn widget(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let Some(at) = path.find("/assets/js/") else {
        return not_found(path, &state.widget_dir);
    };
    let rel = match &path[at + "/assets/js/".len()..] {
        // The commercial snippet's other names for the loader.
        "init.js" | "init.min.js" => "bootstrap.min.js",
        rel => rel,
    };
    let Some(file) = safe_join(&state.widget_dir, rel) else {
        return not_found(path, &state.widget_dir);
    };
    if !tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_file()) {
        return not_found(path, &state.widget_dir);
    }
    let if_none_match = headers.get(header::IF_NONE_MATCH);
    for encoding in encoding::preferred(headers.get(header::ACCEPT_ENCODING)) {
        let (candidate, content_encoding) = match encoding.suffix_and_header() {
            Some((suffix, name)) => {
                let mut p = file.clone().into_os_string();
                p.push(suffix);
                (PathBuf::from(p), Some(name))
            }
            None => (file.clone(), None),
        };
        // A missing compressed file (or one that cannot be read): try the next encoding.
        let Some(served) = open(&candidate, if_none_match).await else {
            continue;
        };
        let (mut r, etag) = match served {
            Served::NotModified(etag) => (StatusCode::NOT_MODIFIED.into_response(), etag),
            Served::Body(bytes, etag) => {
                let mut r = ([(header::CONTENT_TYPE, content_type(&file))], bytes).into_response();
                if let Some(name) = content_encoding {
                    r.headers_mut()
                        .insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
                }
                (r, etag)
            }
        };
        let h = r.headers_mut();
        h.insert(header::ETAG, etag);
        h.insert(header::CACHE_CONTROL, cache_control(rel));
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        return r;
    }
    // The file exists, but the client refused every encoding we have of it.
    let mut r = (StatusCode::NOT_ACCEPTABLE, "not acceptable\n").into_response();
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    r
}

/// A generic 404 (the widget directory is the server's business); the detail goes to the log.
fn not_found(path: &str, widget_dir: &Path) -> Response {
    tracing::debug!(
        path,
        widget_dir = %widget_dir.display(),
        "no such widget file (is the widget built? `cargo xtask build`)"
    );
    (
        StatusCode::NOT_FOUND,
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        "not found\n",
    )
        .into_response()
}

/// `immutable` for a content-hashed name (`name.<16 hex>.ext`): its URL changes with its
/// bytes. Everything else is revalidated on each use.
fn cache_control(rel: &str) -> HeaderValue {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let segments: Vec<&str> = name.split('.').collect();
    let hashed = segments.len() >= 3
        && segments[1..segments.len() - 1]
            .iter()
            .any(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    HeaderValue::from_static(if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    })
}

/// What to send for one file: its bytes, or a 304 because the client holds them.
enum Served {
    Body(Vec<u8>, HeaderValue),
    NotModified(HeaderValue),
}

/// One file's identity as the cache knows it: a rewritten file gets a new tag.
#[derive(PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// Strong ETags by path, each valid while the file keeps its modification time and length,
/// so the bytes are hashed once per build rather than on every request. Bounded by the files
/// in the widget directory (only files that were read are added).
static ETAGS: LazyLock<Mutex<HashMap<PathBuf, (Stamp, HeaderValue)>>> =
    LazyLock::new(Default::default);

/// Opens `path` (the stamp is read from the open file, so it describes the bytes read) and
/// answers 304 from the cached tag without reading when `If-None-Match` holds it.
/// `None` when the file is missing or unreadable.
async fn open(path: &Path, if_none_match: Option<&HeaderValue>) -> Option<Served> {
    let mut f = tokio::fs::File::open(path).await.ok()?;
    let meta = f.metadata().await.ok()?;
    if !meta.is_file() {
        return None;
    }
    let stamp = Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    };
    let cached = lock_etags()
        .get(path)
        .filter(|(s, _)| *s == stamp)
        .map(|(_, e)| e.clone());
    if let Some(etag) = &cached
        && encoding::none_match(if_none_match, etag)
    {
        return Some(Served::NotModified(etag.clone()));
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).await.ok()?;
    let etag = match cached {
        Some(etag) => etag,
        None => {
            let etag = strong_etag(&bytes);
            lock_etags().insert(path.to_path_buf(), (stamp, etag.clone()));
            etag
        }
    };
    Some(if encoding::none_match(if_none_match, &etag) {
        Served::NotModified(etag)
    } else {
        Served::Body(bytes, etag)
    })
}

fn lock_etags() -> std::sync::MutexGuard<'static, HashMap<PathBuf, (Stamp, HeaderValue)>> {
    // A panic while holding it cannot leave the map inconsistent (single inserts).
    ETAGS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `"<first 128 bits of the SHA-256 of the bytes sent, hex>"`: each encoding has its own.
fn strong_etag(bytes: &[u8]) -> HeaderValue {
    let hex: String = Sha256::digest(bytes)[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// The site listener: files of `--site-dir`, with `http://127.0.0.1:8080` in HTML pages
/// replaced by the server's real base URL so the demo snippet works on any port.
pub async fn site(State(site): State<Site>, uri: Uri) -> Response {
    let rel = uri.path().trim_start_matches('/');
    let rel = if rel.is_empty() || rel.ends_with('/') {
        format!("{rel}index.html")
    } else {
        rel.to_string()
    };
    let Some(file) = safe_join(&site.dir, &rel) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let file = if tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_dir()) {
        file.join("index.html")
    } else {
        file
    };
    let Ok(bytes) = tokio::fs::read(&file).await else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let ty = content_type(&file);
    let body = if ty.starts_with("text/html") {
        String::from_utf8_lossy(&bytes)
            .replace("http://127.0.0.1:8080", &site.base_url)
            .into_bytes()
    } else {
        bytes
    };
    (
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// State of the site listener.
#[derive(Clone)]
pub struct Site {
    pub dir: PathBuf,
    /// The messaging server's base URL, e.g. `http://127.0.0.1:41234`.
    pub base_url: String,
}

/// `dir/rel` if every segment of `rel` is a plain name: no `..`, no hidden files, no
/// backslashes or percent escapes, so nothing outside `dir` is reachable.
fn safe_join(dir: &Path, rel: &str) -> Option<PathBuf> {
    let mut path = dir.to_path_buf();
    for seg in rel.split('/') {
        let ok = !seg.is_empty()
            && !seg.starts_with('.')
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return None;
        }
        path.push(seg);
    }
    Some(path)
}

fn content_type(file: &Path) -> &'static str {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if name.ends_with(".d.ts") {
        return "text/plain; charset=utf-8";
    }
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("wasm") => "application/wasm",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt" | "ts" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::{cache_control, safe_join};
    use std::path::Path;

    #[test]
    // Only names carrying a 16-hex-digit content hash are cached for a year.
    fn immutable_only_for_hashed_names() {
        let cc = |rel| cache_control(rel).to_str().unwrap_or_default().to_string();
        let year = "public, max-age=31536000, immutable";
        assert_eq!(cc("embedded_messaging_bg.0123456789abcdef.wasm"), year);
        assert_eq!(cc("chunks/prechat.fedcba9876543210.js"), year);
        for plain in [
            "bootstrap.min.js",
            "embedded_messaging_bg.wasm",
            "0123456789abcdef.wasm",
            "x.0123456789abcde.wasm",
            "embedded_messaging_bg.0123456789abcdef",
        ] {
            assert_eq!(cc(plain), "no-cache", "{plain}");
        }
    }

    #[test]
    // Only plain relative names resolve; traversal and hidden files never do.
    fn safe_join_refuses_traversal() {
        let d = Path::new("/srv/pkg");
        assert_eq!(safe_join(d, "a.js"), Some(d.join("a.js")));
        assert_eq!(
            safe_join(d, "snippets/x-1/inline0.js"),
            Some(d.join("snippets/x-1/inline0.js"))
        );
        for bad in [
            "../etc/passwd",
            "..",
            "a/../../b",
            ".env",
            "a//b",
            "%2e%2e/x",
            "a\\b",
            "",
        ] {
            assert_eq!(safe_join(d, bad), None, "{bad}");
        }
    }
}
