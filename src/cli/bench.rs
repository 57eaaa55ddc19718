//! `graphc bench`: compile a model without and with the optimization passes, run each
//! compiled model repeatedly, and compare latencies.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use graphc_passes::ir::{Dim, Graph, Op, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::codegen::jit::{JitModel, JitOptions};
use crate::codegen::program::StepKind;

/// Arguments of `graphc bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The .onnx model.
    pub model: PathBuf,
    /// Timed runs of each compiled model (after the warm-up).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub runs: usize,
    /// Untimed runs before timing [default: runs / 10, at least 2].
    #[arg(long, value_name = "N")]
    pub warmup: Option<usize>,
    /// Threads the compiled models run on [default: one per CPU].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// CPU features the compiled models may use.
    #[arg(long, value_enum, default_value_t = super::TargetCpu::Native)]
    pub target_cpu: super::TargetCpu,
    /// An input as [NAME=]PATH (.npy or .pb); inputs not given are seeded random values.
    #[arg(long = "input", short = 'i', value_name = "[NAME=]PATH")]
    pub inputs: Vec<String>,
    /// Override an input's shape: NAME=D,D,... (symbolic dims not given are set to 1).
    #[arg(long = "input-shape", value_name = "NAME=D,D,...", value_parser = super::parse_input_shape)]
    pub input_shapes: Vec<(String, Vec<Dim>)>,
    /// Also time every step of the optimized model and print the slowest.
    #[arg(long)]
    pub profile: bool,
    /// Print one JSON object on the last line of stdout.
    #[arg(long)]
    pub json: bool,
    /// Saturation limits.
    #[command(flatten)]
    pub runner: super::optimize::RunnerArgs,
    /// Resource limits.
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

/// Latency figures of one compiled model.
struct Measured {
    compile_ms: f64,
    median_ms: f64,
    p90_ms: f64,
    arena_bytes: usize,
    fallbacks: usize,
}

fn spinner(msg: String) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg);
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// The `q` quantile (0..=1) of sorted values, by the nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn measure(
    label: &str,
    g: &Graph,
    optimize: bool,
    inputs: &[Tensor],
    args: &BenchArgs,
    profile: bool,
) -> anyhow::Result<(Measured, JitModel)> {
    let pb = spinner(format!("{label}: compiling"));
    let t0 = Instant::now();
    let g = if optimize {
        super::optimize::optimize_graph(g, &args.runner)?.0
    } else {
        g.clone()
    };
    let opts = JitOptions {
        threads: args.threads.unwrap_or(0),
        target: args.target_cpu.target(),
        profile,
        ..Default::default()
    };
    let mut model = JitModel::compile(&g, &opts)?;
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;
    if let Some(w) = super::run::fallback_warning(model.graph(), &model.program) {
        pb.suspend(|| eprintln!("{w} ({label})"));
    }
    let mut io = model.bind(inputs).map_err(anyhow::Error::msg)?;
    let warmup = args.warmup.unwrap_or((args.runs / 10).max(2));
    pb.set_length((warmup + args.runs) as u64);
    pb.set_message(format!("{label}: running"));
    for _ in 0..warmup {
        model.run_io(&mut io).map_err(anyhow::Error::msg)?;
        pb.inc(1);
    }
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let t = Instant::now();
        model.run_io(&mut io).map_err(anyhow::Error::msg)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        pb.inc(1);
    }
    pb.finish_and_clear();
    times.sort_by(f64::total_cmp);
    Ok((
        Measured {
            compile_ms,
            median_ms: quantile(&times, 0.5),
            p90_ms: quantile(&times, 0.9),
            arena_bytes: model.program.arena_bytes,
            fallbacks: model.program.fallbacks.len(),
        },
        model,
    ))
}

/// Runs `graphc bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if args.threads == Some(0) {
        bail!("--threads must be at least 1");
    }
    let limits = args.limits.limits();
    let g = crate::onnx::load_model_with(&args.model, args.input_shapes.clone(), &limits)?;
    let mut bound = super::run::bind_inputs_partial(&g, &args.inputs)?;
    let mut g = super::run::freeze_defaults(g, &mut bound);
    let fixed = super::optimize::bind_free_dims_to_one(&mut g);
    if !fixed.is_empty() {
        eprintln!(
            "graphc: note: input dims {} set to 1 (choose them with --input-shape)",
            fixed.join(", ")
        );
    }
    let g = super::run::specialize(g, &bound)?;
    if let Some(v) = super::run::first_dynamic_value(&g) {
        bail!("cannot compile: value {v} has a data-dependent shape");
    }
    // Seeded random values for the inputs not given.
    let random = graphc_passes::eval::random_inputs(&g, 1).map_err(anyhow::Error::msg)?;
    let inputs: Vec<Tensor> = bound
        .into_iter()
        .zip(random)
        .zip(&g.inputs)
        .map(|((b, r), &id)| {
            b.or(r)
                .with_context(|| format!("input '{}' has no value", g.node(id).outputs[0].name))
        })
        .collect::<anyhow::Result<_>>()?;
    for &id in &g.inputs {
        debug_assert!(matches!(g.node(id).op, Op::Input { .. }));
    }

    let (plain, _) = measure("unoptimized", &g, false, &inputs, &args, false)?;
    let (opt, model) = measure("optimized", &g, true, &inputs, &args, args.profile)?;
    let threads = model.threads();
    let speedup = plain.median_ms / opt.median_ms;
    let name = args.model.display().to_string();
    println!(
        "{name}: {threads} thread(s), {} runs after warm-up",
        args.runs
    );
    println!(
        "{:<12} {:>11} {:>11} {:>11} {:>12} {:>10}",
        "", "compile ms", "median ms", "p90 ms", "arena", "fallbacks"
    );
    for (label, m) in [("unoptimized", &plain), ("optimized", &opt)] {
        println!(
            "{label:<12} {:>11.1} {:>11.3} {:>11.3} {:>12} {:>10}",
            m.compile_ms,
            m.median_ms,
            m.p90_ms,
            graphc_passes::plan::memory::human_bytes(m.arena_bytes),
            m.fallbacks
        );
    }
    println!("speedup (median): {speedup:.2}x");
    if args.profile {
        print_profile(
            &model,
            args.runs + args.warmup.unwrap_or((args.runs / 10).max(2)),
        );
    }
    if args.json {
        let j = |m: &Measured| {
            format!(
                "{{\"compile_ms\": {:.3}, \"median_ms\": {:.4}, \"p90_ms\": {:.4}}}",
                m.compile_ms, m.median_ms, m.p90_ms
            )
        };
        println!(
            "{{\"model\": {}, \"threads\": {threads}, \"runs\": {}, \"unoptimized\": {}, \"optimized\": {}, \"speedup\": {:.4}, \"arena_bytes\": {}}}",
            json_string(&name),
            args.runs,
            j(&plain),
            j(&opt),
            speedup,
            opt.arena_bytes
        );
    }
    Ok(())
}

/// Time per step of the optimized model, slowest first (the top 25 and the rest summed).
fn print_profile(model: &JitModel, runs: usize) {
    let g = model.graph();
    let secs = model.profile();
    let total: f64 = secs.iter().sum();
    let mut rows: Vec<(f64, String)> = model
        .program
        .steps
        .iter()
        .zip(secs)
        .map(|(s, &t)| {
            let node = g.node(s.node);
            let how = match &s.kind {
                StepKind::Kernel(l) => l
                    .launches
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join("+"),
                StepKind::Fallback(_) => "reference".to_string(),
            };
            let ty = node
                .outputs
                .first()
                .map(|o| o.ty.to_string())
                .unwrap_or_default();
            (
                t,
                format!(
                    "{} '{}' -> {ty} [{how}]",
                    node.op.onnx_name(),
                    node.display_name()
                ),
            )
        })
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!(
        "profile (optimized, {} steps, mean over {runs} runs):",
        rows.len()
    );
    for (t, what) in rows.iter().take(25) {
        println!(
            "{:>9.3} ms {:>5.1}%  {what}",
            t * 1e3 / runs as f64,
            100.0 * t / total.max(1e-12)
        );
    }
    if rows.len() > 25 {
        let rest: f64 = rows[25..].iter().map(|r| r.0).sum();
        println!(
            "{:>9.3} ms {:>5.1}%  ({} more steps)",
            rest * 1e3 / runs as f64,
            100.0 * rest / total.max(1e-12),
            rows.len() - 25
        );
    }
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
