//! The line level of the Dockerfile language (BuildKit's `frontend/dockerfile/parser`):
//! parser directives, comments, line continuations (with empty and comment lines inside),
//! heredoc bodies, and each instruction's arguments split by its own rule. The typed
//! instructions are built from these nodes in `instructions.rs`.

use std::collections::BTreeSet;

use super::error::Error;
use super::shell::{is_space, Lexer, NoVars};
use super::words::{parse_json, parse_words, split_all_sep, split_command, split_once_sep, Json};
use super::{Directive, Heredoc, Location, Warning};

/// One logical line: an instruction with its arguments split, before typing.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The keyword as written.
    pub keyword: String,
    pub flags: Vec<String>,
    pub args: Vec<String>,
    /// The arguments came from the JSON (exec) form.
    pub json: bool,
    /// The logical line (continuations joined), as Docker keeps it.
    pub original: String,
    pub heredocs: Vec<Heredoc>,
    pub comments: Vec<String>,
    pub location: Location,
    /// ONBUILD's instruction.
    pub child: Option<Box<Node>>,
}

pub(crate) struct Parsed {
    pub escape: char,
    pub directives: Vec<Directive>,
    pub warnings: Vec<Warning>,
    pub nodes: Vec<Node>,
}

const DIRECTIVES: [&str; 3] = ["syntax", "escape", "check"];

#[derive(Default)]
struct DirectiveParser {
    done: bool,
    seen: BTreeSet<String>,
}

impl DirectiveParser {
    /// A `# name=value` line at the top of the file; anything else ends the directives.
    fn parse_line(&mut self, line: &str) -> Result<Option<(String, String)>, String> {
        if self.done {
            return Ok(None);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(None);
        };
        let rest = rest.trim_start_matches(is_space);
        let Some((name, value)) = match_directive(rest) else {
            self.done = true;
            return Ok(None);
        };
        let key = name.to_lowercase();
        if !DIRECTIVES.contains(&key.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if !self.seen.insert(key.clone()) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        Ok(Some((key, value)))
    }
}

/// RE2's `\s`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

/// Docker's `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn match_directive(s: &str) -> Option<(String, String)> {
    let mut chars = s.char_indices();
    let (_, first) = chars.next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let name_end = s
        .char_indices()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
        .map_or(s.len(), |(i, _)| i);
    let name = &s[..name_end];
    let rest = s[name_end..].trim_start_matches(is_re_space);
    let rest = rest.strip_prefix('=')?;
    if rest.is_empty() {
        return None;
    }
    let trimmed = rest.trim_start_matches(is_re_space);
    let value = if trimmed.is_empty() {
        // Only whitespace after '=': the lazy group still takes one character.
        rest.chars().last().map(String::from)?
    } else {
        trimmed.trim_end_matches(is_re_space).to_string()
    };
    Some((name.to_string(), value))
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('#')
}

/// Removes a trailing line-continuation (the escape character, optionally followed by spaces
/// and tabs) unless the escape character is itself escaped. Returns the line and whether the
/// instruction ends here.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() {
            return (String::new(), false);
        }
        if !before.ends_with(escape) {
            return (before.to_string(), false);
        }
    }
    (line.to_string(), true)
}

/// Parses the whole file into nodes.
pub(crate) fn parse_nodes(source: &str, file: &str) -> Result<Parsed, Error> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut escape = '\\';
    let mut dp = DirectiveParser::default();
    let mut directives = Vec::new();
    let mut warnings = Vec::new();
    let mut nodes = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut lines = source.split_inclusive('\n');
    let mut current = 0usize;
    let err = |start: usize, end: usize, msg: String| {
        Error::at(
            file,
            Location::new(start.max(1), end.max(start).max(1)),
            msg,
        )
    };

    // Processes a line for directives; returns the line with comments removed.
    let mut process_line = |raw: &str,
                            strip_left: bool,
                            line_no: usize,
                            escape: &mut char,
                            directives: &mut Vec<Directive>|
     -> Result<(String, bool), Error> {
        let mut token = trim_newline(raw);
        if strip_left {
            token = token.trim_start_matches(is_space);
        }
        let found = dp.parse_line(token).map_err(|m| err(line_no, line_no, m))?;
        let mut is_directive = false;
        if let Some((name, value)) = found {
            if name == "escape" {
                if value != "`" && value != "\\" {
                    return Err(err(
                        line_no,
                        line_no,
                        format!("invalid escape token '{value}' does not match ` or \\"),
                    ));
                }
                *escape = value.chars().next().unwrap_or('\\');
            }
            directives.push(Directive {
                name,
                value,
                line: line_no,
            });
            is_directive = true;
        }
        let out = if is_comment(token) { "" } else { token };
        Ok((out.to_string(), is_directive))
    };

    while let Some(raw) = lines.next() {
        let line_no = current + 1;
        if is_comment(raw) {
            let c = raw.trim_start_matches(is_space)[1..].trim_matches(is_space);
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c.to_string());
            }
        }
        let (processed, is_directive) =
            process_line(raw, true, line_no, &mut escape, &mut directives)?;
        if is_directive {
            comments.pop();
        }
        current += 1;
        let start = current;
        let (first, mut eol) = trim_continuation(&processed, escape);
        if eol && first.is_empty() {
            continue;
        }
        let mut buf = first;
        let mut has_empty = false;
        while !eol {
            let Some(raw) = lines.next() else { break };
            let (processed, _) =
                process_line(raw, false, current + 1, &mut escape, &mut directives)?;
            current += 1;
            if is_comment(raw) {
                continue;
            }
            if processed.trim_start_matches(is_space).is_empty() {
                has_empty = true;
                continue;
            }
            let (part, e) = trim_continuation(&processed, escape);
            eol = e;
            buf.push_str(&part);
        }
        if has_empty {
            warnings.push(Warning {
                line: current,
                message: format!("Empty continuation line found in: {buf}"),
            });
        }
        let mut node = node_from_line(&buf, escape, std::mem::take(&mut comments))
            .map_err(|m| err(start, current, m))?;
        if can_contain_heredoc(&node) && buf.contains("<<") {
            let docs = heredocs_from_line(&buf).map_err(|m| err(start, current, m))?;
            for mut doc in docs {
                let mut content = String::new();
                let mut terminated = false;
                for raw in lines.by_ref() {
                    current += 1;
                    let mut candidate = trim_newline(raw);
                    if doc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(raw);
                }
                if !terminated {
                    return Err(err(
                        start,
                        current,
                        format!("unterminated heredoc (no line {:?} ends it)", doc.name),
                    ));
                }
                doc.content = content;
                node.heredocs.push(doc);
            }
        }
        node.location = Location::new(start, current);
        if let Some(child) = node.child.as_mut() {
            child.location = node.location;
        }
        nodes.push(node);
    }

    if nodes.is_empty() {
        return Err(if source.is_empty() {
            Error::new(file, None, "the Dockerfile cannot be empty")
        } else {
            err(current, current, "file with no instructions".into())
        });
    }
    Ok(Parsed {
        escape,
        directives,
        warnings,
        nodes,
    })
}

/// Only ADD, COPY and RUN in shell form (also under ONBUILD) read heredocs.
fn can_contain_heredoc(node: &Node) -> bool {
    let n = match (node.keyword.to_lowercase().as_str(), node.child.as_deref()) {
        ("onbuild", Some(child)) => child,
        _ => node,
    };
    matches!(n.keyword.to_lowercase().as_str(), "add" | "copy" | "run") && !n.json
}

/// Splits a logical line into a node (no heredoc bodies yet).
pub(crate) fn node_from_line(
    line: &str,
    escape: char,
    comments: Vec<String>,
) -> Result<Node, String> {
    let (keyword, flags, rest) = split_command(line, escape);
    let mut node = Node {
        keyword: keyword.clone(),
        flags,
        args: Vec::new(),
        json: false,
        original: line.to_string(),
        heredocs: Vec::new(),
        comments,
        location: Location::new(1, 1),
        child: None,
    };
    match keyword.to_lowercase().as_str() {
        "add" | "copy" | "volume" => {
            let (args, json) = maybe_json_to_list(&rest)?;
            node.args = args;
            node.json = json;
        }
        "cmd" | "entrypoint" | "run" | "shell" => {
            let (args, json) = maybe_json(&rest)?;
            node.args = args;
            node.json = json;
        }
        "expose" | "from" => node.args = whitespace_delimited(&rest),
        "maintainer" | "stopsignal" | "user" | "workdir" if !rest.is_empty() => {
            node.args = vec![rest];
        }
        "env" => node.args = name_val(&rest, "ENV", escape)?,
        "label" => node.args = name_val(&rest, "LABEL", escape)?,
        "arg" => node.args = parse_words(&rest, escape),
        "healthcheck" => {
            if let Some((typ, cmd)) = health_split(&rest) {
                let (mut args, json) = maybe_json(cmd)?;
                args.insert(0, typ.to_string());
                node.args = args;
                node.json = json;
            }
        }
        "onbuild" if !rest.is_empty() => {
            let child = node_from_line(&rest, escape, Vec::new())?;
            node.child = Some(Box::new(child));
        }
        // Unknown instructions are reported with their line when the nodes are typed.
        _ => {}
    }
    Ok(node)
}

fn whitespace_delimited(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_all_sep(rest)
}

const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

/// An argument that starts like a JSON array but ends before the array closes: Docker runs it
/// as a shell command (which then fails); berth reports it where it is written.
fn unterminated_json(rest: &str) -> bool {
    let t = rest.trim_start_matches(is_space);
    t.starts_with('[')
        && matches!(
            serde_json::from_str::<serde_json::Value>(t),
            Err(e) if e.is_eof()
        )
}

const UNTERMINATED_JSON: &str =
    "unterminated JSON array: the exec form needs a closing ] (or write the shell form without [)";

fn maybe_json(rest: &str) -> Result<(Vec<String>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(rest) {
        Json::Array(v) => Ok((v, true)),
        Json::NotStrings => Err(NOT_STRINGS.into()),
        Json::Shell if unterminated_json(rest) => Err(UNTERMINATED_JSON.into()),
        Json::Shell => Ok((vec![rest.to_string()], false)),
    }
}

fn maybe_json_to_list(rest: &str) -> Result<(Vec<String>, bool), String> {
    match parse_json(rest) {
        Json::Array(v) => Ok((v, true)),
        Json::NotStrings => Err(NOT_STRINGS.into()),
        Json::Shell if unterminated_json(rest) => Err(UNTERMINATED_JSON.into()),
        Json::Shell => Ok((whitespace_delimited(rest), false)),
    }
}

/// ENV and LABEL: `KEY value` (the legacy form: one pair, the rest of the line is the value)
/// or `KEY=value ...`. Returns triples `key, value, separator` flattened, as Docker does.
fn name_val(rest: &str, key: &str, escape: char) -> Result<Vec<String>, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.contains('=') {
        let (k, v) = split_once_sep(rest);
        let Some(v) = v else {
            return Err(format!("{key} must have two arguments"));
        };
        return Ok(vec![k.to_string(), v.to_string(), String::new()]);
    }
    let mut out = Vec::new();
    for w in &words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {}. Must be of the form: name=value",
                super::shell::go_quote(w)
            ));
        };
        out.extend([k.to_string(), v.to_string(), "=".to_string()]);
    }
    Ok(out)
}

/// HEALTHCHECK: the type word and the rest.
fn health_split(rest: &str) -> Option<(&str, &str)> {
    let sep = rest.find(is_space).unwrap_or(rest.len());
    if sep == 0 {
        return None;
    }
    Some((&rest[..sep], rest[sep..].trim_start_matches(is_space)))
}

/// Finds the heredocs a line opens (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`, several per line).
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let lex = Lexer::new('\\')
        .with_raw_quotes(true)
        .with_raw_escapes(true)
        .with_skip_unset(true);
    // Docker ignores lexing errors here: the line is then not scanned for heredocs.
    let words = lex
        .expand_words(line, &NoVars)
        .map(|e| e.value)
        .unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(doc) = parse_heredoc(&w).map_err(|e| e.to_string())? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Docker's `^(\d*)<<(-?)\s*([^<]*)$` on one word, and the delimiter's quoting.
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, super::shell::ExpandError> {
    let digits_end = word
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(word.len(), |(i, _)| i);
    let (fd, rest) = word.split_at(digits_end);
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(is_re_space);
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    let lex = Lexer::new('\\').with_skip_unset(true);
    let words = lex.expand_words(rest, &NoVars)?.value;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = lex.with_raw_quotes(true).expand_words(rest, &NoVars)?.value;
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = raw.len() == 1 && quotes(&words[0]) == quotes(&raw[0]);
    Ok(Some(Heredoc {
        name: words[0].clone(),
        fd: fd.parse().unwrap_or(0),
        expand,
        chomp,
        content: String::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_regexp() {
        assert_eq!(
            match_directive("escape = `"),
            Some(("escape".into(), "`".into()))
        );
        assert_eq!(
            match_directive("syntax=docker/dockerfile:1  "),
            Some(("syntax".into(), "docker/dockerfile:1".into()))
        );
        assert_eq!(match_directive("escape="), None);
        assert_eq!(match_directive("1x=y"), None);
        assert_eq!(match_directive("foo bar=y"), None);
        assert_eq!(
            match_directive("escape=  "),
            Some(("escape".into(), " ".into()))
        );
    }

    #[test]
    fn continuation() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ".into(), false));
        assert_eq!(trim_continuation("a\\  \t", '\\'), ("a".into(), false));
        assert_eq!(trim_continuation("\\", '\\'), (String::new(), false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\".into(), true));
        assert_eq!(trim_continuation("a `", '`'), ("a ".into(), false));
        assert_eq!(trim_continuation("a \\", '`'), ("a \\".into(), true));
    }

    #[test]
    fn heredoc_words() {
        let h = parse_heredoc("<<EOF").unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.chomp, h.fd),
            ("EOF", true, false, 0)
        );
        let h = parse_heredoc("<<-'EOF'").unwrap().unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.chomp), ("EOF", false, true));
        let h = parse_heredoc("3<<\"E\"OF").unwrap().unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.fd), ("EOF", false, 3));
        assert!(parse_heredoc("<<").unwrap().is_none());
        assert!(parse_heredoc("x<<EOF").unwrap().is_none());
        assert!(parse_heredoc("<<EOF<<").unwrap().is_none());
        let docs = heredocs_from_line("RUN cat <<A <<-B > /x").unwrap();
        let names: Vec<_> = docs.iter().map(|d| (d.name.as_str(), d.chomp)).collect();
        assert_eq!(names, vec![("A", false), ("B", true)]);
        let docs = heredocs_from_line("RUN echo '<<A'").unwrap();
        assert!(docs.is_empty());
    }
}
