//! Splitting an instruction's text the way Docker's parser does before any expansion: the
//! keyword, the leading `--flags`, space-separated words that keep their quotes, and the
//! JSON (exec) form.

use super::shell::is_space;

/// Docker's `[\t\v\f\r ]+` separator between keyword, flags and arguments.
pub(crate) fn is_sep(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits `s` at the first run of separators: `(head, rest)`; `rest` is `None` when there is
/// no separator.
pub(crate) fn split_once_sep(s: &str) -> (&str, Option<&str>) {
    match s.find(is_sep) {
        Some(i) => {
            let head = &s[..i];
            let rest = s[i..].trim_start_matches(is_sep);
            (head, Some(rest))
        }
        None => (s, None),
    }
}

/// Splits on every run of separators (Go's `regexp.Split(s, -1)`: leading or trailing
/// separators give empty strings).
pub(crate) fn split_all_sep(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_sep = false;
    for c in s.chars() {
        if is_sep(c) {
            if !in_sep {
                out.push(std::mem::take(&mut cur));
                in_sep = true;
            }
        } else {
            in_sep = false;
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// The keyword, the builder flags (`--name[=value]`, quotes and escapes removed) and the rest
/// of the line (trimmed).
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let trimmed = line.trim_matches(is_space);
    let (cmd, rest) = split_once_sep(trimmed);
    match rest {
        Some(rest) => {
            let (args, flags) = extract_flags(rest, escape);
            (
                cmd.to_string(),
                flags,
                args.trim_matches(is_space).to_string(),
            )
        }
        None => (cmd.to_string(), Vec::new(), String::new()),
    }
}

/// Leading words starting with `--` are flags; `--` alone ends them.
fn extract_flags(line: &str, escape: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let cur = chars.get(i).copied();
        if phase == Phase::Spaces {
            let Some((off, ch)) = cur else { break };
            if is_space(ch) {
                i += 1;
                continue;
            }
            let next = chars.get(i + 1).map(|c| c.1);
            if ch != '-' || next != Some('-') {
                return (line[off..].to_string(), words);
            }
            phase = Phase::Word;
        }
        let Some((off, ch)) = cur else {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        };
        match phase {
            Phase::Word => {
                if is_space(ch) {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (line[off..].to_string(), words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    i += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                    i += 1;
                    continue;
                }
                if ch == escape {
                    if i + 1 == chars.len() {
                        i += 1;
                        continue;
                    }
                    i += 1;
                    word.push(chars[i].1);
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                    i += 1;
                    continue;
                }
                if ch == escape {
                    if i + 1 == chars.len() {
                        phase = Phase::Word;
                        i += 1;
                        continue;
                    }
                    i += 1;
                    word.push(chars[i].1);
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
            }
            // Handled before the match: the phase is never Spaces here.
            Phase::Spaces => {}
        }
    }
    (String::new(), words)
}

/// Space-separated words that keep their quotes and escapes (expansion removes them later);
/// whitespace inside quotes or after the escape character does not split.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        let cur = chars.get(i).copied();
        if phase == Phase::Spaces {
            let Some(ch) = cur else { break };
            if is_space(ch) {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        let Some(mut ch) = cur else {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        };
        match phase {
            Phase::Word => {
                if is_space(ch) {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    i += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                }
                if ch == escape {
                    if i + 1 == chars.len() {
                        // An escape at the very end is dropped.
                        i += 1;
                        continue;
                    }
                    // Unquoted: keep the escape and the next character, even a quote.
                    word.push(ch);
                    i += 1;
                    ch = chars[i];
                }
                word.push(ch);
                i += 1;
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                }
                // Inside '...' the escape character is ordinary.
                if ch == escape && q != '\'' {
                    if i + 1 == chars.len() {
                        phase = Phase::Word;
                        i += 1;
                        continue;
                    }
                    word.push(ch);
                    i += 1;
                    ch = chars[i];
                }
                word.push(ch);
                i += 1;
            }
            Phase::Spaces => {}
        }
    }
    words
}

/// The result of trying the JSON (exec) form.
pub(crate) enum Json {
    /// A JSON array of strings.
    Array(Vec<String>),
    /// Not a JSON array: the shell form applies.
    Shell,
    /// A JSON array with something other than strings: an error in Docker.
    NotStrings,
}

/// Docker's `parseJSON`: the text must start with `[` (after whitespace) and be exactly one
/// JSON array; only an array of strings is the exec form.
pub(crate) fn parse_json(rest: &str) -> Json {
    let t = rest.trim_start_matches(is_space);
    if !t.starts_with('[') {
        return Json::Shell;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(t) {
        Ok(values) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Array(out)
        }
        Err(_) => Json::Shell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_split_off() {
        let (cmd, flags, args) = split_command("COPY --from=a --chown=1:2 x y", '\\');
        assert_eq!(cmd, "COPY");
        assert_eq!(flags, vec!["--from=a", "--chown=1:2"]);
        assert_eq!(args, "x y");
        let (_, flags, args) = split_command("COPY --doit=true -- foo /tmp/", '\\');
        assert_eq!(flags, vec!["--doit=true"]);
        assert_eq!(args, "foo /tmp/");
        let (_, flags, args) = split_command("CMD --doit -- [ ]", '\\');
        assert_eq!(flags, vec!["--doit"]);
        assert_eq!(args, "[ ]");
        let (_, flags, args) = split_command(r#"COPY --chown="a b" x y"#, '\\');
        assert_eq!(flags, vec!["--chown=a b"]);
        assert_eq!(args, "x y");
        let (_, flags, _) = split_command(r#"RUN --x="" y"#, '\\');
        assert_eq!(flags, vec!["--x="]);
        let (cmd, flags, args) = split_command("  RUN  ", '\\');
        assert_eq!((cmd.as_str(), flags.len(), args.as_str()), ("RUN", 0, ""));
        let (_, flags, args) = split_command("RUN -- --x", '\\');
        assert!(flags.is_empty());
        assert_eq!(args, "--x");
        let (_, flags, args) = split_command("RUN --a", '\\');
        assert_eq!(flags, vec!["--a"]);
        assert_eq!(args, "");
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            parse_words(r#"abc="123 456" def"#, '\\'),
            vec![r#"abc="123 456""#, "def"]
        );
        assert_eq!(parse_words(r"a\ b c", '\\'), vec![r"a\ b", "c"]);
        // Inside '...' the escape is ordinary: the quote after it closes.
        assert_eq!(parse_words(r"'a\'b' c", '\\'), vec![r"'a\'b' c"]);
        assert_eq!(parse_words(r#""a\"b" c"#, '\\'), vec![r#""a\"b""#, "c"]);
        assert_eq!(parse_words(r#""" x"#, '\\'), vec![r#""""#, "x"]);
        assert_eq!(parse_words("a\\", '\\'), vec!["a"]);
        assert!(parse_words("   ", '\\').is_empty());
    }

    #[test]
    fn json_forms() {
        assert!(matches!(parse_json(r#"["a","b"]"#), Json::Array(v) if v == ["a", "b"]));
        assert!(matches!(parse_json("[]"), Json::Array(v) if v.is_empty()));
        assert!(matches!(parse_json(r#"["a", 1]"#), Json::NotStrings));
        assert!(matches!(parse_json(r#"["a""#), Json::Shell));
        assert!(matches!(parse_json("['a']"), Json::Shell));
        assert!(matches!(parse_json(r#""[\"a\"]""#), Json::Shell));
        assert!(matches!(parse_json(r#"["a"] x"#), Json::Shell));
    }

    #[test]
    fn separators() {
        assert_eq!(split_all_sep("a  b\tc"), vec!["a", "b", "c"]);
        assert_eq!(split_all_sep(" a "), vec!["", "a", ""]);
        assert_eq!(split_once_sep("a \t b c"), ("a", Some("b c")));
    }
}
