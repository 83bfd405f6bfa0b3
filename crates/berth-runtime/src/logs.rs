//! Docker's `json-file` log format: the writer used by the shim and the reader used by the
//! engine's `GET /containers/{id}/logs`.
//!
//! One JSON object per line: `{"log":"hello\n","stream":"stdout","time":"2026-11-27T17:03:35.248975914Z"}`.
//! A line longer than [`MAX_LINE`] bytes is split into partial entries (no trailing `\n` in
//! `log`), like Docker's log copier. Rotation (`max-size`/`max-file`) renames the live file to
//! `<path>.1`, `.1` to `.2`, …, keeping at most `max_file` files in total.

use crate::stdcopy::StdStream;
use crate::time::{parse_rfc3339, write_rfc3339_nano};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest log entry before a line is split into partial entries (Docker's copier buffer).
pub const MAX_LINE: usize = 16 * 1024;

/// Errors of the log reader/writer.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// I/O on a log file failed.
    #[error("log file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A line is not a json-file entry.
    #[error("invalid json-file log entry: {0}")]
    Parse(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// stdout or stderr.
    pub stream: StdStream,
    /// When the shim read the bytes.
    pub time: DateTime<Utc>,
    /// The bytes, including the trailing `\n` unless the entry is partial.
    pub line: Vec<u8>,
    /// The driver's extra attributes (`--log-opt labels/env/tag`), sorted by key.
    pub attrs: Vec<(String, String)>,
}

/// Appends a JSON string literal for `data` to `out`, escaping like Docker's json-file
/// encoder: `"`, `\` and `\n` `\r` `\t` with backslashes, other control bytes and `<` `>` `&`
/// as `\u00XX`, U+2028/U+2029 as `\u2028`/`\u2029`, invalid UTF-8 as U+FFFD.
/// Written by hand (rather than serde_json) so the shim can encode without allocating a String.
pub fn write_json_string(out: &mut Vec<u8>, data: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for chunk in data.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                }
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c => {
                    let mut b = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// Splits a byte stream into log entries: complete lines, or [`MAX_LINE`]-byte partial chunks.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; `emit` is called for each finished entry.
    pub fn feed<E: FnMut(&[u8]) -> io::Result<()>>(
        &mut self,
        mut data: &[u8],
        mut emit: E,
    ) -> io::Result<()> {
        while !data.is_empty() {
            let room = MAX_LINE - self.buf.len();
            let window = &data[..data.len().min(room)];
            if let Some(nl) = window.iter().position(|&b| b == b'\n') {
                if self.buf.is_empty() {
                    emit(&data[..=nl])?;
                } else {
                    self.buf.extend_from_slice(&data[..=nl]);
                    emit(&self.buf)?;
                    self.buf.clear();
                }
                data = &data[nl + 1..];
            } else if window.len() == room {
                self.buf.extend_from_slice(window);
                emit(&self.buf)?;
                self.buf.clear();
                data = &data[room..];
            } else {
                self.buf.extend_from_slice(window);
                data = &[];
            }
        }
        if self.buf.capacity() > MAX_LINE && self.buf.is_empty() {
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Emits whatever is buffered (at EOF).
    pub fn flush<E: FnMut(&[u8]) -> io::Result<()>>(&mut self, mut emit: E) -> io::Result<()> {
        if !self.buf.is_empty() {
            emit(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

/// Appends json-file entries to a log file, rotating like Docker's json-file driver.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
    buf: Vec<u8>,
    ts: String,
    /// `,"attrs":{…}` when the container has log attributes, else empty.
    attrs: Vec<u8>,
}

impl LogWriter {
    /// Opens (creates, appends to) `path`. `max_size` None = never rotate; `max_file` ≥ 1 is the
    /// number of files kept including the live one.
    pub fn open(path: &Path, max_size: Option<u64>, max_file: u32) -> io::Result<LogWriter> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size: max_size.filter(|&s| s > 0),
            max_file: max_file.max(1),
            buf: Vec::with_capacity(256),
            ts: String::with_capacity(40),
            attrs: Vec::new(),
        })
    }

    /// Writes `attrs` with every entry (Docker's json-file `attrs` object, between `stream`
    /// and `time`), as its driver does for `--log-opt labels/env/tag`.
    pub fn with_attrs(mut self, attrs: &std::collections::BTreeMap<String, String>) -> Self {
        self.attrs.clear();
        if !attrs.is_empty() {
            self.attrs.extend_from_slice(b",\"attrs\":{");
            for (i, (k, v)) in attrs.iter().enumerate() {
                if i > 0 {
                    self.attrs.push(b',');
                }
                write_json_string(&mut self.attrs, k.as_bytes());
                self.attrs.push(b':');
                write_json_string(&mut self.attrs, v.as_bytes());
            }
            self.attrs.push(b'}');
        }
        self
    }

    /// Writes one entry (`data` is one line or partial chunk).
    pub fn write_entry(
        &mut self,
        stream: StdStream,
        data: &[u8],
        time: &DateTime<Utc>,
    ) -> io::Result<()> {
        if let Some(max) = self.max_size {
            if self.size >= max {
                self.rotate()?;
            }
        }
        self.buf.clear();
        self.buf.extend_from_slice(b"{\"log\":");
        write_json_string(&mut self.buf, data);
        self.buf.extend_from_slice(b",\"stream\":\"");
        self.buf.extend_from_slice(stream.as_str().as_bytes());
        self.buf.push(b'"');
        self.buf.extend_from_slice(&self.attrs);
        self.buf.extend_from_slice(b",\"time\":\"");
        self.ts.clear();
        write_rfc3339_nano(&mut self.ts, time);
        self.buf.extend_from_slice(self.ts.as_bytes());
        self.buf.extend_from_slice(b"\"}\n");
        self.file.write_all(&self.buf)?;
        self.size += self.buf.len() as u64;
        if self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::with_capacity(256);
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_file <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for i in (1..self.max_file - 1).rev() {
            match std::fs::rename(rotated_name(&self.path, i), rotated_name(&self.path, i + 1)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        std::fs::rename(&self.path, rotated_name(&self.path, 1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// `<path>.<n>`.
pub fn rotated_name(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

#[derive(Deserialize)]
struct RawEntry {
    log: String,
    stream: String,
    time: String,
    #[serde(default)]
    attrs: Option<std::collections::BTreeMap<String, String>>,
}

/// Parses one json-file line (with or without the trailing newline).
pub fn parse_line(line: &[u8]) -> Result<LogEntry, LogError> {
    let raw: RawEntry = serde_json::from_slice(line).map_err(|e| LogError::Parse(e.to_string()))?;
    let stream = match raw.stream.as_str() {
        "stdout" => StdStream::Stdout,
        "stderr" => StdStream::Stderr,
        other => return Err(LogError::Parse(format!("unknown stream {other:?}"))),
    };
    let time = parse_rfc3339(&raw.time)
        .ok_or_else(|| LogError::Parse(format!("invalid time {:?}", raw.time)))?;
    Ok(LogEntry {
        stream,
        time,
        line: raw.log.into_bytes(),
        attrs: raw.attrs.unwrap_or_default().into_iter().collect(),
    })
}

/// What to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Include stdout entries.
    pub stdout: bool,
    /// Include stderr entries.
    pub stderr: bool,
    /// Skip entries before this time.
    pub since: Option<DateTime<Utc>>,
    /// Stop at the first entry after this time.
    pub until: Option<DateTime<Utc>>,
    /// Only the last N entries of the existing log (counted before stream filtering, like
    /// Docker). None = all.
    pub tail: Option<usize>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            stdout: true,
            stderr: true,
            since: None,
            until: None,
            tail: None,
        }
    }
}

enum Verdict {
    Take,
    Skip,
    Stop,
}

impl ReadOptions {
    fn judge(&self, e: &LogEntry) -> Verdict {
        if let Some(u) = self.until {
            if e.time > u {
                return Verdict::Stop;
            }
        }
        if let Some(s) = self.since {
            if e.time < s {
                return Verdict::Skip;
            }
        }
        match e.stream {
            StdStream::Stdout if self.stdout => Verdict::Take,
            StdStream::Stderr if self.stderr => Verdict::Take,
            _ => Verdict::Skip,
        }
    }
}

/// The log files to read in order: `<path>.N` … `<path>.1`, then `<path>` (missing ones skipped).
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut rotated = Vec::new();
    let mut n = 1;
    while n < 100_000 {
        let p = rotated_name(path, n);
        if !p.exists() {
            break;
        }
        rotated.push(p);
        n += 1;
    }
    rotated.reverse();
    rotated.push(path.to_path_buf());
    rotated
}

/// Reads lines of `r` into `out` (tail-bounded). Skips undecodable lines like Docker does for a
/// torn last line, but reports other I/O errors.
fn collect_lines<R: Read>(
    r: R,
    path: &Path,
    tail: Option<usize>,
    out: &mut VecDeque<LogEntry>,
) -> Result<u64, LogError> {
    let mut reader = BufReader::new(r);
    let mut line = Vec::new();
    let mut consumed = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io_err(path))?;
        if n == 0 || line.last() != Some(&b'\n') {
            // EOF, or a line still being written: leave it for a follower.
            return Ok(consumed);
        }
        consumed += n as u64;
        if let Ok(e) = parse_line(&line) {
            if tail == Some(0) {
                continue;
            }
            out.push_back(e);
            if let Some(t) = tail {
                if out.len() > t {
                    out.pop_front();
                }
            }
        }
    }
}

/// Reads the existing log (rotated files first), applying the options. Does not follow.
pub fn read(path: &Path, opts: &ReadOptions) -> Result<Vec<LogEntry>, LogError> {
    let mut all = VecDeque::new();
    for p in log_files(path) {
        match File::open(&p) {
            Ok(f) => {
                collect_lines(f, &p, opts.tail, &mut all)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&p)(e)),
        }
    }
    let mut out = Vec::with_capacity(all.len());
    for e in all {
        match opts.judge(&e) {
            Verdict::Take => out.push(e),
            Verdict::Skip => {}
            Verdict::Stop => break,
        }
    }
    Ok(out)
}

/// Sends the existing log (like [`read`]) and then follows the live file across rotations,
/// sending new entries to `tx`, until `stop` completes; then drains what is left and returns.
/// Returns early (Ok) when the receiver is dropped or an entry after `until` is seen.
pub async fn follow<S: Future<Output = ()>>(
    path: PathBuf,
    opts: ReadOptions,
    tx: tokio::sync::mpsc::Sender<LogEntry>,
    stop: S,
) -> Result<(), LogError> {
    // Open the live file first so that a rotation during the snapshot is noticed.
    let mut live = open_live(&path).await?;
    let mut pos = 0u64;
    let mut backlog = VecDeque::new();
    {
        let files = log_files(&path);
        let (rotated, _) = files.split_at(files.len() - 1);
        for p in rotated {
            if let Ok(f) = File::open(p) {
                collect_lines(f, p, opts.tail, &mut backlog)?;
            }
        }
        if let Some(f) = live.as_mut() {
            f.seek(SeekFrom::Start(0)).map_err(io_err(&path))?;
            pos = collect_lines(&mut *f, &path, opts.tail, &mut backlog)?;
        }
    }
    for e in backlog {
        match opts.judge(&e) {
            Verdict::Take => {
                if tx.send(e).await.is_err() {
                    return Ok(());
                }
            }
            Verdict::Skip => {}
            Verdict::Stop => return Ok(()),
        }
    }
    let no_tail = ReadOptions {
        tail: None,
        ..opts.clone()
    };
    tokio::pin!(stop);
    let mut stopping = false;
    loop {
        // Read everything new in the live file.
        let mut progressed = false;
        if let Some(f) = live.as_mut() {
            let mut fresh = VecDeque::new();
            f.seek(SeekFrom::Start(pos)).map_err(io_err(&path))?;
            let n = collect_lines(&mut *f, &path, None, &mut fresh)?;
            pos += n;
            progressed = n > 0;
            for e in fresh {
                match no_tail.judge(&e) {
                    Verdict::Take => {
                        if tx.send(e).await.is_err() {
                            return Ok(());
                        }
                    }
                    Verdict::Skip => {}
                    Verdict::Stop => return Ok(()),
                }
            }
        }
        if progressed {
            continue;
        }
        // Rotated or truncated?
        let current = std::fs::metadata(&path).ok();
        match (&live, current) {
            (Some(f), Some(meta)) => {
                let fmeta = f.metadata().map_err(io_err(&path))?;
                if fmeta.ino() != meta.ino() || fmeta.dev() != meta.dev() {
                    // The file we read was rotated away and is fully drained. Continue with
                    // the file written after it: if it is now `<path>.k`, that is `<path>.k-1`
                    // (several rotations may have happened since we last looked).
                    live = open_next(&path, fmeta.ino(), fmeta.dev())?;
                    pos = 0;
                    continue;
                }
                if meta.len() < pos {
                    // Truncated in place (max-file 1).
                    pos = 0;
                    continue;
                }
            }
            (None, Some(_)) => {
                live = open_live(&path).await?;
                pos = 0;
                continue;
            }
            _ => {}
        }
        if stopping {
            return Ok(());
        }
        tokio::select! {
            _ = &mut stop => { stopping = true; }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = tx.closed() => { return Ok(()); }
        }
    }
}

/// The file that follows the (rotated) file with inode `ino`.
fn open_next(path: &Path, ino: u64, dev: u64) -> Result<Option<File>, LogError> {
    let mut k = 1;
    while k < 100_000 {
        let p = rotated_name(path, k);
        match std::fs::metadata(&p) {
            Ok(m) if m.ino() == ino && m.dev() == dev => {
                let next = if k == 1 {
                    path.to_path_buf()
                } else {
                    rotated_name(path, k - 1)
                };
                return match File::open(&next) {
                    Ok(f) => Ok(Some(f)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        File::open(path).map(Some).or(Ok(None))
                    }
                    Err(e) => Err(io_err(&next)(e)),
                };
            }
            Ok(_) => k += 1,
            Err(_) => break,
        }
    }
    // Our file is gone (rotated past max-file): continue with the live file.
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

async fn open_live(path: &Path) -> Result<Option<File>, LogError> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 17, 3, s).unwrap()
    }

    #[test]
    fn entry_shape_matches_docker() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let mut w = LogWriter::open(&p, None, 1).unwrap();
        let time = t(35) + chrono::Duration::nanoseconds(248_975_914);
        w.write_entry(StdStream::Stdout, b"hello\n", &time).unwrap();
        w.write_entry(StdStream::Stderr, b"<a&b>\t\x01\"\\", &time)
            .unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            s,
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-27T17:03:35.248975914Z\"}\n\
             {\"log\":\"\\u003ca\\u0026b\\u003e\\t\\u0001\\\"\\\\\",\"stream\":\"stderr\",\"time\":\"2026-11-27T17:03:35.248975914Z\"}\n"
        );
        let back = read(&p, &ReadOptions::default()).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1].line, b"<a&b>\t\x01\"\\");
    }

    #[test]
    fn attrs_are_written_and_read_like_dockers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let attrs = [("tag", "web"), ("a b", "x\"y")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut w = LogWriter::open(&p, None, 1).unwrap().with_attrs(&attrs);
        w.write_entry(StdStream::Stdout, b"hi\n", &t(1)).unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            s,
            "{\"log\":\"hi\\n\",\"stream\":\"stdout\",\"attrs\":{\"a b\":\"x\\\"y\",\"tag\":\"web\"},\"time\":\"2026-11-27T17:03:01Z\"}\n"
        );
        let back = read(&p, &ReadOptions::default()).unwrap();
        assert_eq!(
            back[0].attrs,
            [
                ("a b".to_string(), "x\"y".to_string()),
                ("tag".to_string(), "web".to_string())
            ]
        );
    }

    #[test]
    fn invalid_utf8_becomes_replacement() {
        let mut out = Vec::new();
        write_json_string(&mut out, b"a\xffb\xe2\x80\xa8");
        assert_eq!(out, b"\"a\\ufffdb\\u2028\"");
    }

    #[test]
    fn splitter_lines_and_partials() {
        let mut s = LineSplitter::default();
        let mut got: Vec<Vec<u8>> = Vec::new();
        s.feed(b"a\nbc", |l| {
            got.push(l.to_vec());
            Ok(())
        })
        .unwrap();
        s.feed(b"d\n\nxyz", |l| {
            got.push(l.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            got,
            vec![b"a\n".to_vec(), b"bcd\n".to_vec(), b"\n".to_vec()]
        );
        s.flush(|l| {
            got.push(l.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(got.last().unwrap(), b"xyz");
        let big = vec![b'x'; MAX_LINE * 2 + 5];
        let mut got2: Vec<usize> = Vec::new();
        s.feed(&big, |l| {
            got2.push(l.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(got2, vec![MAX_LINE, MAX_LINE]);
    }

    #[test]
    fn rotation_keeps_max_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.log");
        let mut w = LogWriter::open(&p, Some(100), 3).unwrap();
        for i in 0..20u32 {
            w.write_entry(StdStream::Stdout, format!("line {i}\n").as_bytes(), &t(i))
                .unwrap();
        }
        assert!(rotated_name(&p, 1).exists());
        assert!(rotated_name(&p, 2).exists());
        assert!(!rotated_name(&p, 3).exists());
        let all = read(&p, &ReadOptions::default()).unwrap();
        // Entries are in order and end with the last one.
        let nums: Vec<u32> = all
            .iter()
            .map(|e| {
                String::from_utf8_lossy(&e.line)
                    .trim()
                    .trim_start_matches("line ")
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(*nums.last().unwrap(), 19);
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1));
        assert!(nums.len() < 20);
        // max_file 1 truncates in place
        let p1 = dir.path().join("one.log");
        let mut w = LogWriter::open(&p1, Some(100), 1).unwrap();
        for i in 0..20u32 {
            w.write_entry(StdStream::Stdout, b"0123456789\n", &t(i))
                .unwrap();
        }
        assert!(!rotated_name(&p1, 1).exists());
        assert!(std::fs::metadata(&p1).unwrap().len() < 200);
    }

    #[test]
    fn read_options_filter() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.log");
        let mut w = LogWriter::open(&p, None, 1).unwrap();
        for i in 0..10u32 {
            let s = if i % 2 == 0 {
                StdStream::Stdout
            } else {
                StdStream::Stderr
            };
            w.write_entry(s, format!("{i}\n").as_bytes(), &t(i))
                .unwrap();
        }
        let only_out = read(
            &p,
            &ReadOptions {
                stderr: false,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(only_out.len(), 5);
        let tail = read(
            &p,
            &ReadOptions {
                tail: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            tail.iter().map(|e| e.line.clone()).collect::<Vec<_>>(),
            vec![b"7\n".to_vec(), b"8\n".to_vec(), b"9\n".to_vec()]
        );
        let window = read(
            &p,
            &ReadOptions {
                since: Some(t(3)),
                until: Some(t(5)),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(window.len(), 3);
        let none = read(
            &p,
            &ReadOptions {
                tail: Some(0),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(none.is_empty());
    }

    #[tokio::test]
    async fn follow_across_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.log");
        let mut w = LogWriter::open(&p, Some(120), 4).unwrap();
        w.write_entry(StdStream::Stdout, b"first\n", &t(0)).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(100);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(follow(p.clone(), ReadOptions::default(), tx, async move {
            let _ = stop_rx.await;
        }));
        let e = rx.recv().await.unwrap();
        assert_eq!(e.line, b"first\n");
        for i in 1..8u32 {
            w.write_entry(StdStream::Stdout, format!("n{i}\n").as_bytes(), &t(i))
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        w.write_entry(StdStream::Stdout, b"last\n", &t(9)).unwrap();
        stop_tx.send(()).unwrap();
        task.await.unwrap().unwrap();
        let mut got = Vec::new();
        while let Some(e) = rx.recv().await {
            got.push(String::from_utf8(e.line).unwrap());
        }
        assert_eq!(got.last().unwrap(), "last\n");
        assert_eq!(got.len(), 8, "{got:?}");
    }

    proptest! {
        #[test]
        fn json_line_roundtrip(data in proptest::collection::vec(any::<u8>(), 0..200), secs in 0i64..4_000_000_000, nanos in 0u32..1_000_000_000) {
            let mut out = b"{\"log\":".to_vec();
            write_json_string(&mut out, &data);
            out.extend_from_slice(b",\"stream\":\"stderr\",\"time\":\"");
            let time = DateTime::from_timestamp(secs, nanos).unwrap();
            out.extend_from_slice(crate::time::format_rfc3339_nano(&time).as_bytes());
            out.extend_from_slice(b"\"}\n");
            let e = parse_line(&out).unwrap();
            prop_assert_eq!(e.stream, StdStream::Stderr);
            prop_assert_eq!(e.time, time);
            prop_assert_eq!(e.line, String::from_utf8_lossy(&data).into_owned().into_bytes());
        }

        #[test]
        fn parse_line_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_line(&data);
        }

        #[test]
        fn parse_line_arbitrary_json(log in ".*", stream in "[a-z]{0,8}", time in ".{0,40}") {
            let line = serde_json::json!({"log": log, "stream": stream, "time": time}).to_string();
            let _ = parse_line(line.as_bytes());
        }
    }
}
