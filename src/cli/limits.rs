//! `--max-*` flags: the resource limits of [`crate::limits::Limits`] on the command line.
//!
//! Subcommands that read a model `#[command(flatten)]` a [`LimitArgs`] and pass
//! [`LimitArgs::limits`] to the importer.

use clap::Args;

use crate::limits::Limits;

/// Resource limits on the model (defaults in `Limits::default`).
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Largest model file in bytes [default: 4 GiB].
    #[arg(long, value_name = "BYTES")]
    pub max_model_bytes: Option<u64>,
    /// Most elements of one tensor [default: 2^31, also the most allowed].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=graphc_passes::eval::util::MAX_ELEMENTS as u64))]
    pub max_elements: Option<u64>,
    /// Highest tensor rank [default: 16].
    #[arg(long, value_name = "N")]
    pub max_rank: Option<usize>,
    /// Most graph nodes, subgraphs and inlined functions included [default: 1000000].
    #[arg(long, value_name = "N")]
    pub max_nodes: Option<usize>,
    /// Deepest nesting of subgraphs and function calls [default: 32].
    #[arg(long, value_name = "N")]
    pub max_depth: Option<usize>,
}

impl LimitArgs {
    /// The limits: the defaults, with each flag given replacing its default.
    pub fn limits(&self) -> Limits {
        let d = Limits::default();
        Limits {
            model_bytes: self.max_model_bytes.unwrap_or(d.model_bytes),
            elements: self.max_elements.map_or(d.elements, |n| n as usize),
            rank: self.max_rank.unwrap_or(d.rank),
            nodes: self.max_nodes.unwrap_or(d.nodes),
            depth: self.max_depth.unwrap_or(d.depth),
        }
    }
}
