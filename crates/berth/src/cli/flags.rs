//! Docker's command-line syntax (spf13/pflag as configured by the Docker CLI): flag parsing,
//! the help layout and the error texts.
//!
//! Written by hand rather than with clap because Docker's behaviour *is* the spec here and
//! clap's differs in ways that cannot be configured away: every boolean flag takes an optional
//! `=value` (`--rm=false`, `-d=false`), `run`/`create`/`exec` stop parsing flags at the first
//! positional argument (`berth run busybox ls -l`), repeated scalar flags keep the last value,
//! and the error texts (`unknown shorthand flag: 'x' in -x`, `flag needs an argument: --name`,
//! `invalid argument "x" for "-t, --timeout" flag: …`) and the help layout (pflag's aligned
//! `-t, --timeout int` column, wrapped to the terminal) are Docker's. Mapping clap's errors and
//! help back to these would be lossier than this ~small parser.

use std::fmt::Write as _;

pub use berth_api::gotime::go_quote;

use super::{CliError, CliResult};

/// How a flag takes values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--rm`, `--rm=false`, `-d`.
    Bool,
    /// One value; the last occurrence wins.
    Value,
    /// Repeatable; every occurrence is kept in order.
    List,
}

/// Client-side validation of a flag's value at parse time (pflag's `Value.Set`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    None,
    Int,
    Uint16,
    Uint64,
    /// go-units `RAMInBytes`.
    Bytes,
    /// Like `Bytes`, but `-1` means unlimited (`--memory-swap`).
    SwapBytes,
    /// `--cpus`: a decimal number.
    Decimal,
    /// Go's `time.ParseDuration`.
    Duration,
    Ulimit,
    /// `name=value`.
    Filter,
    /// `-e`: Docker's `ValidateEnv`.
    Env,
    /// `-a`: stdin, stdout or stderr.
    Attach,
    /// `--mount`: the CSV syntax.
    Mount,
    /// `--add-host`.
    ExtraHost,
    /// `--sysctl`: namespaced sysctls only.
    Sysctl,
    /// `-l`: a non-empty key.
    Label,
}

/// One flag of a command.
#[derive(Debug, Clone)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    /// pflag's type name, shown in the help (`string`, `list`, `int`, `bytes`…).
    pub ty: &'static str,
    pub help: &'static str,
    /// Shown as `(default …)`; already quoted for strings (`"\"missing\""`).
    pub default: Option<&'static str>,
    pub hidden: bool,
    pub check: Check,
}

impl Flag {
    pub fn bool(long: &'static str, help: &'static str) -> Self {
        Self {
            long,
            short: None,
            kind: Kind::Bool,
            ty: "",
            help,
            default: None,
            hidden: false,
            check: Check::None,
        }
    }

    /// A single-valued flag; `ty` is pflag's type name and selects the validation.
    pub fn value(long: &'static str, ty: &'static str, help: &'static str) -> Self {
        Self {
            long,
            short: None,
            kind: Kind::Value,
            ty,
            help,
            default: None,
            hidden: false,
            check: check_for(ty),
        }
    }

    /// A repeatable flag (`list`, `filter`, `ulimit`, `map`, `mount`…).
    pub fn list(long: &'static str, ty: &'static str, help: &'static str) -> Self {
        Self {
            kind: Kind::List,
            ..Self::value(long, ty, help)
        }
    }

    pub fn short(mut self, c: char) -> Self {
        self.short = Some(c);
        self
    }

    pub fn default(mut self, shown: &'static str) -> Self {
        self.default = Some(shown);
        self
    }

    pub fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    pub fn check(mut self, check: Check) -> Self {
        self.check = check;
        self
    }

    /// `-t, --timeout` or `--timeout`, as pflag names a flag in errors.
    fn display_name(&self) -> String {
        match self.short {
            Some(c) => format!("-{c}, --{}", self.long),
            None => format!("--{}", self.long),
        }
    }
}

fn check_for(ty: &str) -> Check {
    match ty {
        "int" | "int64" => Check::Int,
        "uint16" => Check::Uint16,
        "uint" | "uint64" => Check::Uint64,
        "bytes" => Check::Bytes,
        "decimal" => Check::Decimal,
        "duration" => Check::Duration,
        "ulimit" => Check::Ulimit,
        "filter" => Check::Filter,
        _ => Check::None,
    }
}

/// How many positional arguments a command takes (cobra's `Args` validators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NArgs {
    None,
    Exact(usize),
    Min(usize),
    Max(usize),
    Range(usize, usize),
    Any,
}

/// A command's syntax and help.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The full command path: `berth ps`, `berth container ls`.
    pub path: String,
    /// What follows the path in the usage line: `[OPTIONS] CONTAINER [CONTAINER...]`.
    pub usage: &'static str,
    pub about: &'static str,
    /// Every way to invoke it (`berth container ls, berth ps`); empty for none.
    pub aliases: Vec<String>,
    pub flags: Vec<Flag>,
    /// `false`: flags end at the first positional argument (`run IMAGE ARGS...`).
    pub interspersed: bool,
    pub nargs: NArgs,
}

/// Parsed flags and positional arguments.
#[derive(Debug, Clone, Default)]
pub struct Matches {
    values: Vec<(&'static str, String)>,
    pub args: Vec<String>,
}

impl Matches {
    /// Whether the flag appeared on the command line (pflag's `Changed`).
    pub fn changed(&self, long: &str) -> bool {
        self.values.iter().any(|(l, _)| *l == long)
    }

    /// The value of a boolean flag (false when absent).
    pub fn flag(&self, long: &str) -> bool {
        self.value(long)
            .is_some_and(|v| parse_bool(v).unwrap_or(false))
    }

    /// A boolean flag with a non-false default (`--sig-proxy`).
    pub fn flag_or(&self, long: &str, default: bool) -> bool {
        match self.value(long) {
            Some(v) => parse_bool(v).unwrap_or(default),
            None => default,
        }
    }

    /// The last value of a flag.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(l, _)| *l == long)
            .map(|(_, v)| v.as_str())
    }

    pub fn string(&self, long: &str) -> Option<String> {
        self.value(long).map(str::to_string)
    }

    /// Every value of a repeatable flag, in order.
    pub fn list(&self, long: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(l, _)| *l == long)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether any flag was given (pflag's `NFlag() > 0`).
    pub fn any_flag(&self) -> bool {
        !self.values.is_empty()
    }

    /// An integer flag (already validated by the parser).
    pub fn int(&self, long: &str) -> Option<i64> {
        self.value(long).and_then(|v| v.parse().ok())
    }
}

/// Why parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// `--help` was given.
    Help,
    /// A flag error (pflag's text).
    Flag(String),
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl Spec {
    pub fn new(path: impl Into<String>, usage: &'static str, about: &'static str) -> Self {
        Self {
            path: path.into(),
            usage,
            about,
            aliases: Vec::new(),
            flags: Vec::new(),
            interspersed: true,
            nargs: NArgs::Any,
        }
    }

    pub fn aliases(mut self, aliases: &[&str]) -> Self {
        self.aliases = aliases.iter().map(|a| a.to_string()).collect();
        self
    }

    pub fn flags(mut self, flags: Vec<Flag>) -> Self {
        self.flags.extend(flags);
        self
    }

    pub fn nargs(mut self, nargs: NArgs) -> Self {
        self.nargs = nargs;
        self
    }

    pub fn not_interspersed(mut self) -> Self {
        self.interspersed = false;
        self
    }

    /// `berth run [OPTIONS] IMAGE [COMMAND] [ARG...]`.
    pub fn use_line(&self) -> String {
        if self.usage.is_empty() {
            self.path.clone()
        } else {
            format!("{} {}", self.path, self.usage)
        }
    }

    fn by_long(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.long == name)
    }

    fn by_short(&self, c: char) -> Option<&Flag> {
        self.flags.iter().find(|f| f.short == Some(c))
    }

    /// `-h` means `--help` unless the command uses it for something else (`run -h HOSTNAME`).
    fn short_help(&self) -> bool {
        self.by_short('h').is_none()
    }

    /// Parses `args` (without the command path) with pflag's rules.
    pub fn parse_args(&self, args: &[String]) -> Result<Matches, ParseError> {
        let mut m = Matches::default();
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            i += 1;
            if a == "--" {
                m.args.extend(args[i..].iter().cloned());
                break;
            }
            if let Some(long) = a.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (long, None),
                };
                if name == "help" && self.by_long("help").is_none() {
                    return Err(ParseError::Help);
                }
                let flag = self
                    .by_long(name)
                    .ok_or_else(|| ParseError::Flag(format!("unknown flag: --{name}")))?;
                let value = match (flag.kind, inline) {
                    (_, Some(v)) => v,
                    (Kind::Bool, None) => "true".to_string(),
                    (_, None) => {
                        if i < args.len() {
                            i += 1;
                            args[i - 1].clone()
                        } else {
                            return Err(ParseError::Flag(format!(
                                "flag needs an argument: --{name}"
                            )));
                        }
                    }
                };
                if flag.long == "help" {
                    return Err(ParseError::Help);
                }
                self.set(&mut m, flag, value)?;
                continue;
            }
            if a.len() > 1 && a.starts_with('-') {
                let shorthands: Vec<char> = a[1..].chars().collect();
                let mut j = 0;
                while j < shorthands.len() {
                    let c = shorthands[j];
                    if c == 'h' && self.short_help() {
                        return Err(ParseError::Help);
                    }
                    let flag = self.by_short(c).ok_or_else(|| {
                        ParseError::Flag(format!("unknown shorthand flag: '{c}' in -{}", &a[1..]))
                    })?;
                    let rest: String = shorthands[j + 1..].iter().collect();
                    let value;
                    if rest.len() > 1 && rest.starts_with('=') {
                        value = rest[1..].to_string();
                        j = shorthands.len();
                    } else if flag.kind == Kind::Bool {
                        value = "true".to_string();
                        j += 1;
                    } else if !rest.is_empty() {
                        value = rest;
                        j = shorthands.len();
                    } else if i < args.len() {
                        value = args[i].clone();
                        i += 1;
                        j = shorthands.len();
                    } else {
                        return Err(ParseError::Flag(format!(
                            "flag needs an argument: '{c}' in -{}",
                            &a[1..]
                        )));
                    }
                    self.set(&mut m, flag, value)?;
                }
                continue;
            }
            m.args.push(a.clone());
            if !self.interspersed {
                m.args.extend(args[i..].iter().cloned());
                break;
            }
        }
        Ok(m)
    }

    fn set(&self, m: &mut Matches, flag: &Flag, value: String) -> Result<(), ParseError> {
        let invalid = |why: String| {
            ParseError::Flag(format!(
                "invalid argument {} for {} flag: {why}",
                go_quote(&value),
                go_quote(&flag.display_name())
            ))
        };
        if flag.kind == Kind::Bool {
            if parse_bool(&value).is_none() {
                return Err(invalid(format!(
                    "strconv.ParseBool: parsing {}: invalid syntax",
                    go_quote(&value)
                )));
            }
        } else {
            check_value(flag.check, &value).map_err(invalid)?;
        }
        m.values.push((flag.long, value));
        Ok(())
    }

    /// Parses and applies Docker's error conventions: `--help` prints the help (exit 0), flag
    /// errors exit 125, a wrong number of arguments exits 1.
    pub fn parse(&self, args: &[String]) -> CliResult<Matches> {
        match self.parse_args(args) {
            Ok(m) => {
                self.check_nargs(m.args.len())?;
                Ok(m)
            }
            Err(ParseError::Help) => {
                super::print_out(&self.help())?;
                Err(CliError::silent(0))
            }
            Err(ParseError::Flag(e)) => Err(self.flag_error(&e)),
        }
    }

    /// A flag error as Docker prints it (exit 125).
    pub fn flag_error(&self, e: &str) -> CliError {
        CliError::new(
            125,
            format!(
                "{e}\n\nUsage:  {}\n\nRun '{} --help' for more information",
                self.use_line(),
                self.path
            ),
        )
    }

    fn check_nargs(&self, n: usize) -> CliResult<()> {
        let plural = |k: usize| if k == 1 { "argument" } else { "arguments" };
        let (ok, what, verb) = match self.nargs {
            NArgs::Any => (true, String::new(), "Run"),
            NArgs::None => (n == 0, "accepts no arguments".to_string(), "Run"),
            NArgs::Exact(k) => (n == k, format!("requires {k} {}", plural(k)), "Run"),
            NArgs::Min(k) => (
                n >= k,
                format!("requires at least {k} {}", plural(k)),
                "See",
            ),
            NArgs::Max(k) => (n <= k, format!("requires at most {k} {}", plural(k)), "Run"),
            NArgs::Range(a, b) => (
                n >= a && n <= b,
                format!("requires at least {a} and at most {b} {}", plural(b)),
                "Run",
            ),
        };
        if ok {
            return Ok(());
        }
        Err(CliError::new(
            1,
            format!(
                "berth: '{}' {what}\n\nUsage:  {}\n\n{verb} '{} --help' for more information",
                self.path,
                self.use_line(),
                self.path
            ),
        ))
    }

    /// The help text (cobra's usage template as the Docker CLI sets it up).
    pub fn help(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Usage:  {}", self.use_line());
        let _ = writeln!(s);
        let _ = writeln!(s, "{}", self.about.trim());
        if !self.aliases.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "Aliases:");
            let _ = writeln!(s, "  {}", self.aliases.join(", "));
        }
        let visible: Vec<&Flag> = self.flags.iter().filter(|f| !f.hidden).collect();
        if !visible.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "Options:");
            s.push_str(&flag_usages(&visible, help_width()));
        }
        s
    }
}

/// Validates a value the way the flag's pflag `Value.Set` would.
pub fn check_value(check: Check, value: &str) -> Result<(), String> {
    match check {
        Check::None => Ok(()),
        Check::Int => value
            .parse::<i64>()
            .map(|_| ())
            .map_err(|e| strconv_error("ParseInt", value, &e)),
        Check::Uint16 => value
            .parse::<u16>()
            .map(|_| ())
            .map_err(|e| strconv_error("ParseUint", value, &e)),
        Check::Uint64 => value
            .parse::<u64>()
            .map(|_| ())
            .map_err(|e| strconv_error("ParseUint", value, &e)),
        Check::Bytes => super::units::ram_in_bytes(value).map(|_| ()),
        Check::SwapBytes => {
            if value == "-1" {
                Ok(())
            } else {
                super::units::ram_in_bytes(value).map(|_| ())
            }
        }
        Check::Decimal => super::units::parse_nano_cpus(value).map(|_| ()),
        Check::Duration => super::units::parse_go_duration(value).map(|_| ()),
        Check::Ulimit => super::opts::parse_ulimit(value).map(|_| ()),
        Check::Filter => {
            if value.contains('=') {
                Ok(())
            } else {
                Err("bad format of filter (expected name=value)".to_string())
            }
        }
        Check::Env
        | Check::Attach
        | Check::Mount
        | Check::ExtraHost
        | Check::Sysctl
        | Check::Label => super::opts::check_list_value(check, value),
    }
}

/// Go's `strconv` error text for integer parsing.
fn strconv_error(func: &str, value: &str, e: &std::num::ParseIntError) -> String {
    use std::num::IntErrorKind;
    let why = match e.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
        _ => "invalid syntax",
    };
    format!("strconv.{func}: parsing {}: {why}", go_quote(value))
}

/// Width used to wrap flag help: Docker uses the terminal width of stdin minus one, 80 if none.
fn help_width() -> usize {
    super::term::window_size(0)
        .map(|(_, cols)| cols as usize)
        .filter(|c| *c > 0)
        .unwrap_or(80)
        .saturating_sub(1)
}

/// pflag's `FlagUsagesWrapped`: flags sorted by name, help column aligned and wrapped.
pub fn flag_usages(flags: &[&Flag], cols: usize) -> String {
    let mut sorted: Vec<&&Flag> = flags.iter().collect();
    sorted.sort_by_key(|f| f.long);
    let mut lines = Vec::new();
    let mut maxlen = 0;
    for f in sorted {
        let mut line = match f.short {
            Some(c) => format!("  -{c}, --{}", f.long),
            None => format!("      --{}", f.long),
        };
        if !f.ty.is_empty() {
            line.push(' ');
            line.push_str(f.ty);
        }
        let sidx = line.len();
        maxlen = maxlen.max(sidx + 1);
        let mut usage = f.help.to_string();
        if let Some(d) = f.default {
            let _ = write!(usage, " (default {d})");
        }
        lines.push((line, usage));
    }
    let mut out = String::new();
    for (prefix, usage) in lines {
        let spacing = " ".repeat(maxlen - prefix.len());
        let _ = writeln!(
            out,
            "{prefix} {spacing} {}",
            pflag_wrap(maxlen + 2, cols, &usage)
        );
    }
    out
}

/// pflag's `wrap`: wraps `s` to width `w` with indent `i` (first line not indented).
pub fn pflag_wrap(i: usize, w: usize, s: &str) -> String {
    if w == 0 {
        return s.replace('\n', &format!("\n{}", " ".repeat(i)));
    }
    let mut indent = i;
    let mut wrap = w as isize - i as isize;
    let mut r = String::new();
    if wrap < 24 {
        indent = 16;
        wrap = w as isize - indent as isize;
        r.push('\n');
        r.push_str(&" ".repeat(indent));
    }
    if wrap < 24 {
        return s.replace('\n', &r);
    }
    let slop = 5usize;
    let wrap = wrap as usize - slop;
    let pad = format!("\n{}", " ".repeat(indent));
    let (l, mut rest) = wrap_n(wrap, slop, s);
    r.push_str(&l.replace('\n', &pad));
    while !rest.is_empty() {
        let (t, r2) = wrap_n(wrap, slop, rest);
        r.push_str(&pad);
        r.push_str(&t.replace('\n', &pad));
        rest = r2;
    }
    r
}

/// pflag's `wrapN`: the first line of at most `i` bytes (or `i + slop` for the last line).
fn wrap_n(i: usize, slop: usize, s: &str) -> (&str, &str) {
    if i + slop > s.len() {
        return (s, "");
    }
    let head = floor_char_boundary(s, i);
    let Some(w) = s[..head].rfind([' ', '\t', '\n']).filter(|w| *w > 0) else {
        return (s, "");
    };
    if let Some(nl) = s[..head].rfind('\n') {
        if nl > 0 && nl < w {
            return (&s[..nl], &s[nl + 1..]);
        }
    }
    (&s[..w], &s[w + 1..])
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec() -> Spec {
        Spec::new("berth run", "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Run")
            .flags(vec![
                Flag::bool("detach", "Run in background").short('d'),
                Flag::bool("interactive", "Keep STDIN open").short('i'),
                Flag::bool("tty", "Allocate a pseudo-TTY").short('t'),
                Flag::bool("rm", "Remove"),
                Flag::value("name", "string", "Name"),
                Flag::list("env", "list", "Env").short('e'),
                Flag::list("publish", "list", "Publish").short('p'),
                Flag::value("hostname", "string", "Host name").short('h'),
                Flag::value("memory", "bytes", "Memory").short('m'),
                Flag::value("stop-timeout", "int", "Timeout"),
                Flag::bool("help", "Print usage"),
            ])
            .not_interspersed()
            .nargs(NArgs::Min(1))
    }

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_docker_syntax() {
        let m = spec()
            .parse_args(&args(&[
                "-itd",
                "--rm=false",
                "-e",
                "A=1",
                "-eB=2",
                "--env=C=3",
                "-p8080:80",
                "--name",
                "web",
                "--name=web2",
                "busybox",
                "sh",
                "-c",
                "--rm",
            ]))
            .unwrap();
        assert!(m.flag("interactive") && m.flag("tty") && m.flag("detach"));
        assert!(!m.flag("rm") && m.changed("rm"));
        assert_eq!(m.list("env"), vec!["A=1", "B=2", "C=3"]);
        assert_eq!(m.list("publish"), vec!["8080:80"]);
        assert_eq!(m.value("name"), Some("web2"));
        assert_eq!(m.args, vec!["busybox", "sh", "-c", "--rm"]);
    }

    #[test]
    fn short_with_equals_and_bool_values() {
        let m = spec()
            .parse_args(&args(&["-d=false", "-e=X=1", "x"]))
            .unwrap();
        assert!(!m.flag("detach") && m.changed("detach"));
        assert_eq!(m.list("env"), vec!["X=1"]);
        // -h is --hostname here, so --help is the only help flag.
        let m = spec().parse_args(&args(&["-h", "box", "x"])).unwrap();
        assert_eq!(m.value("hostname"), Some("box"));
        assert_eq!(
            spec().parse_args(&args(&["--help"])).unwrap_err(),
            ParseError::Help
        );
    }

    #[test]
    fn errors_use_pflag_texts() {
        let err = |a: &[&str]| match spec().parse_args(&args(a)).unwrap_err() {
            ParseError::Flag(s) => s,
            ParseError::Help => "help".into(),
        };
        assert_eq!(err(&["--foo"]), "unknown flag: --foo");
        assert_eq!(err(&["-x"]), "unknown shorthand flag: 'x' in -x");
        assert_eq!(err(&["-ix"]), "unknown shorthand flag: 'x' in -ix");
        assert_eq!(err(&["--name"]), "flag needs an argument: --name");
        assert_eq!(err(&["-e"]), "flag needs an argument: 'e' in -e");
        assert_eq!(
            err(&["-d=x"]),
            "invalid argument \"x\" for \"-d, --detach\" flag: strconv.ParseBool: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            err(&["--stop-timeout", "abc"]),
            "invalid argument \"abc\" for \"--stop-timeout\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            err(&["-m", "1x"]),
            "invalid argument \"1x\" for \"-m, --memory\" flag: invalid suffix: 'x'"
        );
    }

    #[test]
    fn interspersed_commands_take_flags_after_arguments() {
        let s = Spec::new("berth rm", "[OPTIONS] CONTAINER", "Remove")
            .flags(vec![Flag::bool("force", "Force").short('f')]);
        let m = s.parse_args(&args(&["web", "-f", "db"])).unwrap();
        assert!(m.flag("force"));
        assert_eq!(m.args, vec!["web", "db"]);
        let m = s.parse_args(&args(&["--", "-f"])).unwrap();
        assert!(!m.flag("force"));
        assert_eq!(m.args, vec!["-f"]);
        assert_eq!(s.parse_args(&args(&["-h"])).unwrap_err(), ParseError::Help);
    }

    #[test]
    fn nargs_messages() {
        let s = Spec::new("berth rename", "CONTAINER NEW_NAME", "Rename").nargs(NArgs::Exact(2));
        let e = s.check_nargs(1).unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(
            e.message,
            "berth: 'berth rename' requires 2 arguments\n\nUsage:  berth rename CONTAINER NEW_NAME\n\nRun 'berth rename --help' for more information"
        );
        let e = spec().check_nargs(0).unwrap_err();
        assert!(e
            .message
            .starts_with("berth: 'berth run' requires at least 1 argument\n\n"));
        assert!(e
            .message
            .ends_with("See 'berth run --help' for more information"));
    }

    #[test]
    fn help_layout_matches_pflag() {
        let flags = [
            Flag::bool("all", "Show all containers (default shows just running)").short('a'),
            Flag::list(
                "filter",
                "filter",
                "Filter output based on conditions provided",
            )
            .short('f'),
            Flag::value(
                "last",
                "int",
                "Show n last created containers (includes all states)",
            )
            .short('n')
            .default("-1"),
            Flag::bool("no-trunc", "Don't truncate output"),
        ];
        let refs: Vec<&Flag> = flags.iter().collect();
        assert_eq!(
            flag_usages(&refs, 79),
            "  -a, --all             Show all containers (default shows just running)\n\
             \x20 -f, --filter filter   Filter output based on conditions provided\n\
             \x20 -n, --last int        Show n last created containers (includes all\n\
             \x20                       states) (default -1)\n\
             \x20     --no-trunc        Don't truncate output\n"
        );
    }

    #[test]
    fn go_quote_escapes_like_strconv() {
        assert_eq!(
            go_quote(r#"sh -c "echo \"hi\"""#),
            r#""sh -c \"echo \\\"hi\\\"\"""#
        );
        assert_eq!(go_quote("a\tb\u{1}"), "\"a\\tb\\x01\"");
        assert_eq!(go_quote("héllo…"), "\"héllo…\"");
    }

    proptest! {
        #[test]
        fn parser_never_panics(v in prop::collection::vec("-{0,2}[a-z=]{0,6}", 0..8)) {
            let _ = spec().parse_args(&v);
        }

        #[test]
        fn positionals_survive_round_trip(v in prop::collection::vec("[a-z][a-z0-9]{0,5}", 1..6)) {
            let m = spec().parse_args(&v).unwrap();
            prop_assert_eq!(m.args, v);
        }

        #[test]
        fn wrap_keeps_every_word(words in prop::collection::vec("[a-z]{1,12}", 0..40), w in 30usize..120) {
            let s = words.join(" ");
            let wrapped = pflag_wrap(10, w, &s);
            let back: Vec<&str> = wrapped.split_whitespace().collect();
            prop_assert_eq!(back, words.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}
