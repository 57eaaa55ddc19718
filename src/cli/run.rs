//! `graphc run`: import a model, bind inputs from files, evaluate, write outputs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use graphc_passes::ir::{Dim, Graph, Op, Shape, Tensor};

/// Arguments of `graphc run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The .onnx model.
    pub model: PathBuf,
    /// An input as [NAME=]PATH (.npy or .pb TensorProto). Without NAME, inputs bind in order to
    /// the graph inputs that have no initializer.
    #[arg(long = "input", short = 'i', value_name = "[NAME=]PATH")]
    pub inputs: Vec<String>,
    /// Fix an input's value at compile time: NAME=PATH (.npy or .pb). The input becomes a
    /// constant of the compiled model. The inputs whose values decide shapes (Resize scales,
    /// Slice starts, a Reshape's shape, ...) need it with `--engine so`.
    #[arg(long = "bind", value_name = "NAME=PATH")]
    pub binds: Vec<String>,
    /// Override an input's shape: NAME=D,D,... (numbers, symbolic names or ?).
    #[arg(long = "input-shape", value_name = "NAME=D,D,...", value_parser = super::parse_input_shape)]
    pub input_shapes: Vec<(String, Vec<Dim>)>,
    /// Where to write output_<i>.npy (created if missing).
    #[arg(long, short = 'o', default_value = ".")]
    pub output_dir: PathBuf,
    /// How to execute the model.
    #[arg(long, value_enum, default_value_t = Engine::Jit)]
    pub engine: Engine,
    /// Threads the compiled model runs on (default: one per CPU).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// CPU features the compiled model may use.
    #[arg(long, value_enum, default_value_t = super::TargetCpu::Native)]
    pub target_cpu: super::TargetCpu,
    /// Run the model as imported, without the optimization passes.
    #[arg(long)]
    pub no_optimize: bool,
    /// Saturation limits.
    #[command(flatten)]
    pub runner: super::optimize::RunnerArgs,
    /// Resource limits.
    #[command(flatten)]
    pub limits: super::limits::LimitArgs,
}

/// Execution engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Compiled to machine code in memory; nodes without a kernel run with the reference
    /// evaluator (with a warning naming their ops).
    Jit,
    /// The reference evaluator (exact ONNX semantics; the oracle).
    Reference,
    /// Compiled to a shared library (as `graphc optimize -o out.so` writes it) in a temporary
    /// folder, loaded and run through its C API: a test of the whole library path. Nodes
    /// without a kernel are an error.
    So,
}

/// Reads an input file by extension.
pub fn read_tensor(path: &Path) -> anyhow::Result<Tensor> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let t = match ext {
        "npy" => crate::npy::read_npy(path),
        "pb" => crate::onnx::read_pb(path),
        _ => {
            return Err(anyhow::anyhow!(
                "{}: inputs must be .npy or .pb files",
                path.display()
            ))
        }
    };
    t.map_err(anyhow::Error::msg)
}

/// Binds `[NAME=]PATH` arguments to the graph's inputs and checks dtypes and shapes; every
/// input without a default must be given.
pub fn bind_inputs(g: &Graph, args: &[String]) -> anyhow::Result<Vec<Option<Tensor>>> {
    bind(g, args, true)
}

/// [`bind_inputs`] where inputs may be left unbound (`None`).
pub fn bind_inputs_partial(g: &Graph, args: &[String]) -> anyhow::Result<Vec<Option<Tensor>>> {
    bind(g, args, false)
}

fn bind(g: &Graph, args: &[String], require_all: bool) -> anyhow::Result<Vec<Option<Tensor>>> {
    let names: Vec<&str> = g
        .inputs
        .iter()
        .map(|&i| g.node(i).outputs[0].name.as_str())
        .collect();
    let mut bound: Vec<Option<Tensor>> = vec![None; names.len()];
    let free: Vec<usize> = g
        .inputs
        .iter()
        .enumerate()
        .filter(|(_, &i)| matches!(g.node(i).op, Op::Input { default: None }))
        .map(|(k, _)| k)
        .collect();
    let mut next_free = 0;
    for a in args {
        let (slot, path) = match a.split_once('=') {
            Some((name, path)) if names.contains(&name) => (
                names.iter().position(|n| *n == name).expect("contained"),
                path,
            ),
            Some((name, _)) if !Path::new(a).exists() => {
                bail!(
                    "--input {a}: the model has no input named '{name}' (inputs: {})",
                    names.join(", ")
                )
            }
            _ => {
                let Some(&k) = free.get(next_free) else {
                    bail!(
                        "--input {a}: more inputs given than the model takes ({})",
                        free.len()
                    );
                };
                next_free += 1;
                (k, a.as_str())
            }
        };
        if bound[slot].is_some() {
            bail!("input '{}' is given twice", names[slot]);
        }
        let t = read_tensor(Path::new(path))?;
        bound[slot] = Some(t);
    }
    let mut syms: HashMap<String, usize> = HashMap::new();
    for (k, &id) in g.inputs.iter().enumerate() {
        let info = &g.node(id).outputs[0];
        match &bound[k] {
            None => {
                if require_all && matches!(g.node(id).op, Op::Input { default: None }) {
                    bail!(
                        "input '{}' ({}) is missing: pass --input {}=PATH",
                        info.name,
                        info.ty,
                        info.name
                    );
                }
            }
            Some(t) => {
                if t.dtype() != info.ty.dtype {
                    bail!(
                        "input '{}' must be {} but the file holds {}",
                        info.name,
                        info.ty,
                        describe(t)
                    );
                }
                if let Shape::Ranked(dims) = &info.ty.shape {
                    let ok = dims.len() == t.shape().len()
                        && dims.iter().zip(t.shape()).all(|(d, &n)| match d {
                            Dim::Known(k) => *k == n,
                            Dim::Sym(s) => *syms.entry(s.clone()).or_insert(n) == n,
                            Dim::Unknown => true,
                        });
                    if !ok {
                        bail!(
                            "input '{}' must be {} but the file holds {}",
                            info.name,
                            info.ty,
                            describe(t)
                        );
                    }
                }
            }
        }
    }
    Ok(bound)
}

/// The input names of `--bind NAME=PATH` arguments, checked against the graph's inputs.
pub fn bound_names(g: &Graph, binds: &[String]) -> anyhow::Result<Vec<String>> {
    let names: Vec<&str> = g
        .inputs
        .iter()
        .map(|&i| g.node(i).outputs[0].name.as_str())
        .collect();
    let mut out: Vec<String> = Vec::new();
    for b in binds {
        let Some((name, _)) = b.split_once('=') else {
            bail!("--bind {b}: expected NAME=PATH");
        };
        if !names.contains(&name) {
            bail!(
                "--bind {b}: the model has no input named '{name}' (inputs: {})",
                names.join(", ")
            );
        }
        if out.iter().any(|n| n == name) {
            bail!("input '{name}' is bound twice");
        }
        out.push(name.to_string());
    }
    Ok(out)
}

/// Turns the inputs named in `names` into constants holding their bound values, dropping
/// them from the graph's inputs and from `inputs`, and infers again (shapes that depended
/// on those values become static).
pub fn freeze_bound(
    mut g: Graph,
    inputs: &mut Vec<Option<Tensor>>,
    names: &[String],
) -> anyhow::Result<Graph> {
    if names.is_empty() {
        return Ok(g);
    }
    let mut keep = Vec::new();
    let mut kept_inputs = Vec::new();
    for (k, id) in g.inputs.clone().into_iter().enumerate() {
        let bound = inputs.get(k).cloned().flatten();
        let name = &g.node(id).outputs[0].name;
        match bound {
            Some(value) if names.contains(name) => g.node_mut(id).op = Op::Constant { value },
            _ => {
                keep.push(id);
                kept_inputs.push(bound);
            }
        }
    }
    g.inputs = keep;
    *inputs = kept_inputs;
    graphc_passes::infer::infer_graph(&mut g)?;
    Ok(g)
}

/// The reason a fixed-shape library cannot hold `g`, naming the value with a data-dependent
/// shape and, when the values of some inputs decide shapes, those inputs and the option
/// that fixes them.
pub fn dynamic_shape_reason(g: &Graph) -> Option<String> {
    let v = first_dynamic_value(g)?;
    let shape_inputs: Vec<String> = graphc_passes::infer::shape_inputs(g)
        .into_iter()
        .map(|k| format!("'{}'", g.node(g.inputs[k]).outputs[0].name))
        .collect();
    Some(if shape_inputs.is_empty() {
        format!("value {v} has a data-dependent shape")
    } else {
        format!(
            "value {v} has a data-dependent shape; the values of input(s) {} decide shapes: fix them with --bind NAME=FILE",
            shape_inputs.join(", ")
        )
    })
}

/// A library build error, with a hint naming the unbound shape inputs when nodes had no
/// kernel (kernels need such parameters as constants).
pub fn library_error(g: &Graph, e: crate::codegen::aot::SoError) -> anyhow::Error {
    use crate::codegen::aot::SoError;
    use crate::codegen::program::CompileError;
    let names: Vec<String> = graphc_passes::infer::shape_inputs(g)
        .into_iter()
        .map(|k| format!("'{}'", g.node(g.inputs[k]).outputs[0].name))
        .collect();
    match e {
        SoError::Compile(CompileError::NoKernel(_)) if !names.is_empty() => anyhow::anyhow!(
            "{e}; the values of input(s) {} decide shapes and parameters: fix them with --bind NAME=FILE",
            names.join(", ")
        ),
        e => e.into(),
    }
}

/// `f32[2,3]`: a tensor's dtype and shape as the text format writes types.
fn describe(t: &Tensor) -> String {
    format!("{}{}", t.dtype(), Shape::known(t.shape()))
}

/// The optimizer folds inputs that have an initializer as constants; an input the caller
/// gives a value for is no constant, so its initializer is dropped before optimizing.
fn without_overridden_defaults(mut g: Graph, inputs: &[Option<Tensor>]) -> anyhow::Result<Graph> {
    let mut changed = false;
    for (k, id) in g.inputs.clone().into_iter().enumerate() {
        if inputs.get(k).is_some_and(Option::is_some) {
            if let Op::Input { default } = &mut g.node_mut(id).op {
                changed |= default.take().is_some();
            }
        }
    }
    if changed {
        graphc_passes::infer::infer_graph(&mut g)?;
    }
    Ok(g)
}

/// Turns every graph input that has a default and no bound value into a constant (it cannot
/// change for this run, or for a compiled library), dropping it from `inputs` too.
pub fn freeze_defaults(mut g: Graph, inputs: &mut Vec<Option<Tensor>>) -> Graph {
    let mut keep = Vec::new();
    let mut kept_inputs = Vec::new();
    for (k, id) in g.inputs.clone().into_iter().enumerate() {
        let bound = inputs.get(k).cloned().flatten();
        let default = match &g.node(id).op {
            Op::Input { default: Some(d) } if bound.is_none() => Some(d.clone()),
            _ => None,
        };
        match default {
            Some(value) => g.node_mut(id).op = Op::Constant { value },
            None => {
                keep.push(id);
                kept_inputs.push(bound);
            }
        }
    }
    g.inputs = keep;
    *inputs = kept_inputs;
    g
}

/// Gives every graph input the shape of the tensor bound to it (or of its default) and
/// infers all shapes again, so that a compiled model has static shapes wherever the data
/// allows.
pub fn specialize(mut g: Graph, inputs: &[Option<Tensor>]) -> anyhow::Result<Graph> {
    for (k, id) in g.inputs.clone().into_iter().enumerate() {
        let node = g.node_mut(id);
        let shape = match (inputs.get(k).and_then(Option::as_ref), &node.op) {
            (Some(t), _) => t.shape().to_vec(),
            (None, Op::Input { default: Some(d) }) => d.shape().to_vec(),
            _ => continue,
        };
        node.outputs[0].ty.shape = Shape::known(&shape);
    }
    graphc_passes::infer::infer_graph(&mut g)?;
    Ok(g)
}

/// The first value whose shape is not static, if any (a model output whose shape the data
/// decides is not: it compiles with a bound).
pub fn first_dynamic_value(g: &Graph) -> Option<String> {
    // Model outputs whose shape the data decides compile with a bound.
    let (bounded, _) = crate::codegen::bounded::bounded_values(g);
    g.nodes().find_map(|(id, n)| {
        n.outputs
            .iter()
            .enumerate()
            .find(|&(port, o)| {
                let v = graphc_passes::ir::ValueRef {
                    node: id,
                    port: port as u32,
                };
                o.ty.shape.as_known().is_none() && !bounded.contains_key(&v)
            })
            .map(|(_, o)| format!("'{}' ({})", o.name, o.ty))
    })
}

/// Inputs in signature order for a compiled model: the bound tensors, defaults elsewhere.
pub fn complete_inputs(g: &Graph, inputs: &[Option<Tensor>]) -> anyhow::Result<Vec<Tensor>> {
    g.inputs
        .iter()
        .enumerate()
        .map(
            |(k, &id)| match (inputs.get(k).cloned().flatten(), &g.node(id).op) {
                (Some(t), _) => Ok(t),
                (None, Op::Input { default: Some(d) }) => Ok(d.clone()),
                _ => bail!("input '{}' is missing", g.node(id).outputs[0].name),
            },
        )
        .collect()
}

/// One warning line naming the ops that run with the reference evaluator, if any.
pub fn fallback_warning(g: &Graph, p: &crate::codegen::program::Program) -> Option<String> {
    let ops = crate::codegen::program::fallback_ops(g, p);
    if ops.is_empty() {
        return None;
    }
    let list: Vec<String> = ops
        .iter()
        .map(|(op, n)| {
            if *n == 1 {
                op.clone()
            } else {
                format!("{op} x{n}")
            }
        })
        .collect();
    Some(format!(
        "graphc: warning: {} node(s) have no kernel yet and run with the reference evaluator: {}",
        p.fallbacks.len(),
        list.join(", ")
    ))
}

fn run_jit(
    g: &Graph,
    inputs: &[Option<Tensor>],
    threads: Option<usize>,
    target: crate::codegen::kernel::Target,
    limits: &crate::limits::Limits,
) -> anyhow::Result<Vec<Tensor>> {
    let reference = |why: String| -> anyhow::Result<Vec<Tensor>> {
        eprintln!("graphc: warning: {why}; the whole model runs with the reference evaluator");
        Ok(graphc_passes::eval::util::with_element_limit(
            limits.elements,
            || graphc_passes::eval::eval_graph(g, inputs),
        )?)
    };
    if let Some(v) = first_dynamic_value(g) {
        return reference(format!("value {v} has a data-dependent shape"));
    }
    let opts = crate::codegen::jit::JitOptions {
        threads: threads.unwrap_or(0),
        target,
        ..Default::default()
    };
    let mut model = match crate::codegen::jit::JitModel::compile(g, &opts) {
        Ok(m) => m,
        Err(crate::codegen::program::CompileError::Unsupported(why)) => return reference(why),
        Err(e) => return Err(e.into()),
    };
    if let Some(w) = fallback_warning(model.graph(), &model.program) {
        eprintln!("{w}");
    }
    let inputs = complete_inputs(g, inputs)?;
    model.run(&inputs).map_err(anyhow::Error::msg)
}

fn run_so(
    g: &Graph,
    inputs: &[Option<Tensor>],
    threads: Option<usize>,
    target: crate::codegen::kernel::Target,
) -> anyhow::Result<Vec<Tensor>> {
    use crate::codegen::aot::{write_shared_library, SoOptions};
    use crate::onnx::tensor::{from_le_bytes, le_bytes};
    if let Some(why) = dynamic_shape_reason(g) {
        bail!("cannot compile to a shared library: {why}");
    }
    let dir = std::env::temp_dir().join(format!(
        "graphc-run-so-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir)?;
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let so = dir.join("model.so");
    let name = "graphc_model";
    write_shared_library(
        g,
        &so,
        &SoOptions {
            name: name.into(),
            target,
        },
    )
    .map_err(|e| library_error(g, e))?;
    let inputs = complete_inputs(g, inputs)?;
    // Strings go as arrays of C string pointers into `_strings`.
    let mut _strings = Vec::new();
    let mut in_bytes: Vec<Vec<u8>> = Vec::with_capacity(inputs.len());
    for t in &inputs {
        if t.dtype() == graphc_passes::ir::DType::String {
            let (owned, pointers) =
                crate::codegen::buffer::c_string_array(t).map_err(anyhow::Error::msg)?;
            _strings.push(owned);
            in_bytes.push(pointers);
        } else {
            in_bytes.push(le_bytes(t).context("unexpected strings")?);
        }
    }
    // SAFETY: the library was just written by graphc with this API; the buffers have the
    // sizes its metadata declares, and it is unloaded after the last call.
    unsafe {
        let lib = libloading::Library::new(&so)?;
        type RunFn =
            unsafe extern "C" fn(*const *const u8, *const *mut u8, *const *mut i64, *mut u8) -> i32;
        type CountFn = unsafe extern "C" fn() -> usize;
        type InfoFn = unsafe extern "C" fn(usize) -> *const TensorInfo;
        type SetThreadsFn = unsafe extern "C" fn(i32) -> i32;
        type ErrFn = unsafe extern "C" fn(i32) -> *const std::ffi::c_char;
        let sym = |what: &str| format!("{name}_{what}\0");
        let run: libloading::Symbol<RunFn> = lib.get(sym("run_with_shapes").as_bytes())?;
        let num_outputs: libloading::Symbol<CountFn> = lib.get(sym("num_outputs").as_bytes())?;
        let output_info: libloading::Symbol<InfoFn> = lib.get(sym("output_info").as_bytes())?;
        let set_threads: libloading::Symbol<SetThreadsFn> =
            lib.get(sym("set_threads").as_bytes())?;
        let error: libloading::Symbol<ErrFn> = lib.get(sym("error_string").as_bytes())?;
        let release: libloading::Symbol<unsafe extern "C" fn()> =
            lib.get(sym("release").as_bytes())?;
        // What the library declares for each output (the bound for a bounded one).
        let mut outs_info = Vec::new();
        for j in 0..num_outputs() {
            let info = &*output_info(j);
            let dtype = graphc_passes::ir::DType::from_onnx(info.dtype)
                .with_context(|| format!("output {j} has an unknown dtype {}", info.dtype))?;
            let dims: Vec<usize> = (0..info.rank as usize)
                .map(|d| *info.shape.add(d) as usize)
                .collect();
            outs_info.push((dtype, dims, info.bytes));
        }
        // Outputs as u64 words: aligned for every element type.
        let mut out_bufs: Vec<Vec<u64>> = outs_info
            .iter()
            .map(|(_, _, bytes)| vec![0u64; bytes.div_ceil(8).max(1)])
            .collect();
        let mut shapes: Vec<Vec<i64>> = outs_info
            .iter()
            .map(|(_, dims, _)| vec![-1i64; dims.len().max(1)])
            .collect();
        let rc = set_threads(threads.unwrap_or(0).min(256) as i32);
        if rc != 0 {
            bail!("--threads: the library refused it (code {rc})");
        }
        let ins: Vec<*const u8> = in_bytes.iter().map(|b| b.as_ptr()).collect();
        let outs: Vec<*mut u8> = out_bufs.iter_mut().map(|b| b.as_mut_ptr().cast()).collect();
        let shape_ptrs: Vec<*mut i64> = shapes.iter_mut().map(|s| s.as_mut_ptr()).collect();
        let rc = run(
            ins.as_ptr(),
            outs.as_ptr(),
            shape_ptrs.as_ptr(),
            std::ptr::null_mut(),
        );
        release();
        if rc != 0 {
            let msg = std::ffi::CStr::from_ptr(error(rc))
                .to_string_lossy()
                .into_owned();
            bail!("the compiled library failed: {msg} (code {rc})");
        }
        outs_info
            .iter()
            .zip(&out_bufs)
            .zip(&shapes)
            .map(|(((dt, bound, _), b), reported)| {
                let dims = crate::codegen::jit::actual_dims(&reported[..bound.len()], bound)
                    .map_err(anyhow::Error::msg)?;
                let n = dims.iter().product::<usize>() * dt.size();
                // SAFETY: a u64 buffer of at least the bound's bytes viewed as bytes.
                let bytes = std::slice::from_raw_parts(b.as_ptr().cast::<u8>(), n);
                Ok(from_le_bytes(*dt, &dims, bytes))
            })
            .collect()
    }
}

/// The library's `NAME_tensor_info` (see the generated header).
#[repr(C)]
struct TensorInfo {
    name: *const std::ffi::c_char,
    dtype: i32,
    rank: i32,
    shape: *const i64,
    bytes: usize,
    bounded: i32,
}

/// Runs `graphc run`.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let limits = args.limits.limits();
    let g = crate::onnx::load_model_with(&args.model, args.input_shapes.clone(), &limits)?;
    let frozen = bound_names(&g, &args.binds)?;
    let given: Vec<String> = args.inputs.iter().chain(&args.binds).cloned().collect();
    let mut inputs = bind_inputs(&g, &given)?;
    let g = freeze_bound(g, &mut inputs, &frozen)?;
    if args.threads == Some(0) {
        bail!("--threads must be at least 1");
    }
    let g = if args.engine != Engine::Reference {
        let g = freeze_defaults(g, &mut inputs);
        specialize(g, &inputs)?
    } else {
        g
    };
    let g = if args.no_optimize {
        g
    } else {
        let g = without_overridden_defaults(g, &inputs)?;
        super::optimize::optimize_graph(&g, &args.runner)?.0
    };
    let outputs = match args.engine {
        Engine::Reference => {
            graphc_passes::eval::util::with_element_limit(limits.elements, || {
                graphc_passes::eval::eval_graph(&g, &inputs)
            })?
        }
        Engine::So => run_so(&g, &inputs, args.threads, args.target_cpu.target())?,
        Engine::Jit => run_jit(&g, &inputs, args.threads, args.target_cpu.target(), &limits)?,
    };
    std::fs::create_dir_all(&args.output_dir)
        .with_context(|| format!("cannot create output folder {}", args.output_dir.display()))?;
    for (i, (t, o)) in outputs.iter().zip(&g.outputs).enumerate() {
        let path = args.output_dir.join(format!("output_{i}.npy"));
        crate::npy::write_npy(&path, t).map_err(anyhow::Error::msg)?;
        println!(
            "output {i} '{}': {} -> {}",
            o.name,
            describe(t),
            path.display()
        );
    }
    Ok(())
}
