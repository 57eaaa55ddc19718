//! graphc's middle end: the IR, the reference evaluator (the numeric oracle), shape and type
//! inference, and the passes that rewrite graphs. It does no I/O and knows nothing of
//! protobuf or of code generation.
#![warn(missing_docs)]

pub mod egraph;
pub mod eval;
pub mod fuse_elementwise;
pub mod infer;
pub mod inline;
pub mod ir;
pub mod lower;
pub mod pipeline;
pub mod plan;
pub mod rules;
