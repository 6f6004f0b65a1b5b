//! Static files: the built widget under any `.../assets/js/` path, and the demo site.

use std::path::{Path, PathBuf};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Fallback of the main router: `<any prefix>/assets/js/<file>` from the widget directory,
/// so a snippet's `.../ESWName123/assets/js/bootstrap.min.js` works unchanged.
pub async fn widget(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let Some(at) = path.find("/assets/js/") else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let rel = match &path[at + "/assets/js/".len()..] {
        // The commercial snippet's other names for the loader.
        "init.js" | "init.min.js" => "bootstrap.min.js",
        rel => rel,
    };
    let Some(file) = safe_join(&state.widget_dir, rel) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let brotli =
        accepts_br(&headers) && tokio::fs::try_exists(with_br(&file)).await.unwrap_or(false);
    let read = if brotli { with_br(&file) } else { file.clone() };
    // `no-cache` + a validator: browsers revalidate (a rebuilt widget shows at once) and
    // usually get a tiny 304.
    let etag = tokio::fs::metadata(&read).await.ok().and_then(|m| etag(&m));
    let fresh = etag
        .as_ref()
        .is_some_and(|e| headers.get(header::IF_NONE_MATCH) == Some(e));
    let body = if fresh {
        Ok(Vec::new())
    } else {
        tokio::fs::read(&read).await
    };
    match body {
        Ok(bytes) => {
            let mut r = ([(header::CONTENT_TYPE, content_type(&file))], bytes).into_response();
            if fresh {
                *r.status_mut() = StatusCode::NOT_MODIFIED;
            }
            let h = r.headers_mut();
            if let Some(e) = etag {
                h.insert(header::ETAG, e);
            }
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            if brotli {
                h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
            }
            r
        }
        Err(_) => (
            StatusCode::NOT_FOUND,
            [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
            format!(
                "widget file {rel:?} not found in {}; run `cargo xtask build` first\n",
                state.widget_dir.display()
            ),
        )
            .into_response(),
    }
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

/// A weak validator from size and modification time.
fn etag(m: &std::fs::Metadata) -> Option<HeaderValue> {
    let modified = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    HeaderValue::from_str(&format!("W/\"{:x}-{:x}\"", m.len(), modified.as_nanos())).ok()
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

fn with_br(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".br");
    PathBuf::from(s)
}

fn accepts_br(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|e| e.trim().split(';').next() == Some("br"))
        })
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
    use super::safe_join;
    use std::path::Path;

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
