//! Compiles `proto/onnx.proto` into Rust types with prost-build.
//!
//! The schema is parsed by protox (a pure-Rust protobuf compiler), so no
//! system `protoc` is required.

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");

    let fds = protox::compile(["onnx.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
