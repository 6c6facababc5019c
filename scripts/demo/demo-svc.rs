//! A tiny HTTP/1.1 microservice for the service-map demo and its test
//! (std only: `rustc -O -C target-feature=+crt-static demo-svc.rs` makes
//! a static binary that runs in a `FROM scratch` image).
//!
//! `demo-svc serve --port P [--call NAME=IP:PORT]... [--fail-every K] [--pool N]`
//! serves `GET /<anything>/<n>` (one thread per connection): it calls
//! every `--call` in order with `GET /NAME/<n>` (a new connection each),
//! then answers 500 when `n` is a multiple of K (K > 0) or a call got a
//! 5xx, else 200. With `--pool N` the calls are made by a pool of N worker
//! threads (the serving thread hands them over and waits), as services
//! with a client thread pool do.
//!
//! `demo-svc load --addr IP:PORT --requests N` sends `GET /order/<i>` for
//! i in 1..=N, one connection each, and prints `{"ok":A,"failed":B}`.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex, mpsc},
    thread,
};

type Job = (String, String, mpsc::Sender<u16>);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("serve") => {
            let calls: Vec<(String, String)> = args
                .windows(2)
                .filter(|w| w[0] == "--call")
                .filter_map(|w| w[1].split_once('=').map(|(n, a)| (n.into(), a.into())))
                .collect();
            let port: u16 = opt("--port").map_or(8080, |p| p.parse().expect("--port"));
            let fail_every: u64 = opt("--fail-every").map_or(0, |k| k.parse().expect("--fail-every"));
            let pool = opt("--pool").map(|n| start_pool(n.parse().expect("--pool")));
            serve(port, Arc::new(Service { calls, fail_every, pool }));
        }
        Some("load") => {
            let addr = opt("--addr").expect("--addr");
            let n: u64 = opt("--requests").map_or(10, |n| n.parse().expect("--requests"));
            let (mut ok, mut failed) = (0, 0);
            for i in 1..=n {
                match get(&addr, &format!("/order/{i}")) {
                    200 => ok += 1,
                    _ => failed += 1,
                }
            }
            println!("{{\"ok\":{ok},\"failed\":{failed}}}");
        }
        _ => {
            eprintln!("usage: demo-svc serve --port P [--call NAME=ADDR]... [--fail-every K] [--pool N] | load --addr A --requests N");
            std::process::exit(2);
        }
    }
}

struct Service {
    calls: Vec<(String, String)>,
    fail_every: u64,
    pool: Option<mpsc::Sender<Job>>,
}

fn start_pool(n: usize) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..n.max(1) {
        let rx = rx.clone();
        thread::spawn(move || {
            loop {
                let job = rx.lock().expect("pool").recv();
                let Ok((addr, path, reply)) = job else { return };
                let _ = reply.send(get(&addr, &path));
            }
        });
    }
    tx
}

fn serve(port: u16, svc: Arc<Service>) {
    let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind");
    eprintln!("listening on {port}");
    for conn in listener.incoming().flatten() {
        let svc = svc.clone();
        thread::spawn(move || {
            let _ = handle(conn, &svc);
        });
    }
}

/// Serves the requests of one connection (keep-alive until `Connection: close`).
fn handle(conn: TcpStream, svc: &Service) -> std::io::Result<()> {
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let mut close = false;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end().to_ascii_lowercase();
            if h.is_empty() {
                break;
            }
            close |= h == "connection: close";
        }
        let n: u64 = target.rsplit('/').next().and_then(|s| s.parse().ok()).unwrap_or(1);
        let mut status = if svc.fail_every > 0 && n % svc.fail_every == 0 { 500 } else { 200 };
        for (name, addr) in &svc.calls {
            let path = format!("/{name}/{n}");
            let got = match &svc.pool {
                Some(pool) => {
                    let (tx, rx) = mpsc::channel();
                    pool.send((addr.clone(), path, tx)).expect("pool");
                    rx.recv().unwrap_or(502)
                }
                None => get(addr, &path),
            };
            if got >= 500 {
                status = 500;
            }
        }
        let body = if status == 200 { "ok" } else { "failed" };
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        r.get_mut().write_all(head.as_bytes())?;
        if close {
            return Ok(());
        }
    }
}

/// One GET on a new connection; the status (502 when the call failed).
fn get(addr: &str, path: &str) -> u16 {
    let call = || -> std::io::Result<u16> {
        let mut s = TcpStream::connect(addr)?;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n").as_bytes())?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line)?;
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(502);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest)?;
        Ok(status)
    };
    call().unwrap_or(502)
}
