//! Draws [`App`]: a title line, the table of workloads (or, drilled into
//! one, its syscalls and TCP peers) and a status line with the keys.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Modifier, Style},
    text::Line,
    widgets::{Block, Paragraph, Row as TableRow, Table, TableState},
};

use super::{
    App,
    columns::{ALL, bytes, rate},
};
use crate::live::Row;

/// Draws the whole screen.
pub(crate) fn draw(frame: &mut Frame, app: &App) {
    let [title, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(title_line(app)), title);
    match (&app.drill, app.drilled()) {
        (Some(_), Some(row)) => draw_drill(frame, body, row),
        (Some(key), None) => frame.render_widget(
            Paragraph::new(format!(
                "{key}: no activity in the last interval (Esc: back)"
            )),
            body,
        ),
        (None, _) => draw_table(frame, body, app),
    }
    frame.render_widget(Paragraph::new(status_line(app)), status);
}

fn title_line(app: &App) -> String {
    let (rows, interval) = app
        .snapshot
        .as_ref()
        .map_or((0, 0.0), |s| (s.rows.len(), s.interval_s));
    format!(
        "eunomia top - {rows} workloads - interval {interval:.1}s - from {} - snapshots {}{}",
        app.source,
        app.snapshots,
        if app.lagged > 0 {
            format!(" (missed {})", app.lagged)
        } else {
            String::new()
        }
    )
}

fn status_line(app: &App) -> String {
    if let Some(text) = &app.editing {
        return format!("filter: {text}_   (Enter: apply, Esc: cancel)");
    }
    if let Some(e) = &app.error {
        return format!("error: {e}   (q: quit)");
    }
    let order = if app.descending { "desc" } else { "asc" };
    let filter = if app.filter.is_empty() {
        String::new()
    } else {
        format!("filter: {}  ", app.filter)
    };
    format!(
        "sort: {} {order}  {filter}| q quit  / filter  </> sort  r reverse  Enter drill  Esc back",
        app.sort_column().header()
    )
}

fn draw_table(frame: &mut Frame, area: Rect, app: &App) {
    let sort = app.sort_column();
    let header = TableRow::new(ALL.iter().map(|c| {
        if *c == sort {
            format!("{}{}", c.header(), if app.descending { "v" } else { "^" })
        } else {
            c.header().to_owned()
        }
    }))
    .style(Style::new().add_modifier(Modifier::REVERSED));
    let rows = app
        .visible()
        .into_iter()
        .map(|r| TableRow::new(ALL.iter().map(|c| c.cell(r))));
    let widths = ALL.iter().map(|c| Constraint::Length(c.width()));
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::BOLD))
        .highlight_symbol(">");
    let mut state = TableState::default().with_selected(Some(app.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn draw_drill(frame: &mut Frame, area: Rect, row: &Row) {
    let [about, lists] = Layout::vertical([Constraint::Length(2), Constraint::Min(3)]).areas(area);
    let mut who = format!("{} {}", row.kind.as_str(), row.name);
    for (k, v) in [
        ("id", row.container_id.as_str()),
        ("runtime", row.runtime.as_str()),
        ("pod", row.pod.as_str()),
        ("namespace", row.namespace.as_str()),
    ] {
        if !v.is_empty() {
            who.push_str(&format!("  {k} {v}"));
        }
    }
    let totals = format!(
        "syscalls/s {}  errors/s {}  cpu% {}  mem {}  (Esc: back)",
        rate(row.syscalls_per_s),
        rate(row.errors_per_s),
        row.cpu_percent.map_or("-".into(), |c| format!("{c:.1}")),
        row.memory_bytes.map_or("-".into(), bytes),
    );
    frame.render_widget(
        Paragraph::new(vec![Line::from(who), Line::from(totals)]),
        about,
    );
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(lists);
    let syscalls = Table::new(
        row.syscalls
            .iter()
            .map(|s| TableRow::new([s.name.clone(), rate(s.per_s), rate(s.errors_per_s)])),
        [
            Constraint::Length(22),
            Constraint::Length(9),
            Constraint::Length(9),
        ],
    )
    .header(TableRow::new(["SYSCALL", "CALLS/s", "ERR/s"]))
    .block(Block::bordered().title("syscalls"));
    frame.render_widget(syscalls, left);
    let peers = Table::new(
        row.peers.iter().map(|p| {
            TableRow::new([
                p.peer.clone(),
                p.direction.clone(),
                rate(p.connections_per_s),
                rate(p.failures_per_s),
                rate(p.resets_per_s),
                bytes(p.bytes_in_per_s),
                bytes(p.bytes_out_per_s),
            ])
        }),
        [
            Constraint::Length(30),
            Constraint::Length(4),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(7),
        ],
    )
    .header(TableRow::new([
        "PEER", "DIR", "CONN/s", "FAIL/s", "RST/s", "IN/s", "OUT/s",
    ]))
    .block(Block::bordered().title("TCP peers"));
    frame.render_widget(peers, right);
}

#[cfg(test)]
mod tests {
    use ratatui::{Terminal, backend::TestBackend};

    use super::*;
    use crate::live::{Rate, RowKind, Snapshot};

    fn screen(app: &App) -> String {
        let mut t = Terminal::new(TestBackend::new(200, 12)).unwrap();
        t.draw(|f| draw(f, app)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_owned())
                    .collect::<String>()
                    + "\n"
            })
            .collect()
    }

    #[test]
    fn draws_rows_and_the_drill_down() {
        let mut app = App::new("test".into());
        app.update(Snapshot {
            interval_s: 1.0,
            rows: vec![Row {
                key: "abc".into(),
                kind: RowKind::Container,
                name: "web".into(),
                syscalls_per_s: 42.0,
                syscalls: vec![Rate {
                    name: "openat".into(),
                    per_s: 42.0,
                    errors_per_s: 0.0,
                }],
                ..Row::default()
            }],
            ..Snapshot::default()
        });
        let s = screen(&app);
        assert!(s.contains("SYSC/sv"), "{s}");
        assert!(
            s.contains("web") && s.contains("42") && s.contains("openat"),
            "{s}"
        );
        app.drill = Some("abc".into());
        let s = screen(&app);
        assert!(
            s.contains("container web") && s.contains("TCP peers"),
            "{s}"
        );
    }
}
