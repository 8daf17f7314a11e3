//! Query-string parsing for the feed endpoints: strict, so a typo is a 400 rather than a
//! silently ignored parameter.

use std::collections::BTreeMap;

/// Parsed query parameters: name → raw value. Names and values are taken as they are
/// (the parameters feedbench defines are plain ASCII numbers), except that `+` and
/// percent-escapes are decoded so that a generic HTTP client's encoding still works.
#[derive(Debug, Default)]
pub struct Query(BTreeMap<String, String>);

impl Query {
    /// Parses `raw` (the part after `?`), accepting only names in `allowed`, each once.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Query, String> {
        let mut map = BTreeMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)
                .ok_or_else(|| "query string is not valid UTF-8 after decoding".to_string())?;
            let value = decode(value).ok_or_else(|| {
                format!("query parameter '{name}' is not valid UTF-8 after decoding")
            })?;
            if !allowed.contains(&name.as_str()) {
                return Err(if allowed.is_empty() {
                    format!(
                        "unknown query parameter '{}' (this endpoint takes none)",
                        shorten(&name)
                    )
                } else {
                    format!(
                        "unknown query parameter '{}' (expected: {})",
                        shorten(&name),
                        allowed.join(", ")
                    )
                });
            }
            if map.insert(name.clone(), value).is_some() {
                return Err(format!("query parameter '{name}' given more than once"));
            }
        }
        Ok(Query(map))
    }

    /// The value of `name` as an unsigned integer in `min..=max`, if present.
    pub fn u64_in(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        let Some(raw) = self.0.get(name) else {
            return Ok(None);
        };
        let n: u64 = raw
            .parse()
            .map_err(|_| format!("{name} must be an unsigned integer, got '{}'", shorten(raw)))?;
        if !(min..=max).contains(&n) {
            return Err(format!("{name} must be in {min}..={max}, got {n}"));
        }
        Ok(Some(n))
    }
}

/// Cuts what we echo back in an error to a readable length.
fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_parameters() {
        let q = Query::parse(Some("after=12&limit=5"), &["after", "limit"]).unwrap();
        assert_eq!(q.u64_in("after", 0, u64::MAX).unwrap(), Some(12));
        assert_eq!(q.u64_in("limit", 1, 10).unwrap(), Some(5));
        assert_eq!(q.u64_in("timeout_ms", 0, 10).unwrap(), None);
    }

    #[test]
    fn empty_and_missing_query_are_fine() {
        for raw in [None, Some(""), Some("&&")] {
            let q = Query::parse(raw, &["after"]).unwrap();
            assert_eq!(q.u64_in("after", 0, 9).unwrap(), None);
        }
    }

    #[test]
    fn refuses_bad_input_with_named_errors() {
        let err = Query::parse(Some("afer=1"), &["after"]).unwrap_err();
        assert!(err.contains("unknown query parameter 'afer'"), "{err}");
        let err = Query::parse(Some("after=1&after=2"), &["after"]).unwrap_err();
        assert!(err.contains("more than once"), "{err}");
        let q = Query::parse(Some("after=x1"), &["after"]).unwrap();
        assert!(q
            .u64_in("after", 0, 9)
            .unwrap_err()
            .contains("unsigned integer"));
        let q = Query::parse(Some("after=-1"), &["after"]).unwrap();
        assert!(q.u64_in("after", 0, 9).is_err());
        let q = Query::parse(Some("limit=0"), &["limit"]).unwrap();
        assert!(q.u64_in("limit", 1, 9).unwrap_err().contains("1..=9"));
        let q = Query::parse(Some("after=99999999999999999999999"), &["after"]).unwrap();
        assert!(q.u64_in("after", 0, u64::MAX).is_err());
        assert!(Query::parse(Some("a=%zz"), &["a"]).is_err());
        assert!(Query::parse(Some("a=%"), &["a"]).is_err());
        assert!(Query::parse(Some("a=%ff"), &["a"]).is_err());
    }

    #[test]
    fn decodes_percent_escapes() {
        let q = Query::parse(Some("%61fter=%31%32"), &["after"]).unwrap();
        assert_eq!(q.u64_in("after", 0, 99).unwrap(), Some(12));
    }
}
