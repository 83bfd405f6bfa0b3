//! Tests of the Dockerfile language. Many cases follow BuildKit's own test data (parser
//! testfiles, the shell lexer's `envVarTest` and `wordsTest`, the heredoc tests), written
//! here as tests of berth's API.

use std::collections::BTreeMap;

use super::*;

fn parse_ok(src: &str) -> Dockerfile {
    match parse(src, "Dockerfile") {
        Ok(df) => df,
        Err(e) => panic!("parse failed: {e}\n---\n{src}"),
    }
}

fn parse_err(src: &str) -> Error {
    match parse(src, "Dockerfile") {
        Ok(df) => panic!("expected an error, parsed {df:#?}"),
        Err(e) => e,
    }
}

/// The instructions of a one-stage file whose first line is `FROM scratch`.
fn insts(body: &str) -> Vec<Instruction> {
    parse_ok(&format!("FROM scratch\n{body}"))
        .stages
        .remove(0)
        .instructions
}

fn one(body: &str) -> Command {
    let mut v = insts(body);
    assert_eq!(v.len(), 1, "{v:#?}");
    v.remove(0).command
}

fn shell(s: &str) -> CommandLine {
    CommandLine::Shell(s.into())
}

fn exec(v: &[&str]) -> CommandLine {
    CommandLine::Exec(v.iter().map(|s| s.to_string()).collect())
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn expand(inst: &Instruction, vars: &BTreeMap<String, String>) -> Command {
    inst.expand(&Lexer::default(), vars).unwrap().value.command
}

// ---------------------------------------------------------------------------------------------
// Lines: continuations, comments, directives

#[test]
fn continuation_lines_join_as_docker_does() {
    let cmds: Vec<_> = insts(
        "RUN echo hello\\\n  world\\\n  goodnight  \\\n  moon\\\n  light\\\nning\n\
         RUN echo hello  \\\n  world\n\
         RUN echo hello  \\\nworld\n\
         RUN echo hello \\\ngoodbye\\\nfrog\n\
         RUN echo hello  \\  \nworld\n\
         RUN echo hi \\\n \\\n world \\\n\\\n good\\\n\\\nnight\n\
         RUN echo goodbye\\\nfrog\n\
         RUN echo good\\\nbye\\\nfrog\n\
         \n\
         RUN echo hello \\\n# this is a comment\n\n# this is a comment with a blank line surrounding it\n\nthis is some more useful stuff\n",
    )
    .into_iter()
    .map(|i| i.command)
    .collect();
    let want = [
        "echo hello  world  goodnight    moon  lightning",
        "echo hello    world",
        "echo hello  world",
        "echo hello goodbyefrog",
        "echo hello  world",
        "echo hi   world  goodnight",
        "echo goodbyefrog",
        "echo goodbyefrog",
        "echo hello this is some more useful stuff",
    ];
    assert_eq!(cmds.len(), want.len());
    for (c, w) in cmds.iter().zip(want) {
        assert_eq!(c, &Command::Run(run_shell(w)));
    }
}

fn run_shell(s: &str) -> Run {
    Run {
        command: shell(s),
        heredocs: vec![],
        mounts: vec![],
        network: NetworkMode::Default,
        security: Security::Sandbox,
    }
}

#[test]
fn empty_continuation_lines_warn() {
    let df = parse_ok("FROM scratch\nRUN foo \\\n\nbar \\\n\nbaz\n");
    assert_eq!(
        df.stages[0].instructions[0].command,
        Command::Run(run_shell("foo bar baz"))
    );
    assert_eq!(df.warnings.len(), 1);
    assert!(df.warnings[0].message.contains("Empty continuation line"));
    assert_eq!(df.stages[0].instructions[0].location, Location::new(2, 6));
}

#[test]
fn continuation_at_end_of_file() {
    assert_eq!(
        one("RUN something \\"),
        Command::Run(run_shell("something"))
    );
}

#[test]
fn trailing_backslashes() {
    let got: Vec<_> = insts(
        "ENV A path\nENV B another\\\\path\nENV C trailing\\\\backslash\\\\\nENV D This should not be appended to C\nENV E hello\\\n\\\nworld\nENV F hello\\\n \\\nworld\nENV G hello \\\n\\\nworld\n",
    )
    .into_iter()
    .map(|i| match i.command {
        Command::Env(kv) => (kv[0].key.clone(), kv[0].value.clone()),
        c => panic!("{c:?}"),
    })
    .collect();
    let want = [
        ("A", "path"),
        ("B", "another\\\\path"),
        ("C", "trailing\\\\backslash\\\\"),
        ("D", "This should not be appended to C"),
        ("E", "helloworld"),
        ("F", "hello world"),
        ("G", "hello world"),
    ];
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.0.as_str(), g.1.as_str()), w);
    }
}

#[test]
fn escape_directive() {
    let df =
        parse_ok("#escape = `\n\nFROM image\nLABEL maintainer foo@bar.com\nENV GOPATH `\n\\go");
    assert_eq!(df.escape, '`');
    assert_eq!(df.directives[0].name, "escape");
    match &df.stages[0].instructions[1].command {
        Command::Env(kv) => assert_eq!(kv[0].value, "\\go"),
        c => panic!("{c:?}"),
    }
    // After a comment, `# escape` is an ordinary comment.
    let df = parse_ok("# Comment here.\n# escape = `\n\nFROM image\nENV GOPATH \\\n\\go");
    assert_eq!(df.escape, '\\');
    match &df.stages[0].instructions[0].command {
        Command::Env(kv) => assert_eq!(kv[0].value, "\\go"),
        c => panic!("{c:?}"),
    }
    // With syntax first, and no blank line before the instructions.
    let df = parse_ok("# syntax = docker/dockerfile\n# escape = `\nFROM `\n    image");
    assert_eq!(df.escape, '`');
    assert_eq!(df.stages[0].base, "image");
    assert_eq!(df.directives.len(), 2);
    assert!(df
        .warnings
        .iter()
        .any(|w| w.message.contains("syntax directive")));
    // The escape character escapes itself in word expansion too.
    let df = parse_ok("# escape=`\nFROM scratch\nENV A=a`$b C=C:\\x\n");
    match &df.stages[0].instructions[0].command {
        Command::Env(_) => {
            let e = df.stages[0].instructions[0]
                .expand(&df.lexer(), &env(&[("b", "B")]))
                .unwrap()
                .value;
            assert_eq!(
                e.command,
                Command::Env(vec![
                    KeyValue {
                        key: "A".into(),
                        value: "a$b".into(),
                        legacy_form: false
                    },
                    KeyValue {
                        key: "C".into(),
                        value: "C:\\x".into(),
                        legacy_form: false
                    }
                ])
            );
        }
        c => panic!("{c:?}"),
    }
}

#[test]
fn directive_errors() {
    let e = parse_err("# escape=x\nFROM a\n");
    assert_eq!(e.line(), Some(1));
    assert!(e.message().contains("invalid escape token 'x'"), "{e}");
    let e = parse_err("# escape=`\n# escape=\\\nFROM a\n");
    assert_eq!(e.message(), "only one escape parser directive can be used");
    assert_eq!(e.line(), Some(2));
    // An unknown directive ends the directives: later ones are comments.
    let df = parse_ok("# foo=bar\n# escape=`\nFROM a\n");
    assert_eq!(df.escape, '\\');
    assert!(df.directives.is_empty());
    let df = parse_ok("# check=skip=all\n# syntax=docker/dockerfile:1\nFROM a\n");
    assert_eq!(df.directives.len(), 2);
}

#[test]
fn bom_crlf_and_comments() {
    let df = parse_ok("\u{feff}FROM a AS b\r\n# comment\r\nRUN x \\\r\n  y\r\n");
    assert_eq!(df.stages[0].name.as_deref(), Some("b"));
    assert_eq!(
        df.stages[0].instructions[0].command,
        Command::Run(run_shell("x   y"))
    );
    let df = parse_ok("FROM a\n# about\n# run\nRUN x\n");
    assert_eq!(df.stages[0].instructions[0].comments, vec!["about", "run"]);
}

#[test]
fn keywords_are_case_insensitive() {
    let df = parse_ok("from alpine as Build\nrUn echo hi\ncopy --from=x a b\n");
    assert_eq!(df.stages[0].name.as_deref(), Some("build"));
    assert_eq!(df.stages[0].instructions[0].name(), "RUN");
    assert_eq!(df.stages[0].instructions[0].keyword, "rUn");
    // Flag names are case-sensitive.
    let e = parse_err("FROM a\nCOPY --From=x a b\n");
    assert!(e.message().contains("unknown flag: --From"), "{e}");
}

#[test]
fn locations_and_original_text() {
    let df = parse_ok("\n# c\nFROM a\n\nRUN a \\\n  b\nCOPY <<EOF /x\nhi\nEOF\nCMD [\"x\"]\n");
    let s = &df.stages[0];
    assert_eq!(s.location, Location::new(3, 3));
    assert_eq!(s.original, "FROM a");
    let locs: Vec<_> = s.instructions.iter().map(|i| i.location).collect();
    assert_eq!(
        locs,
        vec![
            Location::new(5, 6),
            Location::new(7, 9),
            Location::new(10, 10)
        ]
    );
    assert_eq!(s.instructions[0].original, "RUN a   b");
    assert_eq!(s.instructions[1].original, "COPY <<EOF /x");
}

// ---------------------------------------------------------------------------------------------
// Errors

#[test]
fn unknown_instruction_names_file_line_and_suggestion() {
    let e = parse_err("FROM a\nRUNN echo\n");
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)"
    );
    let e = parse_err("FROM a\n\ncopyy a b\n");
    assert_eq!(
        e.to_string(),
        "Dockerfile:3: unknown instruction: copyy (did you mean copy?)"
    );
    let e = parse_err("FROM a\nFOOBAR x\n");
    assert_eq!(e.to_string(), "Dockerfile:2: unknown instruction: FOOBAR");
    // An unknown word inside a continuation is part of the instruction, not a new one.
    parse_ok("FROM a\nRUN echo \\\n  RUNN\n");
}

#[test]
fn missing_arguments() {
    for cmd in ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"] {
        let e = parse_err(&format!("FROM a\n{cmd}\n"));
        assert_eq!(e.message(), format!("{cmd} requires exactly one argument"));
        assert_eq!(e.line(), Some(2));
    }
    for cmd in [
        "ENV",
        "LABEL",
        "ONBUILD",
        "HEALTHCHECK",
        "EXPOSE",
        "VOLUME",
        "ARG",
    ] {
        let e = parse_err(&format!("FROM a\n{cmd}\n"));
        assert_eq!(e.message(), format!("{cmd} requires at least one argument"));
    }
    for cmd in ["ADD", "COPY"] {
        let e = parse_err(&format!("FROM a\n{cmd} arg1\n"));
        assert_eq!(
            e.message(),
            format!("{cmd} requires at least two arguments, but only one was provided. Destination could not be determined")
        );
    }
    assert_eq!(
        parse_err("FROM\n").message(),
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        parse_err("FROM a b\n").message(),
        "FROM requires either one or three arguments"
    );
    assert_eq!(
        parse_err("FROM a\nENV A\n").message(),
        "ENV must have two arguments"
    );
    assert_eq!(
        parse_err("FROM a\nENV A=b c\n").message(),
        "Syntax error - can't find = in \"c\". Must be of the form: name=value"
    );
    assert_eq!(
        parse_err("FROM a\nLABEL =x\n").message(),
        "LABEL names can not be blank"
    );
    assert_eq!(
        parse_err("FROM a\nARG =x\n").message(),
        "ARG names can not be blank"
    );
    assert_eq!(
        parse_err("FROM a\nSHELL\n").message(),
        "SHELL requires at least one argument"
    );
    assert_eq!(
        parse_err("FROM a\nSHELL /bin/sh -c\n").message(),
        "SHELL requires the arguments to be in JSON form"
    );
}

#[test]
fn file_level_errors() {
    assert_eq!(
        parse_err("").to_string(),
        "Dockerfile: the Dockerfile cannot be empty"
    );
    assert_eq!(
        parse_err("# only\n\n# comments\n").message(),
        "file with no instructions"
    );
    assert_eq!(
        parse_err("ARG A=1\n").message(),
        "dockerfile contains no stages to build"
    );
    let e = parse_err("ARG A=1\nRUN x\nFROM a\n");
    assert_eq!(e.message(), "no build stage in current context");
    assert_eq!(e.line(), Some(2));
    let e = parse_err("FROM a AS x\nFROM b AS X\n");
    assert_eq!(e.message(), "x stage name already used");
    let e = parse_err("FROM a AS 1x\n");
    assert!(
        e.message()
            .starts_with("invalid name for build stage: \"1x\""),
        "{e}"
    );
    let e = parse_err("FROM a AS b$c\n");
    assert!(e.message().contains("invalid name for build stage"), "{e}");
}

#[test]
fn unterminated_heredoc_quote_and_json() {
    let e = parse_err("FROM a\nRUN <<EOF\necho hi\n");
    assert_eq!(e.line(), Some(2));
    assert!(e.message().starts_with("unterminated heredoc"), "{e}");
    assert_eq!(e.location().map(|l| l.end), Some(3));

    let e = parse_err("FROM a\nCOPY \"a b /c\n");
    assert_eq!(e.line(), Some(2));
    assert!(
        e.message()
            .contains("unexpected end of statement while looking for matching double-quote"),
        "{e}"
    );
    let e = parse_err("FROM a\nENV A='x\n");
    assert!(e.message().contains("matching single-quote"), "{e}");
    let e = parse_err("FROM a\nWORKDIR ${A\n");
    assert!(e.message().contains("missing '}'"), "{e}");

    for src in [
        "CMD [\"echo\", \"Please, close the brackets when you're done\"",
        "CMD [\"echo\", \"look ma, no quote!]",
        "RUN [\"a\",",
        "COPY [\"a\", \"b\"",
        "ENTRYPOINT [",
    ] {
        let e = parse_err(&format!("FROM a\n{src}\n"));
        assert_eq!(e.line(), Some(2));
        assert!(e.message().starts_with("unterminated JSON array"), "{e}");
    }
    // Shell forms that merely start with '[' stay shell forms.
    assert_eq!(
        one("RUN [ -f /x ] && echo y"),
        Command::Run(run_shell("[ -f /x ] && echo y"))
    );
    assert_eq!(
        one("RUN [ \"$A\" = \"b\" ] || exit 1"),
        Command::Run(run_shell("[ \"$A\" = \"b\" ] || exit 1"))
    );
    // JSON with non-strings is an error in Docker.
    let e = parse_err("FROM a\nCMD [\"a\", 1]\n");
    assert_eq!(
        e.message(),
        "when using JSON array syntax, arrays must be comprised of strings only"
    );
}

#[test]
fn flag_errors() {
    let cases = [
        (
            "COPY --fro=a x y",
            "unknown flag: --fro (did you mean from?)",
        ),
        (
            "COPY --from=a --from=b x y",
            "duplicate flag specified: --from",
        ),
        ("COPY --from x y", "missing a value on flag: --from"),
        ("COPY --link= x y", "missing a value on flag: --link"),
        (
            "COPY --link=maybe x y",
            "expecting boolean value for flag --link, not: maybe",
        ),
        ("RUN --network=bridge x", "invalid network mode \"bridge\""),
        ("RUN --security=x y", "security \"x\" is not valid"),
        ("WORKDIR --x /a", "unknown flag: --x"),
        ("ADD --from=x a b", "unknown flag: --from"),
        (
            "RUN --mount=type=bind,from=$X x",
            "'from' doesn't support variable expansion, define alias stage instead",
        ),
        (
            "FROM --platfrom=x a",
            "unknown flag: --platfrom (did you mean platform?)",
        ),
    ];
    for (src, want) in cases {
        let e = parse_err(&format!("FROM a\n{src}\n"));
        assert_eq!(e.message(), want, "{src}");
    }
    // Docker reads no flags for STOPSIGNAL, ARG and HEALTHCHECK NONE.
    parse_ok("FROM a\nSTOPSIGNAL --foo SIGKILL\nARG --x A\nHEALTHCHECK --foo NONE\n");
    // COPY --link=false and repeated --exclude.
    match one("COPY --link=false --exclude=*.md --exclude=x a b") {
        Command::Copy(c) => {
            assert!(!c.link);
            assert_eq!(c.excludes, vec!["*.md", "x"]);
        }
        c => panic!("{c:?}"),
    }
}

#[test]
fn onbuild_rules() {
    let e = parse_err("FROM a\nONBUILD ONBUILD RUN x\n");
    assert_eq!(
        e.message(),
        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    let e = parse_err("FROM a\nONBUILD from b\n");
    assert_eq!(e.message(), "FROM isn't allowed as an ONBUILD trigger");
    let e = parse_err("FROM a\nONBUILD MAINTAINER me\n");
    assert_eq!(
        e.message(),
        "MAINTAINER isn't allowed as an ONBUILD trigger"
    );
    let got: Vec<_> = insts(
        "ONBUILD RUN [\"echo\", \"test\"]\nONBUILD RUN echo test\nonbuild   COPY --from=b . /\nONBUILD RUN <<EOF\necho hi\nEOF\n",
    )
    .into_iter()
    .map(|i| match i.command {
        Command::Onbuild(o) => (o.keyword, o.trigger),
        c => panic!("{c:?}"),
    })
    .collect();
    assert_eq!(
        got,
        vec![
            ("RUN".into(), "RUN [\"echo\", \"test\"]".into()),
            ("RUN".into(), "RUN echo test".into()),
            ("COPY".into(), "COPY --from=b . /".into()),
            ("RUN".into(), "RUN <<EOF\necho hi\nEOF".into()),
        ]
    );
    // The trigger parses back into the instruction it runs.
    let loc = Location::new(1, 1);
    let t = parse_trigger("RUN <<EOF\necho hi\nEOF", "Dockerfile", loc).unwrap();
    match t.command {
        Command::Run(r) => {
            assert_eq!(r.command, shell("<<EOF"));
            assert_eq!(r.heredocs[0].content, "echo hi\n");
        }
        c => panic!("{c:?}"),
    }
    let t = parse_trigger("COPY --from=b . /", "Dockerfile", loc).unwrap();
    assert!(matches!(t.command, Command::Copy(ref c) if c.from.as_deref() == Some("b")));
    assert!(parse_trigger("RUN a\nRUN b", "Dockerfile", loc).is_err());
    let e = parse_trigger("RUNN x", "Dockerfile", Location::new(4, 4)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:4: unknown instruction: RUNN (did you mean RUN?)"
    );
    assert!(parse_trigger("ONBUILD RUN x", "D", loc).is_err());
}

// ---------------------------------------------------------------------------------------------
// Instructions and their forms

#[test]
fn exec_and_shell_forms() {
    let cases: [(&str, CommandLine); 11] = [
        ("CMD []", exec(&[])),
        ("CMD [\"\"]", exec(&[""])),
        ("CMD [\"a\"]", exec(&["a"])),
        ("CMD [\"a\",\"b\"]", exec(&["a", "b"])),
        ("CMD [ \"a\", \"b\" ]", exec(&["a", "b"])),
        ("CMD\t[\t\"a\",\t\"b\"\t]\t", exec(&["a", "b"])),
        (
            "CMD [\"abc 123\", \"♥\", \"☃\", \"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000\"]",
            exec(&["abc 123", "♥", "☃", "\" \\ / \u{8} \u{c} \n \r \t \u{0}"]),
        ),
        (
            "CMD '[\"echo\", \"Well, JSON in a string is JSON too?\"]'",
            shell("'[\"echo\", \"Well, JSON in a string is JSON too?\"]'"),
        ),
        (
            "CMD ['echo','single quotes are invalid JSON']",
            shell("['echo','single quotes are invalid JSON']"),
        ),
        ("CMD echo 'test' | wc -", shell("echo 'test' | wc -")),
        ("CMD", shell("")),
    ];
    for (src, want) in cases {
        let got = match parse_ok(&format!("FROM a\n{src}\n")).stages[0].instructions[0]
            .command
            .clone()
        {
            Command::Cmd(c) => c,
            c => panic!("{c:?}"),
        };
        assert_eq!(got, want, "{src}");
    }
    let e = parse_err("FROM a\nCMD --doit=true -- [ \"a\", \"b\" ]\n");
    assert!(e.message().contains("unknown flag: --doit"));
    assert_eq!(
        one("ENTRYPOINT [ \"/usr/bin/redis-server\" ]"),
        Command::Entrypoint(exec(&["/usr/bin/redis-server"]))
    );
    assert_eq!(one("ENTRYPOINT"), Command::Entrypoint(shell("")));
    assert_eq!(
        one("SHELL [\"powershell\", \"-command\"]"),
        Command::Shell(vec!["powershell".into(), "-command".into()])
    );
    assert_eq!(
        one("RUN [\"echo\", \"'1234'\"]"),
        Command::Run(Run {
            command: exec(&["echo", "'1234'"]),
            ..run_shell("")
        })
    );
    assert_eq!(
        one("RUN    sh -c 'echo root:testpass \\\n        > /tmp/passwd'"),
        Command::Run(run_shell(
            "sh -c 'echo root:testpass         > /tmp/passwd'"
        ))
    );
}

#[test]
fn from_lines() {
    let df = parse_ok(
        "ARG IMG=alpine\nFROM --platform=$BUILDPLATFORM $IMG AS build\nFROM scratch\nFROM build AS Final\n",
    );
    assert_eq!(df.meta_args.len(), 1);
    let s = &df.stages;
    assert_eq!(s[0].name.as_deref(), Some("build"));
    assert_eq!(s[0].base, "$IMG");
    assert_eq!(s[0].platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(s[1].name, None);
    assert_eq!(s[1].display_name(), "stage-1");
    assert_eq!(s[2].name.as_deref(), Some("final"));
    assert_eq!(df.stage_by_name("FINAL").map(|s| s.index), Some(2));
    assert_eq!(df.target_index(None).unwrap(), 2);
    assert_eq!(df.target_index(Some("Build")).unwrap(), 0);
    assert_eq!(
        df.target_index(Some("buidl")).unwrap_err().message(),
        "target stage \"buidl\" could not be found (did you mean build?)"
    );
}

#[test]
fn copy_and_add() {
    match one(
        "COPY --from=build --chown=1:2 --chmod=0755 --link --parents --exclude=*.txt a b/ /dst/",
    ) {
        Command::Copy(c) => {
            assert_eq!(c.sources, vec!["a", "b/"]);
            assert_eq!(c.dest, "/dst/");
            assert_eq!(c.from.as_deref(), Some("build"));
            assert_eq!(c.chown.as_deref(), Some("1:2"));
            assert_eq!(c.chmod.as_deref(), Some("0755"));
            assert!(c.link && c.parents);
            assert_eq!(c.excludes, vec!["*.txt"]);
        }
        c => panic!("{c:?}"),
    }
    match one("COPY\t[ \"test file\", \"/tmp\" ]") {
        Command::Copy(c) => {
            assert_eq!(c.sources, vec!["test file"]);
            assert_eq!(c.dest, "/tmp");
        }
        c => panic!("{c:?}"),
    }
    match one("ADD --checksum=sha256:abc --keep-git-dir=false --unpack https://x/y.tgz /d") {
        Command::Add(a) => {
            assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
            assert_eq!(a.keep_git_dir, Some(false));
            assert_eq!(a.unpack, Some(true));
            assert_eq!(a.sources, vec!["https://x/y.tgz"]);
        }
        c => panic!("{c:?}"),
    }
    match one("ADD\t\t.\t/") {
        Command::Add(a) => {
            assert_eq!((a.sources, a.dest.as_str()), (vec![".".to_string()], "/"));
            assert_eq!(a.keep_git_dir, None);
        }
        c => panic!("{c:?}"),
    }
    assert_eq!(
        parse_err("FROM a\nCOPY /foo <<EOF\nEOF\n").message(),
        "COPY cannot accept a heredoc as a destination"
    );
}

#[test]
fn env_and_label_forms() {
    let kv = |k: &str, v: &str, legacy: bool| KeyValue {
        key: k.into(),
        value: v.into(),
        legacy_form: legacy,
    };
    let cases: Vec<(&str, Vec<KeyValue>)> = vec![
        ("ENV name value", vec![kv("name", "value", true)]),
        ("ENV name=value", vec![kv("name", "value", false)]),
        (
            "ENV name=value name2=value2",
            vec![kv("name", "value", false), kv("name2", "value2", false)],
        ),
        ("ENV name=\"value value1\"", vec![kv("name", "\"value value1\"", false)]),
        ("ENV name=value\\ value2", vec![kv("name", "value\\ value2", false)]),
        (
            "ENV name=\"value'quote space'value2\"",
            vec![kv("name", "\"value'quote space'value2\"", false)],
        ),
        ("ENV name='a\\'b''", vec![kv("name", "'a\\'b''", false)]),
        ("ENV SCUBA 1 DUBA 3", vec![kv("SCUBA", "1 DUBA 3", true)]),
        ("ENV SCUBA \"1 DUBA 3\"", vec![kv("SCUBA", "\"1 DUBA 3\"", true)]),
        (
            "LABEL maintainer James Turnbull \"james@example.com\"",
            vec![kv("maintainer", "James Turnbull \"james@example.com\"", true)],
        ),
        (
            "ENV name=value \\\n    name1=value1 \\\n    name2=\"value2a \\\n           value2b\" \\\n    name3=\"value3a\\n\\\"value3b\\\"\" \\\n\tname4=\"value4a\\\\nvalue4b\" \\",
            vec![
                kv("name", "value", false),
                kv("name1", "value1", false),
                kv("name2", "\"value2a            value2b\"", false),
                kv("name3", "\"value3a\\n\\\"value3b\\\"\"", false),
                kv("name4", "\"value4a\\\\nvalue4b\"", false),
            ],
        ),
    ];
    for (src, want) in cases {
        match one(src) {
            Command::Env(got) | Command::Label(got) => assert_eq!(got, want, "{src}"),
            c => panic!("{c:?}"),
        }
    }
    // What the values become.
    let got: Vec<_> = insts(
        "ENV name=\"value value1\"\nENV name=value\\ value2\nENV name=\"a\\\"b\"\nENV name=\"a\\'b\"\nENV name='a\\\"b'\nENV name=\"''\"\nENV SCUBA \"1 DUBA 3\"\nENV x=\"value3a\\n\\\"value3b\\\"\"\n",
    )
    .iter()
    .map(|i| match expand(i, &BTreeMap::new()) {
        Command::Env(kv) => kv[0].value.clone(),
        c => panic!("{c:?}"),
    })
    .collect();
    assert_eq!(
        got,
        vec![
            "value value1",
            "value value2",
            "a\"b",
            "a\\'b",
            "a\\\"b",
            "''",
            "1 DUBA 3",
            "value3a\\n\"value3b\""
        ]
    );
}

#[test]
fn arg_forms() {
    let df = parse_ok("ARG foo bar=baz\nFROM ubuntu\nARG abc=\"123 456\" def\n");
    match &df.meta_args[0].command {
        Command::Arg(d) => assert_eq!(
            d,
            &vec![
                ArgDecl {
                    key: "foo".into(),
                    default: None
                },
                ArgDecl {
                    key: "bar".into(),
                    default: Some("baz".into())
                }
            ]
        ),
        c => panic!("{c:?}"),
    }
    match &df.stages[0].instructions[0].command {
        Command::Arg(d) => {
            assert_eq!(d[0].key, "abc");
            assert_eq!(d[0].default.as_deref(), Some("\"123 456\""));
            assert_eq!(d[1].default, None);
        }
        c => panic!("{c:?}"),
    }
    assert_eq!(
        df.declared_args().into_iter().collect::<Vec<_>>(),
        vec!["abc", "bar", "def", "foo"]
    );
}

#[test]
fn other_instructions() {
    assert_eq!(
        one("EXPOSE 9000 5000 6000"),
        Command::Expose(vec!["9000".into(), "5000".into(), "6000".into()])
    );
    assert_eq!(one("USER docker:root"), Command::User("docker:root".into()));
    assert_eq!(
        one("VOLUME [\"/test\", \"/test2\"]"),
        Command::Volume(vec!["/test".into(), "/test2".into()])
    );
    assert_eq!(
        one("VOLUME /test3 /test4"),
        Command::Volume(vec!["/test3".into(), "/test4".into()])
    );
    assert_eq!(
        parse_err("FROM a\nVOLUME [\"\"]\n").message(),
        "VOLUME specified can not be an empty string"
    );
    assert_eq!(one("WORKDIR /a b"), Command::Workdir("/a b".into()));
    assert_eq!(
        one("STOPSIGNAL SIGKILL"),
        Command::StopSignal("SIGKILL".into())
    );
    assert_eq!(
        one("MAINTAINER Erik \\\\Hollensbe <erik@hollensbe.org>\\\""),
        Command::Maintainer("Erik \\\\Hollensbe <erik@hollensbe.org>\\\"".into())
    );
    match one("RUN --mount=type=cache,target=/c --network=none --security=insecure make") {
        Command::Run(r) => {
            assert_eq!(r.network, NetworkMode::None);
            assert_eq!(r.security, Security::Insecure);
            assert_eq!(r.mounts.len(), 1);
            let m = r.mounts[0].resolve().unwrap();
            assert_eq!(m.kind, MountType::Cache);
        }
        c => panic!("{c:?}"),
    }
}

#[test]
fn healthchecks() {
    let hc = |src: &str| match one(src) {
        Command::Healthcheck(h) => h,
        c => panic!("{c:?}"),
    };
    let h =
        hc("HEALTHCHECK --interval=5s --timeout=3s --retries=3 \\\n  CMD /app/check.sh --quiet");
    assert_eq!(h.test, vec!["CMD-SHELL", "/app/check.sh --quiet"]);
    assert_eq!(
        (h.interval, h.timeout, h.retries),
        (5_000_000_000, 3_000_000_000, 3)
    );
    let h = hc("HEALTHCHECK   CMD   a b");
    assert_eq!(h.test, vec!["CMD-SHELL", "a b"]);
    let h = hc("HEALTHCHECK --timeout=3s CMD [\"foo\"]");
    assert_eq!(h.test, vec!["CMD", "foo"]);
    let h = hc("HEALTHCHECK --start-period=0s --start-interval=2s --interval=5s --timeout=0s --retries=0 cmd [\"foo\"]");
    assert_eq!(
        (h.start_period, h.start_interval, h.timeout),
        (0, 2_000_000_000, 0)
    );
    let h = hc("HEALTHCHECK none");
    assert_eq!(h.test, vec!["NONE"]);
    let errs = [
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        (
            "HEALTHCHECK CONNECT TCP 7000",
            "Unknown type \"CONNECT\" in HEALTHCHECK (try CMD)",
        ),
        (
            "HEALTHCHECK --interval=50ns CMD x",
            "Interval \"interval\" cannot be less than 1ms",
        ),
        (
            "HEALTHCHECK --timeout=x CMD x",
            "time: invalid duration \"x\"",
        ),
        (
            "HEALTHCHECK --retries=-1 CMD x",
            "--retries cannot be negative (-1)",
        ),
        (
            "HEALTHCHECK --retries=a CMD x",
            "strconv.ParseInt: parsing \"a\": invalid syntax",
        ),
        (
            "HEALTHCHECK --intervl=1s CMD x",
            "unknown flag: --intervl (did you mean interval?)",
        ),
    ];
    for (src, want) in errs {
        assert_eq!(
            parse_err(&format!("FROM a\n{src}\n")).message(),
            want,
            "{src}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Heredocs

#[test]
fn heredocs_as_buildkit_reads_them() {
    let df = parse_ok(
        "FROM alpine:3.6\nENV NAME=me\nRUN <<EMPTY\nEMPTY\nRUN 3<<EMPTY2\nEMPTY2\nRUN \"<<NOHEREDOC\"\n\
         RUN <<INDENT\n\tfoo\n\tbar\nINDENT\nRUN <<-UNINDENT\n\tbaz\n\tquux\nUNINDENT\n\
         RUN <<-UNINDENT2\n\tbaz\n\tquux\n\tUNINDENT2\nRUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\n\
         RUN <<COMMENT\n# internal comment\necho hello world\nCOMMENT\n\
         RUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\n\
         COPY <<FILE1 <<FILE2 /dest\ncontent 1\nFILE1\ncontent 2\nFILE2\n\
         COPY <<X <<Y /dest\nY\nX\nX\nY\n\
         RUN <<COMPLEX python3\nprint('hello world')\nCOMPLEX\n\
         RUN <<eo'f'\necho foo\neof\nRUN <<eo\\'f\necho foo\neo'f\nRUN <<'e'o\\'f\necho foo\neo'f\n\
         RUN <<'one two'\necho bar\none two\nRUN <<$EOF\n$EOF\nRUN <<  EOF\nEOF\nRUN <<  EOF  > foo\nEOF\n\
         USER <<INVALID\nRUN [\"<<EOF\"]\n",
    );
    type Doc = (String, String, bool, bool, u32);
    let docs: Vec<Vec<Doc>> = df.stages[0]
        .instructions
        .iter()
        .map(|i| {
            let hs = match &i.command {
                Command::Run(r) => r.heredocs.clone(),
                Command::Copy(c) => c
                    .inline
                    .iter()
                    .map(|f| Heredoc {
                        name: f.name.clone(),
                        content: f.data.clone(),
                        expand: f.expand,
                        chomp: false,
                        fd: 0,
                    })
                    .collect(),
                _ => vec![],
            };
            hs.into_iter()
                .map(|h| (h.name, h.content, h.expand, h.chomp, h.fd))
                .collect()
        })
        .collect();
    let d =
        |n: &str, c: &str, e: bool, ch: bool, fd: u32| (n.to_string(), c.to_string(), e, ch, fd);
    let want = vec![
        vec![],
        vec![d("EMPTY", "", true, false, 0)],
        vec![d("EMPTY2", "", true, false, 3)],
        vec![],
        vec![d("INDENT", "\tfoo\n\tbar\n", true, false, 0)],
        vec![d("UNINDENT", "\tbaz\n\tquux\n", true, true, 0)],
        vec![d("UNINDENT2", "\tbaz\n\tquux\n", true, true, 0)],
        vec![d("NOEXPAND", "\tdon't expand $NAME\n", false, true, 0)],
        vec![d(
            "COMMENT",
            "# internal comment\necho hello world\n",
            true,
            false,
            0,
        )],
        vec![d("MOUNT", "echo hello\n", true, false, 0)],
        vec![
            d("FILE1", "content 1\n", true, false, 0),
            d("FILE2", "content 2\n", true, false, 0),
        ],
        vec![d("X", "Y\n", true, false, 0), d("Y", "X\n", true, false, 0)],
        vec![d("COMPLEX", "print('hello world')\n", true, false, 0)],
        vec![d("eof", "echo foo\n", false, false, 0)],
        vec![d("eo'f", "echo foo\n", true, false, 0)],
        vec![d("eo'f", "echo foo\n", false, false, 0)],
        vec![d("one two", "echo bar\n", false, false, 0)],
        vec![d("$EOF", "", true, false, 0)],
        vec![d("EOF", "", true, false, 0)],
        vec![d("EOF", "", true, false, 0)],
        vec![],
        vec![],
    ];
    assert_eq!(docs, want);
    // `USER <<INVALID` is no heredoc: USER takes the word as its argument.
    assert_eq!(
        df.stages[0].instructions[20].command,
        Command::User("<<INVALID".into())
    );
    match &df.stages[0].instructions[6].command {
        Command::Run(r) => assert_eq!(r.heredocs[0].body(), "baz\nquux\n"),
        c => panic!("{c:?}"),
    }
}

#[test]
fn heredoc_copy_sources_and_expansion() {
    let i = insts("COPY <<-EOF a <<'RAW' /dst\n\thello $NAME\n\tEOF\n$NAME \"q\"\nRAW\n");
    match &i[0].command {
        Command::Copy(c) => {
            assert_eq!(c.sources, vec!["a"]);
            assert_eq!(c.inline.len(), 2);
            assert_eq!(c.inline[0].data, "hello $NAME\n");
            assert!(c.inline[0].expand);
            assert!(!c.inline[1].expand);
        }
        c => panic!("{c:?}"),
    }
    match expand(&i[0], &env(&[("NAME", "me")])) {
        Command::Copy(c) => {
            assert_eq!(c.inline[0].data, "hello me\n");
            assert_eq!(c.inline[1].data, "$NAME \"q\"\n");
        }
        c => panic!("{c:?}"),
    }
    // Quotes in an expanded heredoc body are kept.
    let i = insts("COPY <<EOF /q\n\"foo\" '$A' \\$A\nEOF\n");
    match expand(&i[0], &env(&[("A", "x")])) {
        Command::Copy(c) => assert_eq!(c.inline[0].data, "\"foo\" 'x' $A\n"),
        c => panic!("{c:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The shell lexer (cases of BuildKit's envVarTest)

#[test]
fn lexer_word_cases() {
    let vars = env(&[
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]);
    let ok: &[(&str, &str)] = &[
        ("hello", "hello"),
        ("he'll'o", "hello"),
        ("he\\'llo", "he'llo"),
        ("abc\\tdef", "abctdef"),
        ("\"abc\\tdef\"", "abc\\tdef"),
        ("\"abc\\\\tdef\"", "abc\\tdef"),
        ("'abc\\tdef'", "abc\\tdef"),
        ("hello\\", "hello"),
        ("hello\\\\", "hello\\"),
        ("\"hel'lo\"", "hel'lo"),
        ("'hello\\'", "hello\\"),
        ("'hello\\there'", "hello\\there"),
        ("'hello\\\\there'", "hello\\\\there"),
        ("\"''\"", "''"),
        ("$.", "$."),
        ("he$1x", "hex"),
        ("he$.x", "he$.x"),
        ("he$pwd.", "he."),
        ("he$PWD", "he/home"),
        ("he\\$PWD", "he$PWD"),
        ("he\\\\$PWD", "he\\/home"),
        ("\"he\\$PWD\"", "he$PWD"),
        ("\"he\\\\$PWD\"", "he\\/home"),
        ("\\${}", "${}"),
        ("\\${}aaa", "${}aaa"),
        ("he\\${}", "he${}"),
        ("he${hi}", "he"),
        ("he${hi}xx", "hexx"),
        ("he${PWD}", "he/home"),
        ("he${XXX:-000}xx", "he000xx"),
        ("he${PWD:-000}xx", "he/homexx"),
        ("he${XXX:-$PWD}xx", "he/homexx"),
        ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
        ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
        ("he${PWD?}", "he/home"),
        ("he${PWD:?}", "he/home"),
        ("he${NULL?}", "he"),
        ("he${XXX:+${PWD}}xx", "hexx"),
        ("he${PWD:+${XXX}}xx", "hexx"),
        ("he${PWD:+${SHELL}}xx", "hebashxx"),
        ("he${XXX:+000}xx", "hexx"),
        ("he${PWD:+000}xx", "he000xx"),
        ("'he${XX}'", "he${XX}"),
        ("\"he${PWD}\"", "he/home"),
        ("\"he'$PWD'\"", "he'/home'"),
        ("\"$PWD\"", "/home"),
        ("'$PWD'", "$PWD"),
        ("'\\$PWD'", "\\$PWD"),
        ("'\"hello\"'", "\"hello\""),
        ("he${PWD:+${PWD}:}xx", "he/home:xx"),
        ("he${XXX:-\\$PWD:}xx", "he$PWD:xx"),
        ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
        ("안녕하세요", "안녕하세요"),
        ("안'녕'하세요", "안녕하세요"),
        ("안녕\\'하세요", "안녕'하세요"),
        ("\"안녕\\t하세요\"", "안녕\\t하세요"),
        ("안녕$KOREAN", "안녕한국어"),
        ("${aaa}}", "}"),
        ("${aaa:-bbb}}", "bbb}"),
        ("${aaa:-${bbb:-ccc}}", "ccc"),
        ("${aaa:-bbb {foo}", "bbb {foo"),
        ("$1", ""),
        ("${1:-bbb}", "bbb"),
        ("$999aaa", "aaa"),
        ("${001:-bbb}aaa", "bbbaaa"),
        ("$@@@", "@@"),
        ("${@:+bbb}aaa", "aaa"),
        ("${#:-bbb}", "bbb"),
        ("$$", ""),
        ("${0:-bbb}", "bbb"),
        // BuildKit's pattern operators.
        ("${PWD#/}", "home"),
        ("${PWD#*o}", "me"),
        ("${PWD##*o}", "me"),
        ("${SHELL%h}", "bas"),
        ("${SHELL%%a*}", "b"),
        ("${SHELL%a*}", "b"),
        ("${SHELL/a/A}", "bAsh"),
        ("${KOREAN//국/X}", "한X어"),
        ("${PWD//o*/X}", "/hX"),
        ("${XXX/a/b}", ""),
    ];
    let lex = Lexer::default();
    for (input, want) in ok {
        let got = lex
            .expand_word(input, &vars)
            .unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(got.value, *want, "{input}");
    }
    let errs = [
        "he'llo",
        "he\\\\'llo",
        "\"hello",
        "\"hello\\\"",
        "'hello",
        "${}",
        "${}aaa",
        "he${}xx",
        "he${.}",
        "he${XXX:YYY}",
        "he${XXX?}",
        "he${XXX:?}",
        "he${NULL:?}",
        "he${PWD",
        "he${PWD:=000}xx",
        "${{aaa}",
        "${aaa",
        "${{aaa:-bbb}",
        "${aaa:-bbb",
        "${aaa:-bbb ${foo}",
        "${:}",
        "${:-bbb}",
        "${:+bbb}",
        "${PWD:#x}",
    ];
    for input in errs {
        assert!(
            lex.expand_word(input, &vars).is_err(),
            "{input} should fail"
        );
    }
    let e = lex
        .expand_word("${XXX:?must be set $SHELL}", &vars)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "failed to process \"${XXX:?must be set $SHELL}\": XXX: must be set bash"
    );
    let e = lex.expand_word("${NULL:?}", &vars).unwrap_err();
    assert_eq!(e.reason, "NULL: is not allowed to be empty");
}

#[test]
fn lexer_reports_used_variables() {
    let vars = env(&[("A", "1"), ("B", "")]);
    let e = Lexer::default()
        .expand_word("$A ${B:-x} ${C:-y} '$D' \"$E\"", &vars)
        .unwrap();
    assert_eq!(e.value, "1 x y $D ");
    assert_eq!(e.used.iter().collect::<Vec<_>>(), vec!["A", "B"]);
    assert_eq!(e.unset.iter().collect::<Vec<_>>(), vec!["C", "E"]);
    assert_eq!(e.referenced().count(), 4);
}

#[test]
fn lexer_word_splitting() {
    let vars = env(&[("PWD", "/home"), ("SPACES", "a  b c "), ("EMPTY", "")]);
    let cases: &[(&str, &[&str])] = &[
        ("hello", &["hello"]),
        ("hello world", &["hello", "world"]),
        ("hello   world  ", &["hello", "world"]),
        ("\"hello world\"", &["hello world"]),
        ("'hello  world'", &["hello  world"]),
        ("he\\ llo", &["he llo"]),
        ("$SPACES", &["a", "b", "c"]),
        ("\"$SPACES\"", &["a  b c "]),
        ("x$SPACES", &["xa", "b", "c"]),
        ("$EMPTY", &[]),
        ("''", &[]),
        ("a '' b", &["a", "b"]),
        ("8080/tcp ${PWD}", &["8080/tcp", "/home"]),
    ];
    for (input, want) in cases {
        let got = Lexer::default().expand_words(input, &vars).unwrap().value;
        assert_eq!(got, *want, "{input}");
    }
}

// ---------------------------------------------------------------------------------------------
// Expansion per instruction

#[test]
fn expansion_applies_only_where_docker_applies_it() {
    let i = insts(
        "ENV $K=$V\nLABEL \"a b\"=\"$V\"\nCOPY --chown=$U:$U --chmod=$M $S \"/d_$V\"\nADD --checksum=$C $S $D\n\
         WORKDIR $D/w\nUSER $U\nSTOPSIGNAL $SIG\nVOLUME $D \"$V\"\nEXPOSE $PORTS 22\n\
         RUN echo $V\nCMD echo $V\nENTRYPOINT [\"$V\"]\nSHELL [\"$V\"]\nHEALTHCHECK CMD $V\nONBUILD RUN $V\nMAINTAINER $V\n\
         COPY --from=$X a b\nRUN --mount=type=$T,target=$D/c true\n",
    );
    let vars = env(&[
        ("K", "key"),
        ("V", "val"),
        ("U", "1000"),
        ("M", "755"),
        ("S", "src"),
        ("C", "sha256:x"),
        ("D", "/dst"),
        ("SIG", "SIGTERM"),
        ("PORTS", "80 443/udp"),
        ("T", "cache"),
    ]);
    let got: Vec<Command> = i.iter().map(|i| expand(i, &vars)).collect();
    assert_eq!(
        got[0],
        Command::Env(vec![KeyValue {
            key: "key".into(),
            value: "val".into(),
            legacy_form: false
        }])
    );
    assert_eq!(
        got[1],
        Command::Label(vec![KeyValue {
            key: "a b".into(),
            value: "val".into(),
            legacy_form: false
        }])
    );
    match &got[2] {
        Command::Copy(c) => {
            assert_eq!(c.chown.as_deref(), Some("1000:1000"));
            assert_eq!(c.chmod.as_deref(), Some("755"));
            assert_eq!(c.sources, vec!["src"]);
            assert_eq!(c.dest, "/d_val");
        }
        c => panic!("{c:?}"),
    }
    match &got[3] {
        Command::Add(a) => {
            assert_eq!(a.checksum.as_deref(), Some("sha256:x"));
            assert_eq!((a.sources[0].as_str(), a.dest.as_str()), ("src", "/dst"));
        }
        c => panic!("{c:?}"),
    }
    assert_eq!(got[4], Command::Workdir("/dst/w".into()));
    assert_eq!(got[5], Command::User("1000".into()));
    assert_eq!(got[6], Command::StopSignal("SIGTERM".into()));
    assert_eq!(got[7], Command::Volume(vec!["/dst".into(), "val".into()]));
    assert_eq!(
        got[8],
        Command::Expose(vec!["80".into(), "443/udp".into(), "22".into()])
    );
    // Not expanded: the command texts, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER, --from.
    for (n, orig) in (9..17).zip(&i[9..17]) {
        assert_eq!(got[n], orig.command, "{}", orig.original);
    }
    match &got[17] {
        Command::Run(r) => {
            let m = r.mounts[0].resolve().unwrap();
            assert_eq!(m.kind, MountType::Cache);
            assert_eq!(m.target.as_deref(), Some("/dst/c"));
        }
        c => panic!("{c:?}"),
    }
    // Used variables are reported for the cache.
    let e = i[2].expand(&Lexer::default(), &vars).unwrap();
    assert_eq!(
        e.used.into_iter().collect::<Vec<_>>(),
        vec!["M", "S", "U", "V"]
    );
    // `$U:$U` with U unset is `:`.
    match expand(&i[2], &env(&[])) {
        Command::Copy(c) => assert_eq!(c.chown.as_deref(), Some(":")),
        c => panic!("{c:?}"),
    }
    // Errors carry the instruction's line.
    let i = insts("\nENV A=\"${B:?B is required}\"\n");
    let e = i[0].expand(&Lexer::default(), &env(&[])).unwrap_err();
    assert_eq!(e.location.start, 3);
    assert_eq!(
        e.in_file("Dockerfile").to_string(),
        "Dockerfile:3: failed to process \"\\\"${B:?B is required}\\\"\": B: B is required"
    );
    let i = insts("RUN --mount=type=$T x\n");
    let e = i[0]
        .expand(&Lexer::default(), &env(&[("T", "nope")]))
        .unwrap_err();
    assert!(e.message.contains("unsupported mount type \"nope\""));
}

#[test]
fn json_copy_elements_are_expanded_too() {
    let i = insts("COPY [\"$A\", \"'q'\", \"/d\"]\n");
    match expand(&i[0], &env(&[("A", "x y")])) {
        Command::Copy(c) => assert_eq!(c.sources, vec!["x y", "q"]),
        c => panic!("{c:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// ARG scoping

fn scope_for(src: &str, build_args: &[(&str, &str)]) -> (Dockerfile, GlobalScope) {
    let df = parse_ok(src);
    let g = GlobalScope::new(&df, &env(build_args), &PlatformArgs::host(), None).unwrap();
    (df, g)
}

/// Runs a stage's ARG and ENV instructions and returns the value of `name` after each one.
fn trace(df: &Dockerfile, g: &GlobalScope, stage: usize, name: &str) -> Vec<Option<String>> {
    let mut scope = StageScope::new(g, vec!["PATH=/bin".into()]);
    let mut out = Vec::new();
    for inst in &df.stages[stage].instructions {
        match &inst.command {
            Command::Arg(d) => {
                scope.declare(d, &df.lexer()).unwrap();
            }
            Command::Env(_) => {
                if let Command::Env(kvs) = expand(inst, &vars_of(&scope)) {
                    for kv in kvs {
                        scope.set_env(&kv.key, &kv.value);
                    }
                }
            }
            _ => {}
        }
        out.push(scope.get(name).map(String::from));
    }
    out
}

fn vars_of(s: &StageScope) -> BTreeMap<String, String> {
    // A snapshot of what a lookup sees, for `expand` above.
    let mut m = BTreeMap::new();
    for e in s.env() {
        if let Some((k, v)) = e.split_once('=') {
            m.insert(k.to_string(), v.to_string());
        }
    }
    for e in s.run_env() {
        if let Some((k, v)) = e.split_once('=') {
            m.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
    }
    m
}

#[test]
fn global_args_are_for_from_lines_only() {
    let (df, g) = scope_for(
        "ARG TAG=1.0\nARG IMG=busybox:${TAG}\nFROM $IMG\nRUN echo\nARG TAG\nARG IMG=override\n",
        &[],
    );
    let plan = plan(&df, &g, None).unwrap();
    assert_eq!(plan.stages[0].base, Base::Image("busybox:1.0".into()));
    assert_eq!(
        plan.stages[0].used_args.iter().collect::<Vec<_>>(),
        vec!["IMG"]
    );
    // In the stage: not visible until redeclared; `ARG TAG` takes the global value; a default
    // in the stage wins over the global one.
    assert_eq!(
        trace(&df, &g, 0, "TAG"),
        vec![None, Some("1.0".into()), Some("1.0".into())]
    );
    assert_eq!(
        trace(&df, &g, 0, "IMG"),
        vec![None, None, Some("override".into())]
    );
    // Build args override global and stage defaults.
    let (df, g) = scope_for(
        "ARG TAG=1.0\nFROM busybox:$TAG\nARG TAG\nARG X=def\n",
        &[("TAG", "2"), ("X", "bx")],
    );
    assert_eq!(plan_base(&df, &g), Base::Image("busybox:2".into()));
    assert_eq!(
        trace(&df, &g, 0, "TAG"),
        vec![Some("2".into()), Some("2".into())]
    );
    assert_eq!(trace(&df, &g, 0, "X"), vec![None, Some("bx".into())]);
}

fn plan_base(df: &Dockerfile, g: &GlobalScope) -> Base {
    plan(df, g, None).unwrap().stages[0].base.clone()
}

#[test]
fn env_wins_over_arg() {
    let (df, g) = scope_for(
        "FROM a\nARG V=arg\nENV V=env\nARG V=arg2\nARG W=$V\nENV X=${V}-x\n",
        &[("V", "build")],
    );
    assert_eq!(
        trace(&df, &g, 0, "V"),
        vec![
            Some("build".into()),
            Some("env".into()),
            Some("env".into()),
            Some("env".into()),
            Some("env".into())
        ]
    );
    assert_eq!(trace(&df, &g, 0, "W")[3], Some("env".into()));
    assert_eq!(trace(&df, &g, 0, "X")[4], Some("env-x".into()));
}

#[test]
fn args_do_not_cross_stages_and_env_is_not_args() {
    let (df, g) = scope_for("FROM a AS one\nARG A=1\nFROM one\nRUN x\n", &[]);
    assert_eq!(trace(&df, &g, 0, "A"), vec![Some("1".into())]);
    assert_eq!(trace(&df, &g, 1, "A"), vec![None]);
    // ARG values reach RUN but not the image's Env.
    let mut scope = StageScope::new(&g, vec!["PATH=/bin".into()]);
    let decls = match &df.stages[0].instructions[0].command {
        Command::Arg(d) => d.clone(),
        c => panic!("{c:?}"),
    };
    let v = scope.declare(&decls, &df.lexer()).unwrap();
    assert_eq!(v[0].value.as_deref(), Some("1"));
    assert_eq!(v[0].default.as_deref(), Some("1"));
    assert_eq!(scope.env(), ["PATH=/bin"]);
    assert_eq!(scope.run_env(), ["A=1"]);
}

#[test]
fn proxy_args_reach_run_but_not_history() {
    let (df, g) = scope_for(
        "FROM a\nARG no_proxy\nARG B=2\n",
        &[
            ("HTTP_PROXY", "http://p:3128"),
            ("no_proxy", "x"),
            ("UNUSED", "1"),
        ],
    );
    let mut scope = StageScope::new(&g, vec![]);
    assert_eq!(scope.run_env(), ["HTTP_PROXY=http://p:3128", "no_proxy=x"]);
    assert!(scope.history_args().is_empty());
    for inst in &df.stages[0].instructions {
        if let Command::Arg(d) = &inst.command {
            scope.declare(d, &df.lexer()).unwrap();
        }
    }
    assert_eq!(
        scope.run_env(),
        ["no_proxy=x", "B=2", "HTTP_PROXY=http://p:3128"]
    );
    // Declared proxy args are recorded, undeclared ones are not; sorted like Docker.
    assert_eq!(scope.history_args(), ["B=2", "no_proxy=x"]);
    // Not visible to expansion without ARG.
    assert_eq!(scope.get("HTTP_PROXY"), None);
    assert_eq!(
        unused_build_args(&df, g.build_args()),
        vec!["UNUSED".to_string()]
    );
    // ENV shadows an arg in the RUN environment.
    scope.set_env("B", "env");
    assert_eq!(scope.run_env(), ["no_proxy=x", "HTTP_PROXY=http://p:3128"]);
}

#[test]
fn platform_args() {
    let df = parse_ok(
        "FROM --platform=$BUILDPLATFORM busybox AS b\nARG TARGETARCH\nARG BUILDOS\nFROM b\n",
    );
    let platforms = PlatformArgs {
        build: Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: String::new(),
        },
        target: Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: "v7".into(),
        },
    };
    let g = GlobalScope::new(&df, &BTreeMap::new(), &platforms, Some("b")).unwrap();
    assert_eq!(g.get("TARGETPLATFORM"), Some("linux/arm/v7"));
    assert_eq!(g.get("TARGETVARIANT"), Some("v7"));
    assert_eq!(g.get("BUILDPLATFORM"), Some("linux/amd64"));
    assert_eq!(g.get("TARGETSTAGE"), Some("b"));
    let p = plan(&df, &g, Some("b")).unwrap();
    assert_eq!(p.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(p.target, 0);
    assert!(p.stages[0].needed && !p.stages[1].needed);
    let mut scope = StageScope::new(&g, vec![]);
    if let Command::Arg(d) = &df.stages[0].instructions[0].command {
        scope.declare(d, &df.lexer()).unwrap();
    }
    assert_eq!(scope.get("TARGETARCH"), Some("arm"));
    assert_eq!(scope.get("BUILDOS"), None);
    // Build args override the automatic ones.
    let g = GlobalScope::new(&df, &env(&[("TARGETARCH", "riscv64")]), &platforms, None).unwrap();
    assert_eq!(g.get("TARGETARCH"), Some("riscv64"));
    assert_eq!(g.get("TARGETSTAGE"), Some("default"));
}

#[test]
fn from_expansion_errors() {
    let df = parse_ok("ARG IMG\nFROM $IMG\n");
    let g = GlobalScope::new(&df, &BTreeMap::new(), &PlatformArgs::host(), None).unwrap();
    let e = plan(&df, &g, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: base name ($IMG) should not be blank"
    );
    let df = parse_ok("ARG P\nFROM --platform=$P a\n");
    let g = GlobalScope::new(&df, &BTreeMap::new(), &PlatformArgs::host(), None).unwrap();
    assert!(plan(&df, &g, None)
        .unwrap_err()
        .message()
        .contains("empty platform value"));
    let df = parse_ok("ARG A=\"${B:?missing B}\"\nFROM a\n");
    let e = GlobalScope::new(&df, &BTreeMap::new(), &PlatformArgs::host(), None).unwrap_err();
    assert_eq!(e.line(), Some(1));
    assert!(e.message().contains("B: missing B"));
}

// ---------------------------------------------------------------------------------------------
// Stage graph

#[test]
fn stage_graph_and_target() {
    let (df, g) = scope_for(
        "FROM busybox AS base\nRUN x\n\
         FROM base AS a\nRUN a\n\
         FROM scratch AS b\nCOPY --from=base /x /y\n\
         FROM alpine AS unused\n\
         FROM b\nCOPY --from=a /a /a\nCOPY --from=1 /x /x\nCOPY --from=nginx:latest /etc/n /n\nRUN --mount=type=bind,from=base,target=/m --mount=type=cache,target=/c x\n",
        &[],
    );
    let p = plan(&df, &g, None).unwrap();
    assert_eq!(p.target, 4);
    let bases: Vec<_> = p.stages.iter().map(|s| s.base.clone()).collect();
    assert_eq!(
        bases,
        vec![
            Base::Image("busybox".into()),
            Base::Stage(0),
            Base::Scratch,
            Base::Image("alpine".into()),
            Base::Stage(2)
        ]
    );
    assert_eq!(
        p.stages[4].deps,
        vec![
            Dependency {
                instruction: 0,
                source: Source::Stage(1)
            },
            Dependency {
                instruction: 1,
                source: Source::Stage(1)
            },
            Dependency {
                instruction: 2,
                source: Source::Image("nginx:latest".into())
            },
            Dependency {
                instruction: 3,
                source: Source::Stage(0)
            },
        ]
    );
    assert_eq!(p.build_order(), vec![0, 1, 2, 4]);
    assert_eq!(
        p.stages[4].stage_deps().into_iter().collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    let p = plan(&df, &g, Some("A")).unwrap();
    assert_eq!(p.build_order(), vec![0, 1]);
    assert!(plan(&df, &g, Some("nope")).is_err());
}

#[test]
fn stage_reference_errors() {
    let (df, g) = scope_for("FROM a AS one\nCOPY --from=two x y\nFROM b AS two\n", &[]);
    let e = plan(&df, &g, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:2: cannot copy from stage \"two\", it needs to be defined before current stage \"one\""
    );
    let (df, g) = scope_for("FROM a\nCOPY --from=0 x y\n", &[]);
    assert!(plan(&df, &g, None)
        .unwrap_err()
        .message()
        .contains("cannot copy from stage \"0\""));
    let (df, g) = scope_for("FROM a\nCOPY --from=7 x y\n", &[]);
    assert_eq!(
        plan(&df, &g, None).unwrap_err().message(),
        "invalid stage index 7"
    );
    let (df, g) = scope_for("FROM a\nCOPY --from=$X x y\n", &[]);
    assert!(plan(&df, &g, None)
        .unwrap_err()
        .message()
        .starts_with("variable expansion is not supported for --from"));
    let (df, g) = scope_for(
        "FROM a AS x\nRUN --mount=from=y,target=/y true\nFROM b AS y\n",
        &[],
    );
    assert!(plan(&df, &g, None)
        .unwrap_err()
        .message()
        .contains("cannot mount from stage \"y\""));
    // A FROM naming a later stage is an image (Docker's rule).
    let (df, g) = scope_for("FROM later\nFROM b AS later\n", &[]);
    assert_eq!(plan_base(&df, &g), Base::Image("later".into()));
    // resolve_source for ONBUILD triggers.
    let (df, _) = scope_for("FROM a AS x\nFROM b\n", &[]);
    assert_eq!(resolve_source(&df, 1, "X"), Ok(Source::Stage(0)));
    assert_eq!(
        resolve_source(&df, 1, "busybox"),
        Ok(Source::Image("busybox".into()))
    );
}

// ---------------------------------------------------------------------------------------------
// Properties

mod props {
    use super::*;
    use proptest::prelude::*;

    fn dockerfile_text() -> impl Strategy<Value = String> {
        let atoms = prop::sample::select(vec![
            "FROM ",
            "RUN ",
            "COPY ",
            "ADD ",
            "ENV ",
            "ARG ",
            "LABEL ",
            "CMD ",
            "ONBUILD ",
            "HEALTHCHECK ",
            "EXPOSE ",
            "VOLUME ",
            "WORKDIR ",
            "USER ",
            "SHELL ",
            "from ",
            "AS ",
            "--from=",
            "--mount=",
            "type=cache,",
            "--chown=",
            "<<EOF",
            "<<-'E'",
            "EOF",
            "E",
            "\n",
            "\t",
            " ",
            "\\",
            "\\\n",
            "`",
            "#",
            "# escape=`\n",
            "# syntax=x\n",
            "[",
            "]",
            "\"",
            "'",
            ",",
            "=",
            "$",
            "${",
            "}",
            ":-",
            ":?",
            "a",
            "b",
            "/",
            "*",
            "é",
            "\r\n",
            "\u{feff}",
        ]);
        prop::collection::vec(atoms, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

        #[test]
        fn parse_never_panics(src in dockerfile_text()) {
            if let Ok(df) = parse(&src, "Dockerfile") {
                let g = GlobalScope::new(&df, &BTreeMap::new(), &PlatformArgs::host(), None);
                if let Ok(g) = g {
                    let _ = plan(&df, &g, None);
                    let mut scope = StageScope::new(&g, vec![]);
                    for s in &df.stages {
                        for i in &s.instructions {
                            if let Command::Arg(d) = &i.command {
                                let _ = scope.declare(d, &df.lexer());
                            }
                            let _ = i.expand(&df.lexer(), &scope);
                            if let Command::Onbuild(o) = &i.command {
                                let _ = parse_trigger(&o.trigger, "D", i.location);
                            }
                        }
                    }
                }
            }
        }

        #[test]
        fn parse_never_panics_on_any_text(src in "\\PC*") {
            let _ = parse(&src, "Dockerfile");
        }

        #[test]
        fn lexer_never_panics(word in "[ -~\t한]{0,40}", escape in prop::sample::select(vec!['\\', '`'])) {
            let vars = env(&[("A", "x y"), ("B", "")]);
            let lex = Lexer::new(escape);
            let _ = lex.expand_word(&word, &vars);
            let _ = lex.expand_words(&word, &vars);
            let _ = Lexer::expand_heredoc(&word, &vars);
        }

        #[test]
        fn quoted_words_round_trip(s in "[ -~]{0,30}") {
            // Single-quoting any text without a ' gives the text back, unsplit.
            prop_assume!(!s.contains('\''));
            let lex = Lexer::default();
            let q = format!("'{s}'");
            prop_assert_eq!(lex.expand_word(&q, &NoVars).unwrap().value, s.clone());
            // Escaping every character gives it back too.
            let esc: String = s.chars().flat_map(|c| ['\\', c]).collect();
            prop_assert_eq!(lex.expand_word(&esc, &NoVars).unwrap().value, s);
        }

        #[test]
        fn env_value_round_trips_through_quotes(v in "[ -~]{0,30}") {
            // ENV k="<v with \\, \" and $ escaped>" gives v back.
            let escaped: String = v
                .chars()
                .flat_map(|c| match c {
                    '\\' | '"' | '$' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            let df = parse(&format!("FROM a\nENV k=\"{escaped}\"\n"), "D").unwrap();
            match df.stages[0].instructions[0].expand(&df.lexer(), &NoVars).unwrap().value.command {
                Command::Env(kv) => prop_assert_eq!(&kv[0].value, &v),
                c => prop_assert!(false, "{:?}", c),
            }
        }

        #[test]
        fn json_exec_form_round_trips(args in prop::collection::vec("[ -~é]{0,10}", 0..5)) {
            let json = serde_json::to_string(&args).unwrap();
            let df = parse(&format!("FROM a\nCMD {json}\n"), "D").unwrap();
            prop_assert_eq!(
                &df.stages[0].instructions[0].command,
                &Command::Cmd(CommandLine::Exec(args.clone()))
            );
        }

        #[test]
        fn heredoc_bodies_round_trip(lines in prop::collection::vec("[ -~\t]{0,20}", 0..6)) {
            prop_assume!(lines.iter().all(|l| l != "EOF"));
            let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let df = parse(&format!("FROM a\nRUN <<EOF\n{body}EOF\nRUN x\n"), "D").unwrap();
            match &df.stages[0].instructions[0].command {
                Command::Run(r) => prop_assert_eq!(&r.heredocs[0].content, &body),
                c => prop_assert!(false, "{:?}", c),
            }
            prop_assert_eq!(df.stages[0].instructions.len(), 2);
        }
    }
}
