//! graphc: an optimizing compiler for ONNX models on CPUs.
//!
//! This crate is the front end (ONNX import), the back end, and the command-line interface.
//! The middle end (IR, reference evaluator, inference, passes) lives in `graphc-passes` and is
//! re-exported here as [`passes`], so library users see one crate.
#![warn(missing_docs)]

pub mod cli;
pub mod codegen;
pub mod limits;
pub mod npy;
pub mod onnx;

pub use graphc_passes as passes;
pub use onnx_proto;
