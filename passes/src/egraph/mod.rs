//! The equality-saturation optimizer: a graph goes into an e-graph, rewrite rules
//! (`crate::rules`) saturate it within the limits of [`RunnerConfig`], and the cheapest
//! equivalent graph under the cost model is extracted.
//!
//! Modules: `lang` (the language over `Op`), `analysis` (types, constant folding),
//! `convert` (graph <-> e-graph), `cost`, `extract`, `runner` (limits, report).
//! It does not own the rules, nor anything after extraction (memory planning, codegen).

pub mod analysis;
pub mod convert;
pub mod cost;
pub mod extract;
pub mod lang;
pub mod runner;

use std::time::Instant;

pub use analysis::{Data, GraphAnalysis, EG};
pub use lang::{ENode, Head, KeyedOp};
pub use runner::{Report, RunnerConfig};

use crate::ir::Graph;

/// A rewrite rule over graphc's e-graph.
pub type Rewrite = egg::Rewrite<ENode, GraphAnalysis>;

/// Why an optimization failed. Each is a bug in graphc or an unsupported graph, never a
/// property of the input values.
#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    /// The graph could not be converted to or from the e-graph.
    #[error("e-graph conversion: {0}")]
    Convert(String),
    /// The extracted graph does not infer.
    #[error("extracted graph: {0}")]
    Infer(#[from] crate::infer::InferError),
    /// A graph pass failed.
    #[error("{0}")]
    Graph(String),
    /// The extracted graph does not verify.
    #[error("extracted graph: {0}")]
    Verify(#[from] crate::ir::verify::VerifyError),
}

/// Optimizes a graph (with types inferred): saturates with `rules` within `cfg`, extracts
/// the cheapest equivalent graph and reports what happened. The result keeps the input's
/// signature and is inferred and verified.
pub fn optimize(
    g: &Graph,
    rules: &[Rewrite],
    cfg: &RunnerConfig,
) -> Result<(Graph, Report), OptimizeError> {
    let t0 = Instant::now();
    let conv = convert::to_egraph(g)?;
    let runner = egg::Runner::<ENode, GraphAnalysis>::new(GraphAnalysis::default())
        .with_egraph(conv.egraph)
        .with_iter_limit(cfg.iter_limit)
        .with_node_limit(cfg.node_limit)
        .with_time_limit(cfg.time_limit)
        .run(rules);
    let mut report = Report {
        stop_reason: match &runner.stop_reason {
            Some(r) => format!("{r:?}"),
            None => "none".into(),
        },
        iterations: runner.iterations.len(),
        egraph_nodes: runner.egraph.total_number_of_nodes(),
        egraph_classes: runner.egraph.number_of_classes(),
        ops_before: runner::op_counts(g),
        ..Report::default()
    };
    for it in &runner.iterations {
        for (rule, n) in &it.applied {
            *report.rules_fired.entry(rule.to_string()).or_insert(0) += n;
        }
    }
    let eg = &runner.egraph;
    let roots: Vec<_> = conv.roots.iter().map(|r| eg.find(*r)).collect();
    let choice = extract::extract(eg, &roots).map_err(OptimizeError::Convert)?;
    let out = convert::from_choice(g, eg, &choice, &roots, &conv.names)?;
    report.ops_after = runner::op_counts(&out);
    report.time = t0.elapsed();
    Ok((out, report))
}

#[cfg(test)]
mod tests;
