//! The state of `eunomia top` and what each key does to it:
//!
//! | key | does |
//! | --- | --- |
//! | `q`, Ctrl-C | quit |
//! | `<` `>` (or ← →) | sort by the previous / next column |
//! | `r` | reverse the order |
//! | `/` | type a filter (name, namespace, pod, kind or id); Enter keeps it, Esc drops it |
//! | ↑ ↓ | select a row |
//! | Enter | drill into the selected workload (its syscalls and TCP peers) |
//! | Esc | back from the drill-down; clear the filter |

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::columns::{ALL, Column};
use crate::live::{Row, Snapshot};

/// What the event loop does after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Keep going (redraw).
    Continue,
    /// Leave, restoring the terminal.
    Quit,
}

/// The view's state.
#[derive(Debug, Clone)]
pub(crate) struct App {
    /// The latest snapshot.
    pub(crate) snapshot: Option<Snapshot>,
    /// Snapshots received.
    pub(crate) snapshots: u64,
    /// Snapshots the agent says this view missed.
    pub(crate) lagged: u64,
    /// Where the snapshots come from, for the status line.
    pub(crate) source: String,
    /// The sort column (index into [`ALL`]).
    pub(crate) sort: usize,
    /// Whether the order is descending.
    pub(crate) descending: bool,
    /// The filter in force (lowercase substring).
    pub(crate) filter: String,
    /// The filter being typed, while `/` is active.
    pub(crate) editing: Option<String>,
    /// The selected row (index into the visible rows).
    pub(crate) selected: usize,
    /// The key of the workload drilled into.
    pub(crate) drill: Option<String>,
    /// The last error of the feed, shown in the status line.
    pub(crate) error: Option<String>,
}

impl App {
    /// A view sorted by syscalls/s, descending.
    pub(crate) fn new(source: String) -> App {
        App {
            snapshot: None,
            snapshots: 0,
            lagged: 0,
            source,
            sort: ALL.iter().position(|c| *c == Column::Syscalls).unwrap_or(0),
            descending: true,
            filter: String::new(),
            editing: None,
            selected: 0,
            drill: None,
            error: None,
        }
    }

    /// The sort column.
    pub(crate) fn sort_column(&self) -> Column {
        ALL[self.sort]
    }

    /// Sorts by `column` (text ascending, numbers descending).
    pub(crate) fn sort_by(&mut self, column: Column) {
        if let Some(i) = ALL.iter().position(|c| *c == column) {
            self.sort = i;
            self.descending = !column.is_text();
        }
    }

    /// Takes in a new snapshot.
    pub(crate) fn update(&mut self, snapshot: Snapshot) {
        self.snapshot = Some(snapshot);
        self.snapshots += 1;
        let n = self.visible().len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    /// Whether `row` passes the filter.
    fn passes(&self, row: &Row) -> bool {
        let f = &self.filter;
        f.is_empty()
            || [
                row.name.as_str(),
                row.namespace.as_str(),
                row.pod.as_str(),
                row.kind.as_str(),
                row.container_id.as_str(),
            ]
            .iter()
            .any(|v| v.to_lowercase().contains(f.as_str()))
    }

    /// The rows shown: filtered and sorted.
    pub(crate) fn visible(&self) -> Vec<&Row> {
        let Some(s) = &self.snapshot else {
            return Vec::new();
        };
        let mut rows: Vec<&Row> = s.rows.iter().filter(|r| self.passes(r)).collect();
        let col = self.sort_column();
        rows.sort_by(|a, b| {
            let o = col.compare(a, b);
            let o = if self.descending { o.reverse() } else { o };
            o.then_with(|| a.name.cmp(&b.name))
        });
        rows
    }

    /// The row drilled into, if it was active in the latest snapshot.
    pub(crate) fn drilled(&self) -> Option<&Row> {
        let key = self.drill.as_ref()?;
        self.snapshot.as_ref()?.rows.iter().find(|r| &r.key == key)
    }

    /// Applies one key.
    pub(crate) fn key(&mut self, key: KeyEvent) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if let Some(text) = &mut self.editing {
            match key.code {
                KeyCode::Enter => {
                    self.filter = text.to_lowercase();
                    self.editing = None;
                    self.selected = 0;
                }
                KeyCode::Esc => self.editing = None,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            }
            return Action::Continue;
        }
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('/') => self.editing = Some(self.filter.clone()),
            KeyCode::Char('>') | KeyCode::Right => self.move_sort(1),
            KeyCode::Char('<') | KeyCode::Left => self.move_sort(ALL.len() - 1),
            KeyCode::Char('r') => self.descending = !self.descending,
            KeyCode::Down | KeyCode::Char('j') => self.selected += 1,
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Enter => {
                self.drill = self.visible().get(self.selected).map(|r| r.key.clone());
            }
            KeyCode::Esc | KeyCode::Backspace if self.drill.is_some() => self.drill = None,
            KeyCode::Esc => self.filter.clear(),
            _ => {}
        }
        let n = self.visible().len();
        self.selected = self.selected.min(n.saturating_sub(1));
        Action::Continue
    }

    fn move_sort(&mut self, by: usize) {
        let next = ALL[(self.sort + by) % ALL.len()];
        self.sort_by(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::RowKind;

    fn row(name: &str, ns: &str, sys: f64, cpu: f64) -> Row {
        Row {
            key: name.into(),
            kind: RowKind::Container,
            name: name.into(),
            namespace: ns.into(),
            syscalls_per_s: sys,
            cpu_percent: Some(cpu),
            ..Row::default()
        }
    }

    fn press(app: &mut App, code: KeyCode) -> Action {
        app.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn names(app: &App) -> Vec<&str> {
        app.visible().iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn sorts_filters_drills_and_quits() {
        let mut app = App::new("test".into());
        app.update(Snapshot {
            rows: vec![
                row("busy", "prod", 100.0, 1.0),
                row("idle", "dev", 1.0, 50.0),
                row("mid", "prod", 10.0, 5.0),
            ],
            ..Snapshot::default()
        });
        assert_eq!(names(&app), ["busy", "mid", "idle"]);
        app.sort_by(Column::Cpu);
        assert_eq!(names(&app), ["idle", "mid", "busy"]);
        press(&mut app, KeyCode::Char('r'));
        assert_eq!(names(&app), ["busy", "mid", "idle"]);
        app.sort_by(Column::Name);
        assert_eq!(names(&app), ["busy", "idle", "mid"]);
        press(&mut app, KeyCode::Char('>'));
        assert_eq!(app.sort_column(), Column::Kind);
        for c in "/PROD".chars() {
            press(&mut app, KeyCode::Char(c));
        }
        assert_eq!(names(&app).len(), 3, "not applied while typing");
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.filter, "prod");
        app.sort_by(Column::Syscalls);
        assert_eq!(names(&app), ["busy", "mid"]);
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.drilled().map(|r| r.name.as_str()), Some("mid"));
        press(&mut app, KeyCode::Esc);
        assert!(app.drill.is_none());
        press(&mut app, KeyCode::Esc);
        assert!(app.filter.is_empty());
        assert_eq!(press(&mut app, KeyCode::Char('q')), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.key(ctrl_c), Action::Quit);
    }
}
