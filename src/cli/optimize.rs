//! `graphc optimize`: run the optimization pipeline and write the result as a standard ONNX
//! model, with an optional report of every pass. Also the optimizer flags that `run` and
//! `inspect` share.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use graphc_passes::egraph::RunnerConfig;
use graphc_passes::ir::{Dim, Graph};
use graphc_passes::pipeline::{Pipeline, PipelineReport};

use crate::onnx::{export_model, write_model, MIN_EXPORT_OPSET};

/// Limits of the equality-saturation runner (defaults from `GRAPHC_EGG_*` or built in).
#[derive(Args, Debug, Clone, Default)]
pub struct RunnerArgs {
    /// Stop each saturation after this many iterations [default: 30].
    #[arg(long, value_name = "N")]
    pub egg_iter_limit: Option<usize>,
    /// Stop each saturation when the e-graph has this many nodes [default: 200000].
    #[arg(long, value_name = "N")]
    pub egg_node_limit: Option<usize>,
    /// Stop each saturation after this many seconds [default: 20].
    #[arg(long, value_name = "SECS")]
    pub egg_time_limit: Option<f64>,
    /// Also run the `layout` pass (after `fuse`): the blocked channel layout NCHWc (8 f32
    /// lanes) for chains of convolutions. Off by default: the back end has no blocked
    /// kernels yet, so blocked ops run on the reference evaluator; ONNX export writes them
    /// as standard ops.
    #[arg(long, value_name = "LAYOUT", value_parser = ["nchwc"])]
    pub layout: Option<String>,
}

impl RunnerArgs {
    /// The pipeline these flags select: the default one, or with `--layout nchwc` the one
    /// with the layout pass.
    pub fn pipeline(&self) -> Pipeline {
        match self.layout.as_deref() {
            Some(_) => Pipeline::with_layout(),
            None => Pipeline::default(),
        }
    }

    /// The runner configuration: built-in defaults, then the environment, then the flags.
    pub fn config(&self) -> anyhow::Result<RunnerConfig> {
        let mut c = RunnerConfig::from_env().map_err(anyhow::Error::msg)?;
        if let Some(n) = self.egg_iter_limit {
            c.iter_limit = n;
        }
        if let Some(n) = self.egg_node_limit {
            c.node_limit = n;
        }
        if let Some(s) = self.egg_time_limit {
            c.time_limit = Duration::try_from_secs_f64(s)
                .map_err(|_| anyhow::anyhow!("--egg-time-limit: bad duration {s}"))?;
        }
        Ok(c)
    }
}

/// Arguments of `graphc optimize`.
#[derive(Args, Debug)]
pub struct OptimizeArgs {
    /// The .onnx model.
    pub model: PathBuf,
    /// Where to write the optimized model: OUT.onnx (standard ONNX ops only) or OUT.so (the
    /// compiled model as a shared library, with its C header OUT.h next to it).
    #[arg(long, short = 'o', value_name = "OUT.onnx|OUT.so")]
    pub output: Option<PathBuf>,
    /// Prefix of every symbol of a .so (a C identifier) [default: the output's file name].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// CPU features a .so may use (`native`: this machine's; the library refuses to run on
    /// a CPU without them. `baseline`: any x86-64 with SSE4.1).
    #[arg(long, value_enum, default_value_t = super::TargetCpu::Native)]
    pub target_cpu: super::TargetCpu,
    /// Print what each pass did: rules fired, e-graph size, stop reason, time, node counts
    /// per op before and after, and the memory plan's arena size.
    #[arg(long)]
    pub report: bool,
    /// The ONNX opset to write [default: the model's own, at least 18, raised when a fusion
    /// introduced a newer op].
    #[arg(long, value_name = "N")]
    pub opset: Option<i64>,
    /// Override an input's shape: NAME=D,D,... (numbers, symbolic names or ?).
    #[arg(long = "input-shape", value_name = "NAME=D,D,...", value_parser = super::parse_input_shape)]
    pub input_shapes: Vec<(String, Vec<Dim>)>,
    /// Fix an input's value: NAME=PATH (.npy or .pb). The input becomes a constant of the
    /// optimized model and leaves its inputs. A .so needs it for the inputs whose values
    /// decide shapes (Resize scales, Slice starts, a Reshape's shape, ...).
    #[arg(long = "bind", value_name = "NAME=PATH")]
    pub binds: Vec<String>,
    /// Saturation limits.
    #[command(flatten)]
    pub runner: RunnerArgs,
    /// Resource limits.
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

/// Loads the model with the `--input-shape` overrides and freezes the `--bind` inputs.
fn load_bound(args: &OptimizeArgs) -> anyhow::Result<Graph> {
    let g = crate::onnx::load_model_with(
        &args.model,
        args.input_shapes.clone(),
        &args.limits.limits(),
    )?;
    let names = super::run::bound_names(&g, &args.binds)?;
    let mut values = super::run::bind_inputs_partial(&g, &args.binds)?;
    super::run::freeze_bound(g, &mut values, &names)
}

/// Runs the pipeline the flags select (the default one unless `--layout`) on `g`.
pub fn optimize_graph(g: &Graph, runner: &RunnerArgs) -> anyhow::Result<(Graph, PipelineReport)> {
    let cfg = runner.config()?;
    Ok(runner.pipeline().run(g, &cfg)?)
}

/// Sets the symbolic and unknown dims of the graph inputs (those without a default) to 1,
/// without inferring again; returns the names bound (`?` for unknown dims).
pub fn bind_free_dims_to_one(g: &mut Graph) -> Vec<String> {
    use graphc_passes::ir::{Op, Shape};
    let mut bound = Vec::new();
    for id in g.inputs.clone() {
        let node = g.node_mut(id);
        if !matches!(node.op, Op::Input { default: None }) {
            continue;
        }
        if let Shape::Ranked(dims) = &mut node.outputs[0].ty.shape {
            for d in dims.iter_mut() {
                match d {
                    Dim::Known(_) => {}
                    Dim::Sym(s) => {
                        if !bound.contains(s) {
                            bound.push(s.clone());
                        }
                        *d = Dim::Known(1);
                    }
                    Dim::Unknown => {
                        if !bound.iter().any(|b| b == "?") {
                            bound.push("?".into());
                        }
                        *d = Dim::Known(1);
                    }
                }
            }
        }
    }
    bound
}

/// The memory plan's line for reports. The plan needs static shapes: symbolic and unknown
/// input dims are set to 1 for it, and the line says so.
pub fn arena_line(g: &Graph) -> String {
    // What the back end allocates: its graph has the compact weights materialized.
    let mut g = crate::codegen::program::prepare(g);
    let bound = bind_free_dims_to_one(&mut g);
    let plan = if bound.is_empty() {
        graphc_passes::plan::memory::plan(&g)
    } else {
        graphc_passes::infer::infer_graph(&mut g)
            .map_err(|e| e.to_string())
            .and_then(|_| graphc_passes::plan::memory::plan(&g))
    };
    let with = if bound.is_empty() {
        String::new()
    } else {
        format!(" (with {} = 1)", bound.join(", "))
    };
    match plan {
        Ok(p) => format!("memory{with}: {p}"),
        Err(e) => format!("memory{with}: no plan ({e})"),
    }
}

/// The default-domain opset a model imports (the model was imported already, so it decodes).
fn source_opset(path: &std::path::Path) -> Option<i64> {
    let bytes = std::fs::read(path).ok()?;
    let model = onnx_proto::decode_model(&bytes).ok()?;
    model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref().unwrap_or(""), "" | "ai.onnx"))
        .and_then(|o| o.version)
}

/// Runs `graphc optimize`.
pub fn run(args: OptimizeArgs) -> anyhow::Result<()> {
    if args.output.is_none() && !args.report {
        bail!("nothing to do: give -o OUT.onnx, --report, or both");
    }
    if let Some(out) = &args.output {
        match out.extension().and_then(|e| e.to_str()) {
            Some("onnx") => {}
            Some("so") => return write_library(&args, out),
            _ => bail!("{}: the output must be a .onnx or .so file", out.display()),
        }
    }
    if args.name.is_some() {
        bail!("--name only applies to a .so output");
    }
    let g = load_bound(&args)?;
    let (opt, report) = optimize_graph(&g, &args.runner)?;
    if args.report {
        print!("{report}");
        println!("{}", arena_line(&opt));
    }
    if let Some(out) = &args.output {
        let lowered =
            graphc_passes::lower::to_standard(&opt, args.opset.unwrap_or(MIN_EXPORT_OPSET))
                .map_err(anyhow::Error::msg)
                .context("lowering fused ops to standard ONNX")?;
        // The source model's opset has the forms its ops use; newer ops that fusion
        // introduced (Attention) may need more.
        let opset = match args.opset {
            Some(o) => o,
            None => source_opset(&args.model)
                .unwrap_or(MIN_EXPORT_OPSET)
                .max(crate::onnx::export::min_opset(&lowered)),
        };
        let model = export_model(&lowered, opset)?;
        write_model(out, &model)?;
        eprintln!(
            "wrote {} ({} nodes, opset {opset})",
            out.display(),
            model.graph.as_ref().map_or(0, |g| g.node.len())
        );
    }
    Ok(())
}

/// `graphc optimize MODEL -o OUT.so`: symbolic input dims are set to 1 unless
/// `--input-shape` gives them.
fn write_library(args: &OptimizeArgs, out: &std::path::Path) -> anyhow::Result<()> {
    use crate::codegen::aot::{default_name, write_shared_library, SoOptions};
    let name = match &args.name {
        Some(n) => n.clone(),
        None => default_name(&out.file_stem().unwrap_or_default().to_string_lossy()),
    };
    if !crate::codegen::aot::is_c_identifier(&name) {
        return Err(crate::codegen::aot::SoError::BadName(name).into());
    }
    let g = load_bound(args)?;
    // Initializers are constants of the library, not inputs.
    let mut none = vec![None; g.inputs.len()];
    let mut g = super::run::freeze_defaults(g, &mut none);
    let bound = bind_free_dims_to_one(&mut g);
    if !bound.is_empty() {
        eprintln!(
            "graphc: note: input dims {} set to 1 (choose them with --input-shape)",
            bound.join(", ")
        );
    }
    graphc_passes::infer::infer_graph(&mut g)?;
    let (opt, report) = optimize_graph(&g, &args.runner)?;
    if args.report {
        print!("{report}");
        println!("{}", arena_line(&opt));
    }
    if let Some(why) = super::run::dynamic_shape_reason(&opt) {
        bail!(
            "{}: cannot compile to a shared library: {why}",
            args.model.display()
        );
    }
    let rep = write_shared_library(
        &opt,
        out,
        &SoOptions {
            name,
            target: args.target_cpu.target(),
        },
    )
    .map_err(|e| super::run::library_error(&opt, e))?;
    eprintln!(
        "wrote {} ({}, workspace {}) and {}",
        rep.library.display(),
        graphc_passes::plan::memory::human_bytes(rep.library_bytes as usize),
        graphc_passes::plan::memory::human_bytes(rep.workspace_bytes),
        rep.header.display()
    );
    Ok(())
}
