//! The frame shared by every one-line-per-event tool: [`EventTool`] skips
//! banners and blank lines, learns the column layout from the header line
//! (which tells which optional flags were passed), and hands each data line
//! to the tool's [`EventSyntax`].

use std::sync::Arc;

use crate::ToolParser;
use crate::error::ParseError;
use crate::records::{Event, EventKind, Record};
use crate::text::{Res, chomp, fail_message, is_noise};

/// How one event tool's lines look.
pub(crate) trait EventSyntax: Send + 'static {
    /// The column layout chosen by the flags (time column, uid column, ...).
    type Layout: Copy + Send + 'static;
    /// The event kind produced.
    fn kind(&self) -> EventKind;
    /// The layout assumed before a header was seen: the canonical flags.
    fn default_layout(&self) -> Self::Layout;
    /// `Some(layout)` if `line` is the header line.
    fn header(&self, line: &[u8]) -> Option<Self::Layout>;
    /// Parses a data line into `ev` (pre-filled with tool and kind).
    fn parse<'a>(&self, line: &'a [u8], layout: Self::Layout, ev: &mut Event) -> Res<'a, ()>;
}

/// A [`ToolParser`] for a one-line-per-event tool.
pub(crate) struct EventTool<S: EventSyntax> {
    tool: Arc<str>,
    syntax: S,
    layout: S::Layout,
    /// A data line was parsed: the header is printed once, before any data,
    /// so a header-like line from here on is data a traced process supplied
    /// and must not change the layout.
    seen_data: bool,
}

impl<S: EventSyntax> EventTool<S> {
    /// A parser for `tool` with `syntax`.
    pub(crate) fn new(tool: &str, syntax: S) -> Self {
        let layout = syntax.default_layout();
        EventTool {
            tool: tool.into(),
            syntax,
            layout,
            seen_data: false,
        }
    }
}

impl<S: EventSyntax> ToolParser for EventTool<S> {
    fn feed(&mut self, line: &[u8], out: &mut Vec<Record>) -> Result<(), ParseError> {
        let line = chomp(line);
        // Data lines first: the hot path pays for nothing else. Banners and
        // headers never parse as data (a number is expected where they have
        // a word).
        let mut ev = Event::new(self.tool.clone(), self.syntax.kind());
        let err = match self.syntax.parse(line, self.layout, &mut ev) {
            Ok(_) => {
                self.seen_data = true;
                out.push(Record::Event(ev));
                return Ok(());
            }
            Err(e) => e,
        };
        if is_noise(line) {
            return Ok(());
        }
        if !self.seen_data
            && let Some(layout) = self.syntax.header(line)
        {
            self.layout = layout;
            return Ok(());
        }
        Err(ParseError::new(&self.tool, fail_message(err), line))
    }

    fn finish(&mut self, _out: &mut Vec<Record>) {}

    fn tool(&self) -> &str {
        &self.tool
    }
}

/// Which time column a tool prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeCol {
    /// None.
    None,
    /// `HH:MM:SS`.
    Clock,
    /// Relative seconds.
    Relative,
}
