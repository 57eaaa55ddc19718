//! Compiled models in memory: `graphc run` and `graphc bench` execute through this.
//!
//! [`JitModel::compile`] builds the [`program`](super::program) into a `cranelift_jit`
//! module whose runtime symbols resolve to the pool compiled into this binary
//! (`runtime/graphc_rt.c`) and whose fallback nodes call back into [`Host`], which runs them
//! with the reference evaluator.

use std::collections::HashSet;
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::default_libcall_names;
use graphc_passes::eval::eval_op;
use graphc_passes::ir::{DType, Graph, NodeId, Tensor, ValueRef};

use super::bounded::with_bounds;
use super::buffer::{c_string_array, read_c_string_array, AlignedBuf};
use super::kernel::Target;
use super::program::{
    compile, prepare, CompileError, CompileOptions, CompiledOutput, Program, HOST_FALLBACK_SYMBOL,
    HOST_TICK_SYMBOL,
};
use crate::onnx::tensor::{from_le_bytes, le_bytes};

type KernelFn = unsafe extern "C" fn(*const *mut u8, u64, u64);

extern "C" {
    fn graphc_rt_pool_new(nthreads: c_int) -> *mut c_void;
    fn graphc_rt_pool_free(pool: *mut c_void);
    fn graphc_rt_pool_threads(pool: *const c_void) -> c_int;
    fn graphc_rt_parallel_for(
        pool: *mut c_void,
        k: KernelFn,
        bufs: *const *mut u8,
        items: u64,
        grain: u64,
    );
    fn graphc_rt_available_threads() -> c_int;
}

/// The number of CPUs online (the default thread count).
pub fn available_threads() -> usize {
    // SAFETY: a plain C function without arguments.
    unsafe { graphc_rt_available_threads() as usize }
}

/// A persistent thread pool (the runtime's).
pub struct Pool(*mut c_void);

// SAFETY: the pool is used by one `parallel_for` at a time (`JitModel::run` takes `&mut self`).
unsafe impl Send for Pool {}

impl Pool {
    /// A pool of `threads` threads including the caller (0: one per CPU).
    pub fn new(threads: usize) -> Result<Pool, String> {
        let n = threads.min(256) as c_int;
        // SAFETY: the runtime returns NULL or a valid pool.
        let p = unsafe { graphc_rt_pool_new(n) };
        if p.is_null() {
            return Err(format!("cannot start a pool of {threads} threads"));
        }
        Ok(Pool(p))
    }

    /// Threads, the caller included.
    pub fn threads(&self) -> usize {
        // SAFETY: a valid pool.
        unsafe { graphc_rt_pool_threads(self.0) as usize }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: the pool was made by pool_new and is freed once.
        unsafe { graphc_rt_pool_free(self.0) }
    }
}

/// The state fallback nodes run with, and the profile.
pub struct Host {
    /// The graph compiled, bounded values typed with their bound.
    graph: Graph,
    bounded: HashSet<ValueRef>,
    fallbacks: Vec<NodeId>,
    error: Option<String>,
    last_tick: Option<Instant>,
    step_seconds: Vec<f64>,
}

impl Host {
    fn run(&mut self, index: u64, table: *const *mut u8) -> Result<(), String> {
        let id = *self
            .fallbacks
            .get(index as usize)
            .ok_or("fallback index out of range")?;
        let g = &self.graph;
        let node = g.node(id);
        let mut ins: Vec<Option<Tensor>> = Vec::with_capacity(node.inputs.len());
        for (k, v) in node.inputs.iter().enumerate() {
            // SAFETY: the entry function filled inputs then outputs into the table.
            let p = unsafe { *table.add(k) };
            ins.push(match v {
                None => None,
                Some(v) => Some(read_value(g, *v, p)?),
            });
        }
        let refs: Vec<Option<&Tensor>> = ins.iter().map(|t| t.as_ref()).collect();
        let outs = eval_op(&node.op, &refs, node.outputs.len()).map_err(|e| {
            format!(
                "node '{}' ({}): {e}",
                node.display_name(),
                node.op.onnx_name()
            )
        })?;
        let mut dims_at = node.inputs.len() + node.outputs.len();
        for (o, t) in outs.iter().enumerate() {
            let ty = &node.outputs[o].ty;
            let dims = ty.shape.as_known().unwrap_or_default();
            let bounded = self.bounded.contains(&ValueRef {
                node: id,
                port: o as u32,
            });
            let fits = if bounded {
                t.shape().len() == dims.len() && t.len() <= dims.iter().product::<usize>()
            } else {
                t.shape() == dims.as_slice()
            };
            if bounded && fits && t.dtype() == ty.dtype {
                // SAFETY: after the outputs the table holds one i64[rank] array per bounded
                // output, in port order.
                unsafe {
                    let d = (*table.add(dims_at)).cast::<i64>();
                    for (k, &n) in t.shape().iter().enumerate() {
                        *d.add(k) = n as i64;
                    }
                }
                dims_at += 1;
            }
            if t.dtype() != ty.dtype || !fits {
                return Err(format!(
                    "node '{}' ({}): output {o} is {}{:?}, compiled for {ty}",
                    node.display_name(),
                    node.op.onnx_name(),
                    t.dtype(),
                    t.shape()
                ));
            }
            let bytes = le_bytes(t).ok_or("string outputs are not supported")?;
            // SAFETY: the table holds this output's buffer, sized for its compiled type.
            unsafe {
                let p = *table.add(node.inputs.len() + o);
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
            }
        }
        Ok(())
    }
}

fn read_value(g: &Graph, v: ValueRef, p: *const u8) -> Result<Tensor, String> {
    let ty = g.ty(v);
    let dims = ty.shape.as_known().ok_or("dynamic shape")?;
    let n: usize = dims.iter().product::<usize>() * ty.dtype.size();
    if ty.dtype == DType::String {
        // SAFETY: strings are graph inputs, arrays of C string pointers (see `bind`).
        return unsafe { read_c_string_array(p, &dims) };
    }
    // SAFETY: the buffer holds the value, sized for its static type.
    let bytes = unsafe { std::slice::from_raw_parts(p, n) };
    Ok(from_le_bytes(ty.dtype, &dims, bytes))
}

extern "C" fn host_fallback(host: *mut Host, index: u64, table: *const *mut u8) -> i32 {
    // SAFETY: the entry function passes the host pointer it was given by `JitModel::run`.
    let host = unsafe { &mut *host };
    match catch_unwind(AssertUnwindSafe(|| host.run(index, table))) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            host.error = Some(e);
            1
        }
        Err(_) => {
            host.error = Some("the reference evaluator panicked".into());
            2
        }
    }
}

extern "C" fn host_tick(host: *mut Host, step: i64) {
    // SAFETY: the entry function passes the host pointer it was given by `JitModel::run`.
    let host = unsafe { &mut *host };
    let now = Instant::now();
    if step >= 0 {
        if let (Some(t), Some(acc)) = (host.last_tick, host.step_seconds.get_mut(step as usize)) {
            *acc += (now - t).as_secs_f64();
        }
    }
    host.last_tick = Some(now);
}

type EntryFn =
    unsafe extern "C" fn(*mut c_void, *mut Host, *const *const u8, *const *mut u8, *mut u8) -> i32;

/// A model compiled in memory, ready to run.
pub struct JitModel {
    module: Option<JITModule>,
    entry: EntryFn,
    host: Box<Host>,
    pool: Pool,
    workspace: AlignedBuf,
    /// The compiled program (steps, memory plan).
    pub program: Program,
    /// Compile time in milliseconds.
    pub compile_ms: f64,
}

/// Options of [`JitModel::compile`].
#[derive(Clone, Debug)]
pub struct JitOptions {
    /// Threads (0: one per CPU).
    pub threads: usize,
    /// CPU features to use.
    pub target: Target,
    /// Time every step (see [`JitModel::profile`]).
    pub profile: bool,
}

impl Default for JitOptions {
    fn default() -> Self {
        JitOptions {
            threads: 0,
            target: Target::host(),
            profile: false,
        }
    }
}

/// Input and output buffers bound once, for repeated runs.
pub struct Io {
    inputs: Vec<AlignedBuf>,
    /// The bytes the pointers of string inputs point at.
    _strings: Vec<Vec<std::ffi::CString>>,
    outputs: Vec<AlignedBuf>,
    out_types: Vec<CompiledOutput>,
    /// The actual dims of each bounded output, in output order.
    dims: Vec<Vec<i64>>,
}

impl Io {
    /// The outputs of the last run (bounded ones with the dims the run reported).
    pub fn outputs(&mut self) -> Result<Vec<Tensor>, String> {
        let mut dims = self.dims.iter();
        self.out_types
            .iter()
            .zip(self.outputs.iter_mut())
            .map(|(o, b)| {
                let shape = if o.bounded() {
                    let d = dims.next().ok_or("missing dims of a bounded output")?;
                    actual_dims(d, &o.dims)?
                } else {
                    o.dims.clone()
                };
                let n = shape.iter().product::<usize>() * o.dtype.size();
                Ok(from_le_bytes(o.dtype, &shape, &b.bytes_mut()[..n]))
            })
            .collect()
    }
}

/// The dims a run reported for a bounded output, checked against its bound: a kernel that
/// reports more than the buffer holds is a compiler bug, caught here rather than read past.
pub fn actual_dims(reported: &[i64], bound: &[usize]) -> Result<Vec<usize>, String> {
    let dims: Vec<usize> = reported
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("a negative dim {d} was reported")))
        .collect::<Result<_, _>>()?;
    let fits = dims.len() == bound.len()
        && dims.iter().product::<usize>() <= bound.iter().product::<usize>();
    if !fits {
        return Err(format!(
            "internal error: dims {dims:?} reported for an output bounded by {bound:?}"
        ));
    }
    Ok(dims)
}

impl JitModel {
    /// Compiles `g` (verified; every shape static).
    pub fn compile(g: &Graph, opts: &JitOptions) -> Result<JitModel, CompileError> {
        let t0 = Instant::now();
        let g = &prepare(g);
        let internal = |e: String| CompileError::Internal(e);
        let mut flags = settings::builder();
        flags
            .set("is_pic", "false")
            .map_err(|e| internal(e.to_string()))?;
        flags
            .set("opt_level", "speed")
            .map_err(|e| internal(e.to_string()))?;
        let isa = cranelift_native::builder()
            .map_err(|e| internal(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| internal(e.to_string()))?;
        let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
        builder.symbol(
            "graphc_rt_parallel_for",
            graphc_rt_parallel_for as *const u8,
        );
        builder.symbol(HOST_FALLBACK_SYMBOL, host_fallback as *const u8);
        builder.symbol(HOST_TICK_SYMBOL, host_tick as *const u8);
        let mut module = JITModule::new(builder);
        let copts = CompileOptions {
            target: opts.target,
            prefix: "m_".into(),
            rt_prefix: "graphc_rt_".into(),
            allow_fallback: true,
            profile: opts.profile,
        };
        let program = compile(&mut module, g, &copts)?;
        module
            .finalize_definitions()
            .map_err(|e| internal(e.to_string()))?;
        let code = module.get_finalized_function(program.entry);
        // SAFETY: the entry function was compiled with exactly this signature.
        let entry: EntryFn = unsafe { std::mem::transmute(code) };
        let pool = Pool::new(opts.threads).map_err(CompileError::Unsupported)?;
        let workspace =
            AlignedBuf::try_new(program.workspace_bytes, 0).map_err(CompileError::Unsupported)?;
        let host = Box::new(Host {
            graph: with_bounds(g, &program.bounds),
            bounded: program.bounds.keys().copied().collect(),
            fallbacks: program.fallbacks.clone(),
            error: None,
            last_tick: None,
            step_seconds: vec![0.0; program.steps.len()],
        });
        Ok(JitModel {
            module: Some(module),
            entry,
            host,
            pool,
            workspace,
            program,
            compile_ms: t0.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// The threads kernels run on.
    pub fn threads(&self) -> usize {
        self.pool.threads()
    }

    /// Runs the model. `inputs` are in signature order and must have the compiled dtypes and
    /// shapes.
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>, String> {
        let mut io = self.bind(inputs)?;
        self.run_io(&mut io)?;
        io.outputs()
    }

    /// Checks `inputs` against the compiled types and copies them into buffers, with output
    /// buffers next to them.
    pub fn bind(&self, inputs: &[Tensor]) -> Result<Io, String> {
        let g = &self.host.graph;
        if inputs.len() != g.inputs.len() {
            return Err(format!(
                "the model takes {} inputs, {} given",
                g.inputs.len(),
                inputs.len()
            ));
        }
        let mut in_bufs = Vec::with_capacity(inputs.len());
        let mut strings = Vec::new();
        for (k, (t, &id)) in inputs.iter().zip(&g.inputs).enumerate() {
            let info = &g.node(id).outputs[0];
            let dims = info.ty.shape.as_known().unwrap_or_default();
            if t.dtype() != info.ty.dtype || t.shape() != dims.as_slice() {
                return Err(format!(
                    "input {k} '{}' must be {}, got {}{:?}",
                    info.name,
                    info.ty,
                    t.dtype(),
                    t.shape()
                ));
            }
            if t.dtype() == DType::String {
                let (owned, pointers) = c_string_array(t)?;
                in_bufs.push(AlignedBuf::from(&pointers));
                strings.push(owned);
            } else {
                in_bufs.push(AlignedBuf::from(&le_bytes(t).ok_or("unexpected strings")?));
            }
        }
        let out_types = self.program.outputs.clone();
        let outputs = out_types
            .iter()
            .map(|o| AlignedBuf::try_new(o.bytes(), 0))
            .collect::<Result<_, _>>()?;
        let dims = out_types
            .iter()
            .filter(|o| o.bounded())
            .map(|o| vec![0i64; o.dims.len().max(1)])
            .collect();
        Ok(Io {
            inputs: in_bufs,
            _strings: strings,
            outputs,
            out_types,
            dims,
        })
    }

    /// Runs the model on bound buffers.
    pub fn run_io(&mut self, io: &mut Io) -> Result<(), String> {
        let in_ptrs: Vec<*const u8> = io.inputs.iter_mut().map(|b| b.ptr() as *const u8).collect();
        let out_ptrs: Vec<*mut u8> = io
            .outputs
            .iter_mut()
            .map(|b| b.ptr())
            .chain(io.dims.iter_mut().map(|d| d.as_mut_ptr().cast()))
            .collect();
        self.run_raw(&in_ptrs, &out_ptrs)
    }

    /// Seconds spent in each step (in [`Program::steps`] order) over all runs so far; all
    /// zero unless compiled with [`JitOptions::profile`].
    pub fn profile(&self) -> &[f64] {
        &self.host.step_seconds
    }

    /// The graph compiled (after [`prepare`]).
    pub fn graph(&self) -> &Graph {
        &self.host.graph
    }

    /// Runs the model on raw buffers (for benchmarks: no conversions). Each pointer must point
    /// at a buffer of the compiled size of its input or output ([`Program::outputs`]); after
    /// the outputs, one `i64[rank]` array per bounded output receives its actual dims.
    pub fn run_raw(&mut self, inputs: &[*const u8], outputs: &[*mut u8]) -> Result<(), String> {
        let g = &self.host.graph;
        let bounded = self.program.outputs.iter().filter(|o| o.bounded()).count();
        if inputs.len() != g.inputs.len() || outputs.len() != g.outputs.len() + bounded {
            return Err("wrong number of buffers".into());
        }
        self.host.error = None;
        let host: *mut Host = &mut *self.host;
        // SAFETY: the buffers are sized for the compiled types (checked by the callers), the
        // workspace is the program's, and the pool and host outlive the call.
        let rc = unsafe {
            (self.entry)(
                self.pool.0,
                host,
                inputs.as_ptr(),
                outputs.as_ptr(),
                self.workspace.ptr(),
            )
        };
        if rc != 0 {
            return Err(self
                .host
                .error
                .take()
                .unwrap_or_else(|| format!("the compiled model failed with code {rc}")));
        }
        Ok(())
    }
}

impl Drop for JitModel {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: no pointer into the module's memory outlives the model.
            unsafe { m.free_memory() };
        }
    }
}
