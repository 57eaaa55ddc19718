//! `graphc inspect`: print a model's IR.

use std::path::PathBuf;

use clap::Args;
use graphc_passes::ir::Dim;

/// Arguments of `graphc inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The .onnx model.
    pub model: PathBuf,
    /// Override an input's shape: NAME=D,D,... (numbers, symbolic names or ?).
    #[arg(long = "input-shape", value_name = "NAME=D,D,...", value_parser = super::parse_input_shape)]
    pub input_shapes: Vec<(String, Vec<Dim>)>,
    /// Resource limits.
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

/// Runs `graphc inspect`.
pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let g = crate::onnx::load_model_with(&args.model, args.input_shapes, &args.limits.limits())?;
    super::print_stdout(&graphc_passes::ir::text::print(&g))
}
