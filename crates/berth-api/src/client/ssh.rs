//! `ssh://[user@]host[:port][/socket]`: each connection is the system's `ssh` client running
//! `berth system dial-stdio` on the remote host (the Docker CLI runs `docker system
//! dial-stdio` the same way), its stdin and stdout being the connection.

use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A parsed `ssh://` host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The daemon socket on the remote host (`--host unix://<path>` of dial-stdio).
    pub path: Option<String>,
}

impl SshSpec {
    /// Parses `ssh://…` with the Docker CLI's rules (no password, query or fragment).
    pub fn parse(url: &str) -> Result<SshSpec, String> {
        let rest = url
            .strip_prefix("ssh://")
            .ok_or_else(|| "invalid SSH URL: incorrect scheme".to_string())?;
        if rest.contains('?') {
            return Err("invalid SSH URL: query parameters are not allowed".into());
        }
        if rest.contains('#') {
            return Err("invalid SSH URL: fragments are not allowed".into());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => {
                if u.contains(':') {
                    return Err("invalid SSH URL: plain-text password is not supported".into());
                }
                (Some(u.to_string()).filter(|u| !u.is_empty()), h)
            }
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| "invalid SSH URL: missing ']' in host".to_string())?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err("invalid SSH URL: hostname is empty".into());
        }
        if host.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
            return Err("invalid SSH URL: a host or user may not start with '-'".into());
        }
        let port = match port {
            None | Some("") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| format!("invalid SSH URL: invalid port {p:?}"))?,
            ),
        };
        Ok(SshSpec {
            user,
            host,
            port,
            path: path.filter(|p| *p != "/").map(str::to_string),
        })
    }

    /// The `ssh` arguments: `[-l user] [-p port] -o ConnectTimeout=30 -T -- host <command>`.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(u) = &self.user {
            args.push("-l".to_string());
            args.push(u.clone());
        }
        if let Some(p) = self.port {
            args.push("-p".to_string());
            args.push(p.to_string());
        }
        args.extend(["-o", "ConnectTimeout=30", "-T", "--"].map(String::from));
        args.push(self.host.clone());
        let mut remote = vec!["berth".to_string()];
        if let Some(path) = &self.path {
            remote.push(shell_quote(&format!("--host=unix://{path}")));
        }
        remote.extend(["system", "dial-stdio"].map(String::from));
        args.push(remote.join(" "));
        args
    }

    /// Starts `ssh` and returns its stdio as one connection.
    pub fn connect(&self) -> io::Result<SshStream> {
        let mut child = Command::new("ssh")
            .args(self.args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("ssh has no stdout"))?;
        Ok(SshStream {
            child,
            stdin,
            stdout,
        })
    }
}

/// POSIX single quotes where needed.
fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_=/.:@+,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The ssh child's stdout (read) and stdin (write); shutting down closes stdin, which the
/// remote dial-stdio turns into a half-close of its daemon connection.
pub struct SshStream {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
}

impl std::fmt::Debug for SshStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshStream")
            .field("pid", &self.child.id())
            .finish()
    }
}

impl AsyncRead for SshStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().stdin.as_mut() {
            Some(s) => Pin::new(s).poll_write(cx, buf),
            None => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the connection's write side is closed",
            ))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().stdin.as_mut() {
            Some(s) => Pin::new(s).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(s) = this.stdin.as_mut() {
            if let Poll::Ready(Err(e)) = Pin::new(s).poll_flush(cx) {
                return Poll::Ready(Err(e));
            }
        }
        this.stdin = None;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_urls() {
        let s = SshSpec::parse("ssh://me@example.com:2222/run/berth/berth.sock").unwrap();
        assert_eq!(s.user.as_deref(), Some("me"));
        assert_eq!(s.host, "example.com");
        assert_eq!(s.port, Some(2222));
        assert_eq!(s.path.as_deref(), Some("/run/berth/berth.sock"));
        let s = SshSpec::parse("ssh://[::1]:22").unwrap();
        assert_eq!(s.host, "::1");
        assert_eq!(s.path, None);
        let s = SshSpec::parse("ssh://host").unwrap();
        assert_eq!((s.user, s.port), (None, None));
        for bad in [
            "ssh://u:pw@h",
            "ssh://h?x=1",
            "ssh://h#f",
            "ssh://",
            "ssh://h:notaport",
            "ssh://-oProxyCommand=x",
            "tcp://h",
        ] {
            assert!(SshSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssh_arguments() {
        let s = SshSpec::parse("ssh://me@h:2222/tmp/my sock").unwrap();
        assert_eq!(
            s.args(),
            [
                "-l",
                "me",
                "-p",
                "2222",
                "-o",
                "ConnectTimeout=30",
                "-T",
                "--",
                "h",
                "berth '--host=unix:///tmp/my sock' system dial-stdio"
            ]
        );
    }
}
