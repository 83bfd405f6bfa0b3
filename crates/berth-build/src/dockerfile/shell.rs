//! Word expansion as Docker's shell lexer does it (BuildKit's `frontend/dockerfile/shell`):
//! quotes, the escape character, `$v`, `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`,
//! `${v:?msg}`, `${v?msg}`, `${v#p}`, `${v##p}`, `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`,
//! and word splitting. It is not a shell: no command substitution, no globbing, no arithmetic.
//!
//! Written by hand (no crate implements Docker's dialect): the rules below are Docker's, quirks
//! included, because the same Dockerfile must give the same image as on Docker.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

/// A source of variable values for expansion.
///
/// Implemented for maps and for [`EnvList`] (Docker's `KEY=value` lists). The builder's own
/// scopes ([`super::StageScope`], [`super::GlobalScope`]) implement it with Docker's precedence.
pub trait Vars {
    /// The value of `name`, or `None` when it is not set (an empty value is set).
    fn get(&self, name: &str) -> Option<&str>;
}

impl<S: BuildHasher> Vars for HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Vars for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

impl<V: Vars + ?Sized> Vars for &V {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

/// No variables at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVars;

impl Vars for NoVars {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// A list of `KEY=value` strings (an image's `Config.Env`); the last entry for a key wins and
/// an entry without `=` sets the key to the empty string, as Docker reads such lists.
#[derive(Debug, Clone, Copy)]
pub struct EnvList<'a>(pub &'a [String]);

impl Vars for EnvList<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        env_lookup(self.0, name)
    }
}

/// The value of `name` in a `KEY=value` list (the last entry wins).
pub(crate) fn env_lookup<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter().rev().find_map(|e| match e.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        None if e == name => Some(""),
        _ => None,
    })
}

/// The result of an expansion and the variables it looked at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expanded<T> {
    /// The expanded word or words.
    pub value: T,
    /// Variables that were referenced and set (their values shaped `value`).
    pub used: BTreeSet<String>,
    /// Variables that were referenced but not set (they expanded to nothing or a default).
    pub unset: BTreeSet<String>,
}

impl<T> Expanded<T> {
    /// Every variable the expansion referenced, set or not: what a cache key must cover.
    pub fn referenced(&self) -> impl Iterator<Item = &str> {
        self.used
            .iter()
            .chain(self.unset.iter())
            .map(String::as_str)
    }
}

/// An expansion failed: bad `${...}` syntax, an unterminated quote, or `${v:?msg}` with `v`
/// unset. The message is Docker's (`failed to process "…": …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {}: {reason}", go_quote(.word))]
pub struct ExpandError {
    /// The word that was being expanded.
    pub word: String,
    /// What went wrong, in Docker's words.
    pub reason: String,
}

pub(crate) use berth_api::gotime::go_quote;

/// Docker's shell lexer, parameterised by the escape character (`\` or `` ` ``, from the
/// `# escape=` directive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

impl Lexer {
    /// A lexer with the given escape character.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset: false,
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keep quote characters in the output (they still group words).
    pub(crate) fn with_raw_quotes(mut self, on: bool) -> Self {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output.
    pub(crate) fn with_raw_escapes(mut self, on: bool) -> Self {
        self.raw_escapes = on;
        self
    }

    /// Treat quotes as ordinary characters (heredoc bodies).
    pub(crate) fn with_skip_process_quotes(mut self, on: bool) -> Self {
        self.skip_process_quotes = on;
        self
    }

    /// Leave references to unset variables as written.
    pub(crate) fn with_skip_unset(mut self, on: bool) -> Self {
        self.skip_unset = on;
        self
    }

    /// Expands `word` into one string: quotes removed, escapes applied, variables substituted,
    /// whitespace kept (Docker's `ProcessWord`, used by ENV, LABEL, COPY, WORKDIR, ...).
    pub fn expand_word(
        &self,
        word: &str,
        vars: &dyn Vars,
    ) -> Result<Expanded<String>, ExpandError> {
        let (value, _, used, unset) = self.process(word, vars)?;
        Ok(Expanded { value, used, unset })
    }

    /// Expands `word` and splits the result into words at unquoted whitespace, including
    /// whitespace that came from variable values (Docker's `ProcessWords`, used by EXPOSE).
    pub fn expand_words(
        &self,
        word: &str,
        vars: &dyn Vars,
    ) -> Result<Expanded<Vec<String>>, ExpandError> {
        let (_, value, used, unset) = self.process(word, vars)?;
        Ok(Expanded { value, used, unset })
    }

    /// Expands the body of a heredoc whose delimiter was not quoted: variables and escapes
    /// are processed, quotes are ordinary characters, and the escape character is always `\`
    /// (BuildKit's rule for `COPY <<EOF`).
    pub fn expand_heredoc(body: &str, vars: &dyn Vars) -> Result<Expanded<String>, ExpandError> {
        Lexer::new('\\')
            .with_skip_process_quotes(true)
            .expand_word(body, vars)
    }

    #[allow(clippy::type_complexity)]
    fn process(
        &self,
        word: &str,
        vars: &dyn Vars,
    ) -> Result<(String, Vec<String>, BTreeSet<String>, BTreeSet<String>), ExpandError> {
        let mut sw = ShellWord {
            lex: *self,
            chars: word.chars().collect(),
            pos: 0,
            vars,
            raw_escapes: self.raw_escapes,
            used: BTreeSet::new(),
            unset: BTreeSet::new(),
        };
        match sw.process_stop_on(None, self.raw_escapes) {
            Ok((s, words)) => Ok((s, words, sw.used, sw.unset)),
            Err(reason) => Err(ExpandError {
                word: word.to_string(),
                reason,
            }),
        }
    }
}

/// Go's `unicode.IsSpace` (the same set as Rust's `char::is_whitespace`).
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn new() -> Self {
        Words {
            buf: String::new(),
            words: Vec::new(),
            in_word: false,
        }
    }

    fn add_char(&mut self, c: char) {
        if is_space(c) {
            // Whitespace ends a word only when the word has content; `''` opens a word that
            // never closes, and an empty word is never emitted (Docker's behaviour).
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.buf.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

struct ShellWord<'a> {
    lex: Lexer,
    chars: Vec<char>,
    pos: usize,
    vars: &'a dyn Vars,
    raw_escapes: bool,
    used: BTreeSet<String>,
    unset: BTreeSet<String>,
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_var(&mut self, name: &str) -> Option<String> {
        match self.vars.get(name) {
            Some(v) => {
                self.used.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unset.insert(name.to_string());
                None
            }
        }
    }

    /// Processes until `stop` (consumed) or the end; returns the joined result and the words.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::new();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            let special = match ch {
                '$' => Some(self.process_dollar()?),
                '<' => Some(self.process_possible_heredoc()),
                '\'' if !self.lex.skip_process_quotes => Some(self.process_single_quote()?),
                '"' if !self.lex.skip_process_quotes => Some(self.process_double_quote()?),
                _ => None,
            };
            if let Some(tmp) = special {
                result.push_str(&tmp);
                if ch == '$' {
                    words.add_string(&tmp);
                } else {
                    words.add_raw_string(&tmp);
                }
                continue;
            }
            let mut ch = self.next().unwrap_or_default();
            if ch == self.lex.escape {
                if self.raw_escapes {
                    words.add_raw_char(ch);
                    result.push(ch);
                }
                // The escape character escapes the next one; at the end it is dropped.
                match self.next() {
                    Some(c) => ch = c,
                    None => break,
                }
                words.add_raw_char(ch);
            } else {
                words.add_char(ch);
            }
            result.push(ch);
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result<String, String> {
        // Everything up to the next ' is literal; a ' cannot be escaped inside.
        let mut result = String::new();
        let open = self.next().unwrap_or('\'');
        if self.lex.raw_quotes {
            result.push(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    )
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, String> {
        // Literal except $ and the escape character, which escapes only ", $ and itself.
        let mut result = String::new();
        let open = self.next().unwrap_or('"');
        if self.lex.raw_quotes {
            result.push(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    )
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(d) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn process_dollar(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_var(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut chs = ch.to_string();
        match ch {
            '}' => {
                return Ok(match self.get_var(&name) {
                    Some(v) => v,
                    None if self.lex.skip_unset => format!("${{{name}}}"),
                    None => String::new(),
                });
            }
            ':' | '+' | '-' | '?' | '#' | '%' => {}
            '/' => return self.process_replace(&name),
            _ => return Err(format!("unsupported modifier ({chs}) in substitution")),
        }
        let null_is_unset = ch == ':';
        if null_is_unset {
            // Docker reads the character after ':' and treats it as the modifier whatever it is.
            match self.next() {
                Some(c) => {
                    ch = c;
                    chs.push(c);
                }
                None => return Err("syntax error: missing '}'".into()),
            }
        }
        let pattern_op = ch == '#' || ch == '%';
        if null_is_unset && pattern_op {
            return Err(format!("unsupported modifier ({chs}) in substitution"));
        }
        let word = match self.process_stop_on(Some('}'), pattern_op) {
            Ok((w, _)) => w,
            Err(e) => {
                if self.peek().is_none() {
                    return Err("syntax error: missing '}'".into());
                }
                return Err(e);
            }
        };
        let value = self.get_var(&name);
        if value.is_none() && self.lex.skip_unset {
            return Ok(format!("${{{name}{chs}{word}}}"));
        }
        let set = value.is_some();
        let value = value.unwrap_or_default();
        let empty_or_unset = !set || (null_is_unset && value.is_empty());
        match ch {
            '-' => Ok(if empty_or_unset { word } else { value }),
            '+' => Ok(if empty_or_unset { String::new() } else { word }),
            '?' => {
                if !set {
                    let msg = if word.is_empty() {
                        "is not allowed to be unset".to_string()
                    } else {
                        word
                    };
                    return Err(format!("{name}: {msg}"));
                }
                if null_is_unset && value.is_empty() {
                    let msg = if word.is_empty() {
                        "is not allowed to be empty".to_string()
                    } else {
                        word
                    };
                    return Err(format!("{name}: {msg}"));
                }
                Ok(value)
            }
            '#' | '%' => {
                let (greedy, pat) = match word.strip_prefix(ch) {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, word),
                };
                let pat = Pattern::compile(&pat)
                    .map_err(|e| format!("invalid pattern ({pat}) in substitution: {e}"))?;
                Ok(if ch == '#' {
                    pat.trim_prefix(&value, greedy)
                } else {
                    pat.trim_suffix(&value, greedy)
                })
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    fn process_replace(&mut self, name: &str) -> Result<String, String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((p, _)) => p,
            Err(e) => {
                if self.peek().is_none() {
                    return Err("syntax error: missing '/' in ${}".into());
                }
                return Err(e);
            }
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((r, _)) => r,
            Err(e) => {
                if self.peek().is_none() {
                    return Err("syntax error: missing '}'".into());
                }
                return Err(e);
            }
        };
        let value = match self.get_var(name) {
            Some(v) => v,
            None if self.lex.skip_unset => {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            // Docker applies the replacement to the empty value.
            None => String::new(),
        };
        let pat = Pattern::compile(&pattern)
            .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
        Ok(pat.replace(&value, &replacement, all))
    }
}

/// A shell pattern of `${v#p}`, `${v%p}` and `${v/p/r}`: `*` any string, `?` any character,
/// `\` escapes `*`, `?` and `\` (and is dropped before `}` and `/`). Bracket expressions are
/// not supported, as in Docker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PatTok {
    Lit(char),
    Any,
    Star,
}

struct Pattern(Vec<PatTok>);

impl Pattern {
    fn compile(p: &str) -> Result<Pattern, String> {
        let mut toks = Vec::new();
        let mut it = p.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '*' => toks.push(PatTok::Star),
                '?' => toks.push(PatTok::Any),
                '\\' => {
                    if matches!(it.peek(), Some('}' | '/')) {
                        continue;
                    }
                    match it.next() {
                        Some(e @ ('*' | '?' | '\\')) => toks.push(PatTok::Lit(e)),
                        Some(e) => return Err(format!("invalid escape '\\{e}'")),
                        None => return Err("invalid escape '\\'".into()),
                    }
                }
                c => toks.push(PatTok::Lit(c)),
            }
        }
        Ok(Pattern(toks))
    }

    /// Whether the pattern matches exactly `s`.
    fn matches(&self, s: &[char]) -> bool {
        fn rec(p: &[PatTok], s: &[char]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some((PatTok::Star, rest)) => (0..=s.len()).any(|i| rec(rest, &s[i..])),
                Some((PatTok::Any, rest)) => !s.is_empty() && rec(rest, &s[1..]),
                Some((PatTok::Lit(c), rest)) => s.first() == Some(c) && rec(rest, &s[1..]),
            }
        }
        // Collapse runs of stars: keeps the recursion polynomial on hostile patterns.
        let mut toks: Vec<PatTok> = Vec::with_capacity(self.0.len());
        for t in &self.0 {
            if *t == PatTok::Star && toks.last() == Some(&PatTok::Star) {
                continue;
            }
            toks.push(t.clone());
        }
        rec(&toks, s)
    }

    fn trim_prefix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut ends: Box<dyn Iterator<Item = usize>> = if longest {
            Box::new((0..=chars.len()).rev())
        } else {
            Box::new(0..=chars.len())
        };
        match ends.find(|&e| self.matches(&chars[..e])) {
            Some(e) => chars[e..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, longest: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let n = chars.len();
        let mut starts: Box<dyn Iterator<Item = usize>> = if longest {
            Box::new(0..=n)
        } else {
            Box::new((0..=n).rev())
        };
        match starts.find(|&s| self.matches(&chars[s..])) {
            Some(s) => chars[..s].iter().collect(),
            None => value.to_string(),
        }
    }

    /// Replaces the leftmost-longest match (or every non-overlapping one) with `rep`.
    fn replace(&self, value: &str, rep: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut i = 0;
        let mut replaced = false;
        while i <= chars.len() {
            if replaced && !all {
                break;
            }
            let found = (i..=chars.len())
                .rev()
                .find(|&e| self.matches(&chars[i..e]));
            match found {
                Some(e) => {
                    out.push_str(rep);
                    replaced = true;
                    if e == i {
                        // An empty match: keep the character and move on (as Go's regexp).
                        if let Some(c) = chars.get(i) {
                            out.push(*c);
                        }
                        i += 1;
                    } else {
                        i = e;
                    }
                }
                None => {
                    if let Some(c) = chars.get(i) {
                        out.push(*c);
                    }
                    i += 1;
                }
            }
        }
        if i < chars.len() {
            out.extend(&chars[i..]);
        }
        out
    }
}
