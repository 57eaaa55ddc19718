//! graphc's integration tests: one binary (see STYLE.md), one module per area.

mod cli;
mod conformance;
mod export;
mod filetests;
mod hostile;
mod jit;
mod jit_math;
mod memory;
mod optimize;
mod so;
mod support;
mod text;
