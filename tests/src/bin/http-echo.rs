//! A small HTTP/1.1 server and client for the HTTP capture's tests and
//! benchmark (std only, one thread per connection).
//!
//! `http-echo serve [--port P]` prints `{"port":P}` and serves until killed:
//! - `/status/<code>/...`: that status (200, 404, 500, ...);
//! - `/sleep/<ms>/...`: 200 after sleeping that long;
//! - `/big/<bytes>/...`: 200 with a body of that size;
//! - anything else: 200. Request bodies (Content-Length) are read and
//!   counted; `Connection: close` closes after the response.
//!
//! `http-echo get --addr A [--keepalive] [--pipeline] [--body N]
//! [--header-bytes N] [--traceparent TP] [--method M] [--threads T] PATH...`
//! sends one request per PATH (in order; pipelined: all written before any
//! response is read) and prints `{"statuses":[...]}`. With `--threads T`
//! the paths are shared out over T threads of this process, each sending
//! its share in turn (a new connection each, unless keep-alive): fd
//! numbers freed by one thread are taken by another all the time.
//!
//! `http-echo raw --addr A --bytes HEX` writes raw bytes and reads until EOF
//! (TLS-like or binary traffic on an HTTP port).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    time::Duration,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let flag = |name: &str| args.iter().any(|a| a == name);
    match args.first().map(String::as_str) {
        Some("serve") => serve(opt("--port").map_or(0, |p| p.parse().expect("port"))),
        Some("get") => {
            let mut paths = Vec::new();
            let mut i = 1;
            while i < args.len() {
                if args[i].starts_with("--") {
                    i += if matches!(args[i].as_str(), "--keepalive" | "--pipeline") {
                        1
                    } else {
                        2
                    };
                    continue;
                }
                paths.push(args[i].clone());
                i += 1;
            }
            let client = Client {
                addr: opt("--addr").expect("--addr"),
                keepalive: flag("--keepalive"),
                pipeline: flag("--pipeline"),
                body: opt("--body").map_or(0, |b| b.parse().expect("body")),
                header_bytes: opt("--header-bytes").map_or(0, |b| b.parse().expect("bytes")),
                traceparent: opt("--traceparent"),
                method: opt("--method").unwrap_or_else(|| "GET".into()),
            };
            let threads = opt("--threads").map_or(1, |t| t.parse().expect("threads"));
            let statuses = client.run_threads(&paths, threads);
            println!("{}", serde_json::json!({ "statuses": statuses }));
        }
        Some("raw") => {
            let hex = opt("--bytes").expect("--bytes");
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
                .collect();
            let mut s = TcpStream::connect(opt("--addr").expect("--addr")).expect("connect");
            s.write_all(&bytes).expect("write");
            s.shutdown(std::net::Shutdown::Write).ok();
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
            println!("{}", serde_json::json!({ "read": sink.len() }));
        }
        _ => {
            eprintln!(
                "usage: http-echo serve [--port P] | get --addr A [opts] PATH... | raw --addr A --bytes HEX"
            );
            std::process::exit(2);
        }
    }
}

fn serve(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    println!("{}", serde_json::json!({ "port": port }));
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || {
            let _ = handle(conn);
        });
    }
}

/// Serves the requests of one connection.
fn handle(conn: TcpStream) -> std::io::Result<()> {
    // one fd for both directions (the capture follows a connection by fd)
    let mut r = BufReader::with_capacity(64 * 1024, conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if !line.trim_end().ends_with(" HTTP/1.1") && !line.trim_end().ends_with(" HTTP/1.0") {
            return Ok(()); // not HTTP (TLS, binary): close without an answer
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let (mut length, mut close) = (0usize, false);
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if lower == "connection: close" {
                close = true;
            }
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body)?;
        let parts: Vec<&str> = target.split('/').collect();
        let arg = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok());
        let (mut status, mut size) = (200, 2);
        match parts.get(1).copied() {
            Some("status") => status = arg(2).unwrap_or(200),
            Some("sleep") => std::thread::sleep(Duration::from_millis(arg(2).unwrap_or(0))),
            Some("big") => size = arg(2).unwrap_or(0) as usize,
            _ => {}
        }
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {size}\r\n{}\r\n",
            if close { "Connection: close\r\n" } else { "" }
        );
        let mut resp = head.into_bytes();
        resp.extend(std::iter::repeat_n(b'x', size));
        r.get_mut().write_all(&resp)?;
        if close {
            return Ok(());
        }
    }
}

struct Client {
    addr: String,
    keepalive: bool,
    pipeline: bool,
    body: usize,
    header_bytes: usize,
    traceparent: Option<String>,
    method: String,
}

impl Client {
    fn request(&self, path: &str, last: bool) -> Vec<u8> {
        let mut req = format!("{} {path} HTTP/1.1\r\nHost: test\r\n", self.method);
        if let Some(tp) = &self.traceparent {
            req.push_str(&format!("traceparent: {tp}\r\n"));
        }
        if self.header_bytes > 0 {
            req.push_str(&format!("X-Pad: {}\r\n", "p".repeat(self.header_bytes)));
        }
        if !self.keepalive || last {
            req.push_str("Connection: close\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n", self.body));
        let mut req = req.into_bytes();
        req.extend(std::iter::repeat_n(b'b', self.body));
        req
    }

    /// [`Client::run`] over `threads` threads, each taking every
    /// `threads`-th path; the statuses in the order of `paths`.
    fn run_threads(&self, paths: &[String], threads: usize) -> Vec<u16> {
        let threads = threads.max(1);
        let shares: Vec<Vec<u16>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let share: Vec<String> =
                        paths.iter().skip(t).step_by(threads).cloned().collect();
                    s.spawn(move || self.run(&share))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("client thread"))
                .collect()
        });
        (0..paths.len())
            .map(|i| shares[i % threads][i / threads])
            .collect()
    }

    fn run(&self, paths: &[String]) -> Vec<u16> {
        let mut statuses = Vec::new();
        if !self.keepalive {
            for p in paths {
                let mut s = TcpStream::connect(&self.addr).expect("connect");
                s.write_all(&self.request(p, true)).expect("write");
                let mut r = BufReader::new(s);
                statuses.push(read_response(&mut r));
            }
            return statuses;
        }
        let s = TcpStream::connect(&self.addr).expect("connect");
        let mut r = BufReader::new(s);
        let n = paths.len();
        if self.pipeline {
            let all: Vec<u8> = paths
                .iter()
                .enumerate()
                .flat_map(|(i, p)| self.request(p, i + 1 == n))
                .collect();
            r.get_mut().write_all(&all).expect("write");
            for _ in paths {
                statuses.push(read_response(&mut r));
            }
        } else {
            for (i, p) in paths.iter().enumerate() {
                r.get_mut()
                    .write_all(&self.request(p, i + 1 == n))
                    .expect("write");
                statuses.push(read_response(&mut r));
            }
        }
        statuses
    }
}

/// Reads one response (status line, headers, Content-Length body).
fn read_response(r: &mut BufReader<TcpStream>) -> u16 {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).expect("header") == 0 {
            break;
        }
        let h = h.trim_end().to_ascii_lowercase();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).expect("body");
    status
}
