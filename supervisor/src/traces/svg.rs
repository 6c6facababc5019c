//! The service map as a picture: a self-contained SVG, nodes in layers
//! from the callers on the left to the called on the right, each edge
//! labelled with its request rate, error percentage and p99 duration.
//! Names are untrusted (container names, addresses): they are escaped.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use super::graph::{EdgeView, MapView};

const BOX_W: f64 = 190.0;
const BOX_H: f64 = 44.0;
const COL_W: f64 = 330.0;
const ROW_H: f64 = 110.0;
const MARGIN: f64 = 40.0;
const TOP: f64 = 70.0;

/// XML text with `& < > " '` escaped.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The edges drawn: TCP-only edges between nodes that also have an HTTP
/// edge are left out (the HTTP edge says more).
fn drawn(map: &MapView) -> Vec<&EdgeView> {
    let http: BTreeSet<(&str, &str)> = map
        .edges
        .iter()
        .filter(|e| e.connection_type != "tcp")
        .map(|e| (e.client.as_str(), e.server.as_str()))
        .collect();
    map.edges
        .iter()
        .filter(|e| {
            e.connection_type != "tcp" || !http.contains(&(e.client.as_str(), e.server.as_str()))
        })
        .collect()
}

/// Each node's layer: 0 for nodes nobody calls, else one more than its
/// deepest caller (cycles cut after as many rounds as there are nodes).
fn layers<'a>(edges: &[&'a EdgeView]) -> BTreeMap<&'a str, usize> {
    let mut layer: BTreeMap<&str, usize> = BTreeMap::new();
    for e in edges {
        layer.entry(&e.client).or_insert(0);
        layer.entry(&e.server).or_insert(0);
    }
    let rounds = layer.len();
    for _ in 0..rounds {
        let mut changed = false;
        for e in edges {
            if e.client == e.server {
                continue;
            }
            let want = layer[e.client.as_str()] + 1;
            if want > layer[e.server.as_str()] && want < rounds.max(1) {
                layer.insert(&e.server, want);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}

fn human_duration(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.0}µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{s:.2}s")
    }
}

/// The label of an edge: `rate/s · errors % · p99`.
pub(crate) fn edge_label(e: &EdgeView) -> String {
    let unit = if e.connection_type == "tcp" {
        "conn"
    } else {
        "req"
    };
    let mut s = format!("{:.1} {unit}/s", e.rate);
    if e.connection_type != "tcp" {
        let pct = if e.requests == 0 {
            0.0
        } else {
            100.0 * e.failed as f64 / e.requests as f64
        };
        let _ = write!(s, " · {pct:.1}% err");
    }
    if let Some(p99) = e.p99_seconds {
        let _ = write!(s, " · p99 {}", human_duration(p99));
    }
    s
}

/// Shortened to `n` characters (with an ellipsis).
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

/// Renders `map` as an SVG document; `title` heads it.
pub(crate) fn render(map: &MapView, title: &str) -> String {
    let edges = drawn(map);
    let layer = layers(&edges);
    let mut rows: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for (node, l) in &layer {
        rows.entry(*l).or_default().push(node);
    }
    let mut pos: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (l, nodes) in &rows {
        for (i, n) in nodes.iter().enumerate() {
            pos.insert(n, (MARGIN + *l as f64 * COL_W, TOP + i as f64 * ROW_H));
        }
    }
    let cols = rows.keys().max().map_or(1, |m| m + 1);
    let max_rows = rows.values().map(Vec::len).max().unwrap_or(1);
    let width = (MARGIN * 2.0 + (cols - 1) as f64 * COL_W + BOX_W).max(480.0);
    let height = TOP + max_rows as f64 * ROW_H + MARGIN;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{MARGIN}" y="32" font-size="18" font-weight="bold">{}</text>
"##,
        escape(title)
    );
    if edges.is_empty() {
        let _ = writeln!(
            svg,
            r##"<text x="{MARGIN}" y="{}" fill="#777">no requests or connections seen yet</text>"##,
            TOP + 20.0
        );
    }
    for e in &edges {
        draw_edge(&mut svg, e, pos[e.client.as_str()], pos[e.server.as_str()]);
    }
    let failing: BTreeSet<&str> = edges
        .iter()
        .filter(|e| e.failed > 0)
        .map(|e| e.server.as_str())
        .collect();
    for (node, (x, y)) in &pos {
        draw_node(
            &mut svg,
            node,
            *x,
            *y,
            failing.contains(node),
            is_address(node),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Whether a node is an address (a peer not on this host) rather than a
/// workload.
fn is_address(node: &str) -> bool {
    node.parse::<std::net::SocketAddr>().is_ok() || node.parse::<std::net::IpAddr>().is_ok()
}

fn draw_node(svg: &mut String, node: &str, x: f64, y: f64, failing: bool, address: bool) {
    let (fill, stroke, dash) = match (address, failing) {
        (true, _) => ("#f4f4f4", "#999", r#" stroke-dasharray="5,3""#),
        (false, true) => ("#fdecea", "#c62828", ""),
        (false, false) => ("#e8f0fe", "#1a73e8", ""),
    };
    let _ = writeln!(
        svg,
        r##"<g class="node"><title>{name}</title><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="2"{dash}/><text x="{tx}" y="{ty}" text-anchor="middle">{short}</text></g>"##,
        name = escape(node),
        short = escape(&cut(node, 24)),
        tx = x + BOX_W / 2.0,
        ty = y + BOX_H / 2.0 + 5.0,
    );
}

fn draw_edge(svg: &mut String, e: &EdgeView, from: (f64, f64), to: (f64, f64)) {
    let color = if e.failed > 0 { "#c62828" } else { "#555" };
    let width = 1.5 + (e.rate.max(0.0) + 1.0).log10().min(3.0);
    let dash = if e.connection_type == "tcp" {
        r#" stroke-dasharray="6,4""#
    } else {
        ""
    };
    let (x1, y1) = (from.0 + BOX_W, from.1 + BOX_H / 2.0);
    let (x2, y2) = (to.0, to.1 + BOX_H / 2.0);
    let path = if x2 > x1 {
        let mx = (x1 + x2) / 2.0;
        format!("M {x1} {y1} C {mx} {y1}, {mx} {y2}, {x2} {y2}")
    } else {
        // a call back to an earlier layer (or to itself): loop below
        let low = y1.max(y2) + BOX_H;
        format!(
            "M {x1} {y1} C {} {low}, {} {low}, {x2} {y2}",
            x1 + 60.0,
            x2 - 60.0
        )
    };
    let (lx, ly) = if x2 > x1 {
        ((x1 + x2) / 2.0, (y1 + y2) / 2.0 - 8.0)
    } else {
        ((x1 + x2) / 2.0, y1.max(y2) + BOX_H - 4.0)
    };
    let _ = writeln!(
        svg,
        r##"<g class="edge"><title>{client} → {server}: {requests} requests, {failed} failed</title><path d="{path}" fill="none" stroke="{color}" stroke-width="{width:.1}"{dash} marker-end="url(#arrow)"/><text x="{lx}" y="{ly}" text-anchor="middle" fill="{color}" font-size="11">{label}</text></g>"##,
        client = escape(&e.client),
        server = escape(&e.server),
        requests = e.requests,
        failed = e.failed,
        label = escape(&edge_label(e)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(client: &str, server: &str, kind: &str, requests: u64, failed: u64) -> EdgeView {
        EdgeView {
            client: client.into(),
            server: server.into(),
            connection_type: kind.into(),
            requests,
            failed,
            rate: requests as f64 / 10.0,
            p99_seconds: Some(0.032768),
        }
    }

    #[test]
    fn every_node_and_edge_label_is_drawn() {
        let map = MapView {
            edges: vec![
                edge("frontend", "api", "", 100, 0),
                edge("api", "data", "", 100, 5),
                edge("api", "10.0.0.9:6379", "tcp", 3, 0),
                edge("frontend", "api", "tcp", 10, 0),
                edge("192.168.1.9", "frontend", "virtual_node", 100, 0),
            ],
        };
        let svg = render(&map, "service map <test>");
        assert!(svg.starts_with("<?xml"));
        assert!(svg.trim_end().ends_with("</svg>"));
        for name in ["frontend", "api", "data", "10.0.0.9:6379", "192.168.1.9"] {
            assert!(svg.contains(&format!("<title>{name}</title>")), "{name}");
        }
        assert!(svg.contains("service map &lt;test&gt;"));
        assert!(svg.contains("10.0 req/s · 5.0% err · p99 32.8ms"), "{svg}");
        assert!(svg.contains("0.3 conn/s · p99"));
        // the TCP edge beside an HTTP edge is not drawn
        assert_eq!(svg.matches("frontend → api").count(), 1);
        // layers: frontend left of api left of data
        let x = |n: &str| {
            let at = svg.find(&format!("<title>{n}</title><rect x=\"")).unwrap();
            let rest = &svg[at + n.len() + 24..];
            rest[..rest.find('"').unwrap()].parse::<f64>().unwrap()
        };
        assert!(x("192.168.1.9") < x("frontend"));
        assert!(x("frontend") < x("api") && x("api") < x("data"));
    }

    #[test]
    fn hostile_names_are_escaped_and_cycles_end() {
        let map = MapView {
            edges: vec![
                edge("<script>", "b&c", "", 1, 1),
                edge("b&c", "<script>", "", 1, 0),
                edge("self", "self", "", 1, 0),
            ],
        };
        let svg = render(&map, "t");
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;") && svg.contains("b&amp;c"));
        assert!(render(&MapView::default(), "t").contains("no requests"));
    }
}
