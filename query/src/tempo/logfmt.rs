//! The logfmt `tags` parameter of Tempo's tag-based search:
//! `service.name=cart http.url="/a b" error=true`.

use crate::QueryError;

/// The `key=value` pairs of `text` in order. Values may be double-quoted
/// (with `\"`, `\\`, `\n`, `\t` escapes); a key without `=` has an empty
/// value; a key given twice is an error, as in Tempo.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, String)>, QueryError> {
    let bad = |message: String| QueryError::InvalidRequest(format!("invalid tags (logfmt): {message}"));
    let chars: Vec<char> = text.chars().collect();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' && chars[i] != '"' {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        if key.is_empty() {
            return Err(bad(format!("expected a key at position {}", start + 1)));
        }
        let mut value = String::new();
        if chars.get(i) == Some(&'=') {
            i += 1;
            if chars.get(i) == Some(&'"') {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(bad(format!("unterminated quoted value of {key:?}"))),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            let escaped = chars.get(i + 1).ok_or_else(|| bad("dangling backslash".into()))?;
                            value.push(super::unescape(*escaped));
                            i += 2;
                        }
                        Some(c) => {
                            value.push(*c);
                            i += 1;
                        }
                    }
                }
            } else {
                while i < chars.len() && !chars[i].is_whitespace() {
                    if chars[i] == '"' || chars[i] == '=' {
                        return Err(bad(format!("unexpected {:?} in the value of {key:?}", chars[i])));
                    }
                    value.push(chars[i]);
                    i += 1;
                }
            }
        }
        if i < chars.len() && !chars[i].is_whitespace() {
            return Err(bad(format!("expected a space after {key:?} at position {}", i + 1)));
        }
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(bad(format!("tag {key} is given twice")));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse(text).expect(text)
    }

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn parses_keys_values_and_quotes() {
        assert_eq!(pairs(""), owned(&[]));
        assert_eq!(pairs("service.name=cart"), owned(&[("service.name", "cart")]));
        assert_eq!(
            pairs(r#"  service.name=cart   http.route="/a b" name="say \"hi\"\\" flag "#),
            owned(&[("service.name", "cart"), ("http.route", "/a b"), ("name", "say \"hi\"\\"), ("flag", "")])
        );
        assert_eq!(pairs("a= b=2"), owned(&[("a", ""), ("b", "2")]));
    }

    #[test]
    fn refuses_malformed_tags() {
        for text in ["a=1 a=2", "=x", "a=\"open", "a=b=c", "a=x\"y", "a=\"x\"y", "\"a\"=1"] {
            let err = parse(text).expect_err(text);
            assert!(err.to_string().starts_with("invalid tags (logfmt)"), "{text}: {err}");
        }
    }
}
