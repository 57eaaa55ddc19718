//! Runner limits and the optimization report.
//!
//! [`RunnerConfig`] holds the equality-saturation limits in one place. Defaults can be
//! overridden by the environment (`GRAPHC_EGG_ITER_LIMIT`, `GRAPHC_EGG_NODE_LIMIT`,
//! `GRAPHC_EGG_TIME_LIMIT` in seconds) through [`RunnerConfig::from_env`]; the CLI may
//! override them again. The stop reason is always reported.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::ir::Graph;

/// Equality-saturation limits.
#[derive(Clone, Debug, PartialEq)]
pub struct RunnerConfig {
    /// Maximum iterations.
    pub iter_limit: usize,
    /// Maximum e-nodes.
    pub node_limit: usize,
    /// Maximum wall time.
    pub time_limit: Duration,
}

impl Default for RunnerConfig {
    fn default() -> RunnerConfig {
        RunnerConfig {
            iter_limit: 30,
            node_limit: 200_000,
            time_limit: Duration::from_secs(20),
        }
    }
}

impl RunnerConfig {
    /// The defaults, overridden by `GRAPHC_EGG_ITER_LIMIT`, `GRAPHC_EGG_NODE_LIMIT` and
    /// `GRAPHC_EGG_TIME_LIMIT` (seconds, may be fractional) when set; a malformed value is an
    /// error naming the variable.
    pub fn from_env() -> Result<RunnerConfig, String> {
        let mut c = RunnerConfig::default();
        let var = |name: &str| std::env::var(name).ok().filter(|s| !s.trim().is_empty());
        if let Some(v) = var("GRAPHC_EGG_ITER_LIMIT") {
            c.iter_limit = v
                .trim()
                .parse()
                .map_err(|_| format!("GRAPHC_EGG_ITER_LIMIT: expected a count, got '{v}'"))?;
        }
        if let Some(v) = var("GRAPHC_EGG_NODE_LIMIT") {
            c.node_limit = v
                .trim()
                .parse()
                .map_err(|_| format!("GRAPHC_EGG_NODE_LIMIT: expected a count, got '{v}'"))?;
        }
        if let Some(v) = var("GRAPHC_EGG_TIME_LIMIT") {
            let s: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("GRAPHC_EGG_TIME_LIMIT: expected seconds, got '{v}'"))?;
            c.time_limit = Duration::try_from_secs_f64(s)
                .map_err(|_| format!("GRAPHC_EGG_TIME_LIMIT: bad duration '{v}'"))?;
        }
        Ok(c)
    }
}

/// What one optimization did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Rule name -> number of times it was applied.
    pub rules_fired: BTreeMap<String, usize>,
    /// E-nodes at the end.
    pub egraph_nodes: usize,
    /// E-classes at the end.
    pub egraph_classes: usize,
    /// Why saturation stopped (`Saturated`, `IterationLimit(30)`, ...).
    pub stop_reason: String,
    /// Iterations run.
    pub iterations: usize,
    /// Wall time of saturation plus extraction.
    pub time: Duration,
    /// Node count per op (text name) before, inputs excluded.
    pub ops_before: BTreeMap<String, usize>,
    /// Node count per op after.
    pub ops_after: BTreeMap<String, usize>,
}

/// Counts nodes per op name, graph inputs excluded.
pub fn op_counts(g: &Graph) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (_, n) in g.nodes() {
        if !matches!(n.op, crate::ir::Op::Input { .. }) {
            *m.entry(n.op.name().to_string()).or_insert(0) += 1;
        }
    }
    m
}

impl Report {
    /// The deterministic summary used in snapshots: stop reason, iterations, e-graph nodes.
    pub fn summary(&self) -> String {
        format!(
            "stop: {}, iters {}, nodes {}",
            self.stop_reason, self.iterations, self.egraph_nodes
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}, classes {}, time {:.3}s",
            self.summary(),
            self.egraph_classes,
            self.time.as_secs_f64()
        )?;
        writeln!(f, "rules fired:")?;
        for (r, n) in &self.rules_fired {
            writeln!(f, "  {r:<32} {n}")?;
        }
        let before: usize = self.ops_before.values().sum();
        let after: usize = self.ops_after.values().sum();
        writeln!(f, "nodes: {before} -> {after}")?;
        let ops: std::collections::BTreeSet<&String> = self
            .ops_before
            .keys()
            .chain(self.ops_after.keys())
            .collect();
        for op in ops {
            let (b, a) = (
                self.ops_before.get(op).copied().unwrap_or(0),
                self.ops_after.get(op).copied().unwrap_or(0),
            );
            writeln!(f, "  {op:<32} {b:>6} -> {a}")?;
        }
        Ok(())
    }
}
