//! Variable interpolation as compose-go's `template` package does it: `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+replace}`,
//! `${VAR+replace}`, `$$` for a literal `$`, defaults and messages that nest further
//! substitutions. A variable that is not set becomes an empty string and a warning.
//!
//! Hand-written (a small recursive-descent scanner) because the syntax is Compose's own.

/// Errors of interpolation; `Display` is compose-go's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpError {
    #[error("Invalid template: {0:?}")]
    Invalid(String),
    #[error("required variable {variable} is missing a value{}", if .reason.is_empty() { String::new() } else { format!(": {}", .reason) })]
    Required { variable: String, reason: String },
}

/// Substitutes the variables of `template`. `lookup` returns a variable's value (`None`: not
/// set); `warn` receives the names of unset variables that defaulted to "".
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warn: &mut dyn FnMut(&str),
) -> Result<String, InterpError> {
    if !template.contains('$') {
        return Ok(template.to_string());
    }
    let chars: Vec<char> = template.chars().collect();
    let mut out = String::with_capacity(template.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let close = closing_brace(&chars, i + 1)
                    .ok_or_else(|| InterpError::Invalid(template.to_string()))?;
                let inner: String = chars[i + 2..close].iter().collect();
                out.push_str(&braced(&inner, template, lookup, warn)?);
                i = close + 1;
            }
            Some(&n) if n == '_' || n.is_ascii_alphabetic() => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j] == '_' || chars[j].is_ascii_alphanumeric()) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                out.push_str(&value_or_warn(&name, lookup, warn));
                i = j;
            }
            // A `$` before anything else is kept (compose-go's pattern does not match it).
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

fn value_or_warn(
    name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warn: &mut dyn FnMut(&str),
) -> String {
    match lookup(name) {
        Some(v) => v,
        None => {
            warn(name);
            String::new()
        }
    }
}

/// The index of the `}` closing the `{` at `open`, counting nested `${`.
fn closing_brace(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn braced(
    inner: &str,
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    warn: &mut dyn FnMut(&str),
) -> Result<String, InterpError> {
    let name_len = inner
        .char_indices()
        .find(|(_, c)| !(*c == '_' || c.is_ascii_alphanumeric()))
        .map(|(i, _)| i)
        .unwrap_or(inner.len());
    let name = &inner[..name_len];
    let valid_name = name
        .chars()
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    if !valid_name {
        return Err(InterpError::Invalid(template.to_string()));
    }
    let rest = &inner[name_len..];
    if rest.is_empty() {
        return Ok(value_or_warn(name, lookup, warn));
    }
    let (op, word) = if let Some(w) = rest.strip_prefix(":-") {
        (":-", w)
    } else if let Some(w) = rest.strip_prefix(":?") {
        (":?", w)
    } else if let Some(w) = rest.strip_prefix(":+") {
        (":+", w)
    } else if let Some(w) = rest.strip_prefix('-') {
        ("-", w)
    } else if let Some(w) = rest.strip_prefix('?') {
        ("?", w)
    } else if let Some(w) = rest.strip_prefix('+') {
        ("+", w)
    } else {
        return Err(InterpError::Invalid(template.to_string()));
    };
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    match op {
        ":-" | "-" => {
            let use_default = if op == ":-" { !non_empty } else { !set };
            if use_default {
                substitute(word, lookup, warn)
            } else {
                Ok(value.unwrap_or_default())
            }
        }
        ":+" | "+" => {
            let use_word = if op == ":+" { non_empty } else { set };
            if use_word {
                substitute(word, lookup, warn)
            } else {
                Ok(value.unwrap_or_default())
            }
        }
        _ => {
            let ok = if op == ":?" { non_empty } else { set };
            if ok {
                Ok(value.unwrap_or_default())
            } else {
                Err(InterpError::Required {
                    variable: name.to_string(),
                    reason: substitute(word, lookup, warn)?,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(t: &str, env: &[(&str, &str)]) -> (Result<String, InterpError>, Vec<String>) {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut warned = Vec::new();
        let r = substitute(t, &|n| env.get(n).cloned(), &mut |n| {
            warned.push(n.to_string())
        });
        (r, warned)
    }

    #[test]
    fn forms() {
        let env = [("A", "a"), ("E", "")];
        assert_eq!(run("x$A-${A}y", &env).0.unwrap(), "xa-ay");
        assert_eq!(
            run("${E:-d}|${E-d}|${U-d}|${U:-d}", &env).0.unwrap(),
            "d||d|d"
        );
        assert_eq!(
            run("${A:+r}|${E:+r}|${E+r}|${U+r}", &env).0.unwrap(),
            "r||r|"
        );
        assert_eq!(run("$$A $${A}", &env).0.unwrap(), "$A ${A}");
        assert_eq!(run("${U:-${A}-${U2:-z}}", &env).0.unwrap(), "a-z");
        assert_eq!(run("${A?boom}", &env).0.unwrap(), "a");
        assert_eq!(run("${E?boom}", &env).0.unwrap(), "");
    }

    #[test]
    fn required_and_missing() {
        let (r, _) = run("${X:?X must be set}", &[]);
        assert_eq!(
            r.unwrap_err().to_string(),
            "required variable X is missing a value: X must be set"
        );
        let (r, _) = run("${X?}", &[]);
        assert_eq!(
            r.unwrap_err().to_string(),
            "required variable X is missing a value"
        );
        let (r, _) = run("${E:?empty}", &[("E", "")]);
        assert!(r.is_err());
        let (r, w) = run("a${MISSING}b", &[]);
        assert_eq!(r.unwrap(), "ab");
        assert_eq!(w, vec!["MISSING"]);
    }

    #[test]
    fn invalid() {
        assert_eq!(run("a $ b $", &[]).0.unwrap(), "a $ b $");
        for t in ["${", "${}", "${1A}", "${A!x}", "${A"] {
            assert!(
                matches!(run(t, &[]).0, Err(InterpError::Invalid(_))),
                "{t} should be invalid"
            );
        }
        assert_eq!(
            run("${", &[]).0.unwrap_err().to_string(),
            "Invalid template: \"${\""
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(t in "[$a-zA-Z_{}:?+\\-0-9 ]{0,40}") {
            let _ = run(&t, &[("a", "1"), ("B", "")]);
        }

        #[test]
        fn text_without_dollar_is_unchanged(t in "[^$]{0,60}") {
            proptest::prop_assert_eq!(run(&t, &[]).0.unwrap(), t);
        }

        #[test]
        fn escaped_dollars_survive(t in "[a-z ]{0,10}") {
            let src = format!("$${t}$$");
            proptest::prop_assert_eq!(run(&src, &[]).0.unwrap(), format!("${t}$"));
        }
    }
}
