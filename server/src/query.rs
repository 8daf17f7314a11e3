//! Query-string parsing for the feed endpoints: strict, so a typo is a 400 rather than a
//! silently ignored parameter.

use std::borrow::Cow;

/// Most parameters an endpoint takes (`/poll` takes three).
const MAX_PARAMS: usize = 4;

/// Parsed query parameters: each allowed name's raw value, if given. Names and values are
/// taken as they are (the parameters feedbench defines are plain ASCII numbers), except
/// that `+` and percent-escapes are decoded so that a generic HTTP client's encoding still
/// works.
///
/// Borrowed from the query string, and without a map: the map and its owned strings made
/// seven allocations of the load generator's long-poll request, on the path the server
/// takes per long-poll delivery.
#[derive(Debug, Default)]
pub struct Query<'a> {
    allowed: &'a [&'a str],
    values: [Option<Cow<'a, str>>; MAX_PARAMS],
}

impl<'a> Query<'a> {
    /// Parses `raw` (the part after `?`), accepting only names in `allowed` (at most
    /// [`MAX_PARAMS`]), each once.
    pub fn parse(raw: Option<&'a str>, allowed: &'a [&'a str]) -> Result<Query<'a>, String> {
        if allowed.len() > MAX_PARAMS {
            return Err(format!(
                "internal error: an endpoint takes at most {MAX_PARAMS} query parameters"
            ));
        }
        let mut q = Query {
            allowed,
            values: Default::default(),
        };
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name)
                .ok_or_else(|| "query string is not valid UTF-8 after decoding".to_string())?;
            let value = decode(value).ok_or_else(|| {
                format!("query parameter '{name}' is not valid UTF-8 after decoding")
            })?;
            let Some(at) = allowed.iter().position(|a| *a == name) else {
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
            };
            if q.values[at].replace(value).is_some() {
                return Err(format!("query parameter '{name}' given more than once"));
            }
        }
        Ok(q)
    }

    /// The value of `name` as an unsigned integer in `min..=max`, if present.
    pub fn u64_in(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        let Some(raw) = self
            .allowed
            .iter()
            .position(|a| *a == name)
            .and_then(|at| self.values[at].as_deref())
        else {
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

fn decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains(['%', '+']) {
        return Some(Cow::Borrowed(s));
    }
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
    String::from_utf8(out).ok().map(Cow::Owned)
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
        // A name given once plain and once escaped is given twice.
        let err = Query::parse(Some("%61fter=1&after=2"), &["after"]).unwrap_err();
        assert!(err.contains("more than once"), "{err}");
    }

    #[test]
    fn plain_values_are_borrowed_and_each_name_keeps_its_own() {
        let raw = "timeout_ms=250&after=7&limit=3";
        let q = Query::parse(Some(raw), &["after", "limit", "timeout_ms"]).unwrap();
        assert!(q
            .values
            .iter()
            .flatten()
            .all(|v| matches!(v, Cow::Borrowed(_))));
        assert_eq!(q.u64_in("after", 0, 9).unwrap(), Some(7));
        assert_eq!(q.u64_in("limit", 1, 9).unwrap(), Some(3));
        assert_eq!(q.u64_in("timeout_ms", 0, 1000).unwrap(), Some(250));
        assert_eq!(q.u64_in("other", 0, 9).unwrap(), None);
        let q = Query::parse(Some("after=1+2"), &["after"]).unwrap();
        assert!(matches!(&q.values[0], Some(Cow::Owned(v)) if v == "1 2"));
        let five = ["a", "b", "c", "d", "e"];
        assert!(Query::parse(None, &five).unwrap_err().contains("at most 4"));
    }
}
