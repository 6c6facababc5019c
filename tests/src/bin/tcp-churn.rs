//! TCP workload on loopback: a server thread and a client loop. Each
//! connection sends `--bytes` bytes, reads them echoed back, and closes.
//! Prints one JSON line: connections made, seconds, connections per second,
//! the server port and the refused attempts.
//!
//! Usage: `tcp-churn [--conns N | --secs S] [--bytes M] [--port P] [--refused R] [--hold-ms H]`
//! (`--refused R` first makes R connects to a closed port; `--hold-ms H`
//! keeps each connection open H ms after the echo).

use std::{
    net::{Ipv4Addr, TcpListener, TcpStream},
    thread,
    time::{Duration, Instant},
};

use eunomia_tests::churn::{connect_once, spawn_echo_server};

fn main() {
    let mut conns: Option<u64> = None;
    let mut secs: Option<f64> = None;
    let mut bytes = 100usize;
    let mut port = 0u16;
    let mut refused = 0u64;
    let mut hold = Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--conns" => conns = v.parse().ok(),
            "--secs" => secs = v.parse().ok(),
            "--bytes" => bytes = v.parse().expect("--bytes N"),
            "--port" => port = v.parse().expect("--port P"),
            "--refused" => refused = v.parse().expect("--refused R"),
            "--hold-ms" => hold = Duration::from_millis(v.parse().expect("--hold-ms H")),
            _ => panic!("unknown argument {a}"),
        }
    }
    if conns.is_none() && secs.is_none() {
        conns = Some(1000);
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    spawn_echo_server(listener, bytes);
    let mut refused_seen = 0;
    for _ in 0..refused {
        // a port nobody listens on: bind one, take its number, close it
        let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("pick a closed port");
        if TcpStream::connect(closed).is_err() {
            refused_seen += 1;
        }
    }
    let payload = vec![b'x'; bytes];
    let mut back = vec![0u8; bytes];
    let start = Instant::now();
    let mut made = 0u64;
    loop {
        if conns.is_some_and(|n| made >= n)
            || secs.is_some_and(|s| start.elapsed().as_secs_f64() >= s)
        {
            break;
        }
        connect_once(addr, &payload, &mut back, hold);
        made += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{{\"connections\":{made},\"secs\":{elapsed:.3},\"per_sec\":{:.1},\"port\":{},\"refused\":{refused_seen},\"pid\":{}}}",
        made as f64 / elapsed,
        addr.port(),
        std::process::id()
    );
    // let the server finish its last close before the process exits
    thread::sleep(Duration::from_millis(50));
}
