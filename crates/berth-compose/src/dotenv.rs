//! `.env` and `env_file` files as compose-go's `dotenv` reads them: `KEY=value`, `export KEY=`,
//! `#` comments, single quotes (literal), double quotes (escapes, may span lines), unquoted
//! values (trimmed, ` #` starts a comment), `${VAR}` interpolation in unquoted and
//! double-quoted values (from the file's earlier keys, then the lookup), and a bare `KEY`
//! that inherits the lookup's value (absent when the lookup has none).

use crate::interp::{substitute, InterpError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DotenvError {
    #[error("{file}:{line}: unexpected character {ch:?} in variable name {name:?}")]
    BadName {
        file: String,
        line: usize,
        ch: char,
        name: String,
    },
    #[error("{file}:{line}: unterminated quoted value")]
    Unterminated { file: String, line: usize },
    #[error("{file}: {source}")]
    Interp {
        file: String,
        #[source]
        source: InterpError,
    },
}

/// Parses `text`; variables are interpolated from the pairs already read, then `lookup`.
pub fn parse(
    file: &str,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, DotenvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        // Skip blank space and comment lines.
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        // The key.
        let start_line = line;
        let mut key = String::new();
        while i < chars.len() && !matches!(chars[i], '=' | '\n' | ':') && !chars[i].is_whitespace()
        {
            key.push(chars[i]);
            i += 1;
        }
        if key == "export" {
            // `export KEY=value`
            while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
                i += 1;
            }
            key.clear();
            while i < chars.len()
                && !matches!(chars[i], '=' | '\n' | ':')
                && !chars[i].is_whitespace()
            {
                key.push(chars[i]);
                i += 1;
            }
        }
        if let Some(bad) = key
            .chars()
            .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']')))
        {
            return Err(DotenvError::BadName {
                file: file.into(),
                line: start_line,
                ch: bad,
                name: key,
            });
        }
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if i >= chars.len() || chars[i] == '\n' || chars[i] == '#' {
            // A bare KEY inherits the environment's value.
            if let Some(v) = lookup(&key) {
                out.push((key, v));
            }
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if chars[i] != '=' && chars[i] != ':' {
            return Err(DotenvError::BadName {
                file: file.into(),
                line: start_line,
                ch: chars[i],
                name: key,
            });
        }
        i += 1;
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        let value = if i < chars.len() && (chars[i] == '\'' || chars[i] == '"') {
            let q = chars[i];
            i += 1;
            let mut raw = String::new();
            let mut closed = false;
            while i < chars.len() {
                let c = chars[i];
                if c == '\\' && q == '"' && i + 1 < chars.len() {
                    raw.push(c);
                    raw.push(chars[i + 1]);
                    if chars[i + 1] == '\n' {
                        line += 1;
                    }
                    i += 2;
                    continue;
                }
                if c == q {
                    closed = true;
                    i += 1;
                    break;
                }
                if c == '\n' {
                    line += 1;
                }
                raw.push(c);
                i += 1;
            }
            if !closed {
                return Err(DotenvError::Unterminated {
                    file: file.into(),
                    line: start_line,
                });
            }
            // Rest of the line (a comment) is ignored.
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            if q == '\'' {
                raw
            } else {
                let unescaped = unescape(&raw);
                expand(file, &unescaped, &out, lookup)?
            }
        } else {
            let mut raw = String::new();
            while i < chars.len() && chars[i] != '\n' {
                if chars[i] == '#' && raw.ends_with([' ', '\t']) {
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                    break;
                }
                raw.push(chars[i]);
                i += 1;
            }
            let raw = raw.trim().to_string();
            expand(file, &raw, &out, lookup)?
        };
        if let Some(slot) = out.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            out.push((key, value));
        }
    }
    Ok(out)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('$') => out.push_str("$$"),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn expand(
    file: &str,
    raw: &str,
    earlier: &[(String, String)],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, DotenvError> {
    let l = |name: &str| -> Option<String> {
        earlier
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| lookup(name))
    };
    // An unset variable inside a .env value is an empty string without a warning (compose-go).
    substitute(raw, &l, &mut |_| {}).map_err(|source| DotenvError::Interp {
        file: file.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<(String, String)> {
        parse("t.env", s, &|n| (n == "HOME").then(|| "/root".to_string())).unwrap()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn forms() {
        assert_eq!(
            p("# c\nA=1\nexport B = two  # comment\nC='x $A'\nD=\"l1\\nl2 ${A}\"\nE=${HOME}/x\nHOME\nNOPE\nF=\nG=a#b\n"),
            kv(&[
                ("A", "1"),
                ("B", "two"),
                ("C", "x $A"),
                ("D", "l1\nl2 1"),
                ("E", "/root/x"),
                ("HOME", "/root"),
                ("F", ""),
                ("G", "a#b"),
            ])
        );
        assert_eq!(p("M=\"a\nb\"\nN=2\n"), kv(&[("M", "a\nb"), ("N", "2")]));
        assert_eq!(p("A=1\nA=2\n"), kv(&[("A", "2")]));
    }

    #[test]
    fn errors() {
        let e = parse("t.env", "A=1\nB C=2\n", &|_| None).unwrap_err();
        assert!(e.to_string().starts_with("t.env:2:"), "{e}");
        let e = parse("t.env", "A=\"open\n", &|_| None).unwrap_err();
        assert_eq!(e.to_string(), "t.env:1: unterminated quoted value");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,120}") {
            let _ = parse("p.env", &s, &|_| None);
        }
    }
}
