//! The optimization pipeline: named passes run in order, each a pure function from graph to
//! graph, each reporting what it did.
//!
//! The default pipeline is
//! 1. `simplify`: equality saturation with the constant, algebra and BatchNorm rule sets;
//! 2. `inline-if`: an If whose condition `simplify` folded to a constant becomes the branch
//!    it takes, and `simplify` runs again on the result (nothing happens, at no cost, when
//!    there is no such If);
//! 3. `fuse`: equality saturation with the fusion rule set (epilogues, pattern recognition),
//!    on the simplified graph, so the fusion e-graph starts from the cheapest simple form;
//! 4. `fuse-elementwise`: remaining chains of elementwise ops become `fused_elementwise`
//!    nodes (a graph pass on the extracted graph).
//!
//! `Pipeline::with_layout` adds `layout` after `fuse`: equality saturation with the NCHWc
//! layout rule set (`rules::layout`). It is off by default: the back end has no blocked
//! kernels yet, so blocked ops run on the reference evaluator.
//!
//! The CLI's `inspect --stop-after PASS` and `--after-all` print the graph between passes;
//! `optimize --report` prints every pass's [`Report`].

use std::fmt;

use crate::egraph::{optimize, OptimizeError, Report, Rewrite, RunnerConfig};
use crate::ir::Graph;
use crate::rules;

/// A pass: a named pure function from graph to graph.
pub trait Pass {
    /// The name used on the command line (`--stop-after NAME`).
    fn name(&self) -> &'static str;
    /// One line on what the pass does (shown by `--help` texts and reports).
    fn description(&self) -> &'static str;
    /// Runs the pass on a typed graph; the result is typed and verified.
    fn run(&self, g: &Graph, cfg: &RunnerConfig) -> Result<(Graph, Report), OptimizeError>;
}

/// A pass that saturates an e-graph with some rule sets and extracts the cheapest graph.
pub struct SaturationPass {
    name: &'static str,
    description: &'static str,
    rules: fn() -> Vec<Rewrite>,
}

impl Pass for SaturationPass {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn run(&self, g: &Graph, cfg: &RunnerConfig) -> Result<(Graph, Report), OptimizeError> {
        optimize(g, &(self.rules)(), cfg)
    }
}

/// A pass that rewrites the graph directly (no e-graph).
pub struct GraphPass {
    name: &'static str,
    description: &'static str,
    run: fn(&Graph) -> Result<Graph, String>,
}

impl Pass for GraphPass {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn run(&self, g: &Graph, _: &RunnerConfig) -> Result<(Graph, Report), OptimizeError> {
        let t0 = std::time::Instant::now();
        let mut out = (self.run)(g).map_err(OptimizeError::Graph)?;
        crate::infer::infer_graph(&mut out)?;
        crate::ir::verify::verify(&out)?;
        let report = Report {
            stop_reason: GRAPH_PASS.into(),
            ops_before: crate::egraph::runner::op_counts(g),
            ops_after: crate::egraph::runner::op_counts(&out),
            time: t0.elapsed(),
            ..Report::default()
        };
        Ok((out, report))
    }
}

/// The stop reason recorded by a [`GraphPass`], which has no e-graph.
pub const GRAPH_PASS: &str = "graph pass";

/// The `inline-if` pass (see [`crate::inline`]): rounds of inlining the branch taken of every
/// If with a constant condition, each followed by `simplify`, until no such If is left.
pub struct InlineIfPass;

/// Rounds of [`InlineIfPass`] at most (each can expose the nested Ifs of a branch).
const MAX_INLINE_ROUNDS: usize = 8;

impl Pass for InlineIfPass {
    fn name(&self) -> &'static str {
        "inline-if"
    }

    fn description(&self) -> &'static str {
        "the branch taken of an If whose condition folded to a constant, simplified again"
    }

    fn run(&self, g: &Graph, cfg: &RunnerConfig) -> Result<(Graph, Report), OptimizeError> {
        let t0 = std::time::Instant::now();
        let mut cur = g.clone();
        let mut last = None;
        for _ in 0..MAX_INLINE_ROUNDS {
            let Some(mut next) = crate::inline::inline_constant_ifs(&cur) else {
                break;
            };
            crate::infer::infer_graph(&mut next)?;
            crate::ir::verify::verify(&next)?;
            let (simplified, r) = optimize(&next, &rules::simplify_rules(), cfg)?;
            cur = simplified;
            last = Some(r);
        }
        let report = match last {
            // The report of the last simplify, counting from this pass's input.
            Some(r) => Report {
                ops_before: crate::egraph::runner::op_counts(g),
                time: t0.elapsed(),
                ..r
            },
            None => Report {
                stop_reason: GRAPH_PASS.into(),
                ops_before: crate::egraph::runner::op_counts(g),
                ops_after: crate::egraph::runner::op_counts(&cur),
                time: t0.elapsed(),
                ..Report::default()
            },
        };
        Ok((cur, report))
    }
}

/// The `layout` pass: saturation with the NCHWc layout rules (`rules::layout`).
pub fn layout_pass() -> SaturationPass {
    SaturationPass {
        name: "layout",
        description: "the blocked channel layout NCHWc for chains of convolutions (opt-in)",
        rules: rules::layout::rules,
    }
}

/// Passes in order.
pub struct Pipeline {
    /// The passes, run first to last.
    pub passes: Vec<Box<dyn Pass>>,
}

/// What a pipeline run did: one report per pass run, in order.
#[derive(Debug, Default)]
pub struct PipelineReport {
    /// `(pass name, its report)`.
    pub passes: Vec<(&'static str, Report)>,
}

/// An error of one pass, naming it.
#[derive(Debug, thiserror::Error)]
#[error("pass '{pass}': {source}")]
pub struct PassError {
    /// The pass that failed.
    pub pass: &'static str,
    /// What went wrong.
    #[source]
    pub source: OptimizeError,
}

impl Default for Pipeline {
    fn default() -> Pipeline {
        Pipeline {
            passes: vec![
                Box::new(SaturationPass {
                    name: "simplify",
                    description: "constant folding, algebraic identities, BatchNorm folding",
                    rules: rules::simplify_rules,
                }),
                Box::new(InlineIfPass),
                Box::new(SaturationPass {
                    name: "fuse",
                    description:
                        "Conv/MatMul epilogues and pattern recognition (GELU, SiLU, LayerNorm, ...)",
                    rules: rules::fusion::rules,
                }),
                Box::new(GraphPass {
                    name: "fuse-elementwise",
                    description: "chains of elementwise ops into one fused_elementwise node",
                    run: crate::fuse_elementwise::fuse_elementwise,
                }),
            ],
        }
    }
}

impl Pipeline {
    /// The default pipeline with the `layout` pass (the blocked NCHWc layout, off by default
    /// until the back end has blocked kernels) after `fuse`.
    pub fn with_layout() -> Pipeline {
        let mut p = Pipeline::default();
        let at = p
            .passes
            .iter()
            .position(|q| q.name() == "fuse")
            .map_or(p.passes.len(), |i| i + 1);
        p.passes.insert(at, Box::new(layout_pass()));
        p
    }

    /// The names of the passes, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.passes.iter().map(|p| p.name()).collect()
    }

    /// Runs the passes in order up to and including `stop_after` (all when `None`), calling
    /// `after(name, graph)` after each. An unknown `stop_after` is an error listing the
    /// passes.
    pub fn run_with(
        &self,
        g: &Graph,
        cfg: &RunnerConfig,
        stop_after: Option<&str>,
        mut after: impl FnMut(&str, &Graph),
    ) -> Result<(Graph, PipelineReport), PipelineError> {
        if let Some(s) = stop_after {
            if !self.names().contains(&s) {
                return Err(PipelineError::UnknownPass {
                    name: s.to_string(),
                    known: self.names().join(", "),
                });
            }
        }
        let mut report = PipelineReport::default();
        let mut cur = g.clone();
        for p in &self.passes {
            let (next, r) = p.run(&cur, cfg).map_err(|source| PassError {
                pass: p.name(),
                source,
            })?;
            after(p.name(), &next);
            report.passes.push((p.name(), r));
            cur = next;
            if stop_after == Some(p.name()) {
                break;
            }
        }
        Ok((cur, report))
    }

    /// Runs every pass.
    pub fn run(
        &self,
        g: &Graph,
        cfg: &RunnerConfig,
    ) -> Result<(Graph, PipelineReport), PipelineError> {
        self.run_with(g, cfg, None, |_, _| {})
    }
}

/// Why a pipeline run failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// `--stop-after` named no pass.
    #[error("no pass named '{name}' (passes: {known})")]
    UnknownPass {
        /// The name asked for.
        name: String,
        /// The pipeline's passes.
        known: String,
    },
    /// A pass failed.
    #[error(transparent)]
    Pass(#[from] PassError),
}

impl fmt::Display for PipelineReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, r) in &self.passes {
            if r.stop_reason == GRAPH_PASS {
                let n = |m: &std::collections::BTreeMap<String, usize>| m.values().sum::<usize>();
                writeln!(
                    f,
                    "pass {name}: {} -> {} nodes, time {:.3}s",
                    n(&r.ops_before),
                    n(&r.ops_after),
                    r.time.as_secs_f64()
                )?;
                continue;
            }
            writeln!(
                f,
                "pass {name}: {}, classes {}, time {:.3}s",
                r.summary(),
                r.egraph_classes,
                r.time.as_secs_f64()
            )?;
            if r.rules_fired.is_empty() {
                writeln!(f, "  no rule fired")?;
            }
            for (rule, n) in &r.rules_fired {
                writeln!(f, "  {rule:<34} {n:>6}")?;
            }
        }
        let (Some((_, first)), Some((_, last))) = (self.passes.first(), self.passes.last()) else {
            return Ok(());
        };
        let before: usize = first.ops_before.values().sum();
        let after: usize = last.ops_after.values().sum();
        writeln!(f, "nodes: {before} -> {after}")?;
        let ops: std::collections::BTreeSet<&String> = first
            .ops_before
            .keys()
            .chain(last.ops_after.keys())
            .collect();
        for op in ops {
            let b = first.ops_before.get(op).copied().unwrap_or(0);
            let a = last.ops_after.get(op).copied().unwrap_or(0);
            writeln!(f, "  {op:<34} {b:>6} -> {a}")?;
        }
        Ok(())
    }
}
