//! Shared helpers: locating test data, running the CLI, comparing tensors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use graphc::passes::ir::{DType, Tensor};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The ONNX test data folder (fetched by scripts/fetch-onnx-testdata.sh). Panics with the
/// command to run when it is missing: a missing dataset is a failure, not a skip.
pub fn onnx_data() -> PathBuf {
    let dir = std::env::var_os("GRAPHC_ONNX_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/onnx-1.21.0"));
    assert!(
        dir.join(".complete").exists(),
        "ONNX test data missing at {}: run scripts/fetch-onnx-testdata.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// How a CLI invocation ended.
#[derive(Debug)]
pub enum Outcome {
    /// Exit code and stderr.
    Exited(i32, String),
    /// Killed by a signal (or exit code unavailable).
    Crashed(String),
    /// Still running after the timeout; killed.
    TimedOut,
}

/// Runs `graphc ARGS` with a timeout.
pub fn graphc(args: &[&std::ffi::OsStr], timeout: Duration) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_graphc"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the graphc binary runs");
    let start = Instant::now();
    loop {
        match child.try_wait().expect("wait on child") {
            Some(status) => {
                let mut err = String::new();
                if let Some(mut s) = child.stderr.take() {
                    use std::io::Read;
                    let _ = s.read_to_string(&mut err);
                }
                return match status.code() {
                    Some(c) => Outcome::Exited(c, err),
                    None => Outcome::Crashed(err),
                };
            }
            None if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::TimedOut;
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// Compares an actual output with the expected one: same shape; same dtype (bf16 is
/// written to .npy as f32 and compared after rounding back); floats within
/// `atol + rtol * |expected|`, NaN where NaN is expected; everything else exactly.
pub fn compare(actual: &Tensor, expected: &Tensor, rtol: f64, atol: f64) -> Result<(), String> {
    let actual = if expected.dtype() == DType::BF16 && actual.dtype() == DType::F32 {
        actual.cast(DType::BF16)
    } else {
        actual.clone()
    };
    if actual.dtype() != expected.dtype() {
        return Err(format!(
            "dtype {} != expected {}",
            actual.dtype(),
            expected.dtype()
        ));
    }
    if actual.shape() != expected.shape() {
        return Err(format!(
            "shape {:?} != expected {:?}",
            actual.shape(),
            expected.shape()
        ));
    }
    match (&actual, expected) {
        (Tensor::Str(a), Tensor::Str(b)) => {
            if let Some((i, (x, y))) = a
                .iter()
                .zip(b.iter())
                .enumerate()
                .find(|(_, (x, y))| x != y)
            {
                return Err(format!("element {i}: {x:?} != expected {y:?}"));
            }
            Ok(())
        }
        _ if expected.dtype().is_float() => {
            let (a, b) = (actual.to_f64_vec(), expected.to_f64_vec());
            let mut worst: Option<(usize, f64, f64)> = None;
            let mut bad = 0usize;
            for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
                let ok = if y.is_nan() {
                    x.is_nan()
                } else if y.is_infinite() {
                    x == y
                } else {
                    (x - y).abs() <= atol + rtol * y.abs()
                };
                if !ok {
                    bad += 1;
                    if worst.is_none() {
                        worst = Some((i, x, y));
                    }
                }
            }
            match worst {
                None => Ok(()),
                Some((i, x, y)) => Err(format!(
                    "{bad} of {} elements differ; first at {i}: {x} vs expected {y}",
                    a.len()
                )),
            }
        }
        _ => {
            if actual == *expected {
                Ok(())
            } else {
                let (a, b) = (actual.to_f64_vec(), expected.to_f64_vec());
                let i = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(0);
                Err(format!("element {i}: {} != expected {}", a[i], b[i]))
            }
        }
    }
}

/// Sorted subfolders of `dir` whose names start with `prefix`.
pub fn subdirs(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    v.sort();
    v
}

/// `<stem><k>.pb` files of a test data set, ordered by `k` (so input_10 follows input_9).
pub fn numbered(dir: &Path, stem: &str) -> Vec<PathBuf> {
    let mut v: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let k = name.strip_prefix(stem)?.strip_suffix(".pb")?.parse().ok()?;
                    Some((k, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// The 9 light models (`.onnx` files), sorted.
pub fn light_models() -> Vec<PathBuf> {
    let dir = onnx_data().join("light");
    let mut models: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    models.sort();
    assert_eq!(
        models.len(),
        9,
        "expected the 9 light models in {}",
        dir.display()
    );
    models
}

/// A tensor `ValueInfoProto` with element type code `elem` and static `dims`, for tests that
/// build models by hand.
pub fn value_info(name: &str, elem: i32, dims: &[i64]) -> graphc::onnx_proto::ValueInfoProto {
    use graphc::onnx_proto as p;
    p::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(p::TypeProto {
            value: Some(p::type_proto::Value::TensorType(p::type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(p::TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| p::tensor_shape_proto::Dimension {
                            value: Some(p::tensor_shape_proto::dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
