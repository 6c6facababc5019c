//! `eunomia top`: a terminal view of every workload that refreshes in place
//! (ratatui on crossterm). [`columns`] says what each column shows and how
//! it sorts, [`app`] holds the view's state and turns keys into changes
//! (sort, filter, drill-down), [`render`] draws it, and [`feed`] brings
//! the snapshots, from the running agent or from a hot path loaded here.

pub(crate) mod app;
pub(crate) mod columns;
pub(crate) mod feed;
pub(crate) mod render;

pub(crate) use app::App;
