//! Content negotiation for widget files: which encoding `Accept-Encoding` prefers, and
//! whether `If-None-Match` names the representation we would send.

use axum::http::HeaderValue;

/// A content coding the build writes beside each widget file (`<file>.br`, `<file>.gz`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Br,
    Gzip,
    Identity,
}

impl Encoding {
    /// The suffix of the file holding this encoding, and the `Content-Encoding` value.
    pub fn suffix_and_header(self) -> Option<(&'static str, &'static str)> {
        match self {
            Encoding::Br => Some((".br", "br")),
            Encoding::Gzip => Some((".gz", "gzip")),
            Encoding::Identity => None,
        }
    }
}

/// The encodings the client accepts, best first (RFC 9110 §12.5.3): q-values in thousandths,
/// `q=0` refuses, `*` stands for codings not named, and identity stays acceptable unless
/// refused by `identity;q=0` or `*;q=0`, at the lowest priority when not named (a client
/// that lists `gzip;q=0.5` wants gzip). Ties go to the smaller file: br, then gzip.
/// Without the header (curl, tools): identity only.
pub fn preferred(accept_encoding: Option<&HeaderValue>) -> Vec<Encoding> {
    let Some(value) = accept_encoding else {
        return vec![Encoding::Identity];
    };
    let (mut br, mut gzip, mut identity, mut star) = (None, None, None, None);
    for item in value.to_str().unwrap_or_default().split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| quality(v.trim()))
            })
            .unwrap_or(Some(1000));
        // An item with a malformed q-value is ignored, as if not sent.
        let Some(q) = q else { continue };
        match coding.as_str() {
            "br" => br = Some(q),
            "gzip" | "x-gzip" => gzip = Some(q),
            "identity" => identity = Some(q),
            "*" => star = Some(q),
            _ => {}
        }
    }
    let mut ranked = [
        (Encoding::Br, br.or(star).unwrap_or(0)),
        (Encoding::Gzip, gzip.or(star).unwrap_or(0)),
        (Encoding::Identity, identity.or(star).unwrap_or(1)),
    ];
    // Stable: equal q-values keep the order above.
    ranked.sort_by_key(|(_, q)| std::cmp::Reverse(*q));
    ranked
        .into_iter()
        .filter(|(_, q)| *q > 0)
        .map(|(e, _)| e)
        .collect()
}

/// A q-value (`0` to `1`, at most three decimals) in thousandths.
fn quality(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !matches!(int, "0" | "1") || frac.len() > 3 || !digits(frac) {
        return None;
    }
    let thousandths = format!("{frac:0<3}").parse::<u16>().ok()?;
    match (int, thousandths) {
        ("0", t) => Some(t),
        ("1", 0) => Some(1000),
        _ => None,
    }
}

/// `If-None-Match` lists `etag` (weak comparison, as RFC 9110 §13.1.2 asks) or is `*`.
pub fn none_match(if_none_match: Option<&HeaderValue>, etag: &HeaderValue) -> bool {
    let Some(list) = if_none_match.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let ours = etag.to_str().unwrap_or_default();
    let ours = ours.strip_prefix("W/").unwrap_or(ours);
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == ours)
}

#[cfg(test)]
mod tests {
    use super::Encoding::{Br, Gzip, Identity};
    use super::*;

    fn pick(header: &str) -> Vec<Encoding> {
        preferred(Some(&HeaderValue::from_str(header).unwrap()))
    }

    #[test]
    // q-values order the encodings; q=0, identity;q=0 and * behave as RFC 9110 says.
    fn accept_encoding_is_ranked_by_q() {
        assert_eq!(preferred(None), [Identity]);
        assert_eq!(pick("gzip, deflate, br, zstd"), [Br, Gzip, Identity]);
        assert_eq!(pick("gzip, br;q=0"), [Gzip, Identity]);
        assert_eq!(pick("br;q=0.5, gzip"), [Gzip, Br, Identity]);
        assert_eq!(pick("GZIP;Q=0.8"), [Gzip, Identity]);
        assert_eq!(pick("x-gzip"), [Gzip, Identity]);
        assert_eq!(pick(""), [Identity]);
        assert_eq!(pick("*"), [Br, Gzip, Identity]);
        assert_eq!(pick("br, *;q=0"), [Br]);
        assert_eq!(pick("gzip, identity;q=0"), [Gzip]);
        assert_eq!(pick("identity"), [Identity]);
        assert_eq!(pick("identity;q=0, *;q=0"), Vec::<Encoding>::new());
        // Malformed q-values drop their item only.
        assert_eq!(pick("br;q=2, gzip;q=0.1234, identity;q=x"), [Identity]);
        assert_eq!(pick("br;q=1.000, gzip;q=0.999"), [Br, Gzip, Identity]);
    }

    #[test]
    // A validator matches itself, its weak form and `*`, never another encoding's tag.
    fn if_none_match_compares_weakly() {
        let tag = HeaderValue::from_static("\"abc\"");
        let header = |s: &'static str| HeaderValue::from_static(s);
        assert!(none_match(Some(&header("\"abc\"")), &tag));
        assert!(none_match(Some(&header("\"x\", W/\"abc\"")), &tag));
        assert!(none_match(Some(&header("*")), &tag));
        assert!(!none_match(Some(&header("\"abd\"")), &tag));
        assert!(!none_match(None, &tag));
    }
}
