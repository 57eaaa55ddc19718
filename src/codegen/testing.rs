//! Running one node's kernels in isolation, for tests: compiled into its own JIT module, the
//! launches run one after the other on this thread, each over its item range cut into uneven
//! pieces run last-first (so a kernel that depends on range order or writes outside its range
//! shows). Outputs and scratch start filled with a poison byte pattern, so an element a kernel
//! forgets to write fails the comparison (bool outputs must hold only the bytes 0 and 1, since
//! the poison would read back as true).

use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::default_libcall_names;
use graphc_passes::eval::{compare, eval_graph, random_inputs};
use graphc_passes::ir::text::parse;
use graphc_passes::ir::{DType, Graph, NodeId, Op, Tensor, ValueRef};

use std::collections::HashMap;

use super::bounded::{data_dependent_bounds, with_bounds, Bound};
use super::buffer::{c_string_array, AlignedBuf as Buf};
use super::jit::actual_dims;
use super::kernel::{KernelCx, Lowered, Operand, Target};
use super::kernels;
use crate::onnx::tensor::{from_le_bytes, le_bytes};

/// The poison byte outputs and scratch start with (0x7f7f7f7f is 3.4e38 as f32).
const POISON: u8 = 0x7f;

/// The one node of `g` that is neither an input nor a constant.
pub fn single_compute_node(g: &Graph) -> Result<NodeId, String> {
    let nodes: Vec<NodeId> = g
        .node_ids()
        .iter()
        .copied()
        .filter(|&id| !matches!(g.node(id).op, Op::Input { .. } | Op::Constant { .. }))
        .collect();
    match nodes.as_slice() {
        [one] => Ok(*one),
        _ => Err(format!(
            "the test graph must have exactly one compute node, it has {}",
            nodes.len()
        )),
    }
}

/// An empty JIT module for this CPU, as kernel tests compile into (free it with
/// `free_memory` when done).
pub fn jit_module() -> Result<JITModule, String> {
    let mut flags = settings::builder();
    flags.set("is_pic", "false").map_err(|e| e.to_string())?;
    flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
    let isa = cranelift_native::builder()?
        .finish(settings::Flags::new(flags))
        .map_err(|e| e.to_string())?;
    Ok(JITModule::new(JITBuilder::with_isa(
        isa,
        default_libcall_names(),
    )))
}

/// Compiles `node` of `g` and runs it on `inputs` (one per graph input, `None` for an input
/// with a default). Every input of the node must be a graph input or a constant. `Ok(None)`
/// when no kernel family compiles the node.
pub fn run_node(
    g: &Graph,
    node: NodeId,
    inputs: &[Option<Tensor>],
    target: Target,
) -> Result<Option<Vec<Tensor>>, String> {
    let n = g.node(node);
    // The node's input tensors.
    let mut args: Vec<Option<Tensor>> = Vec::new();
    for v in &n.inputs {
        let Some(v) = v else {
            args.push(None);
            continue;
        };
        let producer = g.node(v.node);
        let t = match &producer.op {
            Op::Constant { value } => value.clone(),
            Op::Input { default } => {
                let pos = g.inputs.iter().position(|&i| i == v.node).unwrap();
                match inputs.get(pos).cloned().flatten() {
                    Some(t) => t,
                    None => default.clone().ok_or("an input without a value")?,
                }
            }
            _ => return Err("node inputs must be graph inputs or constants".into()),
        };
        args.push(Some(t));
    }

    let mut module = jit_module()?;
    // Outputs whose shape the data decides are compiled with their bound, as in a model.
    let bounds: HashMap<usize, Bound> = data_dependent_bounds(g, node)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let bounded_graph;
    let g = if bounds.is_empty() {
        g
    } else {
        let values: HashMap<ValueRef, Bound> = bounds
            .iter()
            .map(|(&p, d)| {
                (
                    ValueRef {
                        node,
                        port: p as u32,
                    },
                    d.clone(),
                )
            })
            .collect();
        bounded_graph = with_bounds(g, &values);
        &bounded_graph
    };
    let n = g.node(node);
    let lowered: Lowered = {
        let mut cx =
            KernelCx::new(&mut module, target, "test_").with_bounded(bounds.keys().map(|&p| {
                ValueRef {
                    node,
                    port: p as u32,
                }
            }));
        match kernels::lower(&mut cx, g, node)? {
            Some(l) => l,
            None => return Ok(None),
        }
    };
    module.finalize_definitions().map_err(|e| e.to_string())?;

    // String tensors as arrays of C string pointers into `_strings`.
    let mut _strings = Vec::new();
    let mut in_bufs: Vec<Option<Buf>> = Vec::with_capacity(args.len());
    for t in &args {
        in_bufs.push(match t {
            None => None,
            Some(t) if t.dtype() == DType::String => {
                let (owned, pointers) = c_string_array(t)?;
                _strings.push(owned);
                Some(Buf::from(&pointers))
            }
            Some(t) => Some(Buf::from(&le_bytes(t).ok_or("unexpected strings")?)),
        });
    }
    let out_types: Vec<(DType, Vec<usize>)> = n
        .outputs
        .iter()
        .map(|o| {
            let dims =
                o.ty.shape
                    .as_known()
                    .ok_or("outputs must have static shapes")?;
            Ok((o.ty.dtype, dims))
        })
        .collect::<Result<_, String>>()?;
    let mut out_bufs: Vec<Buf> = out_types
        .iter()
        .map(|(dt, dims)| Buf::new(dims.iter().product::<usize>() * dt.size(), POISON))
        .collect();
    let mut scratch = Buf::new(lowered.scratch_bytes, POISON);
    // The dims arrays of bounded outputs, poisoned too.
    let mut dims_bufs: HashMap<usize, Vec<i64>> = bounds
        .iter()
        .map(|(&p, b)| (p, vec![i64::MIN; b.dims.len()]))
        .collect();

    for launch in &lowered.launches {
        let mut ptrs: Vec<*mut u8> = Vec::new();
        for op in &launch.operands {
            ptrs.push(match *op {
                Operand::Input(i) => in_bufs
                    .get_mut(i)
                    .and_then(|b| b.as_mut())
                    .ok_or_else(|| format!("launch {}: input {i} is absent", launch.name))?
                    .ptr(),
                Operand::Output(i) => out_bufs
                    .get_mut(i)
                    .ok_or_else(|| format!("launch {}: no output {i}", launch.name))?
                    .ptr(),
                Operand::Const(id) => module.get_finalized_data(id).0 as *mut u8,
                Operand::Dims(i) => dims_bufs
                    .get_mut(&i)
                    .ok_or_else(|| format!("launch {}: output {i} is not bounded", launch.name))?
                    .as_mut_ptr()
                    .cast(),
                Operand::Scratch(off) => {
                    if off > lowered.scratch_bytes {
                        return Err(format!(
                            "launch {}: scratch offset {off} out of range",
                            launch.name
                        ));
                    }
                    // SAFETY: within the scratch buffer (checked above).
                    unsafe { scratch.ptr().add(off) }
                }
            });
        }
        let code = module.get_finalized_function(launch.func);
        // SAFETY: kernels are compiled with the uniform kernel signature.
        let f: unsafe extern "C" fn(*const *mut u8, u64, u64) =
            unsafe { std::mem::transmute(code) };
        for (lo, hi) in uneven_ranges(launch.items, launch.grain.max(1))
            .into_iter()
            .rev()
        {
            // SAFETY: every operand points at a live buffer of the size the graph says.
            unsafe { f(ptrs.as_ptr(), lo, hi) };
        }
    }

    let outs = out_types
        .iter()
        .zip(out_bufs.iter_mut())
        .enumerate()
        .map(|(p, ((dt, bound), b))| {
            let dims = match dims_bufs.get(&p) {
                Some(reported) => {
                    actual_dims(reported, bound).map_err(|e| format!("output {p}: {e}"))?
                }
                None => bound.clone(),
            };
            let n = dims.iter().product::<usize>() * dt.size();
            let bytes = &b.bytes_mut()[..n];
            // A bool byte other than 0 or 1 is one the kernel never wrote (the poison would
            // otherwise read back as true).
            if *dt == DType::Bool {
                if let Some(i) = bytes.iter().position(|&v| v > 1) {
                    return Err(format!("output {p}: element {i} was not written"));
                }
            }
            Ok(from_le_bytes(*dt, &dims, bytes))
        })
        .collect::<Result<_, String>>();
    // SAFETY: no pointer into the module's memory outlives this function.
    unsafe { module.free_memory() };
    Ok(Some(outs?))
}

/// `0..items` cut into pieces of 1, 2, 3, ... grains (the last one shorter).
fn uneven_ranges(items: u64, grain: u64) -> Vec<(u64, u64)> {
    let mut v = Vec::new();
    let (mut lo, mut k) = (0, 1);
    while lo < items {
        let hi = (lo + k * grain).min(items);
        v.push((lo, hi));
        lo = hi;
        k += 1;
    }
    v
}

/// Parses `text` (the IR text format; one compute node), runs it on seeded random inputs with
/// the reference evaluator and with its kernels, and compares every output within
/// `atol + rtol * |expected|` (exactly for non-float outputs). Errors when no kernel compiles
/// the node, so a test cannot pass by falling back.
pub fn check_text(text: &str, seed: u64, rtol: f64, atol: f64) -> Result<(), String> {
    let g = parse(text).map_err(|e| e.to_string())?;
    check_graph(&g, seed, rtol, atol, Target::host())
}

/// [`check_text`] on a graph, for a given target.
pub fn check_graph(
    g: &Graph,
    seed: u64,
    rtol: f64,
    atol: f64,
    target: Target,
) -> Result<(), String> {
    let node = single_compute_node(g)?;
    let inputs = random_inputs(g, seed)?;
    let want = eval_graph(g, &inputs).map_err(|e| e.to_string())?;
    let got = run_node(g, node, &inputs, target)?
        .ok_or_else(|| format!("no kernel for {}", g.node(node).op.name()))?;
    // Graph outputs are the node's outputs in the fixtures this is used with.
    for (i, out) in g.outputs.iter().enumerate() {
        let port = out.value.port as usize;
        if out.value.node != node {
            return Err("graph outputs must be outputs of the compute node".into());
        }
        compare(&got[port], &want[i], rtol, atol).map_err(|e| format!("output {i}: {e}"))?;
    }
    Ok(())
}

/// A seeded stream for test inputs (a 64-bit LCG, its high bits).
pub struct Lcg(pub u64);

impl Lcg {
    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as f64 / (1u64 << 31) as f64
    }

    /// One of `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n - 1)
    }
}

/// Runs the one-node graph `text` on `inputs` with its kernels (there must be one) and with
/// the reference evaluator. Every graph output must equal the reference's exactly: shape,
/// values and bytes (so −0 and NaN payloads too; strings by value). Returns the reference's
/// outputs.
pub fn same_as_reference(text: &str, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>, String> {
    let g = parse(text).map_err(|e| e.to_string())?;
    let node = single_compute_node(&g)?;
    let want = eval_graph(&g, inputs).map_err(|e| format!("reference: {e}"))?;
    let got = run_node(&g, node, inputs, Target::host())?
        .ok_or_else(|| format!("no kernel for {}", g.node(node).op.name()))?;
    for (w, o) in want.iter().zip(&g.outputs) {
        let port = o.value.port as usize;
        if o.value.node != node {
            return Err("graph outputs must be outputs of the compute node".into());
        }
        let a = &got[port];
        if a.shape() != w.shape() {
            return Err(format!(
                "output {port}: shape {:?}, the reference's {:?}",
                a.shape(),
                w.shape()
            ));
        }
        compare(a, w, 0.0, 0.0).map_err(|e| format!("output {port}: {e}"))?;
        if le_bytes(a) != le_bytes(w) {
            return Err(format!(
                "output {port}: the bytes differ from the reference's"
            ));
        }
    }
    Ok(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_kernels_move_every_byte() {
        for (dt, shape) in [
            ("f32", "[3,5,7]"),
            ("i64", "[2,1]"),
            ("u8", "[33000]"),
            ("f32", "[0,4]"),
        ] {
            let text = format!(
                "graph \"g\" (%x: {dt}{shape}) {{\n  %y: {dt}{shape} = identity (%x)\n  return %y\n}}\n"
            );
            check_text(&text, 1, 0.0, 0.0).unwrap_or_else(|e| panic!("{dt}{shape}: {e}"));
        }
        let text = "graph \"g\" (%x: f32[2,3,4]) {\n  %y: f32[2,12] = flatten {axis: 1} (%x)\n  return %y\n}\n";
        check_text(text, 2, 0.0, 0.0).unwrap();
        let text = "graph \"g\" (%x: f32[3,5]) {\n  %y: f32[3,5] = dropout (%x)\n  return %y\n}\n";
        check_text(text, 3, 0.0, 0.0).unwrap();
        for (from, to, shape) in [
            ("f32", "i32", "[3,5]"),
            ("i32", "f32", "[7]"),
            ("bool", "u8", "[2,3]"),
            ("u8", "i8", "[17]"),
            ("f64", "i64", "[2,2]"),
        ] {
            let text = format!(
                "graph \"g\" (%x: {from}{shape}) {{\n  %y: {to}{shape} = bit_cast {{to: {to}}} (%x)\n  return %y\n}}\n"
            );
            check_text(&text, 4, 0.0, 0.0).unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
        }
    }

    /// Bytes other than 0 and 1 are no bool: BitCast to bool has no kernel.
    #[test]
    fn bit_cast_to_bool_declines() {
        let text =
            "graph \"g\" (%x: u8[4]) {\n  %y: bool[4] = bit_cast {to: bool} (%x)\n  return %y\n}\n";
        let e = check_text(text, 1, 0.0, 0.0).unwrap_err();
        assert!(e.contains("no kernel"), "{e}");
    }

    #[test]
    fn uneven_ranges_cover_everything_once() {
        assert_eq!(uneven_ranges(10, 2), vec![(0, 2), (2, 6), (6, 10)]);
        assert_eq!(uneven_ranges(0, 3), vec![]);
        assert_eq!(uneven_ranges(7, 1), vec![(0, 1), (1, 3), (3, 6), (6, 7)]);
    }
}
