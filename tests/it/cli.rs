//! CLI behaviour on bad input: one clear line, exit code 1, never a panic.

use std::time::Duration;

use crate::support::{graphc, Outcome};

fn run_err(args: &[&str]) -> String {
    let os: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    match graphc(&os, Duration::from_secs(20)) {
        Outcome::Exited(1, e) => {
            assert_eq!(e.trim_end().lines().count(), 1, "expected one line, got: {e}");
            e.trim_end().to_string()
        }
        other => panic!("expected exit code 1, got {other:?}"),
    }
}

#[test]
fn missing_file() {
    let e = run_err(&["run", "/nonexistent/model.onnx"]);
    assert!(e.contains("/nonexistent/model.onnx") && e.contains("No such file"), "{e}");
}

#[test]
fn empty_file() {
    let dir = tempdir("empty");
    let p = dir.join("empty.onnx");
    std::fs::write(&p, b"").unwrap();
    let e = run_err(&["run", p.to_str().unwrap()]);
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn random_bytes() {
    let dir = tempdir("random");
    let p = dir.join("random.onnx");
    // A fixed pseudo-random byte string (xorshift), not a valid protobuf message.
    let mut x: u32 = 0x1234_5678;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(&p, bytes).unwrap();
    let e = run_err(&["inspect", p.to_str().unwrap()]);
    assert!(e.contains("not an ONNX model"), "{e}");
}

pub fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("graphc-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
