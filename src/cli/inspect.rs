//! `graphc inspect`: print a model's IR, as imported or after optimization passes.

use std::path::PathBuf;

use clap::Args;
use graphc_passes::ir::text::print;
use graphc_passes::ir::Dim;

use super::optimize::RunnerArgs;

/// Arguments of `graphc inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The .onnx model.
    pub model: PathBuf,
    /// Override an input's shape: NAME=D,D,... (numbers, symbolic names or ?).
    #[arg(long = "input-shape", value_name = "NAME=D,D,...", value_parser = super::parse_input_shape)]
    pub input_shapes: Vec<(String, Vec<Dim>)>,
    /// Print the IR after the named pass of the optimization pipeline (simplify, inline-if,
    /// fuse, fuse-elementwise; layout with --layout nchwc).
    #[arg(long, value_name = "PASS", conflicts_with = "after_all")]
    pub stop_after: Option<String>,
    /// Print the IR as imported and after every pass.
    #[arg(long)]
    pub after_all: bool,
    /// Saturation limits.
    #[command(flatten)]
    pub runner: RunnerArgs,
    /// Resource limits.
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

/// Runs `graphc inspect`.
pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let g = crate::onnx::load_model_with(&args.model, args.input_shapes, &args.limits.limits())?;
    if args.stop_after.is_none() && !args.after_all {
        return super::print_stdout(&print(&g));
    }
    let cfg = args.runner.config()?;
    let mut text = String::new();
    if args.after_all {
        text.push_str("; as imported\n");
        text.push_str(&print(&g));
    }
    let (last, _) =
        args.runner
            .pipeline()
            .run_with(&g, &cfg, args.stop_after.as_deref(), |pass, out| {
                if args.after_all {
                    text.push_str(&format!("\n; after pass {pass}\n"));
                    text.push_str(&print(out));
                }
            })?;
    if !args.after_all {
        text = print(&last);
    }
    super::print_stdout(&text)
}
