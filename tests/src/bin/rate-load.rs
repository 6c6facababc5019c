//! Benchmark load generator that holds a request rate: HTTP/1.1 GETs of one
//! URL path on keep-alive connections to 127.0.0.1:PORT, RATE requests per
//! second in all for SECONDS, spread over CONNS connections (one thread
//! each, each sending on its own fixed schedule). Latency is measured from
//! the time a request was due, not from when it was sent, so a stall counts
//! against every request it delayed (no coordinated omission). Prints one
//! JSON object: requests, errors, achieved rate, p50/p90/p99/max latency
//! in ms. Used by `scripts/bench/workload.sh`.
//! Usage: `rate-load PORT PATH RATE SECONDS [CONNS]`.

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpStream,
    time::{Duration, Instant},
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, what: &str| -> String {
        args.get(i).cloned().unwrap_or_else(|| {
            eprintln!("usage: rate-load PORT PATH RATE SECONDS [CONNS] (missing {what})");
            std::process::exit(2)
        })
    };
    let port: u16 = arg(0, "PORT").parse().expect("PORT");
    let path = arg(1, "PATH");
    let rate: f64 = arg(2, "RATE").parse().expect("RATE");
    let seconds: f64 = arg(3, "SECONDS").parse().expect("SECONDS");
    let conns: usize = args.get(4).map_or(16, |c| c.parse().expect("CONNS"));
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs_f64(seconds);
    // connection c sends at start + (c + k * conns) / rate
    let period = Duration::from_secs_f64(conns as f64 / rate);
    let threads: Vec<_> = (0..conns)
        .map(|c| {
            let path = path.clone();
            let first = start + Duration::from_secs_f64(c as f64 / rate);
            std::thread::spawn(move || connection(port, &path, first, period, end))
        })
        .collect();
    let mut lat = Vec::new();
    let mut errors = 0u64;
    for t in threads {
        let (l, e) = t.join().expect("load thread");
        lat.extend(l);
        errors += e;
    }
    lat.sort_unstable();
    let q = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{{\"requests\": {}, \"errors\": {errors}, \"rate\": {:.1}, \"p50_ms\": {:.3}, \"p90_ms\": {:.3}, \"p99_ms\": {:.3}, \"max_ms\": {:.3}}}",
        lat.len(),
        lat.len() as f64 / seconds,
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
}

/// One connection's schedule; returns its latencies and errors.
fn connection(
    port: u16,
    path: &str,
    first: Instant,
    period: Duration,
    end: Instant,
) -> (Vec<Duration>, u64) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut conn: Option<BufReader<TcpStream>> = None;
    let mut due = first;
    while due < end {
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let c = match conn.take() {
            Some(c) => c,
            None => match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    BufReader::new(s)
                }
                Err(_) => {
                    errors += 1;
                    due += period;
                    continue;
                }
            },
        };
        match exchange(c, request.as_bytes()) {
            Ok(c) => {
                lat.push(due.elapsed());
                conn = Some(c);
            }
            Err(_) => errors += 1,
        }
        due += period;
    }
    (lat, errors)
}

/// Sends one request and reads its response (headers, then Content-Length
/// bytes of body).
fn exchange(mut c: BufReader<TcpStream>, request: &[u8]) -> std::io::Result<BufReader<TcpStream>> {
    c.get_mut().write_all(request)?;
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if c.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    c.read_exact(&mut body)?;
    Ok(c)
}
