//! The ONNX conformance suite: the backend node tests and the light model zoo of the pinned
//! onnx wheel, run through the `graphc` CLI.
//!
//! Each column is an engine with or without the optimization pipeline: `reference` runs
//! the model as imported (`--engine reference --no-optimize`), `reference-opt` runs it
//! optimized, `jit` runs it optimized and compiled (`--engine jit`), `so` compiles it to a
//! shared library and runs that (`--engine so`), with the inputs whose values decide shapes
//! (`graphc::passes::infer::shape_inputs`) fixed at compile time by `--bind`, as a
//! fixed-shape library requires. Every node test runs (none may panic or hang); those on the column's allowlist
//! (`tests/conformance/node-<column>.txt`) must pass, and the optimized column's allowlist
//! must include every test of the unoptimized one. A test passing but not listed is
//! reported so it can be added (`GRAPHC_UPDATE_ALLOWLIST=1` rewrites the list).
//! `GRAPHC_NODE_TESTS=test_abs,test_add` restricts the run to tests with those prefixes.
//! A per-test report is written to `target/conformance/`.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use graphc::passes::ir::Tensor;

use crate::support::{compare, graphc, numbered, onnx_data, repo, subdirs, Outcome};

/// Tolerances of the ONNX backend test runner.
const RTOL: f64 = 1e-3;
const ATOL: f64 = 1e-7;
/// A single test taking longer than this counts as a hang.
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
#[allow(dead_code)] // the reasons are read through Debug in the report
enum Status {
    Pass,
    Fail(String),
    Panic(String),
    Hang,
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// Runs one node test (all its data sets) through the CLI.
fn run_node_test(dir: &Path, column: &Column, scratch: &Path) -> Status {
    let model = dir.join("model.onnx");
    let bound = if column.bind_shape_inputs {
        shape_input_names(&model)
    } else {
        Vec::new()
    };
    for set in subdirs(dir, "test_data_set_") {
        let out = scratch.join(format!(
            "{}-{}",
            dir.file_name().unwrap().to_string_lossy(),
            set.file_name().unwrap().to_string_lossy()
        ));
        let _ = std::fs::remove_dir_all(&out);
        let mut args: Vec<OsString> = vec!["run".into(), model.clone().into()];
        args.extend(column.args.iter().map(OsString::from));
        for (k, input) in numbered(&set, "input_").into_iter().enumerate() {
            match bound.get(k) {
                // Named, so that the inputs given with --input bind to the right slots.
                Some((name, bind)) => {
                    let mut a = OsString::from(format!("{name}="));
                    a.push(&input);
                    args.push(if *bind { "--bind" } else { "--input" }.into());
                    args.push(a);
                }
                None => {
                    args.push("--input".into());
                    args.push(input.into());
                }
            }
        }
        args.push("--output-dir".into());
        args.push(out.clone().into());
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        match graphc(&refs, TIMEOUT) {
            Outcome::TimedOut => return Status::Hang,
            Outcome::Crashed(e) => {
                return Status::Panic(format!("killed by a signal: {}", first_line(&e)))
            }
            Outcome::Exited(101, e) => return Status::Panic(first_line(&e)),
            Outcome::Exited(0, _) => {}
            Outcome::Exited(_, e) => return Status::Fail(first_line(&e)),
        }
        for (i, exp) in numbered(&set, "output_").iter().enumerate() {
            let expected = match graphc::onnx::read_pb(exp) {
                Ok(t) => t,
                Err(e) => return Status::Fail(format!("expected output {i}: {e}")),
            };
            let actual: Tensor = match graphc::npy::read_npy(&out.join(format!("output_{i}.npy"))) {
                Ok(t) => t,
                Err(e) => return Status::Fail(format!("output {i}: {e}")),
            };
            if let Err(e) = compare(&actual, &expected, RTOL, ATOL) {
                return Status::Fail(format!("output {i}: {e}"));
            }
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    Status::Pass
}

/// For each input a test feeds (the graph inputs without an initializer, in order), its name
/// and whether its value decides a shape (see `graphc::passes::infer::shape_inputs`): those
/// are bound at compile time with `--bind NAME=PATH`, as a fixed-shape library needs. Empty
/// when no input decides a shape or the model does not load (the run reports why).
fn shape_input_names(model: &Path) -> Vec<(String, bool)> {
    let Ok(g) = graphc::onnx::load_model(model, vec![]) else {
        return Vec::new();
    };
    let shape = graphc::passes::infer::shape_inputs(&g);
    if shape.is_empty() {
        return Vec::new();
    }
    g.inputs
        .iter()
        .enumerate()
        .filter(|(_, &id)| {
            matches!(
                g.node(id).op,
                graphc::passes::ir::Op::Input { default: None }
            )
        })
        .map(|(k, &id)| (g.node(id).outputs[0].name.clone(), shape.contains(&k)))
        .collect()
}

fn read_allowlist(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// An engine and whether the optimizer runs.
struct Column {
    name: &'static str,
    args: &'static [&'static str],
    /// Whether the inputs whose values decide shapes are bound at compile time (`--bind`),
    /// as building a fixed-shape library requires.
    bind_shape_inputs: bool,
}

const REFERENCE: Column = Column {
    name: "reference",
    args: &["--engine", "reference", "--no-optimize"],
    bind_shape_inputs: false,
};

const REFERENCE_OPT: Column = Column {
    name: "reference-opt",
    args: &["--engine", "reference"],
    bind_shape_inputs: false,
};

const JIT: Column = Column {
    name: "jit",
    args: &["--engine", "jit"],
    bind_shape_inputs: false,
};

const SO: Column = Column {
    name: "so",
    args: &["--engine", "so"],
    bind_shape_inputs: true,
};

fn node_suite(column: &Column) {
    let engine = column.name;
    let data = onnx_data().join("node");
    let filter: Vec<String> = std::env::var("GRAPHC_NODE_TESTS")
        .map(|s| {
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let tests: Vec<PathBuf> = subdirs(&data, "test_")
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            filter.is_empty() || filter.iter().any(|f| n.starts_with(f.as_str()))
        })
        .collect();
    let scratch = std::env::temp_dir().join(format!(
        "graphc-conformance-{}-{engine}",
        std::process::id()
    ));
    std::fs::create_dir_all(&scratch).unwrap();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(String, Status)>> = Mutex::new(Vec::new());
    let start = Instant::now();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(dir) = tests.get(i) else { break };
                let st = run_node_test(dir, column, &scratch);
                let name = dir.file_name().unwrap().to_string_lossy().into_owned();
                results.lock().unwrap().push((name, st));
            });
        }
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let elapsed = start.elapsed();

    let allow_path = repo().join(format!("tests/conformance/node-{engine}.txt"));
    let allow = read_allowlist(&allow_path);
    let mut report = String::new();
    let (mut passed, mut failed) = (0, 0);
    let mut regressions = Vec::new();
    let mut crashes = Vec::new();
    let mut new_passes = Vec::new();
    for (name, st) in &results {
        let line = match st {
            Status::Pass => {
                passed += 1;
                if !allow.contains(name) {
                    new_passes.push(name.clone());
                }
                format!("{name} PASS")
            }
            other => {
                failed += 1;
                if allow.contains(name) {
                    regressions.push(format!("{name}: {other:?}"));
                }
                if matches!(other, Status::Panic(_) | Status::Hang) {
                    crashes.push(format!("{name}: {other:?}"));
                }
                format!("{name} {other:?}")
            }
        };
        report.push_str(&line);
        report.push('\n');
    }
    let report_dir = repo().join("target/conformance");
    std::fs::create_dir_all(&report_dir).unwrap();
    std::fs::write(report_dir.join(format!("node-{engine}.txt")), &report).unwrap();
    if filter.is_empty() && std::env::var_os("GRAPHC_UPDATE_ALLOWLIST").is_some() {
        let mut text = format!(
            "# ONNX 1.21.0 node tests expected to pass with `graphc run {}`.\n# Regenerate: GRAPHC_UPDATE_ALLOWLIST=1 cargo test --test it conformance::node_tests\n",
            column.args.join(" ")
        );
        for (name, st) in &results {
            if matches!(st, Status::Pass) {
                text.push_str(name);
                text.push('\n');
            }
        }
        std::fs::write(&allow_path, text).unwrap();
    }
    if !new_passes.is_empty() {
        println!(
            "{} tests pass but are not on the allowlist: {}",
            new_passes.len(),
            new_passes.join(" ")
        );
    }
    println!(
        "node tests ({engine}), {} tests in {:.1}s, report in target/conformance/node-{engine}.txt",
        results.len(),
        elapsed.as_secs_f64()
    );
    println!("conformance: {passed} passed, {failed} failed");
    assert!(
        crashes.is_empty(),
        "graphc panicked or hung on {} tests:\n{}",
        crashes.len(),
        crashes.join("\n")
    );
    assert!(
        regressions.is_empty(),
        "{} allowlisted tests fail:\n{}",
        regressions.len(),
        regressions.join("\n")
    );
}

#[test]
fn node_tests_reference() {
    node_suite(&REFERENCE);
}

#[test]
fn node_tests_reference_optimized() {
    node_suite(&REFERENCE_OPT);
}

/// Optimization loses no test: every test that passes unoptimized is on the optimized
/// column's allowlist too.
#[test]
fn optimized_allowlist_includes_unoptimized() {
    let dir = repo().join("tests/conformance");
    let plain = read_allowlist(&dir.join("node-reference.txt"));
    let opt = read_allowlist(&dir.join("node-reference-opt.txt"));
    let missing: Vec<&String> = plain.difference(&opt).collect();
    assert!(
        missing.is_empty(),
        "{} tests pass unoptimized but not optimized: {missing:?}",
        missing.len()
    );
}

#[test]
fn node_tests_jit() {
    node_suite(&JIT);
}

/// Compilation loses no test: every test that passes optimized with the reference evaluator
/// passes through the JIT too, except those listed with a reason in
/// `tests/conformance/node-jit-exceptions.txt`.
#[test]
fn jit_allowlist_includes_optimized() {
    let dir = repo().join("tests/conformance");
    let opt = read_allowlist(&dir.join("node-reference-opt.txt"));
    let jit = read_allowlist(&dir.join("node-jit.txt"));
    let exceptions = read_allowlist(&dir.join("node-jit-exceptions.txt"));
    let missing: Vec<&String> = opt
        .difference(&jit)
        .filter(|t| !exceptions.contains(*t))
        .collect();
    assert!(
        missing.is_empty(),
        "{} tests pass with the reference evaluator but not through the JIT: {missing:?}",
        missing.len()
    );
    let stale: Vec<&String> = exceptions.intersection(&jit).collect();
    assert!(stale.is_empty(), "exceptions that pass now: {stale:?}");
}

#[test]
fn node_tests_so() {
    node_suite(&SO);
}

/// A test that runs as a shared library runs through the JIT too (the library path has no
/// fallback, so its list is the tests every node of which has a kernel).
#[test]
fn so_allowlist_within_jit() {
    let dir = repo().join("tests/conformance");
    let jit = read_allowlist(&dir.join("node-jit.txt"));
    let so = read_allowlist(&dir.join("node-so.txt"));
    let extra: Vec<&String> = so.difference(&jit).collect();
    assert!(
        extra.is_empty(),
        "pass as .so but not through the JIT: {extra:?}"
    );
}

/// The library loses no test either: every test that passes optimized with the reference
/// evaluator runs as a shared library, except those listed with a reason in
/// `tests/conformance/node-so-exceptions.txt` (none so far).
#[test]
fn so_allowlist_includes_optimized() {
    let dir = repo().join("tests/conformance");
    let opt = read_allowlist(&dir.join("node-reference-opt.txt"));
    let so = read_allowlist(&dir.join("node-so.txt"));
    let exceptions = read_allowlist(&dir.join("node-so-exceptions.txt"));
    let missing: Vec<&String> = opt
        .difference(&so)
        .filter(|t| !exceptions.contains(*t))
        .collect();
    assert!(
        missing.is_empty(),
        "{} tests pass with the reference evaluator but not as a shared library: {missing:?}",
        missing.len()
    );
    let stale: Vec<&String> = exceptions.intersection(&so).collect();
    assert!(stale.is_empty(), "exceptions that pass now: {stale:?}");
    let unknown: Vec<&String> = exceptions.difference(&opt).collect();
    assert!(
        unknown.is_empty(),
        "exceptions not on the optimized list: {unknown:?}"
    );
}

#[test]
fn light_models_so() {
    light_models(&SO);
}

#[test]
fn light_models_jit() {
    light_models(&JIT);
}

#[test]
fn light_models_reference() {
    light_models(&REFERENCE);
}

#[test]
fn light_models_reference_optimized() {
    light_models(&REFERENCE_OPT);
}

/// The light model zoo: inputs are `arange(n).reshape(shape) / n` in float32 (unknown dims
/// set to 1), outputs compared with the stored ones.
fn light_models(column: &Column) {
    let dir = onnx_data().join("light");
    let models = crate::support::light_models();
    let scratch = std::env::temp_dir().join(format!(
        "graphc-light-{}-{}",
        std::process::id(),
        column.name
    ));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut failures = Vec::new();
    for model in &models {
        let stem = model.file_stem().unwrap().to_string_lossy().into_owned();
        let g = graphc::onnx::load_model(model, vec![]).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let mut args: Vec<OsString> = vec!["run".into(), model.clone().into()];
        args.extend(column.args.iter().map(OsString::from));
        for &id in &g.inputs {
            let node = g.node(id);
            if !matches!(node.op, graphc::passes::ir::Op::Input { default: None }) {
                continue;
            }
            let dims: Vec<usize> = node.outputs[0]
                .ty
                .shape
                .dims()
                .unwrap()
                .iter()
                .map(|d| d.known().unwrap_or(1))
                .collect();
            let n: usize = dims.iter().product();
            let data: Vec<f32> = (0..n).map(|i| (i as f64 / n as f64) as f32).collect();
            let path = scratch.join(format!("{stem}-{}.npy", args.len()));
            graphc::npy::write_npy(&path, &Tensor::from_vec(&dims, data).unwrap()).unwrap();
            args.push("--input".into());
            args.push(path.into());
        }
        let out = scratch.join(&stem);
        args.push("--output-dir".into());
        args.push(out.clone().into());
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let t0 = Instant::now();
        let outcome = graphc(&refs, Duration::from_secs(600));
        let secs = t0.elapsed().as_secs_f64();
        match outcome {
            Outcome::Exited(0, _) => {
                let expected =
                    graphc::onnx::read_pb(&dir.join(format!("{stem}_output_0.pb"))).unwrap();
                let actual = graphc::npy::read_npy(&out.join("output_0.npy")).unwrap();
                match compare(&actual, &expected, RTOL, ATOL) {
                    Ok(()) => println!("{stem} ({}): ok in {secs:.2}s", column.name),
                    Err(e) => failures.push(format!("{stem}: {e}")),
                }
            }
            other => failures.push(format!("{stem}: {other:?}")),
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!(
        "light models ({}): {} passed, {} failed",
        column.name,
        models.len() - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "light models failing:\n{}",
        failures.join("\n")
    );
}
