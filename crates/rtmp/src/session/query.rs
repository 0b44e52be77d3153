//! `name?query` splitting and percent-decoding of query pairs.

/// Query pairs kept from one name; the rest is ignored (a URL has a handful).
pub const MAX_QUERY_PAIRS: usize = 64;

/// Splits `name?a=1&b=2` into the name and appends the decoded pairs to `pairs`.
pub fn split_name<'a>(name: &'a str, pairs: &mut Vec<(String, String)>) -> &'a str {
    let Some((name, query)) = name.split_once('?') else {
        return name;
    };
    for part in query.split('&').filter(|p| !p.is_empty()) {
        if pairs.len() >= MAX_QUERY_PAIRS {
            break;
        }
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        pairs.push((percent_decode(key), percent_decode(value)));
    }
    name
}

/// Form-style decoding: `+` is a space, `%XX` a byte; malformed escapes stay as they are;
/// bytes that are not UTF-8 become replacement characters.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn splits_and_decodes() {
        let mut pairs = Vec::new();
        let name = split_name(
            "s1?vhost=a.example&callback_x=1&&t=a%20b+c&flag&bad=%zz%4",
            &mut pairs,
        );
        assert_eq!(name, "s1");
        let want = [
            ("vhost", "a.example"),
            ("callback_x", "1"),
            ("t", "a b c"),
            ("flag", ""),
            ("bad", "%zz%4"),
        ];
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn no_query() {
        let mut pairs = Vec::new();
        assert_eq!(split_name("stream", &mut pairs), "stream");
        assert!(pairs.is_empty());
        assert_eq!(split_name("stream?", &mut pairs), "stream");
        assert!(pairs.is_empty());
    }

    #[test]
    fn pairs_are_capped() {
        let query: Vec<String> = (0..100).map(|i| format!("k{i}=v")).collect();
        let mut pairs = Vec::new();
        split_name(&format!("s?{}", query.join("&")), &mut pairs);
        assert_eq!(pairs.len(), MAX_QUERY_PAIRS);
    }

    #[test]
    fn multibyte_escapes() {
        assert_eq!(percent_decode("%E6%97%A5%e6%9c%ac"), "日本");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
        assert_eq!(percent_decode("日%"), "日%");
    }

    proptest! {
        #[test]
        fn decoding_never_panics(s in "\\PC{0,40}") {
            let mut pairs = Vec::new();
            let _ = split_name(&s, &mut pairs);
        }
    }
}
