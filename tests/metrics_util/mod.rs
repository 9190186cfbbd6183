//! Helpers of the tests that run `shmkit serve` and Prometheus's tools: a child reaped on Drop,
//! a minimal HTTP GET, `serve` on a free loopback port, `promtool check metrics`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The `shmkit` binary under test.
pub const SHMKIT: &str = env!("CARGO_BIN_EXE_shmkit");

/// Runs `promtool check metrics` on `text` when promtool is installed: `Some(verdict output)`.
pub fn promtool(text: &str) -> Option<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool rejected:\n{said}\n{text}");
    Some(said)
}

/// A child process, killed and reaped on Drop.
pub struct Reap(pub Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET `path` from `addr` with these extra header lines: (status line, content type, body).
pub fn get(addr: &str, path: &str, headers: &str) -> (String, String, String) {
    try_get(addr, path, headers).unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"))
}

/// [`get`], or the error (connection refused while a server starts, say).
pub fn try_get(addr: &str, path: &str, headers: &str) -> std::io::Result<(String, String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    let ct = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type: "))
        .unwrap_or("")
        .to_string();
    Ok((status, ct, body.to_string()))
}

/// `shmkit serve` on a free loopback port, killed and reaped on Drop.
pub struct Serve {
    _child: Reap,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Serve {
    /// Starts `shmkit serve --listen 127.0.0.1:0 ARGS…` and waits for its address.
    pub fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(SHMKIT)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .strip_prefix("serving http://")
            .and_then(|l| l.split('/').next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Serve {
            _child: Reap(child),
            addr,
        }
    }

    /// GET `path` with these extra header lines (see [`get`]).
    pub fn get(&self, path: &str, headers: &str) -> (String, String, String) {
        get(&self.addr, path, headers)
    }
}
