//! Shared helpers: locating test data, running the CLI, comparing tensors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

pub use graphc::passes::eval::compare;

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
