//! The tests crate's HTTP server and client (`http-echo`), run in cgroups
//! the tests create or in the test's own, for the HTTP tests.

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use serde_json::Value;

use super::hotpath_support::TestCgroup;

/// A route segment unique to this run (letters: never templated).
pub fn token() -> String {
    std::process::id()
        .to_string()
        .bytes()
        .map(|d| (b'a' + (d - b'0')) as char)
        .collect()
}

/// A running `http-echo serve`, killed on drop.
pub struct Server {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `http-echo serve` in `cgroup`.
pub fn serve(cgroup: &TestCgroup) -> Server {
    started(cgroup.command(env!("CARGO_BIN_EXE_http-echo"), &["serve"]))
}

/// `http-echo serve` in the test's own cgroup.
pub fn serve_here() -> Server {
    let mut server = Command::new(env!("CARGO_BIN_EXE_http-echo"));
    server.arg("serve");
    started(server)
}

/// Starts the server and reads the port it listens on.
fn started(mut server: Command) -> Server {
    let mut child = server
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn http-echo serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("port line");
    let v: Value = serde_json::from_str(&line).expect("port JSON");
    Server {
        child,
        port: v["port"].as_u64().expect("port") as u16,
    }
}

/// Runs the client in `cgroup`; returns the statuses it got.
pub fn get(cgroup: &TestCgroup, port: u16, opts: &[&str], paths: &[String]) -> Vec<u64> {
    let args = get_args(port, opts, paths);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    statuses(&mut cgroup.command(env!("CARGO_BIN_EXE_http-echo"), &args))
}

/// [`get`] from the test's own cgroup.
pub fn get_here(port: u16, opts: &[&str], paths: &[String]) -> Vec<u64> {
    statuses(Command::new(env!("CARGO_BIN_EXE_http-echo")).args(get_args(port, opts, paths)))
}

/// `http-echo get`'s arguments.
fn get_args(port: u16, opts: &[&str], paths: &[String]) -> Vec<String> {
    let mut args = vec![
        "get".to_owned(),
        "--addr".to_owned(),
        format!("127.0.0.1:{port}"),
    ];
    args.extend(opts.iter().map(|o| (*o).to_owned()));
    args.extend(paths.iter().cloned());
    args
}

/// Runs the client; the statuses it printed.
fn statuses(client: &mut Command) -> Vec<u64> {
    let out = client.output().expect("run http-echo get");
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("statuses JSON");
    v["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect()
}

/// Sends the bytes `hex` to `port` from `cgroup`.
pub fn raw(cgroup: &TestCgroup, port: u16, hex: &str) {
    let addr = format!("127.0.0.1:{port}");
    let out = cgroup
        .command(
            env!("CARGO_BIN_EXE_http-echo"),
            &["raw", "--addr", &addr, "--bytes", hex],
        )
        .output()
        .expect("run http-echo raw");
    assert!(out.status.success(), "{out:?}");
}
