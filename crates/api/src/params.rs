//! API parameters: the query string and an `application/x-www-form-urlencoded` body, merged
//! (`+` is a space in both), with typed getters and `Foo.N` / `Foo.N.Bar` list flattening.

use std::collections::{BTreeMap, HashMap};

use percent_encoding::percent_decode;

use crate::error::ApiError;

/// Default limit of query + body bytes (DESIGN.md "Limits").
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Most parameters in one request; the largest SDK request has a few dozen.
pub const MAX_PARAMS: usize = 1024;
/// Largest `N` accepted in `Foo.N` / `Foo.N.Bar`.
pub const MAX_LIST_INDEX: usize = 100;

/// The parameters of one request.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// Decoded query pairs, in arrival order (the ACS3 signature covers only these).
    query: Vec<(String, String)>,
    /// Decoded form-body pairs, in arrival order.
    body: Vec<(String, String)>,
    /// Every parameter by name, pointing into `query` (false) or `body` (true).
    index: HashMap<String, (bool, usize)>,
}

/// One decoded `k=v` pair; `+` is a space, `%XX` a byte, and the result must be UTF-8.
fn decode(raw: &[u8]) -> Option<String> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&spaced).collect();
    String::from_utf8(bytes).ok()
}

fn parse_pairs(raw: &[u8], out: &mut Vec<(String, String)>) -> Result<(), ApiError> {
    for piece in raw.split(|&b| b == b'&') {
        if piece.is_empty() {
            continue;
        }
        let (k, v) = match piece.iter().position(|&b| b == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &[][..]),
        };
        let key = decode(k).ok_or(ApiError::NotUtf8 { name: None })?;
        let value = decode(v).ok_or_else(|| ApiError::NotUtf8 {
            name: Some(key.clone()),
        })?;
        if key.is_empty() {
            continue;
        }
        if out.len() >= MAX_PARAMS {
            return Err(ApiError::TooManyParameters { limit: MAX_PARAMS });
        }
        out.push((key, value));
    }
    Ok(())
}

impl Params {
    /// Parses the raw query string (without `?`) and, when given, a form body. Refuses more
    /// than `max_bytes` in total, non-UTF-8 names or values, and a name given twice (so what
    /// was signed is exactly what is acted on).
    pub fn parse(query: &[u8], body: Option<&[u8]>, max_bytes: usize) -> Result<Self, ApiError> {
        let total = query.len() + body.map_or(0, <[u8]>::len);
        if total > max_bytes {
            return Err(ApiError::TooLarge { limit: max_bytes });
        }
        let mut params = Params::default();
        parse_pairs(query, &mut params.query)?;
        if let Some(body) = body {
            parse_pairs(body, &mut params.body)?;
        }
        if params.query.len() + params.body.len() > MAX_PARAMS {
            return Err(ApiError::TooManyParameters { limit: MAX_PARAMS });
        }
        let sources = [(false, &params.query), (true, &params.body)];
        for (in_body, pairs) in sources {
            for (i, (k, _)) in pairs.iter().enumerate() {
                if params.index.insert(k.clone(), (in_body, i)).is_some() {
                    return Err(ApiError::Duplicate(k.clone()));
                }
            }
        }
        Ok(params)
    }

    /// The query pairs alone (what an ACS3 signature covers).
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    /// Every pair, query first (what an RPC v1 signature covers).
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query
            .iter()
            .chain(self.body.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of `name` as sent, possibly empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        let &(in_body, i) = self.index.get(name)?;
        let pairs = if in_body { &self.body } else { &self.query };
        pairs.get(i).map(|(_, v)| v.as_str())
    }

    /// The value of `name`; absent and empty are the same (SDKs send unset fields either way).
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// The value of `name`, or `Missing{name}`.
    pub fn required(&self, name: &'static str) -> Result<&str, ApiError> {
        self.optional(name).ok_or(ApiError::Missing(name))
    }

    /// An optional integer; a value that is not one is `InvalidParameter`.
    pub fn int(&self, name: &'static str) -> Result<Option<i64>, ApiError> {
        self.optional(name)
            .map(|v| parse_int(v).ok_or_else(|| ApiError::InvalidParameter(name.to_owned())))
            .transpose()
    }

    /// `prefix.1`, `prefix.2` … in index order (gaps allowed), e.g. `TranscodeTemplates.N`.
    pub fn list(&self, prefix: &str) -> Result<Vec<&str>, ApiError> {
        let mut items = BTreeMap::new();
        for (key, value) in self.pairs() {
            let Some(rest) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            let n = list_index(key, rest)?;
            if !value.is_empty() {
                items.insert(n, value);
            }
        }
        Ok(items.into_values().collect())
    }

    /// `prefix.N.Field` grouped per `N`, in index order, e.g. `RecordFormat.N.Format`.
    pub fn objects(&self, prefix: &str) -> Result<Vec<Item<'_>>, ApiError> {
        let mut items: BTreeMap<usize, Item<'_>> = BTreeMap::new();
        for (key, value) in self.pairs() {
            let Some(rest) = key.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            let Some((n, field)) = rest.split_once('.') else {
                return Err(ApiError::InvalidParameter(key.to_owned()));
            };
            let n = list_index(key, n)?;
            items
                .entry(n)
                .or_insert_with(|| Item {
                    index: n,
                    fields: BTreeMap::new(),
                })
                .fields
                .insert(field, value);
        }
        Ok(items.into_values().collect())
    }

    /// Whether any `prefix.…` parameter was sent.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.pairs().any(|(k, _)| {
            k.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.'))
        })
    }
}

fn list_index(key: &str, n: &str) -> Result<usize, ApiError> {
    if n.is_empty() || n.len() > 3 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::InvalidParameter(key.to_owned()));
    }
    let n: usize = n
        .parse()
        .map_err(|_| ApiError::InvalidParameter(key.to_owned()))?;
    if n == 0 {
        return Err(ApiError::InvalidParameter(key.to_owned()));
    }
    if n > MAX_LIST_INDEX {
        return Err(ApiError::TooManyParameters {
            limit: MAX_LIST_INDEX,
        });
    }
    Ok(n)
}

/// A decimal integer, optionally signed; nothing else (no spaces, no `1e3`).
fn parse_int(v: &str) -> Option<i64> {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// One element of a flattened list of objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'a> {
    /// `N`, from 1.
    pub index: usize,
    fields: BTreeMap<&'a str, &'a str>,
}

impl<'a> Item<'a> {
    /// A field's value; absent and empty are the same.
    pub fn optional(&self, field: &str) -> Option<&'a str> {
        self.fields.get(field).copied().filter(|v| !v.is_empty())
    }

    /// An optional integer field; `err` when it is not one.
    pub fn int(
        &self,
        field: &str,
        err: impl FnOnce() -> ApiError,
    ) -> Result<Option<i64>, ApiError> {
        match self.optional(field) {
            None => Ok(None),
            Some(v) => parse_int(v).map(Some).ok_or_else(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(q: &str) -> Result<Params, ApiError> {
        Params::parse(q.as_bytes(), None, DEFAULT_MAX_REQUEST_BYTES)
    }

    #[test]
    fn decodes_plus_and_percent_in_query_and_body() {
        let p = Params::parse(
            b"A=x+y&B=%E4%B8%AD%20z",
            Some(b"C=1%2B1&D="),
            DEFAULT_MAX_REQUEST_BYTES,
        )
        .unwrap();
        assert_eq!(p.get("A"), Some("x y"));
        assert_eq!(p.get("B"), Some("中 z"));
        assert_eq!(p.get("C"), Some("1+1"));
        assert_eq!(p.get("D"), Some(""));
        assert_eq!(p.optional("D"), None);
        assert_eq!(p.query_pairs().len(), 2);
        assert_eq!(p.pairs().count(), 4);
    }

    #[test]
    fn required_and_int() {
        let p = parse("DelayTime=180&Bad=12a&Neg=-5&Empty=").unwrap();
        assert_eq!(p.required("DelayTime").unwrap(), "180");
        assert_eq!(p.required("Empty"), Err(ApiError::Missing("Empty")));
        assert_eq!(p.required("Nope"), Err(ApiError::Missing("Nope")));
        assert_eq!(p.int("DelayTime").unwrap(), Some(180));
        assert_eq!(p.int("Neg").unwrap(), Some(-5));
        assert_eq!(p.int("Nope").unwrap(), None);
        assert_eq!(p.int("Bad"), Err(ApiError::InvalidParameter("Bad".into())));
        let p = parse("X=99999999999999999999&Y=+&Z=1e3").unwrap();
        assert!(p.int("X").is_err());
        assert!(p.int("Y").is_err());
        assert!(p.int("Z").is_err());
    }

    #[test]
    fn flattens_lists_of_objects_in_index_order() {
        let p = parse(
            "RecordFormat.2.Format=mp4&RecordFormat.1.Format=m3u8&RecordFormat.1.CycleDuration=3600\
             &RecordFormat.10.Format=flv&TranscodeTemplates.2=b&TranscodeTemplates.1=a&Other=1",
        )
        .unwrap();
        let items = p.objects("RecordFormat").unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].index, 1);
        assert_eq!(items[0].optional("Format"), Some("m3u8"));
        assert_eq!(
            items[0]
                .int("CycleDuration", || ApiError::Throttled)
                .unwrap(),
            Some(3600)
        );
        assert_eq!(items[1].optional("Format"), Some("mp4"));
        assert_eq!(items[2].index, 10);
        assert_eq!(p.list("TranscodeTemplates").unwrap(), ["a", "b"]);
        assert!(p.has_prefix("RecordFormat"));
        assert!(!p.has_prefix("Record"));
        assert!(p.objects("Nothing").unwrap().is_empty());
    }

    #[test]
    fn refuses_bad_list_indices() {
        for q in [
            "RecordFormat.0.Format=mp4",
            "RecordFormat.x.Format=mp4",
            "RecordFormat.1=mp4",
            "RecordFormat.-1.Format=mp4",
        ] {
            assert!(
                matches!(
                    parse(q).unwrap().objects("RecordFormat"),
                    Err(ApiError::InvalidParameter(_))
                ),
                "{q}"
            );
        }
        let q = format!("RecordFormat.{}.Format=mp4", MAX_LIST_INDEX + 1);
        assert_eq!(
            parse(&q).unwrap().objects("RecordFormat"),
            Err(ApiError::TooManyParameters {
                limit: MAX_LIST_INDEX
            })
        );
        assert!(
            parse("T.1000000000000000000000=a")
                .unwrap()
                .list("T")
                .is_err()
        );
    }

    #[test]
    fn refuses_oversized_non_utf8_and_duplicate_input() {
        let big = "a".repeat(100);
        assert_eq!(
            Params::parse(big.as_bytes(), Some(b"x=1"), 100).unwrap_err(),
            ApiError::TooLarge { limit: 100 }
        );
        assert_eq!(
            parse("Name=%FF%FE").unwrap_err(),
            ApiError::NotUtf8 {
                name: Some("Name".into())
            }
        );
        assert_eq!(
            Params::parse(b"Name=\xff", None, 1000).unwrap_err(),
            ApiError::NotUtf8 {
                name: Some("Name".into())
            }
        );
        assert_eq!(
            parse("%C3=x").unwrap_err(),
            ApiError::NotUtf8 { name: None }
        );
        assert_eq!(
            Params::parse(b"A=1", Some(b"A=2"), 1000).unwrap_err(),
            ApiError::Duplicate("A".into())
        );
        assert_eq!(
            parse("A=1&A=1").unwrap_err(),
            ApiError::Duplicate("A".into())
        );
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("k{i}=v")).collect();
        assert_eq!(
            Params::parse(many.join("&").as_bytes(), None, usize::MAX).unwrap_err(),
            ApiError::TooManyParameters { limit: MAX_PARAMS }
        );
    }

    #[test]
    fn tolerates_odd_but_harmless_shapes() {
        let p = parse("&&A&=x&B=1=2&%zz=%").unwrap();
        assert_eq!(p.get("A"), Some(""));
        assert_eq!(p.get("B"), Some("1=2"));
        assert_eq!(p.get("%zz"), Some("%"));
    }

    proptest! {
        #[test]
        fn parse_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..256),
                              body in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(p) = Params::parse(&raw, Some(&body), 1024) {
                let _ = p.objects("RecordFormat");
                let _ = p.list("TranscodeTemplates");
                let _ = p.int("DelayTime");
            }
        }

        #[test]
        fn encoded_values_round_trip(value in "\\PC{0,40}") {
            let q = format!("V={}", crate::signature::percent_encode(&value));
            let p = parse(&q).unwrap();
            prop_assert_eq!(p.get("V"), Some(value.as_str()));
        }
    }
}
