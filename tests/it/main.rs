//! graphc's integration tests: one binary (see STYLE.md), one module per area.

mod cli;
mod conformance;
mod export;
mod memory;
mod support;
mod optimize;
mod text;
