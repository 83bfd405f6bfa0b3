//! Slash-path helpers shared by the Dockerfile and .dockerignore modules.

/// Go's `path.Clean` (and `filepath.Clean` on Linux): removes `.` and empty segments,
/// resolves `..` lexically (never above `/` for rooted paths), drops a trailing `/`; the empty
/// path is `.`.
pub(crate) fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn go_path_clean() {
        assert_eq!(clean("/a/../b/"), "/b");
        assert_eq!(clean("a//b/./c/.."), "a/b");
        assert_eq!(clean("../x"), "../x");
        assert_eq!(clean("a/../../x"), "../x");
        assert_eq!(clean("/.."), "/");
        assert_eq!(clean("./"), ".");
        assert_eq!(clean(""), ".");
    }
}
