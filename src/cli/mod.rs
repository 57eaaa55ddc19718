//! The command-line interface: one `Args` struct and one `run` function per subcommand.

use clap::{Parser, Subcommand};

pub mod bench;
pub mod inspect;
pub mod limits;
pub mod optimize;
pub mod run;

/// graphc: an optimizing compiler for ONNX models on CPUs.
#[derive(Parser, Debug)]
#[command(name = "graphc", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a model on inputs and write its outputs as .npy files.
    Run(run::RunArgs),
    /// Optimize a model: write it as standard ONNX (-o OUT.onnx) and/or report each pass.
    Optimize(optimize::OptimizeArgs),
    /// Compile a model without and with the optimization passes and compare their latency.
    Bench(bench::BenchArgs),
    /// Print a model's IR (the graphc text format) with the type of every value, as
    /// imported or after optimization passes.
    Inspect(inspect::InspectArgs),
}

/// Parses the command line and runs the subcommand.
pub fn main_with_args(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Optimize(a) => optimize::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Bench(a) => bench::run(a),
    }
}

/// Which CPU features compiled code may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetCpu {
    /// Everything this machine has (AVX2/FMA, AVX-512 GEMM kernels when present).
    #[default]
    Native,
    /// Only baseline x86-64 with SSE4.1 (128-bit Cranelift code everywhere): runs on any
    /// x86-64 CPU of the last fifteen years.
    Baseline,
}

impl TargetCpu {
    /// The kernel target.
    pub fn target(self) -> crate::codegen::kernel::Target {
        match self {
            TargetCpu::Native => crate::codegen::kernel::Target::host(),
            TargetCpu::Baseline => crate::codegen::kernel::Target::baseline(),
        }
    }
}

/// Parses `NAME=D,D,...` (dims are numbers, symbols or `?`).
pub fn parse_input_shape(s: &str) -> Result<(String, Vec<graphc_passes::ir::Dim>), String> {
    use graphc_passes::ir::Dim;
    let (name, dims) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("'{s}' is not NAME=D,D,..."))?;
    if name.is_empty() {
        return Err(format!("'{s}' has an empty input name"));
    }
    let dims = if dims.trim().is_empty() {
        vec![]
    } else {
        dims.split(',')
            .map(|d| {
                let d = d.trim();
                if d == "?" {
                    Ok(Dim::Unknown)
                } else if let Ok(n) = d.parse::<usize>() {
                    Ok(Dim::Known(n))
                } else if d
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                {
                    Ok(Dim::Sym(d.to_string()))
                } else {
                    Err(format!(
                        "'{d}' in '{s}' is not a dimension (a number, a name or ?)"
                    ))
                }
            })
            .collect::<Result<_, _>>()?
    };
    Ok((name.to_string(), dims))
}

/// Writes to stdout; a closed pipe (`graphc inspect m.onnx | head`) is not an error.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
