//! Network tools: tcplife, tcpstates and gethostlatency.

use std::net::{IpAddr, Ipv4Addr};

use nom::Parser;

use crate::fields as f;
use crate::line::EventSyntax;
use crate::records::{Event, EventKind, Value};
use crate::text::{
    self, Res, clock, comm, decimal, expect, has_token, id, padded, token, trim, trim_end, ws, ws0,
};

/// A dotted-quad IPv4 address as std reads one (four octets of 1–3 digits,
/// no leading zero, at most 255), without the UTF-8 check and the generic
/// address parser: most of tcplife's addresses. `None` leaves the token to
/// std's parser, so what is accepted and what it means do not change.
fn ipv4_fast(t: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = t.split(|b| *b == b'.');
    for o in &mut octets {
        let p = parts.next()?;
        let leading_zero = p.len() > 1 && p[0] == b'0';
        if p.is_empty() || p.len() > 3 || leading_zero || !p.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let v = p.iter().fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
        *o = u8::try_from(v).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// An IP address column.
fn ip(i: &[u8]) -> Res<'_, IpAddr> {
    let (r, t) = token(i)?;
    if let Some(v4) = ipv4_fast(t) {
        return Ok((r, IpAddr::V4(v4)));
    }
    let parsed = std::str::from_utf8(t).ok().and_then(|s| s.parse().ok());
    match parsed {
        Some(a) => Ok((r, a)),
        None => text::fail("expected an IP address"),
    }
}

/// A port column.
fn port(i: &[u8]) -> Res<'_, u16> {
    let (r, v) = expect("expected a port", text::uint).parse(i)?;
    match u16::try_from(v) {
        Ok(p) => Ok((r, p)),
        Err(_) => text::fail("port out of range"),
    }
}

/// `ADDR PORT ADDR PORT` into the four `net.*` fields.
fn endpoints<'a>(i: &'a [u8], ev: &mut Event) -> Res<'a, ()> {
    let (i, saddr) = ip(ws0(i))?;
    let (i, sport) = port(ws0(i))?;
    let (i, daddr) = ip(ws0(i))?;
    let (i, dport) = port(ws0(i))?;
    ev.push(f::NET_SADDR, Value::Ip(saddr));
    ev.push(f::NET_SPORT, Value::Int(i64::from(sport)));
    ev.push(f::NET_DADDR, Value::Ip(daddr));
    ev.push(f::NET_DPORT, Value::Int(i64::from(dport)));
    Ok((i, ()))
}

/// KiB with two decimals to bytes.
fn kib(i: &[u8]) -> Res<'_, i64> {
    let (r, v) = expect("expected KiB", decimal).parse(i)?;
    Ok((r, text::to_ns(v, 1024.0) as i64))
}

/// tcplife.
///
/// Canonical flags: **`-T -w`** (time of day, wide address columns). Also
/// accepted: no flags, `-4`, `-6`, `-L`, `-D`, `-p`.
///
/// Output: `[%8s ]%-7d %-16s ADDR PORT ADDR PORT %-6.2f %-6.2f %-.2f`
/// (TX_KB, RX_KB, MS).
///
/// Event `tcp_session`: `proc.pid`, `proc.comm`, `net.saddr`, `net.sport`,
/// `net.daddr`, `net.dport`, `net.tx_bytes`, `net.rx_bytes`, `duration`.
pub(crate) struct Tcplife;

impl EventSyntax for Tcplife {
    type Layout = bool;

    fn kind(&self) -> EventKind {
        EventKind::TcpSession
    }

    fn default_layout(&self) -> bool {
        true
    }

    fn header(&self, line: &[u8]) -> Option<bool> {
        (has_token(line, b"LADDR") && has_token(line, b"TX_KB"))
            .then(|| has_token(line, b"TIME(s)") || has_token(line, b"TIME"))
    }

    fn parse<'a>(&self, i: &'a [u8], time: bool, ev: &mut Event) -> Res<'a, ()> {
        let mut i = i;
        if time {
            let (r, t) = padded(8, true, clock)(ws0(i))?;
            ev.tool_time = Some(t);
            i = r;
        }
        let (i, pid) = padded(7, true, id("expected a pid"))(i)?;
        let (i, c) = comm(16)(i)?;
        ev.pid = Some(pid);
        ev.comm = Some(c);
        ev.fields.reserve_exact(7);
        let (i, _) = endpoints(i, ev)?;
        let (i, tx) = kib(ws0(i))?;
        let (i, rx) = kib(ws0(i))?;
        let (i, ms) = expect("expected MS", text::duration(1e6)).parse(ws0(i))?;
        ev.push(f::NET_TX_BYTES, Value::Int(tx));
        ev.push(f::NET_RX_BYTES, Value::Int(rx));
        ev.push(f::DURATION, Value::Duration(ms));
        end(i)
    }
}

/// Nothing but blanks may remain.
fn end(i: &[u8]) -> Res<'_, ()> {
    if trim(i).is_empty() {
        Ok((&i[i.len()..], ()))
    } else {
        text::fail("unexpected text at the end of the line")
    }
}

/// tcpstates.
///
/// Canonical flags: **`-T -w`** (time of day, wide: full comm and an IP
/// version column). Also accepted: no flags (comm cut to 10 bytes), `-4`,
/// `-6`, `-L`, `-D`.
///
/// Output (wide): `[%8s ]%-16llx %-7d %-16s %-2d ADDR PORT ADDR PORT %-11s -> %-11s %.3f`;
/// narrow: `... %-10.10s ADDR ...` without the IP column.
///
/// Event `tcp_state`: `net.skaddr`, `proc.pid`, `proc.comm`,
/// `net.ip_version` (wide), `net.saddr`, `net.sport`, `net.daddr`,
/// `net.dport`, `net.old_state`, `net.new_state`, `duration` (time spent
/// in the old state).
pub(crate) struct Tcpstates;

/// tcpstates' optional columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StatesLayout {
    time: bool,
    wide: bool,
}

impl EventSyntax for Tcpstates {
    type Layout = StatesLayout;

    fn kind(&self) -> EventKind {
        EventKind::TcpState
    }

    fn default_layout(&self) -> StatesLayout {
        StatesLayout {
            time: true,
            wide: true,
        }
    }

    fn header(&self, line: &[u8]) -> Option<StatesLayout> {
        (has_token(line, b"SKADDR") && has_token(line, b"OLDSTATE")).then(|| StatesLayout {
            time: has_token(line, b"TIME(s)") || has_token(line, b"TIME"),
            wide: has_token(line, b"IP"),
        })
    }

    fn parse<'a>(&self, i: &'a [u8], l: StatesLayout, ev: &mut Event) -> Res<'a, ()> {
        let mut i = i;
        if l.time {
            let (r, t) = padded(8, true, clock)(ws0(i))?;
            ev.tool_time = Some(t);
            i = r;
        }
        let (i, skaddr) = token(i)?;
        let (i, pid) = padded(7, true, id("expected a pid"))(ws0(i))?;
        let (mut i, c) = comm(if l.wide { 16 } else { 10 })(i)?;
        ev.pid = Some(pid);
        ev.comm = Some(c);
        ev.fields.reserve_exact(9);
        ev.push(f::NET_SKADDR, Value::str_lossy(skaddr));
        if l.wide {
            let (r, v) = expect("expected an IP version", text::int).parse(ws0(i))?;
            ev.push(f::NET_IP_VERSION, Value::Int(v));
            i = r;
        }
        let (i, _) = endpoints(i, ev)?;
        let (i, old) = token(ws0(i))?;
        let (i, _) = ws(i)?;
        let (i, _) = expect("expected ->", nom::bytes::complete::tag(&b"->"[..])).parse(i)?;
        let (i, new) = token(ws0(i))?;
        let (i, ms) = expect("expected MS", text::duration(1e6)).parse(ws0(i))?;
        ev.push(f::NET_OLD_STATE, Value::str_lossy(old));
        ev.push(f::NET_NEW_STATE, Value::str_lossy(new));
        ev.push(f::DURATION, Value::Duration(ms));
        end(i)
    }
}

/// gethostlatency.
///
/// Canonical flags: **none** (`-p PID` and `-l LIBC` also fine).
///
/// Output: `%-8s %-7d %-16s %-10.3f HOST` (time, pid, comm, latency in ms).
///
/// Event `dns_lookup`: `proc.pid`, `proc.comm`, `latency`, `dns.host`.
pub(crate) struct Gethostlatency;

impl EventSyntax for Gethostlatency {
    type Layout = ();

    fn kind(&self) -> EventKind {
        EventKind::DnsLookup
    }

    fn default_layout(&self) {}

    fn header(&self, line: &[u8]) -> Option<()> {
        (has_token(line, b"LATms") && has_token(line, b"HOST")).then_some(())
    }

    fn parse<'a>(&self, i: &'a [u8], _: (), ev: &mut Event) -> Res<'a, ()> {
        let (i, t) = padded(8, true, clock)(i)?;
        let (i, pid) = padded(7, true, id("expected a pid"))(i)?;
        let (i, c) = comm(16)(i)?;
        let (i, lat) = expect("expected a latency", text::duration(1e6)).parse(ws0(i))?;
        let host = trim_end(ws0(i));
        if host.is_empty() {
            return text::fail("expected a host");
        }
        ev.tool_time = Some(t);
        ev.pid = Some(pid);
        ev.comm = Some(c);
        ev.push(f::LATENCY, Value::Duration(lat));
        ev.push(f::DNS_HOST, Value::str_lossy(host));
        Ok((&i[i.len()..], ()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ipv4_fast_path_reads_what_std_reads() {
        let mut tokens: Vec<String> = [
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "0.01.0.0",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            ".1.2.3",
            "1.2.3.",
            "1.2.3.4a",
            "1000.1.1.1",
            "::1",
            "::ffff:1.2.3.4",
            "fe80::1",
            "",
            "a.b.c.d",
            "+1.2.3.4",
            "1.2.3.-4",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        for a in [0, 1, 9, 10, 99, 100, 199, 249, 250, 255, 256, 999] {
            tokens.push(format!("{a}.{a}.7.{a}"));
            tokens.push(format!("10.0.{a}.0{a}"));
        }
        for t in tokens {
            let std: Option<IpAddr> = t.parse().ok();
            let ours = ip(t.as_bytes()).ok().map(|(_, a)| a);
            assert_eq!(ours, std, "{t:?}");
            if let Some(fast) = ipv4_fast(t.as_bytes()) {
                assert_eq!(Some(IpAddr::V4(fast)), std, "{t:?}");
            }
        }
    }
}
