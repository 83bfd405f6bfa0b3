//! `.dockerignore` with Docker's exact semantics (moby/patternmatcher and its `ignorefile`
//! reader, as the Docker CLI uses them to build the context tar):
//!
//! * one pattern per line; a line starting with `#` is a comment; surrounding whitespace is
//!   trimmed; patterns are cleaned (`./a//b/` is `a/b`) and a leading `/` removed;
//! * Go's `filepath.Match` syntax (`*`, `?`, `[a-z]`, `\` escapes) plus `**` for any number of
//!   directories; a pattern that matches a directory excludes everything under it;
//! * `!pattern` re-includes what earlier patterns excluded; patterns are evaluated in order
//!   and the last one that matches decides.
//!
//! For a context walker: [`Dockerignore::check`] evaluates a path from its parent's
//! [`MatchInfo`] without re-matching the ancestors (as Docker's walker does), and
//! [`Dockerignore::can_skip_dir`] says when an excluded directory need not be read at all.
//! Docker's CLI skips an excluded directory unless an exception pattern starts with the
//! directory's path, which loses files re-included by patterns like `!**/keep`; berth skips a
//! directory only when no exception pattern could match anything under it, so such files are
//! sent (the result BuildKit gives).

use std::fmt;

use regex::Regex;

use crate::paths::clean;

/// A `.dockerignore` pattern is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// A line that is only `!`.
    #[error("illegal exclusion pattern: \"!\"")]
    IllegalExclusion,
    /// Not valid `filepath.Match` syntax (an unclosed `[`, a trailing `\`, ...).
    #[error("syntax error in pattern {pattern:?}: {reason}")]
    BadPattern {
        /// The pattern as cleaned.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex(Regex),
}

/// One pattern of a `.dockerignore`.
#[derive(Debug, Clone)]
pub struct Pattern {
    cleaned: String,
    exclusion: bool,
    kind: Kind,
}

impl Pattern {
    /// The pattern as cleaned, without the leading `!`.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// Whether this is an exception (`!pattern`): it re-includes what it matches.
    pub fn is_exception(&self) -> bool {
        self.exclusion
    }

    /// Whether the pattern itself matches `path` (ancestors not considered).
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Regex(re) => re.is_match(path),
        }
    }

    /// Whether the pattern could match some path strictly under `dir` (conservative: true
    /// when unsure).
    fn could_match_under(&self, dir: &str) -> bool {
        let dir_slash = format!("{dir}/");
        match &self.kind {
            Kind::Exact => self.cleaned.starts_with(&dir_slash),
            Kind::Prefix => {
                let p = &self.cleaned[..self.cleaned.len() - 2];
                dir_slash.starts_with(p) || p.starts_with(&dir_slash)
            }
            Kind::Suffix => true,
            Kind::Regex(_) => {
                // Character classes and escapes can match '/' in Docker's translation: give up.
                if self.cleaned.contains(['[', ']', '\\']) {
                    return true;
                }
                let pat: Vec<&str> = self.cleaned.split('/').collect();
                let mut pi = 0;
                for d in dir.split('/') {
                    let Some(seg) = pat.get(pi) else {
                        return false;
                    };
                    if seg.contains("**") {
                        return true;
                    }
                    if !segment_match(seg, d) {
                        return false;
                    }
                    pi += 1;
                }
                pi < pat.len()
            }
        }
    }
}

/// `*` and `?` (never matching `/`) against one path segment.
fn segment_match(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let s: Vec<char> = s.chars().collect();
    // Iterative wildcard matching with one backtrack point: linear enough for any input.
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Which patterns matched a directory or one of its ancestors: what
/// [`Dockerignore::check`] needs to evaluate the directory's entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo(Vec<bool>);

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Dockerignore {
    patterns: Vec<Pattern>,
    exceptions: bool,
}

impl fmt::Display for Dockerignore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.patterns {
            writeln!(f, "{}{}", if p.exclusion { "!" } else { "" }, p.cleaned)?;
        }
        Ok(())
    }
}

/// The ignore files to look for, in order of preference, for a Dockerfile at `dockerfile`
/// (a path in the context): `<dockerfile>.dockerignore` next to it, then `.dockerignore` at
/// the context root (BuildKit's rule; the classic builder reads only the second).
pub fn ignore_file_candidates(dockerfile: &str) -> [String; 2] {
    [format!("{dockerfile}.dockerignore"), ".dockerignore".into()]
}

/// The patterns of an ignore file as Docker reads them (moby's `ignorefile.ReadAll`):
/// comments and blank lines dropped, whitespace trimmed, patterns cleaned, a leading `/`
/// removed, `!` kept in front.
pub fn read_patterns(contents: &str) -> Vec<String> {
    let contents = contents.strip_prefix('\u{feff}').unwrap_or(contents);
    let mut out = Vec::new();
    for line in contents.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut p = String::new();
        if !pattern.is_empty() {
            p = clean(pattern);
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
        }
        out.push(if invert { format!("!{p}") } else { p });
    }
    out
}

impl Dockerignore {
    /// Reads and compiles an ignore file's contents.
    pub fn parse(contents: &str) -> Result<Self, IgnoreError> {
        Dockerignore::new(read_patterns(contents))
    }

    /// Compiles patterns (moby's `patternmatcher.New`): each is trimmed and cleaned; empty
    /// ones are skipped; a leading `!` makes an exception.
    pub fn new<I, S>(patterns: I) -> Result<Self, IgnoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Dockerignore::default();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(IgnoreError::IllegalExclusion);
                }
                exclusion = true;
                p = rest.to_string();
                out.exceptions = true;
            }
            let bad = |reason: String| IgnoreError::BadPattern {
                pattern: p.clone(),
                reason,
            };
            validate_glob(&p).map_err(bad)?;
            let kind = compile(&p).map_err(bad)?;
            out.patterns.push(Pattern {
                cleaned: p,
                exclusion,
                kind,
            });
        }
        Ok(out)
    }

    /// The patterns in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// No patterns: nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any pattern is an exception (`!`).
    pub fn has_exceptions(&self) -> bool {
        self.exceptions
    }

    /// Evaluates `path` (relative to the context, `/`-separated, clean) given its parent
    /// directory's [`MatchInfo`] (`MatchInfo::default()` for an entry at the top, or to have
    /// the ancestors checked here). Returns whether `path` is excluded and the info to pass
    /// for entries under it.
    pub fn check(&self, path: &str, parent: &MatchInfo) -> (bool, MatchInfo) {
        let inherited = &parent.0;
        let use_parent = inherited.len() == self.patterns.len() && !inherited.is_empty();
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, p) in self.patterns.iter().enumerate() {
            let mut m = use_parent && inherited[i];
            if !m {
                // An inclusion cannot change an excluded path, an exception cannot change an
                // included one: Docker does not evaluate them (and records no match).
                if p.exclusion != matched {
                    continue;
                }
                m = p.matches(path);
                if !m && !use_parent {
                    if let Some((parent_dir, _)) = path.rsplit_once('/') {
                        let mut end = 0;
                        for seg in parent_dir.split('/') {
                            end += seg.len();
                            if p.matches(&parent_dir[..end]) {
                                m = true;
                                break;
                            }
                            end += 1;
                        }
                    }
                }
            }
            info[i] = m;
            if m {
                matched = !p.exclusion;
            }
        }
        (matched, MatchInfo(info))
    }

    /// Whether `path` (relative, `/`-separated) is excluded from the context, evaluated as a
    /// walk from the context root reaches it.
    pub fn is_excluded(&self, path: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let path = clean(path);
        if path == "." {
            return false;
        }
        let mut info = MatchInfo::default();
        let mut excluded = false;
        let mut end = 0;
        for seg in path.split('/') {
            end += seg.len();
            let (e, i) = self.check(&path[..end], &info);
            excluded = e;
            info = i;
            end += 1;
        }
        excluded
    }

    /// For an excluded directory: whether nothing under it can be re-included, so a walker
    /// need not read it.
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        if !self.exceptions {
            return true;
        }
        !self
            .patterns
            .iter()
            .any(|p| p.exclusion && p.could_match_under(dir))
    }

    /// The patterns the Docker CLI uploads with: the ignore file and the Dockerfile are always
    /// sent (the daemon needs them), so exceptions for them are appended when the patterns
    /// exclude them (a Dockerfile read from stdin is not in the context).
    pub fn keeping_build_files(&self, dockerfile: &str, dockerfile_from_stdin: bool) -> Self {
        let mut out = self.clone();
        let mut add = |path: &str| {
            if let Ok(kind) = compile(path) {
                out.patterns.push(Pattern {
                    cleaned: path.to_string(),
                    exclusion: true,
                    kind,
                });
                out.exceptions = true;
            }
        };
        if self.is_excluded(".dockerignore") {
            add(".dockerignore");
        }
        let dockerfile = clean(dockerfile);
        if !dockerfile_from_stdin && self.is_excluded(&dockerfile) {
            add(&dockerfile);
        }
        out
    }

    /// Which of the build files (the ignore file and the Dockerfile) the daemon removes from
    /// the context after reading them, because the patterns exclude them: `COPY . /` must not
    /// copy them then.
    pub fn build_files_to_remove(&self, ignore_file: &str, dockerfile: &str) -> Vec<String> {
        [ignore_file, dockerfile]
            .into_iter()
            .map(clean)
            .filter(|f| self.is_excluded(f))
            .collect()
    }
}

/// Go's `filepath.Match` syntax check (what `patternmatcher.New` runs on every pattern).
fn validate_glob(p: &str) -> Result<(), String> {
    let c: Vec<char> = p.chars().collect();
    let mut i = 0;
    let esc = |i: &mut usize| -> Result<(), String> {
        match c.get(*i) {
            None | Some('-' | ']') => Err("bad character class".into()),
            Some('\\') => {
                *i += 1;
                if c.get(*i).is_none() {
                    return Err("trailing backslash".into());
                }
                *i += 1;
                Ok(())
            }
            Some(_) => {
                *i += 1;
                Ok(())
            }
        }
    };
    while i < c.len() {
        match c[i] {
            '\\' => {
                if i + 1 >= c.len() {
                    return Err("trailing backslash".into());
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if c.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut n = 0;
                loop {
                    if c.get(i) == Some(&']') && n > 0 {
                        i += 1;
                        break;
                    }
                    esc(&mut i)?;
                    if c.get(i) == Some(&'-') {
                        i += 1;
                        esc(&mut i)?;
                    }
                    n += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// moby's pattern compilation: an exact, prefix (`a/**`) or suffix (`**/a`) match, or a
/// regular expression built the way moby builds it (a Go regexp, translated to the `regex`
/// crate's syntax with Go's meaning kept).
fn compile(pattern: &str) -> Result<Kind, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut go_re = String::from("^");
    let mut kind = 0u8; // 0 exact, 1 prefix, 2 suffix, 3 regexp
    let mut i = 0;
    let mut iter = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' => {
                if chars.get(i) == Some(&'*') {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        if kind == 0 {
                            kind = 1;
                        } else {
                            go_re.push_str(".*");
                            kind = 3;
                        }
                    } else {
                        go_re.push_str("(.*/)?");
                        kind = 3;
                    }
                    if iter == 0 {
                        kind = 2;
                    }
                } else {
                    go_re.push_str("[^/]*");
                    kind = 3;
                }
            }
            '?' => {
                go_re.push_str("[^/]");
                kind = 3;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                go_re.push('\\');
                go_re.push(ch);
            }
            '\\' => {
                if let Some(&n) = chars.get(i) {
                    i += 1;
                    go_re.push('\\');
                    go_re.push(n);
                    kind = 3;
                } else {
                    go_re.push('\\');
                }
            }
            '[' | ']' => {
                go_re.push(ch);
                kind = 3;
            }
            c => go_re.push(c),
        }
        iter += 1;
    }
    Ok(match kind {
        0 => Kind::Exact,
        1 => Kind::Prefix,
        2 => Kind::Suffix,
        _ => {
            go_re.push('$');
            let rust = go_regexp_to_rust(&go_re)?;
            Kind::Regex(Regex::new(&rust).map_err(|e| e.to_string())?)
        }
    })
}

/// Rewrites the Go regexp moby builds into the `regex` crate's syntax with the same meaning:
/// character classes are parsed with Go's rules and re-emitted with every literal escaped
/// (the crate gives `[`, `&&`, `--` and `~~` meanings inside classes that Go does not).
fn go_regexp_to_rust(re: &str) -> Result<String, String> {
    let c: Vec<char> = re.chars().collect();
    let mut out = String::with_capacity(re.len() + 16);
    let lit = |ch: char| format!("\\x{{{:x}}}", ch as u32);
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '\\' => {
                let Some(&n) = c.get(i + 1) else {
                    return Err("trailing backslash at end of expression".into());
                };
                if n.is_ascii_punctuation() {
                    out.push_str(&lit(n));
                } else if n.is_ascii_alphabetic() && "dDsSwWbBAzntrfva".contains(n) {
                    out.push('\\');
                    out.push(n);
                } else {
                    return Err(format!("invalid escape sequence: \\{n}"));
                }
                i += 2;
            }
            '[' => {
                i += 1;
                out.push('[');
                if c.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                let mut first = true;
                loop {
                    let Some(&ch) = c.get(i) else {
                        return Err("missing closing ]".into());
                    };
                    if ch == ']' && !first {
                        i += 1;
                        break;
                    }
                    first = false;
                    // POSIX classes: [:alpha:] and [:^alpha:].
                    if ch == '[' && c.get(i + 1) == Some(&':') {
                        let rest: String = c[i + 2..].iter().collect();
                        if let Some(end) = rest.find(":]") {
                            let name = &rest[..end];
                            let bare = name.strip_prefix('^').unwrap_or(name);
                            const POSIX: [&str; 14] = [
                                "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph",
                                "lower", "print", "punct", "space", "upper", "word", "xdigit",
                            ];
                            if !POSIX.contains(&bare) {
                                return Err(format!("invalid character class range: [:{name}:]"));
                            }
                            out.push_str(&format!("[:{name}:]"));
                            i += 2 + name.chars().count() + 2;
                            continue;
                        }
                    }
                    let (lo, next) = class_char(&c, i)?;
                    i = next;
                    match lo {
                        ClassChar::Perl(p) => out.push_str(&p),
                        ClassChar::Lit(lo) => {
                            if c.get(i) == Some(&'-') && c.get(i + 1).is_some_and(|&n| n != ']') {
                                let (hi, next) = class_char(&c, i + 1)?;
                                let ClassChar::Lit(hi) = hi else {
                                    return Err("invalid character class range".into());
                                };
                                if hi < lo {
                                    return Err("invalid character class range".into());
                                }
                                out.push_str(&lit(lo));
                                out.push('-');
                                out.push_str(&lit(hi));
                                i = next;
                            } else {
                                out.push_str(&lit(lo));
                            }
                        }
                    }
                }
                out.push(']');
            }
            ']' => {
                out.push_str(&lit(']'));
                i += 1;
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    Ok(out)
}

enum ClassChar {
    Lit(char),
    Perl(String),
}

fn class_char(c: &[char], i: usize) -> Result<(ClassChar, usize), String> {
    match c.get(i) {
        None => Err("missing closing ]".into()),
        Some('\\') => match c.get(i + 1) {
            None => Err("trailing backslash at end of expression".into()),
            Some(&n) if n.is_ascii_punctuation() => Ok((ClassChar::Lit(n), i + 2)),
            Some(&n) if "dDsSwW".contains(n) => Ok((ClassChar::Perl(format!("\\{n}")), i + 2)),
            Some('n') => Ok((ClassChar::Lit('\n'), i + 2)),
            Some('t') => Ok((ClassChar::Lit('\t'), i + 2)),
            Some('r') => Ok((ClassChar::Lit('\r'), i + 2)),
            Some('f') => Ok((ClassChar::Lit('\u{c}'), i + 2)),
            Some('v') => Ok((ClassChar::Lit('\u{b}'), i + 2)),
            Some('a') => Ok((ClassChar::Lit('\u{7}'), i + 2)),
            Some(&n) => Err(format!("invalid escape sequence: \\{n}")),
        },
        Some(&ch) => Ok((ClassChar::Lit(ch), i + 1)),
    }
}

#[cfg(test)]
mod tests;
