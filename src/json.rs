//! A small JSON reader and writer for the wire, storage and config edges.
//!
//! Why not serde_json or `JSON.parse` + `Reflect`: serde_json adds ~40 KB of wasm, and reading
//! a parsed JS object key by key crosses the wasm boundary ~25 times per frame (31 µs a frame,
//! 0.3 s for a 10,000-entry history). Parsing the frame text here costs one crossing.
//! Numbers are integers on this protocol: non-integers parse (so frames with them are still
//! read) but keep no value.

/// A parsed JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// An integer that fits in an `i64`.
    Int(i64),
    /// An integer above `i64::MAX` that fits in a `u64` (seqs are `u64` on the wire).
    UInt(u64),
    /// Any other number (fraction, exponent, too large): its value is not kept.
    OtherNumber,
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

const MAX_DEPTH: u32 = 64;

impl Json {
    /// Parse a whole document; `None` if it is not valid JSON.
    pub fn parse(text: &str) -> Option<Json> {
        let mut p = Parser {
            b: text.as_bytes(),
            i: 0,
        };
        let v = p.value(0)?;
        p.ws();
        (p.i == p.b.len()).then_some(v)
    }

    /// The value of `key` in an object (the first one if repeated).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// A non-negative integer up to `u64::MAX`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Int(n) => u64::try_from(*n).ok(),
            Json::UInt(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(items) => Some(items),
            _ => None,
        }
    }
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn literal(&mut self, word: &[u8], value: Json) -> Option<Json> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| {
            self.i = end;
            value
        })
    }

    fn value(&mut self, depth: u32) -> Option<Json> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.b.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut fields = Vec::new();
                if self.eat(b'}') {
                    return Some(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    fields.push((key, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Some(Json::Obj(fields));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Some(Json::Arr(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Some(Json::Arr(items));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'"' => self.string().map(Json::Str),
            b't' => self.literal(b"true", Json::Bool(true)),
            b'f' => self.literal(b"false", Json::Bool(false)),
            b'n' => self.literal(b"null", Json::Null),
            _ => self.number(),
        }
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.i;
        let negative = self.b.get(self.i) == Some(&b'-');
        self.i += usize::from(negative);
        // The magnitude as a u64, so that both i64::MIN and u64::MAX are exact.
        let mut n: u64 = 0;
        let mut exact = true;
        let mut digits = 0;
        while let Some(d @ b'0'..=b'9') = self.b.get(self.i).copied() {
            let digit = u64::from(d - b'0');
            match n.checked_mul(10).and_then(|n| n.checked_add(digit)) {
                Some(v) => n = v,
                None => exact = false,
            }
            digits += 1;
            self.i += 1;
        }
        if digits == 0 {
            return None;
        }
        // A fraction or exponent: skip it (this protocol has none).
        while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = self.b.get(self.i) {
            exact = false;
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        Some(match (exact, negative) {
            (false, _) => Json::OtherNumber,
            (true, false) => i64::try_from(n).map_or(Json::UInt(n), Json::Int),
            (true, true) => 0i64
                .checked_sub_unsigned(n)
                .map_or(Json::OtherNumber, Json::Int),
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let mut v = 0;
        for _ in 0..4 {
            let d = char::from(*self.b.get(self.i)?).to_digit(16)?;
            v = v * 16 + d;
            self.i += 1;
        }
        Some(v)
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Option<String> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(&c) = self.b.get(self.i) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            // Split only at ASCII bytes, so each run is valid UTF-8 on its own.
            out.push_str(core::str::from_utf8(&self.b[start..self.i]).ok()?);
            match *self.b.get(self.i)? {
                b'"' => {
                    self.i += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.i += 1;
                    let e = *self.b.get(self.i)?;
                    self.i += 1;
                    out.push(match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi)
                                && self.b.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).unwrap_or('\u{FFFD}')
                        }
                        _ => return None,
                    });
                }
                _ => return None, // a raw control character
            }
        }
    }
}

/// Builds one JSON object as text: `Obj::new().str("type", "ping").end()`.
pub struct Obj(String);

impl Default for Obj {
    fn default() -> Self {
        Obj::new()
    }
}

impl Obj {
    pub fn new() -> Obj {
        Obj(String::from("{"))
    }

    fn key(&mut self, key: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        quote(&mut self.0, key);
        self.0.push(':');
    }

    pub fn str(mut self, key: &str, value: &str) -> Obj {
        self.key(key);
        quote(&mut self.0, value);
        self
    }

    pub fn int(mut self, key: &str, value: i64) -> Obj {
        self.key(key);
        push_int(&mut self.0, value);
        self
    }

    pub fn bool(mut self, key: &str, value: bool) -> Obj {
        self.key(key);
        self.0.push_str(if value { "true" } else { "false" });
        self
    }

    /// `value` is already JSON text (an object, array, `null`...).
    pub fn raw(mut self, key: &str, value: &str) -> Obj {
        self.key(key);
        self.0.push_str(value);
        self
    }

    pub fn opt_str(self, key: &str, value: Option<&str>) -> Obj {
        match value {
            Some(v) => self.str(key, v),
            None => self.raw(key, "null"),
        }
    }

    /// `key` only when there is a value (serde's `skip_serializing_if = "Option::is_none"`).
    pub fn some_str(self, key: &str, value: Option<&str>) -> Obj {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    pub fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// Append `s` as a JSON string literal.
pub fn quote(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str("\\u");
                let n = c as u32;
                for shift in [12, 8, 4, 0] {
                    out.push(char::from(HEX[((n >> shift) & 15) as usize]));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Append an integer in decimal (no `fmt` machinery).
pub fn push_int(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut len = 0;
    let mut v = n.unsigned_abs();
    loop {
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for d in digits[..len].iter().rev() {
        out.push(char::from(*d));
    }
}

/// An integer as decimal text.
pub fn int_string(n: i64) -> String {
    let mut s = String::new();
    push_int(&mut s, n);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_json_shape() {
        // Objects, arrays, strings with every escape, integers, literals; whitespace anywhere.
        let v = Json::parse(r#" { "a" : [1, -2, 3.5, 1e3, true, false, null], "s": "q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00é", "o": {} } "#)
            .unwrap();
        assert_eq!(
            v.get("a").unwrap().as_array().unwrap(),
            &[
                Json::Int(1),
                Json::Int(-2),
                Json::OtherNumber,
                Json::OtherNumber,
                Json::Bool(true),
                Json::Bool(false),
                Json::Null
            ]
        );
        assert_eq!(
            v.get("s").unwrap().as_str(),
            Some("q\"\\/\u{8}\u{c}\n\r\té😀é")
        );
        assert_eq!(v.get("o"), Some(&Json::Obj(vec![])));
        assert_eq!(
            Json::parse("9007199254740993").unwrap().as_i64(),
            Some(9_007_199_254_740_993)
        );
        assert_eq!(
            Json::parse("99999999999999999999999"),
            Some(Json::OtherNumber)
        );
        // The ends of i64 and u64 are exact (seqs are u64; timestamps i64); past them, not.
        assert_eq!(
            Json::parse("-9223372036854775808"),
            Some(Json::Int(i64::MIN))
        );
        assert_eq!(
            Json::parse("9223372036854775808").unwrap().as_u64(),
            Some(1 << 63)
        );
        assert_eq!(
            Json::parse("18446744073709551615").unwrap().as_u64(),
            Some(u64::MAX)
        );
        assert_eq!(Json::parse("18446744073709551615").unwrap().as_i64(), None);
        assert_eq!(Json::parse("-1").unwrap().as_u64(), None);
        assert_eq!(Json::parse("-9223372036854775809"), Some(Json::OtherNumber));
        assert_eq!(Json::parse("18446744073709551616"), Some(Json::OtherNumber));
    }

    #[test]
    fn rejects_malformed_json() {
        // Truncated, trailing garbage, raw control characters, bad escapes, deep nesting.
        for bad in [
            "",
            "{",
            "{\"a\":}",
            "[1,]",
            "{\"a\" 1}",
            "\"x",
            "tru",
            "1 2",
            "\"a\u{1}b\"",
            "\"\\x\"",
            "-",
            "{,}",
        ] {
            assert_eq!(Json::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Json::parse(&"[".repeat(100)), None);
        assert!(Json::parse(&("[".repeat(60) + &"]".repeat(60))).is_some());
    }

    #[test]
    fn writes_objects_that_parse_back() {
        // The builder escapes strings (quotes, control characters, line separators) and ints.
        let text = Obj::new()
            .str("t", "a\"b\\c\n\u{1}\u{2028}é")
            .int("n", -9_007_199_254_740_991)
            .bool("b", true)
            .raw("r", "[1]")
            .opt_str("none", None)
            .end();
        assert_eq!(
            text,
            r#"{"t":"a\"b\\c\n\u0001\u2028é","n":-9007199254740991,"b":true,"r":[1],"none":null}"#
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["t"], "a\"b\\c\n\u{1}\u{2028}é");
        assert_eq!(
            Json::parse(&text).unwrap().get("t").unwrap().as_str(),
            Some("a\"b\\c\n\u{1}\u{2028}é")
        );
        assert_eq!(int_string(0), "0");
        assert_eq!(int_string(i64::MIN), "-9223372036854775808");
    }
}
