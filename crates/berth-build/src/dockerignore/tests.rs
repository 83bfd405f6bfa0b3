//! Tests of `.dockerignore` matching. The single-pattern table follows moby/patternmatcher's
//! own test cases; the properties compare with a small independent reference matcher.

use super::*;

fn pm(patterns: &[&str]) -> Dockerignore {
    Dockerignore::new(patterns).unwrap()
}

#[test]
fn single_patterns() {
    let cases: &[(&str, &str, bool)] = &[
        ("**", "file", true),
        ("**", "file/", true),
        ("**/", "file", true),
        ("**/", "file/", true),
        ("**", "/", true),
        ("**/", "/", true),
        ("**", "dir/file", true),
        ("**/", "dir/file", true),
        ("**", "dir/file/", true),
        ("**/", "dir/file/", true),
        ("**/**", "dir/file", true),
        ("**/**", "dir/file/", true),
        ("dir/**", "dir/file", true),
        ("dir/**", "dir/file/", true),
        ("dir/**", "dir/dir2/file", true),
        ("dir/**", "dir/dir2/file/", true),
        ("**/dir", "dir", true),
        ("**/dir", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/*", "dir/dir2/file/", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**/dir2/**", "dir/dir2/dir3/file/", true),
        ("**file", "file", true),
        ("**file", "dir/file", true),
        ("**/file", "dir/file", true),
        ("**file", "dir/dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/file*.txt", "dir/dir/file.txt", true),
        ("**/file*.txt*", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[b-d]e", "aae", false),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc.def", "abcZdef", false),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        ("a\\\\", "a\\", true),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def", true),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        ("a\\*b", "a*b", true),
        ("a\\*b", "axb", false),
        // Character classes keep Go's meaning even where the regex crate's differ.
        ("a[&&]b", "a&b", true),
        ("a[[]b", "a[b", true),
        ("x[!a]", "x!", true),
        ("x[!a]", "xb", false),
        ("*.[ch]", "x.c", true),
        ("*.[ch]", "dir/x.c", false),
    ];
    for &(pattern, text, want) in cases {
        let m = pm(&[pattern]);
        let (got, _) = m.check(text, &MatchInfo::default());
        assert_eq!(got, want, "pattern {pattern:?} text {text:?} (no context)");
        if !text.ends_with('/') && !text.starts_with('/') {
            assert_eq!(
                m.is_excluded(text),
                want,
                "pattern {pattern:?} text {text:?} (walk)"
            );
        }
    }
}

#[test]
fn several_patterns_in_order() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["*.go"], "fileutils.go", true),
        (&["!fileutils.go", "*.go"], "fileutils.go", true),
        (&["*.go", "!fileutils.go"], "fileutils.go", false),
        (&["docs", "!docs/README.md"], "docs/README.md", false),
        (&["docs/", "!docs/README.md"], "docs/README.md", false),
        (&["docs/*", "!docs/README.md"], "docs/README.md", false),
        (&["docs", "!docs/README.md"], "docs/other.md", true),
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            true,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0-py3-none-any.whl",
            false,
        ),
        (&["*", "!**/keep"], "a/b/keep", false),
        (&["*", "!**/keep"], "a/b/other", true),
    ];
    for &(patterns, text, want) in cases {
        assert_eq!(
            pm(patterns).is_excluded(text),
            want,
            "{patterns:?} {text:?}"
        );
    }
    // Only the ignore-file reader strips a leading '/'; both clean './'.
    let m = Dockerignore::parse("/leading\n./dot/x\n").unwrap();
    assert!(m.is_excluded("leading") && m.is_excluded("dot/x"));
    assert!(!pm(&["/leading"]).is_excluded("leading"));
    assert!(pm(&["./dot/x"]).is_excluded("dot/x"));
    // The context root itself is never excluded.
    assert!(!pm(&["*"]).is_excluded("."));
    assert!(!pm(&[]).is_excluded("x"));
}

#[test]
fn walk_evaluation_matches_dockers_walker() {
    // Docker's walker passes each directory's match info to its entries; a pattern skipped
    // at a directory (it could not change the result there) is not inherited. Here `!a` is
    // skipped at `a` (nothing matched yet), so it does not re-include `a/x`.
    let m = pm(&["a/x", "!a"]);
    assert!(m.is_excluded("a/x"));
    let (dir, info) = m.check("a", &MatchInfo::default());
    assert!(!dir);
    assert!(m.check("a/x", &info).0);
    // Without context the ancestors are checked directly (moby's MatchesOrParentMatches).
    assert!(!m.check("a/x", &MatchInfo::default()).0);
}

#[test]
fn errors() {
    assert_eq!(
        Dockerignore::new(["!"]).unwrap_err(),
        IgnoreError::IllegalExclusion
    );
    for bad in ["[", "a[", "a\\", "[]", "[a-]", "x[-a]", "[^]"] {
        assert!(
            matches!(
                Dockerignore::new([bad]),
                Err(IgnoreError::BadPattern { .. })
            ),
            "{bad:?} should be rejected"
        );
    }
    assert!(Dockerignore::parse("!\n").is_err());
}

#[test]
fn reading_ignore_files() {
    let got = read_patterns(
        "\u{feff}# comment\n  \n*.log  \r\n  # not a comment\n!  /keep/./this/\n/\n./a/../b\n\t!x\n!\n",
    );
    assert_eq!(
        got,
        vec![
            "*.log",
            "# not a comment",
            "!keep/this",
            "/",
            "b",
            "!x",
            "!"
        ]
    );
    let m = Dockerignore::parse("node_modules\n*.tmp\n!important.tmp\n").unwrap();
    assert_eq!(m.patterns().len(), 3);
    assert!(m.has_exceptions());
    assert!(m.patterns()[2].is_exception());
    assert_eq!(m.patterns()[2].as_str(), "important.tmp");
    assert!(m.is_excluded("node_modules/x/y.js"));
    assert!(m.is_excluded("a.tmp"));
    assert!(!m.is_excluded("important.tmp"));
    assert_eq!(m.to_string(), "node_modules\n*.tmp\n!important.tmp\n");
    assert!(Dockerignore::parse("# nothing\n").unwrap().is_empty());
}

#[test]
fn skipping_directories() {
    let m = pm(&["node_modules", "build"]);
    assert!(m.can_skip_dir("node_modules"));
    let m = pm(&["build", "!build/keep.txt"]);
    assert!(!m.can_skip_dir("build"));
    assert!(m.can_skip_dir("other"));
    let m = pm(&["*", "!**/keep"]);
    assert!(
        !m.can_skip_dir("a"),
        "an exception with ** could match anything under a"
    );
    let m = pm(&["*", "!src/*.rs"]);
    assert!(!m.can_skip_dir("src"));
    assert!(m.can_skip_dir("target"));
    let m = pm(&["a", "!a"]);
    assert!(m.can_skip_dir("b"));
    let m = pm(&["**", "!x[/]y"]);
    assert!(
        !m.can_skip_dir("x"),
        "classes can match '/': be conservative"
    );
    let m = pm(&["*", "!a*/b"]);
    assert!(!m.can_skip_dir("abc"));
    assert!(m.can_skip_dir("xbc"));
    let m = pm(&["*", "!ab/**"]);
    assert!(!m.can_skip_dir("ab"));
    assert!(m.can_skip_dir("abc"));
}

#[test]
fn build_files() {
    let m = pm(&["*", "!src"]);
    let kept = m.keeping_build_files("Dockerfile", false);
    assert!(!kept.is_excluded("Dockerfile"));
    assert!(!kept.is_excluded(".dockerignore"));
    assert!(kept.is_excluded("other"));
    let kept = m.keeping_build_files("Dockerfile", true);
    assert!(kept.is_excluded("Dockerfile"));
    assert!(!kept.is_excluded(".dockerignore"));
    let m = pm(&["docker/"]);
    let kept = m.keeping_build_files("./docker/app.Dockerfile", false);
    assert!(!kept.is_excluded("docker/app.Dockerfile"));
    assert!(kept.is_excluded("docker/other"));
    assert_eq!(
        pm(&["Dockerfile", ".dockerignore"]).build_files_to_remove(".dockerignore", "Dockerfile"),
        vec![".dockerignore", "Dockerfile"]
    );
    assert!(pm(&["x"])
        .build_files_to_remove(".dockerignore", "Dockerfile")
        .is_empty());
    assert_eq!(
        ignore_file_candidates("sub/app.Dockerfile"),
        [
            "sub/app.Dockerfile.dockerignore".to_string(),
            ".dockerignore".to_string()
        ]
    );
}

/// An independent matcher for patterns made of `/`-separated segments, each `**` or a glob of
/// literals, `*` and `?`: `**` matches zero or more segments, except at the end where it
/// matches one or more (Docker's `dir/**` does not match `dir` itself).
mod reference {
    fn glob(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
        }
    }

    fn segs(p: &[&str], s: &[&str]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((&"**", [])) => !s.is_empty(),
            Some((&"**", rest)) => (0..=s.len()).any(|k| segs(rest, &s[k..])),
            Some((g, rest)) => {
                !s.is_empty()
                    && glob(
                        &g.chars().collect::<Vec<_>>(),
                        &s[0].chars().collect::<Vec<_>>(),
                    )
                    && segs(rest, &s[1..])
            }
        }
    }

    pub fn matches(pattern: &str, path: &str) -> bool {
        let p: Vec<&str> = pattern.split('/').collect();
        let s: Vec<&str> = path.split('/').collect();
        segs(&p, &s)
    }

    /// Docker's walk: per level, each pattern is inherited from the parent level or evaluated
    /// (unless it cannot change the result); the last match decides.
    pub fn excluded(patterns: &[(bool, String)], path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let mut info: Option<Vec<bool>> = None;
        let mut verdict = false;
        for depth in 1..=parts.len() {
            let p = parts[..depth].join("/");
            let mut matched = false;
            let mut next = vec![false; patterns.len()];
            for (i, (exception, pat)) in patterns.iter().enumerate() {
                let mut m = info.as_ref().is_some_and(|v| v[i]);
                if !m {
                    if *exception != matched {
                        continue;
                    }
                    m = matches(pat, &p);
                }
                next[i] = m;
                if m {
                    matched = !exception;
                }
            }
            verdict = matched;
            info = Some(next);
        }
        verdict
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn pattern() -> impl Strategy<Value = (bool, String)> {
        let seg = prop::sample::select(vec![
            "**", "*", "a", "b", "a*", "*b", "?", "a?b", ".x", "ab",
        ]);
        (any::<bool>(), prop::collection::vec(seg, 1..4))
            .prop_map(|(ex, segs)| (ex, segs.join("/")))
    }

    fn path() -> impl Strategy<Value = String> {
        let seg = prop::sample::select(vec!["a", "b", "ab", "aab", ".x", "c", "axb"]);
        prop::collection::vec(seg, 1..5).prop_map(|s| s.join("/"))
    }

    fn compile(pats: &[(bool, String)]) -> Dockerignore {
        Dockerignore::new(
            pats.iter()
                .map(|(ex, p)| if *ex { format!("!{p}") } else { p.clone() }),
        )
        .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn agrees_with_reference(pats in prop::collection::vec(pattern(), 1..5), p in path()) {
            let m = compile(&pats);
            prop_assert_eq!(m.is_excluded(&p), reference::excluded(&pats, &p), "{:?} {}", pats, p);
        }

        #[test]
        fn without_exceptions_any_match_of_path_or_ancestor_excludes(
            pats in prop::collection::vec(pattern().prop_map(|(_, p)| p), 1..4),
            p in path(),
        ) {
            let m = Dockerignore::new(&pats).unwrap();
            let parts: Vec<&str> = p.split('/').collect();
            let expected = (1..=parts.len()).any(|d| {
                let prefix = parts[..d].join("/");
                pats.iter().any(|pat| reference::matches(pat, &prefix))
            });
            prop_assert_eq!(m.is_excluded(&p), expected);
        }

        #[test]
        fn skipped_directories_contain_only_excluded_paths(
            pats in prop::collection::vec(pattern(), 1..5),
            dir in path(),
            rest in path(),
        ) {
            let m = compile(&pats);
            if m.is_excluded(&dir) && m.can_skip_dir(&dir) {
                let below = format!("{dir}/{rest}");
                prop_assert!(m.is_excluded(&below), "{:?}: {} skipped but {} included", pats, dir, below);
            }
        }

        #[test]
        fn never_panics(lines in prop::collection::vec("[!*?\\[\\]\\\\/a-c.^ -]{0,8}", 0..6), p in "[a-c./\\[\\]*]{0,12}") {
            if let Ok(m) = Dockerignore::parse(&lines.join("\n")) {
                let _ = m.is_excluded(&p);
                let _ = m.can_skip_dir(&p);
                let _ = m.check(&p, &MatchInfo::default());
            }
        }
    }
}
