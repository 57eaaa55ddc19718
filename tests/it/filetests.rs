//! File-driven pass tests, in the spirit of Cranelift's filetests: each `tests/passes/*.gir`
//! file is a graph in the IR text format with directives in leading `;` comments:
//!
//! - `; rules: NAME`: the rule set to saturate with (`algebra`, `batchnorm`, `fusion`,
//!   `layout`, `simplify`, `default`), or `; pass: NAME` for one pass of the pipeline with
//!   the layout pass (`simplify`, `fuse`, `layout`, `fuse-elementwise`), `; pass: pipeline`
//!   for the default pipeline or `; pass: pipeline-layout` for the one with `layout`;
//! - `; rtol: X`: the relative tolerance of the numeric check (required: every fixture
//!   states it); `; atol: X`: the absolute one (default 0), for folds whose rounding shows
//!   on results that cancel to near zero;
//! - `; expect: unchanged`: a negative fixture, where no rule may change the graph;
//! - `; expect-ops: a, b`: ops the result must contain; `; expect-no-ops: a, b`: ops it must
//!   not contain; `; expect-count: OP N`: exactly N nodes of OP.
//!
//! The input, the output and the runner's summary are an insta snapshot
//! (`snapshots/filetest__NAME.snap`); the output is checked against the input with the
//! reference evaluator on four seeded random inputs.

use graphc::passes::eval::random_inputs as seeded;
use std::path::Path;

use graphc::passes::egraph::{optimize, Report, RunnerConfig};
use graphc::passes::eval::eval_graph;
use graphc::passes::ir::text::{parse, print};
use graphc::passes::ir::{Graph, Op, Tensor};
use graphc::passes::pipeline::Pipeline;
use graphc::passes::rules;

use crate::support::{compare, repo};

/// Seeded pseudo-random values in [-2, 2) for the inputs without a default.
pub fn random_inputs(g: &Graph, seed: u64) -> Vec<Option<Tensor>> {
    seeded(g, seed).expect("fixture inputs have static shapes")
}

struct Directives {
    rules: Option<String>,
    pass: Option<String>,
    rtol: f64,
    atol: f64,
    unchanged: bool,
    ops: Vec<String>,
    no_ops: Vec<String>,
    counts: Vec<(String, usize)>,
}

fn directives(path: &Path, text: &str) -> Directives {
    let mut d = Directives {
        rules: None,
        pass: None,
        rtol: f64::NAN,
        atol: 0.0,
        unchanged: false,
        ops: vec![],
        no_ops: vec![],
        counts: vec![],
    };
    let list = |v: &str| -> Vec<String> { v.split(',').map(|s| s.trim().to_string()).collect() };
    for line in text
        .lines()
        .map(str::trim)
        .take_while(|l| l.starts_with(';'))
    {
        let Some((key, value)) = line.trim_start_matches(';').split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "rules" => d.rules = Some(value.to_string()),
            "pass" => d.pass = Some(value.to_string()),
            "rtol" => d.rtol = value.parse().expect("rtol is a number"),
            "atol" => d.atol = value.parse().expect("atol is a number"),
            "expect" if value == "unchanged" => d.unchanged = true,
            "expect-ops" => d.ops = list(value),
            "expect-no-ops" => d.no_ops = list(value),
            "expect-count" => {
                let (op, n) = value.split_once(' ').expect("expect-count: OP N");
                d.counts
                    .push((op.to_string(), n.trim().parse().expect("a count")));
            }
            "description" => {}
            other => panic!("{}: unknown directive '{other}'", path.display()),
        }
    }
    assert!(
        d.rtol.is_finite(),
        "{}: every fixture states its tolerance (; rtol: X)",
        path.display()
    );
    assert!(
        d.rules.is_some() != d.pass.is_some(),
        "{}: give exactly one of '; rules: NAME' and '; pass: pipeline'",
        path.display()
    );
    d
}

fn rule_set(name: &str) -> Vec<graphc::passes::egraph::Rewrite> {
    match name {
        "algebra" => rules::algebra::rules(),
        "batchnorm" => rules::batchnorm::rules(),
        "fusion" => rules::fusion::rules(),
        "layout" => rules::layout::rules(),
        "simplify" => rules::simplify_rules(),
        "default" => rules::default_rules(),
        other => panic!("unknown rule set '{other}'"),
    }
}

fn ops(g: &Graph) -> Vec<&'static str> {
    g.nodes()
        .filter(|(_, n)| !matches!(n.op, Op::Input { .. } | Op::Constant { .. }))
        .map(|(_, n)| n.op.name())
        .collect()
}

fn run_fixture(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let d = directives(path, &text);
    let mut g = parse(&text).map_err(|e| format!("parse: {e}"))?;
    graphc::passes::infer::infer_graph(&mut g).map_err(|e| format!("infer: {e}"))?;
    let cfg = RunnerConfig::default();
    let (out, summary) = if let Some(pass) = &d.pass {
        let pipeline = Pipeline::with_layout();
        let (out, r) = if pass == "pipeline" {
            Pipeline::default()
                .run(&g, &cfg)
                .map_err(|e| e.to_string())?
        } else if pass == "pipeline-layout" {
            pipeline.run(&g, &cfg).map_err(|e| e.to_string())?
        } else {
            let p = pipeline
                .passes
                .iter()
                .find(|p| p.name() == pass)
                .ok_or_else(|| format!("no pass named '{pass}'"))?;
            let (out, r) = p.run(&g, &cfg).map_err(|e| e.to_string())?;
            let mut report = graphc::passes::pipeline::PipelineReport::default();
            report.passes.push((p.name(), r));
            (out, report)
        };
        let s: Vec<String> = r
            .passes
            .iter()
            .map(|(n, r)| format!("{n}: {}", summary(r)))
            .collect();
        (out, s.join("\n"))
    } else {
        let rules = rule_set(d.rules.as_deref().expect("checked"));
        let (out, r) = optimize(&g, &rules, &cfg).map_err(|e| e.to_string())?;
        (out, summary(&r))
    };
    graphc::passes::ir::verify::verify(&out).map_err(|e| format!("verify: {e}"))?;
    if d.unchanged && !out.same_as(&g) {
        return Err(format!("a negative fixture changed:\n{}", print(&out)));
    }
    let got = ops(&out);
    for op in &d.ops {
        if !got.contains(&op.as_str()) {
            return Err(format!("expected a {op} node in:\n{}", print(&out)));
        }
    }
    for op in &d.no_ops {
        if got.contains(&op.as_str()) {
            return Err(format!("expected no {op} node in:\n{}", print(&out)));
        }
    }
    for (op, n) in &d.counts {
        let have = got.iter().filter(|o| **o == op.as_str()).count();
        if have != *n {
            return Err(format!(
                "expected {n} {op} nodes, found {have}, in:\n{}",
                print(&out)
            ));
        }
    }
    for seed in 0..4 {
        let xs = random_inputs(&g, seed);
        let want = eval_graph(&g, &xs).map_err(|e| e.to_string())?;
        let have = eval_graph(&out, &xs).map_err(|e| format!("optimized: {e}"))?;
        for (i, (h, w)) in have.iter().zip(&want).enumerate() {
            compare(h, w, d.rtol, d.atol).map_err(|e| format!("seed {seed}, output {i}: {e}"))?;
        }
    }
    Ok(format!(
        "{}\n---\n{}\n{summary}\n",
        print(&g).trim_end(),
        print(&out).trim_end()
    ))
}

/// The deterministic part of a report: which rules fired (not how often: that depends on
/// the order egg visits matches), stop reason, iterations.
fn summary(r: &Report) -> String {
    if r.stop_reason == graphc::passes::pipeline::GRAPH_PASS {
        return r.stop_reason.clone();
    }
    let fired: Vec<&str> = r.rules_fired.keys().map(String::as_str).collect();
    format!("{}, fired: [{}]", r.summary(), fired.join(", "))
}

#[test]
fn pass_fixtures() {
    let dir = repo().join("tests/passes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gir"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        match run_fixture(f) {
            Ok(shown) => {
                insta::with_settings!({snapshot_path => repo().join("snapshots"), prepend_module_to_snapshot => false, omit_expression => true}, {
                    insta::assert_snapshot!(format!("filetest__{name}"), shown);
                });
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    println!("{} pass fixtures", files.len());
}
