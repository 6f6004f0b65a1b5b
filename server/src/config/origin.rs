//! Allowed-origin patterns: an exact origin, or a host with any port (`scheme://host:*`).

/// One entry of a deployment's `allowed_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `scheme://host[:port]`, compared case-insensitively.
    Exact(String),
    /// `scheme://host:*`: that scheme and host on any port (or the default port).
    AnyPort(String),
}

impl OriginPattern {
    /// Parses a pattern; the error says what is wrong in words for the config error line.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad =
            || format!("{s:?} is not an origin (expected scheme://host[:port] or scheme://host:*)");
        let (scheme, rest) = s.split_once("://").ok_or_else(bad)?;
        if !matches!(scheme, "http" | "https") {
            return Err(bad());
        }
        let (host, port) = match rest.rsplit_once(':') {
            // An IPv6 literal has colons inside brackets; only a colon after `]` is a port.
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (rest, None),
        };
        if !valid_host(host) {
            return Err(bad());
        }
        let lower = s.to_ascii_lowercase();
        match port {
            None => Ok(Self::Exact(lower)),
            Some("*") => Ok(Self::AnyPort(format!(
                "{scheme}://{}",
                host.to_ascii_lowercase()
            ))),
            Some(p) if p.parse::<u16>().is_ok_and(|n| n > 0) && !p.starts_with('0') => {
                Ok(Self::Exact(lower))
            }
            Some(_) => Err(bad()),
        }
    }

    /// Whether a browser's `Origin` header value matches this pattern.
    pub fn matches(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        match self {
            Self::Exact(o) => *o == origin,
            Self::AnyPort(base) => match origin.strip_prefix(base.as_str()) {
                Some("") => true,
                Some(rest) => rest
                    .strip_prefix(':')
                    .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
                None => false,
            },
        }
    }
}

fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !host.is_empty()
        && !host.starts_with(['.', '-'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::OriginPattern;

    #[test]
    // Exact and any-port patterns accept what they should and nothing else.
    fn parse_and_match() {
        let any = OriginPattern::parse("http://127.0.0.1:*").unwrap();
        assert!(any.matches("http://127.0.0.1:8081"));
        assert!(any.matches("http://127.0.0.1"));
        assert!(!any.matches("http://127.0.0.10:80"));
        assert!(!any.matches("https://127.0.0.1:8081"));
        let exact = OriginPattern::parse("https://Shop.Example.com").unwrap();
        assert!(exact.matches("https://shop.example.com"));
        assert!(!exact.matches("https://shop.example.com:444"));
        assert!(
            OriginPattern::parse("http://[::1]:*")
                .unwrap()
                .matches("http://[::1]:3000")
        );
        for bad in [
            "foo",
            "http://",
            "ftp://x",
            "http://x/",
            "http://x:0",
            "http://x:99999",
            "http://a b",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
