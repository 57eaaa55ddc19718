//! A whole model compiled into one Cranelift module: a kernel (or a reference-evaluator
//! fallback) per node, and one entry function that runs the schedule over a single workspace
//! laid out by the memory plan.
//!
//! The entry function has the System V signature
//!
//! ```text
//! int32_t entry(void *pool, void *host, const void *const *inputs, void *const *outputs,
//!               void *workspace)
//! ```
//!
//! `inputs[i]` / `outputs[j]` are the graph inputs and outputs in signature order, as dense
//! row-major little-endian buffers; after the outputs, `outputs` holds one `int64_t[rank]`
//! array per output whose shape the data decides ([`CompiledOutput::bounded`]), which
//! receives its actual dims. `workspace` is [`Program::workspace_bytes`] bytes aligned
//! to 64 (the arena, then the scratch space the largest node needs). For each launch the entry
//! function fills an operand table on its stack and calls the runtime's `parallel_for(pool,
//! kernel, table, items, grain)`; a fallback node calls the host's `fallback(host, index,
//! table)` with its inputs, its outputs, then the dims arrays of its bounded outputs in the
//! table, and a nonzero result is returned at once. Graph outputs are written in place by the nodes that produce them; outputs that are
//! graph inputs, constants or repeated are copied at the end.
//!
//! The same code is built into a JIT module (`graphc run`, `graphc bench`) and into an object
//! module (`graphc optimize -o out.so`); only the runtime symbols' names differ.

use std::collections::HashMap;

use cranelift_codegen::ir::{
    types, AbiParam, Function, GlobalValueData, InstBuilder, MemFlagsData, Signature,
    StackSlotData, StackSlotKind, UserFuncName, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_module::{DataId, FuncId, Linkage, Module};
use graphc_passes::ir::{DType, Graph, NodeId, Op, ValueRef};
use graphc_passes::plan::memory::{plan, MemoryPlan, ALIGN};

use super::bounded::{bounded_values, with_bounds, Bound};
use super::kernel::{KernelCx, Launch, Lowered, Operand, Target};
use super::kernels;
use crate::onnx::tensor::le_bytes;

/// How a model is compiled.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// CPU features the kernels may use.
    pub target: Target,
    /// Prefix of every symbol the module defines (e.g. `resnet_`).
    pub prefix: String,
    /// The runtime's symbol prefix (`graphc_rt_` in the JIT).
    pub rt_prefix: String,
    /// Whether nodes without a kernel may call the host's reference evaluator (JIT only).
    pub allow_fallback: bool,
    /// Call the host's `tick(host, step)` after every step, for profiles (JIT only).
    pub profile: bool,
}

/// Why a model does not compile.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Some nodes have no kernel and fallback is not allowed; (node, op) pairs.
    #[error("no kernel for {}", describe_missing(.0))]
    NoKernel(Vec<(String, String)>),
    /// The graph is outside what the compiled engine handles (dynamic shapes, strings).
    #[error("{0}")]
    Unsupported(String),
    /// A kernel or the entry function failed to compile (a compiler bug).
    #[error("internal compiler error: {0}")]
    Internal(String),
}

fn describe_missing(v: &[(String, String)]) -> String {
    let mut ops: Vec<&str> = v.iter().map(|(_, op)| op.as_str()).collect();
    ops.sort();
    ops.dedup();
    let first = &v[0];
    format!(
        "{} node(s) of op(s) {} (first: node '{}' ({}))",
        v.len(),
        ops.join(", "),
        first.0,
        first.1
    )
}

/// Where a value lives while the entry function runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loc {
    Input(usize),
    Output(usize),
    Arena(usize),
    Const(DataId),
}

/// What one step of the schedule does.
#[derive(Clone, Debug)]
pub enum StepKind {
    /// Kernels.
    Kernel(Lowered),
    /// The host's reference evaluator; the index into [`Program::fallbacks`].
    Fallback(usize),
}

/// One scheduled node.
#[derive(Clone, Debug)]
pub struct Step {
    /// The node.
    pub node: NodeId,
    /// How it runs.
    pub kind: StepKind,
}

/// The result of compiling a graph into a module.
#[derive(Debug)]
pub struct Program {
    /// The entry function.
    pub entry: FuncId,
    /// The steps in schedule order.
    pub steps: Vec<Step>,
    /// Nodes run by the host's reference evaluator, by fallback index.
    pub fallbacks: Vec<NodeId>,
    /// The model outputs as compiled, in signature order.
    pub outputs: Vec<CompiledOutput>,
    /// The values compiled with an upper bound of their shape (see
    /// [`crate::codegen::bounded`]), with the bound.
    pub bounds: HashMap<ValueRef, Bound>,
    /// The memory plan the arena follows.
    pub plan: MemoryPlan,
    /// Arena bytes (the start of the workspace).
    pub arena_bytes: usize,
    /// Scratch bytes after the arena.
    pub scratch_bytes: usize,
    /// Total workspace bytes the entry function needs.
    pub workspace_bytes: usize,
}

/// A model output as compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledOutput {
    /// The element type.
    pub dtype: DType,
    /// The shape, or its upper bound when [`bounded`](Self::bounded).
    pub dims: Vec<usize>,
    /// The dim the data decides, if any (see [`crate::codegen::bounded`]).
    pub varying: Option<usize>,
}

impl CompiledOutput {
    /// The data decides the shape: the buffer has room for `dims` and the entry function
    /// writes the actual dims to `outputs[num_outputs + k]` for the k-th bounded output.
    pub fn bounded(&self) -> bool {
        self.varying.is_some()
    }

    /// Buffer bytes.
    pub fn bytes(&self) -> usize {
        self.dims.iter().product::<usize>() * self.dtype.size()
    }
}

impl Program {
    /// Launches over all steps.
    pub fn launch_count(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match &s.kind {
                StepKind::Kernel(l) => l.launches.len(),
                StepKind::Fallback(_) => 0,
            })
            .sum()
    }
}

/// The ops of the fallback nodes, counted, sorted by name (for warnings).
pub fn fallback_ops(g: &Graph, p: &Program) -> Vec<(String, usize)> {
    let mut m: HashMap<String, usize> = HashMap::new();
    for &n in &p.fallbacks {
        *m.entry(g.node(n).op.onnx_name().to_string()).or_default() += 1;
    }
    let mut v: Vec<(String, usize)> = m.into_iter().collect();
    v.sort();
    v
}

/// Bytes of a value's buffer. Strings may only be graph inputs: an array of pointers to
/// NUL-terminated bytes, one per element, which the caller owns.
fn byte_len(g: &Graph, v: ValueRef) -> Result<usize, CompileError> {
    let ty = g.ty(v);
    if ty.dtype == DType::String && !matches!(g.node(v.node).op, Op::Input { .. }) {
        return Err(CompileError::Unsupported(format!(
            "value '{}' holds strings, which compiled models support only as inputs",
            g.value(v).name
        )));
    }
    let dims = ty.shape.as_known().ok_or_else(|| {
        CompileError::Unsupported(format!(
            "value '{}' has no static shape ({})",
            g.value(v).name,
            ty
        ))
    })?;
    dims.iter()
        .try_fold(ty.dtype.size(), |a, &d| a.checked_mul(d))
        .ok_or_else(|| {
            CompileError::Unsupported(format!("value '{}' is too large", g.value(v).name))
        })
}

/// Most elements a splat constant is expanded to by [`prepare`] (the optimizer keeps large
/// splats compact; a kernel needs their data, e.g. to pack weights).
const MAX_SPLAT_ELEMENTS: usize = 1 << 28;

/// The graph the back end compiles: `ConstantOfShape` nodes whose shape is a constant become
/// `Constant`s holding the data (what the reference would compute), so that kernels can pack
/// them like any weights. Node ids stay the same.
pub fn prepare(g: &Graph) -> Graph {
    let mut g = g.clone();
    for id in g.node_ids().to_vec() {
        let node = g.node(id);
        if !matches!(node.op, Op::ConstantOfShape { .. }) {
            continue;
        }
        let Some(Some(shape_v)) = node.inputs.first().copied() else {
            continue;
        };
        let Op::Constant { value: shape } = &g.node(shape_v.node).op else {
            continue;
        };
        let n = node.outputs[0].ty.shape.num_elements();
        if n.is_none_or(|n| n > MAX_SPLAT_ELEMENTS) {
            continue;
        }
        let Ok(mut out) = graphc_passes::eval::eval_op(&node.op, &[Some(shape)], 1) else {
            continue;
        };
        let value = out.remove(0);
        for slot in 0..g.node(id).inputs.len() {
            g.set_input(id, slot, None);
        }
        let node = g.node_mut(id);
        node.inputs.clear();
        node.op = Op::Constant { value };
    }
    // A FusedMatMul whose bias or residual the GEMM epilogue cannot take (a bias broadcast
    // over the batch, as attention masks are), and a half-precision FusedSoftmax, run as
    // their standard ops, each compiled.
    let unfuse: Vec<NodeId> = g
        .node_ids()
        .iter()
        .copied()
        .filter(|&id| {
            let dt = g.node(id).outputs[0].ty.dtype;
            match g.node(id).op {
                Op::FusedMatMul { .. } => {
                    dt == DType::F32 && !kernels::gemm::takes_fused_mat_mul(&g, id)
                }
                // Half precision: the standard ops round where the reference rounds (the
                // sum before Softmax), and `decompose` widens the MatMul and Softmax.
                Op::FusedSoftmax { .. } => matches!(dt, DType::F16 | DType::BF16),
                _ => false,
            }
        })
        .collect();
    if !unfuse.is_empty() {
        let before = g.clone();
        let lowered = unfuse
            .into_iter()
            .all(|id| graphc_passes::lower::lower_node(&mut g, id, crate::onnx::MAX_OPSET).is_ok());
        if !lowered || g.toposort().is_err() {
            // Keep the fused nodes (the reference evaluator runs them) rather than compile a
            // half-lowered graph.
            g = before;
        }
    }
    // Ops that `decompose` rewrites into ops that have kernels.
    let rewrite: Vec<NodeId> = g
        .node_ids()
        .iter()
        .copied()
        .filter(|&id| super::decompose::handles(&g.node(id).op))
        .collect();
    if !rewrite.is_empty() {
        let before = g.clone();
        let inlined = rewrite
            .iter()
            .any(|&id| super::decompose::control::is_control(&g.node(id).op));
        for id in rewrite {
            super::decompose::rewrite(&mut g, id);
        }
        if g.toposort().is_err() {
            // Cannot happen (the new nodes only read what the rewritten node read); keep the
            // nodes whole rather than compile a broken order.
            return before;
        }
        g.remove_dead_nodes();
        if inlined {
            // Inlined bodies compute indices from constant iteration numbers: fold them, and
            // type the inlined nodes exactly.
            let mut folded = g.clone();
            fold_constants(&mut folded);
            folded.remove_dead_nodes();
            if graphc_passes::infer::infer_graph(&mut folded).is_ok() {
                g = folded;
            }
        }
    }
    g
}

/// Largest number of elements [`fold_constants`] computes for one value.
const FOLD_ELEMENTS: usize = 4096;

/// Replaces every single-output node whose inputs are all constants (and whose output is
/// small) by the constant the reference evaluator computes for it, in order.
fn fold_constants(g: &mut Graph) {
    if g.toposort().is_err() {
        return;
    }
    for id in g.node_ids().to_vec() {
        let node = g.node(id);
        if matches!(
            node.op,
            Op::Input { .. }
                | Op::Constant { .. }
                | Op::If { .. }
                | Op::Loop { .. }
                | Op::Scan { .. }
                | Op::Dropout { .. }
        ) || node.outputs.len() != 1
            || node.inputs.is_empty()
            || node.outputs[0]
                .ty
                .shape
                .num_elements()
                .is_none_or(|n| n > FOLD_ELEMENTS)
        {
            continue;
        }
        let args: Option<Vec<Option<&graphc_passes::ir::Tensor>>> = node
            .inputs
            .iter()
            .map(|v| match v {
                None => Some(None),
                Some(v) => match &g.node(v.node).op {
                    Op::Constant { value } => Some(Some(value)),
                    _ => None,
                },
            })
            .collect();
        let Some(args) = args else {
            continue;
        };
        let Ok(mut out) = graphc_passes::eval::eval_op(&node.op, &args, 1) else {
            continue;
        };
        let value = out.remove(0);
        for slot in 0..g.node(id).inputs.len() {
            g.set_input(id, slot, None);
        }
        let node = g.node_mut(id);
        node.inputs.clear();
        node.op = Op::Constant { value };
    }
}

/// Compiles `g` (verified, every shape static; see [`prepare`]) into `module`.
pub fn compile(
    module: &mut dyn Module,
    g: &Graph,
    opts: &CompileOptions,
) -> Result<Program, CompileError> {
    // Outputs whose shape the data decides get their bound as type (the JIT may leave the
    // others to the reference evaluator; a library cannot).
    let (bounds, refused) = bounded_values(g);
    if let (Some(why), false) = (refused, opts.allow_fallback) {
        return Err(CompileError::Unsupported(why));
    }
    let bounded_graph;
    let g = if bounds.is_empty() {
        g
    } else {
        bounded_graph = with_bounds(g, &bounds);
        &bounded_graph
    };
    for (id, node) in g.nodes() {
        let _ = id;
        for o in 0..node.outputs.len() {
            byte_len(
                g,
                ValueRef {
                    node: id,
                    port: o as u32,
                },
            )?;
        }
    }
    let plan = plan(g).map_err(CompileError::Unsupported)?;

    // Kernels, node by node.
    let mut steps = Vec::new();
    let mut fallbacks = Vec::new();
    let mut missing = Vec::new();
    let mut const_data: HashMap<ValueRef, DataId> = HashMap::new();
    let mut scratch_bytes = 0usize;
    {
        let mut cx =
            KernelCx::new(module, opts.target, &opts.prefix).with_bounded(bounds.keys().copied());
        for &id in &plan.schedule {
            let node = g.node(id);
            if matches!(node.op, Op::Input { .. } | Op::Constant { .. }) {
                continue;
            }
            let lowered = kernels::lower(&mut cx, g, id).map_err(|e| {
                CompileError::Internal(format!(
                    "node '{}' ({}): {e}",
                    node.display_name(),
                    node.op.onnx_name()
                ))
            })?;
            let kind = match lowered {
                Some(l) => {
                    scratch_bytes = scratch_bytes.max(l.scratch_bytes);
                    StepKind::Kernel(l)
                }
                None => {
                    if !opts.allow_fallback {
                        missing.push((node.display_name(), node.op.onnx_name().to_string()));
                    }
                    fallbacks.push(id);
                    StepKind::Fallback(fallbacks.len() - 1)
                }
            };
            steps.push(Step { node: id, kind });
        }
        if !missing.is_empty() {
            return Err(CompileError::NoKernel(missing));
        }
        // Constants read by a launch or a fallback become data objects.
        for s in &steps {
            let node = g.node(s.node);
            let reads_inputs: Vec<usize> = match &s.kind {
                StepKind::Fallback(_) => (0..node.inputs.len()).collect(),
                StepKind::Kernel(l) => l
                    .launches
                    .iter()
                    .flat_map(|l| l.operands.iter())
                    .filter_map(|o| match o {
                        Operand::Input(i) => Some(*i),
                        _ => None,
                    })
                    .collect(),
            };
            for i in reads_inputs {
                let Some(Some(v)) = node.inputs.get(i) else {
                    continue;
                };
                if let Op::Constant { value } = &g.node(v.node).op {
                    if let std::collections::hash_map::Entry::Vacant(e) = const_data.entry(*v) {
                        let bytes = le_bytes(value).ok_or_else(|| {
                            CompileError::Unsupported("string constants are not supported".into())
                        })?;
                        // A data object may not be empty.
                        let bytes = if bytes.is_empty() {
                            vec![0u8; 1]
                        } else {
                            bytes
                        };
                        let d = cx
                            .add_const(&format!("const_{}", g.value(*v).name), bytes)
                            .map_err(CompileError::Internal)?;
                        e.insert(d);
                    }
                }
            }
        }
    }

    // Where every value lives.
    let mut loc: HashMap<ValueRef, Loc> = HashMap::new();
    for (k, &id) in g.inputs.iter().enumerate() {
        loc.insert(ValueRef { node: id, port: 0 }, Loc::Input(k));
    }
    for (v, d) in &const_data {
        loc.insert(*v, Loc::Const(*d));
    }
    for (v, &(off, _)) in &plan.offsets {
        loc.insert(*v, Loc::Arena(off));
    }
    let mut final_copies: Vec<(ValueRef, usize, usize)> = Vec::new();
    let mut redirected: HashMap<ValueRef, usize> = HashMap::new();
    for (j, out) in g.outputs.iter().enumerate() {
        if g.ty(out.value).dtype == DType::String {
            return Err(CompileError::Unsupported(format!(
                "output '{}' holds strings, which compiled models support only as inputs",
                out.name
            )));
        }
        let bytes = byte_len(g, out.value)?;
        let producer = &g.node(out.value.node).op;
        let computed = !matches!(producer, Op::Input { .. } | Op::Constant { .. });
        if computed && !redirected.contains_key(&out.value) {
            redirected.insert(out.value, j);
            loc.insert(out.value, Loc::Output(j));
        } else {
            final_copies.push((out.value, j, bytes));
        }
    }
    // Constants that are graph outputs need data objects too.
    let mut copies = Vec::new();
    for (v, j, bytes) in final_copies {
        let src = match loc.get(&v) {
            Some(l) => *l,
            None => {
                let Op::Constant { value } = &g.node(v.node).op else {
                    return Err(CompileError::Internal(format!(
                        "output '{}' has no location",
                        g.outputs[j].name
                    )));
                };
                let bytes = le_bytes(value).ok_or_else(|| {
                    CompileError::Unsupported("string constants are not supported".into())
                })?;
                let bytes = if bytes.is_empty() {
                    vec![0u8; 1]
                } else {
                    bytes
                };
                let mut cx = KernelCx::new(module, opts.target, &format!("{}o{j}_", opts.prefix));
                let d = cx
                    .add_const("const_out", bytes)
                    .map_err(CompileError::Internal)?;
                loc.insert(v, Loc::Const(d));
                Loc::Const(d)
            }
        };
        copies.push((src, j, bytes));
    }
    let copy_funcs: Vec<(FuncId, u64)> = {
        let mut cx = KernelCx::new(module, opts.target, &format!("{}final_", opts.prefix));
        copies
            .iter()
            .map(|&(_, _, bytes)| {
                kernels::copy::emit_copy(&mut cx, bytes as u64)
                    .map(|f| (f, (bytes as u64).div_ceil(kernels::copy::CHUNK)))
                    .map_err(CompileError::Internal)
            })
            .collect::<Result<_, _>>()?
    };

    let arena_bytes = plan.arena_bytes;
    let scratch_at = arena_bytes.div_ceil(ALIGN) * ALIGN;
    // The actual dims of a bounded output go to the caller's array after the output buffers
    // (in output order); those of a bounded value nobody reads, to a sink after the scratch.
    let sink_at = (scratch_at + scratch_bytes).div_ceil(ALIGN) * ALIGN;
    let mut dims_loc: HashMap<ValueRef, Loc> = HashMap::new();
    let mut outputs = Vec::with_capacity(g.outputs.len());
    for out in &g.outputs {
        let ty = g.ty(out.value);
        let varying = bounds.get(&out.value).map(|b| b.varying);
        if varying.is_some() {
            let slot = g.outputs.len() + dims_loc.len();
            dims_loc.insert(out.value, Loc::Output(slot));
        }
        outputs.push(CompiledOutput {
            dtype: ty.dtype,
            dims: ty.shape.as_known().unwrap_or_default(),
            varying,
        });
    }
    let mut sink_bytes = 0;
    for (v, b) in &bounds {
        if !dims_loc.contains_key(v) {
            dims_loc.insert(*v, Loc::Arena(sink_at));
            sink_bytes = sink_bytes.max(8 * b.dims.len());
        }
    }
    let workspace_bytes = (sink_at + sink_bytes).max(ALIGN);

    let entry = build_entry(
        module,
        g,
        opts,
        &steps,
        &loc,
        &dims_loc,
        scratch_at,
        &copies,
        &copy_funcs,
    )?;
    Ok(Program {
        entry,
        steps,
        fallbacks,
        outputs,
        bounds,
        plan,
        arena_bytes,
        scratch_bytes,
        workspace_bytes,
    })
}

/// The signature of the entry function.
pub fn entry_signature(ptr: types::Type) -> Signature {
    let mut sig = Signature::new(CallConv::SystemV);
    for _ in 0..5 {
        sig.params.push(AbiParam::new(ptr));
    }
    sig.returns.push(AbiParam::new(types::I32));
    sig
}

#[allow(clippy::too_many_arguments)]
fn build_entry(
    module: &mut dyn Module,
    g: &Graph,
    opts: &CompileOptions,
    steps: &[Step],
    loc: &HashMap<ValueRef, Loc>,
    dims_loc: &HashMap<ValueRef, Loc>,
    scratch_at: usize,
    copies: &[(Loc, usize, usize)],
    copy_funcs: &[(FuncId, u64)],
) -> Result<FuncId, CompileError> {
    let internal = |e: String| CompileError::Internal(e);
    let ptr = module.target_config().pointer_type();
    let sig = entry_signature(ptr);
    let name = format!("{}entry", opts.prefix);
    let entry = module
        .declare_function(&name, Linkage::Hidden, &sig)
        .map_err(|e| internal(e.to_string()))?;

    // Imports: the runtime's parallel_for and, with fallback, the host's evaluator.
    let mut pf_sig = Signature::new(CallConv::SystemV);
    for t in [ptr, ptr, ptr, types::I64, types::I64] {
        pf_sig.params.push(AbiParam::new(t));
    }
    let pf = module
        .declare_function(
            &format!("{}parallel_for", opts.rt_prefix),
            Linkage::Import,
            &pf_sig,
        )
        .map_err(|e| internal(e.to_string()))?;
    let any_fallback = steps
        .iter()
        .any(|s| matches!(s.kind, StepKind::Fallback(_)));
    let fb = if any_fallback {
        let mut fb_sig = Signature::new(CallConv::SystemV);
        for t in [ptr, types::I64, ptr] {
            fb_sig.params.push(AbiParam::new(t));
        }
        fb_sig.returns.push(AbiParam::new(types::I32));
        Some(
            module
                .declare_function(HOST_FALLBACK_SYMBOL, Linkage::Import, &fb_sig)
                .map_err(|e| internal(e.to_string()))?,
        )
    } else {
        None
    };

    let tick = if opts.profile {
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params.push(AbiParam::new(ptr));
        sig.params.push(AbiParam::new(types::I64));
        Some(
            module
                .declare_function(HOST_TICK_SYMBOL, Linkage::Import, &sig)
                .map_err(|e| internal(e.to_string()))?,
        )
    } else {
        None
    };

    let table_len = steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::Kernel(l) => l
                .launches
                .iter()
                .map(|l| l.operands.len())
                .max()
                .unwrap_or(0),
            StepKind::Fallback(_) => {
                let n = g.node(s.node);
                n.inputs.len() + 2 * n.outputs.len()
            }
        })
        .max()
        .unwrap_or(0)
        .max(2);

    let mut func = Function::with_name_signature(UserFuncName::user(0, entry.as_u32()), sig);
    let pf_ref = module.declare_func_in_func(pf, &mut func);
    let fb_ref = fb.map(|f| module.declare_func_in_func(f, &mut func));
    let tick_ref = tick.map(|f| module.declare_func_in_func(f, &mut func));
    // Kernel function references, declared once each.
    let mut kernel_refs = HashMap::new();
    for s in steps {
        if let StepKind::Kernel(l) = &s.kind {
            for launch in &l.launches {
                kernel_refs
                    .entry(launch.func)
                    .or_insert_with(|| module.declare_func_in_func(launch.func, &mut func));
            }
        }
    }
    for (f, _) in copy_funcs {
        kernel_refs
            .entry(*f)
            .or_insert_with(|| module.declare_func_in_func(*f, &mut func));
    }
    // Constants are addressed as not colocated (an absolute address in the JIT, the GOT in a
    // .so): gigabytes of weights may lie further than ±2 GiB from the code.
    let far_data = |module: &mut dyn Module, func: &mut Function, d: DataId| {
        let gv = module.declare_data_in_func(d, func);
        if let GlobalValueData::Symbol { colocated, .. } = &mut func.global_values[gv] {
            *colocated = false;
        }
        gv
    };
    let mut data_gvs = HashMap::new();
    for l in loc.values() {
        if let Loc::Const(d) = l {
            data_gvs
                .entry(*d)
                .or_insert_with(|| far_data(module, &mut func, *d));
        }
    }
    let mut kernel_consts = Vec::new();
    for s in steps {
        if let StepKind::Kernel(l) = &s.kind {
            for o in l.launches.iter().flat_map(|l| &l.operands) {
                if let Operand::Const(d) = o {
                    kernel_consts.push(*d);
                }
            }
        }
    }
    for d in kernel_consts {
        data_gvs
            .entry(d)
            .or_insert_with(|| far_data(module, &mut func, d));
    }

    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut func, &mut fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        b.seal_block(block);
        let params = b.block_params(block).to_vec();
        let (pool, host, inputs, outputs, ws) =
            (params[0], params[1], params[2], params[3], params[4]);
        let slot = b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (table_len * 8) as u32,
            3,
        ));
        let table = b.ins().stack_addr(ptr, slot, 0);
        let flags = MemFlagsData::trusted();

        let addr_of = |b: &mut FunctionBuilder, l: Loc| -> Value {
            match l {
                Loc::Input(i) => b.ins().load(ptr, flags, inputs, (i * 8) as i32),
                Loc::Output(j) => b.ins().load(ptr, flags, outputs, (j * 8) as i32),
                Loc::Arena(off) => b.ins().iadd_imm_s(ws, off as i64),
                Loc::Const(d) => b.ins().symbol_value(ptr, data_gvs[&d]),
            }
        };
        let value_loc = |v: ValueRef| -> Result<Loc, CompileError> {
            loc.get(&v).copied().ok_or_else(|| {
                CompileError::Internal(format!("value '{}' has no location", g.value(v).name))
            })
        };

        if let Some(t) = tick_ref {
            let start = b.ins().iconst(types::I64, -1);
            b.ins().call(t, &[host, start]);
        }
        for (index, s) in steps.iter().enumerate() {
            let node = g.node(s.node);
            match &s.kind {
                StepKind::Kernel(l) => {
                    for launch in &l.launches {
                        if launch.items == 0 {
                            continue;
                        }
                        fill_table(
                            &mut b, table, launch, node, s.node, &value_loc, dims_loc, &addr_of,
                            ws, scratch_at,
                        )?;
                        let kf = b.ins().func_addr(ptr, kernel_refs[&launch.func]);
                        let items = b.ins().iconst(types::I64, launch.items as i64);
                        let grain = b.ins().iconst(types::I64, launch.grain.max(1) as i64);
                        b.ins().call(pf_ref, &[pool, kf, table, items, grain]);
                    }
                }
                StepKind::Fallback(index) => {
                    let mut k: usize = 0;
                    for v in &node.inputs {
                        let p = match v {
                            Some(v) => {
                                let l = value_loc(*v)?;
                                addr_of(&mut b, l)
                            }
                            None => b.ins().iconst(ptr, 0),
                        };
                        b.ins().store(flags, p, table, (k * 8) as i32);
                        k += 1;
                    }
                    for o in 0..node.outputs.len() {
                        let l = value_loc(ValueRef {
                            node: s.node,
                            port: o as u32,
                        })?;
                        let p = addr_of(&mut b, l);
                        b.ins().store(flags, p, table, (k * 8) as i32);
                        k += 1;
                    }
                    // Then the dims arrays of its bounded outputs, in port order.
                    for o in 0..node.outputs.len() {
                        let v = ValueRef {
                            node: s.node,
                            port: o as u32,
                        };
                        if let Some(&l) = dims_loc.get(&v) {
                            let p = addr_of(&mut b, l);
                            b.ins().store(flags, p, table, (k * 8) as i32);
                            k += 1;
                        }
                    }
                    let idx = b.ins().iconst(types::I64, *index as i64);
                    let call = b.ins().call(
                        fb_ref.expect("declared when there are fallbacks"),
                        &[host, idx, table],
                    );
                    let rc = b.inst_results(call)[0];
                    let fail = b.create_block();
                    let next = b.create_block();
                    b.ins().brif(rc, fail, &[], next, &[]);
                    b.switch_to_block(fail);
                    b.seal_block(fail);
                    b.ins().return_(&[rc]);
                    b.switch_to_block(next);
                    b.seal_block(next);
                }
            }
            if let Some(t) = tick_ref {
                let i = b.ins().iconst(types::I64, index as i64);
                b.ins().call(t, &[host, i]);
            }
        }
        for (&(src, j, _), &(f, items)) in copies.iter().zip(copy_funcs) {
            if items == 0 {
                continue;
            }
            let s = addr_of(&mut b, src);
            let d = addr_of(&mut b, Loc::Output(j));
            b.ins().store(flags, s, table, 0);
            b.ins().store(flags, d, table, 8);
            let kf = b.ins().func_addr(ptr, kernel_refs[&f]);
            let items = b.ins().iconst(types::I64, items as i64);
            let grain = b.ins().iconst(types::I64, 16);
            b.ins().call(pf_ref, &[pool, kf, table, items, grain]);
        }
        let zero = b.ins().iconst(types::I32, 0);
        b.ins().return_(&[zero]);
        b.finalize(module.target_config());
    }
    let mut ctx = Context::for_function(func);
    module
        .define_function(entry, &mut ctx)
        .map_err(|e| internal(format!("compiling the entry function: {e:?}")))?;
    Ok(entry)
}

/// The host's fallback symbol (JIT only).
pub const HOST_FALLBACK_SYMBOL: &str = "graphc_host_fallback";
/// The host's profiling symbol (JIT only): `tick(host, step)`, `step` -1 at the start.
pub const HOST_TICK_SYMBOL: &str = "graphc_host_tick";

#[allow(clippy::too_many_arguments)]
fn fill_table(
    b: &mut FunctionBuilder,
    table: Value,
    launch: &Launch,
    node: &graphc_passes::ir::Node,
    id: NodeId,
    value_loc: &dyn Fn(ValueRef) -> Result<Loc, CompileError>,
    dims_loc: &HashMap<ValueRef, Loc>,
    addr_of: &dyn Fn(&mut FunctionBuilder, Loc) -> Value,
    ws: Value,
    scratch_at: usize,
) -> Result<(), CompileError> {
    let flags = MemFlagsData::trusted();
    for (k, op) in launch.operands.iter().enumerate() {
        let p = match *op {
            Operand::Input(i) => {
                let v = node.inputs.get(i).copied().flatten().ok_or_else(|| {
                    CompileError::Internal(format!(
                        "launch {} reads input {i} of node '{}', which is absent",
                        launch.name,
                        node.display_name()
                    ))
                })?;
                addr_of(b, value_loc(v)?)
            }
            Operand::Output(o) => {
                if o >= node.outputs.len() {
                    return Err(CompileError::Internal(format!(
                        "launch {} writes output {o} of node '{}', which has {}",
                        launch.name,
                        node.display_name(),
                        node.outputs.len()
                    )));
                }
                addr_of(
                    b,
                    value_loc(ValueRef {
                        node: id,
                        port: o as u32,
                    })?,
                )
            }
            Operand::Const(d) => addr_of(b, Loc::Const(d)),
            Operand::Scratch(off) => b.ins().iadd_imm_s(ws, (scratch_at + off) as i64),
            Operand::Dims(o) => {
                let v = ValueRef {
                    node: id,
                    port: o as u32,
                };
                let l = dims_loc.get(&v).copied().ok_or_else(|| {
                    CompileError::Internal(format!(
                        "launch {} writes the dims of output {o} of node '{}', which is not bounded",
                        launch.name,
                        node.display_name()
                    ))
                })?;
                addr_of(b, l)
            }
        };
        b.ins().store(flags, p, table, (k * 8) as i32);
    }
    Ok(())
}
