//! Kernels: f32 elementwise ops and `fused_elementwise` bodies, vectorized as f32x4; other
//! element types (and the f32 ops this engine lacks) in [`typed`]; Dropout with a mask or a
//! run-time training mode in [`dropout`].
//!
//! A node (a standalone unary, binary or variadic op, or a fused body) becomes a small
//! expression DAG ([`Expr`]) over *leaves*: node inputs read per element (broadcast to the
//! output shape by numpy rules) and scalar constants folded into the code. One kernel computes
//! the whole expression per vector of 4 outputs, with [`super::vmath`] for the transcendental
//! functions.
//!
//! Broadcasting: the output shape is collapsed (1-sized dims dropped, adjacent dims merged
//! where every leaf is contiguous or broadcast across both), giving per-leaf element strides
//! (0 where broadcast). The innermost collapsed dim is always contiguous or broadcast for every
//! leaf: the vector loop runs along it, a scalar loop (the same expression on lane 0) takes the
//! tail. A work item is one row of the outer dims, or a block of `CHUNK` elements of a longer
//! row; the grain makes a pool range about `CHUNK` elements.
//!
//! Semantics follow the reference evaluator (passes/src/eval/elementwise.rs): `+ - * /` and
//! `sqrt` are correctly rounded as the reference's f64 computation rounded once; `Max`, `Min`
//! and `Clip` propagate NaN with numpy's tie rules; `Relu` keeps NaN. Transcendental functions
//! are within a few ulp (see vmath); the trigonometric and hyperbolic functions and Pow with a
//! general exponent are computed in f64 lanes and rounded once (Pow with a constant scalar
//! exponent in {0, ±0.5, 1, ±1, 2, 3, -2} has exact short forms). Declined (left to the typed
//! kernels or the reference): non-f32 types, dynamic shapes, Clip with non-constant bounds,
//! fused bodies with any other op.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op, Tensor, ValueRef};

use super::vmath as vm;

mod dropout;
mod typed;
#[cfg(test)]
mod typed_tests;
use crate::codegen::kernel::{KernelCx, KernelParams, Launch, Lowered, Operand};

/// Output elements per work item at most (and per pool range at least, roughly).
const CHUNK: usize = 16 * 1024;

/// A unary function of the expression.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Un {
    Relu,
    LeakyRelu(f32),
    Sigmoid,
    HardSigmoid(f32, f32),
    HardSwish,
    Swish(f32),
    Gelu,
    GeluTanh,
    Tanh,
    Exp,
    Log,
    Sqrt,
    Abs,
    Neg,
    Reciprocal,
    Erf,
    Elu(f32),
    Selu(f32, f32),
    Celu(f32),
    Softplus,
    Softsign,
    Floor,
    Ceil,
    Clip(Option<f32>, Option<f32>),
    /// `x^e` for a supported constant `e`.
    Pow(f32),
    /// A function computed in f64 lanes (trigonometric, hyperbolic).
    F64(vm::F64Fn),
    Mish,
    ThresholdedRelu(f32),
    /// `Shrink { bias, lambd }`.
    Shrink(f32, f32),
}

/// A binary function of the expression.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Max,
    Min,
    PRelu,
    /// `x^y` for a general f32 exponent (computed in f64 lanes).
    Pow,
}

/// One node of the expression; operands index earlier nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ex {
    /// Node input slot, read per element.
    Leaf(usize),
    /// A scalar constant.
    Const(f32),
    Un(Un, usize),
    Bin(Bin, usize, usize),
    /// A value the kernel cannot compute (fine only if unused, e.g. a Clip bound tensor).
    Opaque,
}

/// An operand while building: its expression node and, when known, its constant value.
#[derive(Clone)]
struct Arg {
    ex: usize,
    value: Option<Tensor>,
}

/// The expression of one node.
#[derive(Default)]
struct Expr {
    nodes: Vec<Ex>,
}

impl Expr {
    fn push(&mut self, e: Ex) -> usize {
        self.nodes.push(e);
        self.nodes.len() - 1
    }

    /// The argument for node input `slot` of `g`'s node, a scalar f32 constant folded.
    fn input(&mut self, slot: usize, value: Option<Tensor>) -> Arg {
        let ex = match &value {
            Some(t) if t.len() == 1 && t.dtype() == DType::F32 => {
                self.push(Ex::Const(t.to_f64_vec()[0] as f32))
            }
            _ => self.push(Ex::Leaf(slot)),
        };
        Arg { ex, value }
    }

    /// Nodes reachable from `root`.
    fn reachable(&self, root: usize) -> Vec<bool> {
        let mut live = vec![false; self.nodes.len()];
        live[root] = true;
        for i in (0..=root).rev() {
            if !live[i] {
                continue;
            }
            match self.nodes[i] {
                Ex::Un(_, a) => live[a] = true,
                Ex::Bin(_, a, c) => {
                    live[a] = true;
                    live[c] = true;
                }
                _ => {}
            }
        }
        live
    }
}

/// A scalar from an optional constant bound: `Ok(None)` when absent or empty, `Err(())`
/// when not a usable constant.
fn const_bound(a: Option<&Arg>) -> Result<Option<f32>, ()> {
    let Some(a) = a else { return Ok(None) };
    let Some(t) = &a.value else { return Err(()) };
    if t.dtype() != DType::F32 {
        return Err(());
    }
    match t.len() {
        0 => Ok(None),
        1 => Ok(Some(t.to_f64_vec()[0] as f32)),
        _ => Err(()),
    }
}

/// Adds `op` applied to `args` to `e`; `None` if unsupported.
fn build_op(e: &mut Expr, op: &Op, args: &[Option<Arg>]) -> Option<usize> {
    let arg = |i: usize| args.get(i).and_then(|a| a.as_ref());
    let x = arg(0)?.ex;
    let un = |u: Un| Some((u, args.iter().skip(1).all(|a| a.is_none())));
    let unary = match op {
        Op::Relu {} => un(Un::Relu),
        Op::LeakyRelu { alpha } => un(Un::LeakyRelu(*alpha)),
        Op::Sigmoid {} => un(Un::Sigmoid),
        Op::HardSigmoid { alpha, beta } => un(Un::HardSigmoid(*alpha, *beta)),
        Op::HardSwish {} => un(Un::HardSwish),
        Op::Swish { alpha } => un(Un::Swish(*alpha)),
        Op::Gelu { approximate } => match approximate.as_str() {
            "none" => un(Un::Gelu),
            "tanh" => un(Un::GeluTanh),
            _ => return None,
        },
        Op::Tanh {} => un(Un::Tanh),
        Op::Exp {} => un(Un::Exp),
        Op::Log {} => un(Un::Log),
        Op::Sqrt {} => un(Un::Sqrt),
        Op::Abs {} => un(Un::Abs),
        Op::Neg {} => un(Un::Neg),
        Op::Reciprocal {} => un(Un::Reciprocal),
        Op::Erf {} => un(Un::Erf),
        Op::Elu { alpha } => un(Un::Elu(*alpha)),
        Op::Selu { alpha, gamma } => un(Un::Selu(*alpha, *gamma)),
        Op::Celu { alpha } => un(Un::Celu(*alpha)),
        Op::Softplus {} => un(Un::Softplus),
        Op::Softsign {} => un(Un::Softsign),
        Op::Floor {} => un(Un::Floor),
        Op::Ceil {} => un(Un::Ceil),
        Op::Sin {} => un(Un::F64(vm::F64Fn::Sin)),
        Op::Cos {} => un(Un::F64(vm::F64Fn::Cos)),
        Op::Tan {} => un(Un::F64(vm::F64Fn::Tan)),
        Op::Asin {} => un(Un::F64(vm::F64Fn::Asin)),
        Op::Acos {} => un(Un::F64(vm::F64Fn::Acos)),
        Op::Atan {} => un(Un::F64(vm::F64Fn::Atan)),
        Op::Sinh {} => un(Un::F64(vm::F64Fn::Sinh)),
        Op::Cosh {} => un(Un::F64(vm::F64Fn::Cosh)),
        Op::Asinh {} => un(Un::F64(vm::F64Fn::Asinh)),
        Op::Acosh {} => un(Un::F64(vm::F64Fn::Acosh)),
        Op::Atanh {} => un(Un::F64(vm::F64Fn::Atanh)),
        Op::Mish {} => un(Un::Mish),
        Op::ThresholdedRelu { alpha } => un(Un::ThresholdedRelu(*alpha)),
        Op::Shrink { bias, lambd } => un(Un::Shrink(*bias, *lambd)),
        Op::Clip {} => {
            if args.len() > 3 {
                return None;
            }
            let lo = const_bound(arg(1)).ok()?;
            let hi = const_bound(arg(2)).ok()?;
            Some((Un::Clip(lo, hi), true))
        }
        Op::Pow {} => {
            // A constant scalar exponent with an exact short form; any other exponent is the
            // general binary Pow below (f32 leaves only: other exponent types are declined
            // with the leaf).
            match arg(1)?.value.as_ref() {
                Some(t)
                    if args.len() == 2
                        && t.len() == 1
                        && !matches!(t.dtype(), DType::Bool | DType::String)
                        && [0.0, 0.5, -0.5, 1.0, -1.0, 2.0, 3.0, -2.0]
                            .contains(&t.to_f64_vec()[0]) =>
                {
                    Some((Un::Pow(t.to_f64_vec()[0] as f32), true))
                }
                _ => None,
            }
        }
        _ => None,
    };
    if let Some((u, ok)) = unary {
        return ok.then(|| e.push(Ex::Un(u, x)));
    }
    let binary = |e: &mut Expr, bop: Bin| -> Option<usize> {
        if args.len() != 2 {
            return None;
        }
        let y = arg(1)?.ex;
        Some(e.push(Ex::Bin(bop, x, y)))
    };
    let fold = |e: &mut Expr, bop: Bin| -> Option<usize> {
        let mut acc = x;
        for a in &args[1..] {
            acc = e.push(Ex::Bin(bop, acc, a.as_ref()?.ex));
        }
        Some(acc)
    };
    match op {
        Op::Add {} => binary(e, Bin::Add),
        Op::Sub {} => binary(e, Bin::Sub),
        Op::Mul {} => binary(e, Bin::Mul),
        Op::Div {} => binary(e, Bin::Div),
        Op::PRelu {} => binary(e, Bin::PRelu),
        Op::Pow {} => binary(e, Bin::Pow),
        Op::Max {} => fold(e, Bin::Max),
        Op::Min {} => fold(e, Bin::Min),
        Op::Sum {} => fold(e, Bin::Add),
        Op::Mean {} => {
            let s = fold(e, Bin::Add)?;
            let n = e.push(Ex::Const(args.len() as f32));
            Some(e.push(Ex::Bin(Bin::Div, s, n)))
        }
        _ => None,
    }
}

/// The constant value of `v` in `g`, if its producer is a Constant.
fn constant_of(g: &Graph, v: ValueRef) -> Option<Tensor> {
    match &g.node(v.node).op {
        Op::Constant { value } => Some(value.clone()),
        _ => None,
    }
}

/// The expression of `node` (standalone op or fused body) and its root; `None` if
/// unsupported.
fn build(g: &Graph, node: NodeId) -> Option<(Expr, usize)> {
    let n = g.node(node);
    let mut e = Expr::default();
    let outer: Vec<Option<Arg>> = n
        .inputs
        .iter()
        .enumerate()
        .map(|(slot, v)| v.map(|v| e.input(slot, constant_of(g, v))))
        .collect();
    if let Op::FusedElementwise { body } = &n.op {
        if body.outputs.len() != 1 || body.inputs.len() != outer.len() {
            return None;
        }
        let mut vals: HashMap<ValueRef, Arg> = HashMap::new();
        for (j, &id) in body.inputs.iter().enumerate() {
            vals.insert(ValueRef { node: id, port: 0 }, outer[j].clone()?);
        }
        for &id in body.node_ids() {
            let bn = body.node(id);
            let key = ValueRef { node: id, port: 0 };
            match &bn.op {
                Op::Input { .. } => continue,
                Op::Constant { value } => {
                    let ex = if value.len() == 1 && value.dtype() == DType::F32 {
                        e.push(Ex::Const(value.to_f64_vec()[0] as f32))
                    } else {
                        e.push(Ex::Opaque)
                    };
                    vals.insert(
                        key,
                        Arg {
                            ex,
                            value: Some(value.clone()),
                        },
                    );
                }
                op => {
                    if bn.outputs.len() != 1 || bn.outputs[0].ty.dtype != DType::F32 {
                        return None;
                    }
                    let args: Vec<Option<Arg>> = bn
                        .inputs
                        .iter()
                        .map(|v| v.map(|v| vals.get(&v).cloned()))
                        .collect::<Option<_>>()?;
                    let ex = build_op(&mut e, op, &args)?;
                    vals.insert(key, Arg { ex, value: None });
                }
            }
        }
        let root = vals.get(&body.outputs[0].value)?.ex;
        Some((e, root))
    } else {
        let root = build_op(&mut e, &n.op, &outer)?;
        Some((e, root))
    }
}

/// A leaf the kernel reads: node input slot and its element strides over the collapsed dims.
struct LeafPlan {
    slot: usize,
    strides: Vec<i64>,
}

/// Collapses `out` with the leaves' shapes; returns the collapsed dims and per-leaf strides,
/// or `None` if a leaf does not broadcast to `out`.
fn collapse(out: &[usize], leaves: &[Vec<usize>]) -> Option<(Vec<usize>, Vec<Vec<i64>>)> {
    let r = out.len();
    // Per leaf, strides aligned to `out` (0 where broadcast).
    let mut st: Vec<Vec<i64>> = Vec::new();
    for s in leaves {
        if s.len() > r {
            return None;
        }
        let pad = r - s.len();
        let mut v = vec![0i64; r];
        let mut acc = 1i64;
        for d in (0..s.len()).rev() {
            let od = out[pad + d];
            if s[d] == od && od != 1 {
                v[pad + d] = acc;
            } else if s[d] != 1 {
                return None;
            }
            acc = acc.checked_mul(s[d] as i64)?;
        }
        st.push(v);
    }
    let mut dims: Vec<usize> = Vec::new();
    let mut cst: Vec<Vec<i64>> = vec![Vec::new(); leaves.len()];
    for d in 0..r {
        if out[d] == 1 {
            continue;
        }
        let merge = !dims.is_empty()
            && (0..leaves.len()).all(|l| *cst[l].last().unwrap_or(&0) == st[l][d] * out[d] as i64);
        if merge {
            *dims.last_mut()? *= out[d];
            for l in 0..leaves.len() {
                *cst[l].last_mut()? = st[l][d];
            }
        } else {
            dims.push(out[d]);
            for l in 0..leaves.len() {
                cst[l].push(st[l][d]);
            }
        }
    }
    if dims.is_empty() {
        dims.push(1);
        for c in &mut cst {
            c.push(0);
        }
    }
    Some((dims, cst))
}

/// See [`super`]: the f32x4 engine first, then the typed kernels of [`typed`], then Dropout
/// ([`dropout`]).
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    if let Some(l) = lower_f32(cx, g, node)? {
        return Ok(Some(l));
    }
    if let Some(l) = typed::lower(cx, g, node)? {
        return Ok(Some(l));
    }
    dropout::lower(cx, g, node)
}

/// The f32x4 engine.
fn lower_f32(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    if n.outputs.len() != 1 || n.outputs[0].ty.dtype != DType::F32 {
        return Ok(None);
    }
    let Some(out) = n.outputs[0].ty.shape.as_known() else {
        return Ok(None);
    };
    let Some((expr, root)) = build(g, node) else {
        return Ok(None);
    };
    let live = expr.reachable(root);
    // Leaves to read, in slot order; every one f32 with a static shape.
    let mut slots: Vec<usize> = Vec::new();
    for (i, ex) in expr.nodes.iter().enumerate() {
        if !live[i] {
            continue;
        }
        match *ex {
            Ex::Leaf(s) if !slots.contains(&s) => slots.push(s),
            Ex::Opaque => return Ok(None),
            _ => {}
        }
    }
    slots.sort_unstable();
    let mut shapes: Vec<Vec<usize>> = Vec::new();
    for &s in &slots {
        let Some(Some(v)) = n.inputs.get(s) else {
            return Ok(None);
        };
        let ty = g.ty(*v);
        let Some(dims) = ty.shape.as_known() else {
            return Ok(None);
        };
        if ty.dtype != DType::F32 {
            return Ok(None);
        }
        shapes.push(dims);
    }
    let total: usize = out.iter().product();
    if total == 0 {
        return Ok(Some(Lowered::default()));
    }
    let Some((dims, strides)) = collapse(&out, &shapes) else {
        return Ok(None);
    };
    let leaves: Vec<LeafPlan> = slots
        .iter()
        .zip(strides)
        .map(|(&slot, strides)| LeafPlan { slot, strides })
        .collect();
    if leaves
        .iter()
        .any(|l| !matches!(l.strides.last(), Some(0 | 1)))
    {
        return Ok(None);
    }
    let inner = *dims.last().unwrap_or(&1);
    let chunk = inner.min(CHUNK);
    let nchunks = inner.div_ceil(chunk);
    let rows = total / inner;
    let items = (rows * nchunks) as u64;
    let grain = (CHUNK / chunk).max(1) as u64;
    let plan = Plan {
        expr: &expr,
        live: &live,
        root,
        leaves: &leaves,
        dims: &dims,
        chunk,
        nchunks,
    };
    let func = cx.define_kernel(&format!("eltwise_{}", n.op.name()), |b, p| {
        emit(b, p, &plan);
        Ok(())
    })?;
    let mut operands = vec![Operand::Output(0)];
    operands.extend(leaves.iter().map(|l| Operand::Input(l.slot)));
    Ok(Some(Lowered::one(
        func,
        operands,
        (items, grain),
        &format!("eltwise.{}", n.op.name()),
        0,
    )))
}

/// Everything the kernel emitter needs.
struct Plan<'a> {
    expr: &'a Expr,
    live: &'a [bool],
    root: usize,
    leaves: &'a [LeafPlan],
    dims: &'a [usize],
    chunk: usize,
    nchunks: usize,
}

/// Emits the expression on f32x4 leaf values.
fn emit_expr(b: &mut FunctionBuilder, plan: &Plan, leaf_vals: &[Value]) -> Value {
    let mut vals: Vec<Option<Value>> = vec![None; plan.expr.nodes.len()];
    for i in 0..=plan.root {
        if !plan.live[i] {
            continue;
        }
        let get = |j: usize| vals[j].expect("operands come first");
        let v = match plan.expr.nodes[i] {
            Ex::Leaf(s) => {
                let k = plan
                    .leaves
                    .iter()
                    .position(|l| l.slot == s)
                    .expect("leaf planned");
                leaf_vals[k]
            }
            Ex::Const(c) => vm::splat(b, c),
            Ex::Opaque => unreachable!("opaque values are declined"),
            Ex::Un(u, a) => emit_un(b, u, get(a)),
            Ex::Bin(o, a, c) => emit_bin(b, o, get(a), get(c)),
        };
        vals[i] = Some(v);
    }
    vals[plan.root].expect("root emitted")
}

fn emit_un(b: &mut FunctionBuilder, u: Un, x: Value) -> Value {
    let zero = |b: &mut FunctionBuilder| vm::splat(b, 0.0);
    match u {
        Un::Relu => vm::relu(b, x),
        Un::LeakyRelu(a) => vm::leaky_relu(b, a, x),
        Un::Sigmoid => vm::sigmoid(b, x),
        Un::HardSigmoid(a, c) => vm::hard_sigmoid(b, a, c, x),
        Un::HardSwish => vm::hard_swish(b, x),
        Un::Swish(a) => vm::swish(b, a, x),
        Un::Gelu => vm::gelu(b, x),
        Un::GeluTanh => vm::gelu_tanh(b, x),
        Un::Tanh => vm::tanh(b, x),
        Un::Exp => vm::exp(b, x),
        Un::Log => vm::log(b, x),
        Un::Sqrt => b.ins().sqrt(x),
        Un::Abs => vm::abs(b, x),
        Un::Neg => vm::neg(b, x),
        Un::Reciprocal => {
            let one = vm::splat(b, 1.0);
            b.ins().fdiv(one, x)
        }
        Un::Erf => vm::erf(b, x),
        Un::Elu(a) => {
            // x < 0 ? a * expm1(x) : x
            let e = vm::expm1(b, x);
            let av = vm::splat(b, a);
            let e = b.ins().fmul(e, av);
            let z = zero(b);
            let m = vm::cmp(b, FloatCC::LessThan, x, z);
            vm::select(b, m, e, x)
        }
        Un::Selu(a, g) => {
            // x > 0 ? g x : g a expm1(x)
            let e = vm::expm1(b, x);
            let ga = vm::splat(b, (g as f64 * a as f64) as f32);
            let e = b.ins().fmul(e, ga);
            let gv = vm::splat(b, g);
            let p = b.ins().fmul(x, gv);
            let z = zero(b);
            let m = vm::cmp(b, FloatCC::GreaterThan, x, z);
            vm::select(b, m, p, e)
        }
        Un::Celu(a) => {
            // x >= 0 ? x : a expm1(x / a)
            let av = vm::splat(b, a);
            let q = b.ins().fdiv(x, av);
            let e = vm::expm1(b, q);
            let e = b.ins().fmul(e, av);
            let z = zero(b);
            let m = vm::cmp(b, FloatCC::GreaterThanOrEqual, x, z);
            vm::select(b, m, x, e)
        }
        Un::Softplus => vm::softplus(b, x),
        Un::Softsign => {
            let a = vm::abs(b, x);
            let one = vm::splat(b, 1.0);
            let d = b.ins().fadd(a, one);
            b.ins().fdiv(x, d)
        }
        Un::Floor => b.ins().floor(x),
        Un::Ceil => b.ins().ceil(x),
        Un::Clip(lo, hi) => vm::clip(b, lo, hi, x),
        Un::Pow(p) => emit_pow(b, p, x),
        Un::F64(f) => vm::via_f64(b, x, &|b, v| vm::dapply(b, f, v)),
        Un::Mish => vm::mish(b, x),
        Un::ThresholdedRelu(a) => {
            // x > alpha ? x : 0 (NaN gives 0, as the reference).
            let av = vm::splat(b, a);
            let m = vm::cmp(b, FloatCC::GreaterThan, x, av);
            let z = zero(b);
            vm::select(b, m, x, z)
        }
        Un::Shrink(bias, lambd) => {
            // x < -lambd ? x + bias : x > lambd ? x - bias : 0 (NaN gives 0).
            let l = vm::splat(b, lambd);
            let nl = vm::splat(b, -lambd);
            let bv = vm::splat(b, bias);
            let lo = b.ins().fadd(x, bv);
            let hi = b.ins().fsub(x, bv);
            let z = zero(b);
            let mh = vm::cmp(b, FloatCC::GreaterThan, x, l);
            let r = vm::select(b, mh, hi, z);
            let ml = vm::cmp(b, FloatCC::LessThan, x, nl);
            vm::select(b, ml, lo, r)
        }
    }
}

/// `x^p` for the exponents [`build_op`] accepts, as the reference's `powf` (special values
/// included: `x^0 = 1` even for NaN, `(-inf)^0.5 = inf`, `(-0)^0.5 = 0`).
fn emit_pow(b: &mut FunctionBuilder, p: f32, x: Value) -> Value {
    let one = vm::splat(b, 1.0);
    let sqrt = |b: &mut FunctionBuilder, x: Value| {
        let s = b.ins().sqrt(x);
        // powf(-inf, 0.5) = inf, powf(-0, 0.5) = +0, where sqrt gives NaN and -0.
        let ninf = vm::splat(b, f32::NEG_INFINITY);
        let inf = vm::splat(b, f32::INFINITY);
        let m = vm::cmp(b, FloatCC::Equal, x, ninf);
        let s = vm::select(b, m, inf, s);
        let z = vm::splat(b, 0.0);
        b.ins().fadd(s, z)
    };
    if p == 0.0 {
        one
    } else if p == 1.0 {
        x
    } else if p == 2.0 {
        b.ins().fmul(x, x)
    } else if p == 3.0 {
        let x2 = b.ins().fmul(x, x);
        b.ins().fmul(x2, x)
    } else if p == -1.0 {
        b.ins().fdiv(one, x)
    } else if p == -2.0 {
        let x2 = b.ins().fmul(x, x);
        b.ins().fdiv(one, x2)
    } else if p == 0.5 {
        sqrt(b, x)
    } else {
        // -0.5
        let s = sqrt(b, x);
        b.ins().fdiv(one, s)
    }
}

fn emit_bin(b: &mut FunctionBuilder, o: Bin, x: Value, y: Value) -> Value {
    match o {
        Bin::Add => b.ins().fadd(x, y),
        Bin::Sub => b.ins().fsub(x, y),
        Bin::Mul => b.ins().fmul(x, y),
        Bin::Div => b.ins().fdiv(x, y),
        Bin::Max => vm::max_nan(b, x, y),
        Bin::Min => vm::min_nan(b, x, y),
        Bin::PRelu => {
            let z = vm::splat(b, 0.0);
            let p = b.ins().fmul(x, y);
            let m = vm::cmp(b, FloatCC::LessThan, x, z);
            vm::select(b, m, p, x)
        }
        Bin::Pow => vm::via_f64_2(b, x, y, &|b, p, q| vm::dpow(b, p, q)),
    }
}

/// Emits the kernel: items are (row of the outer collapsed dims, chunk of the inner dim).
fn emit(b: &mut FunctionBuilder, p: KernelParams, plan: &Plan) {
    let ptrf = MemFlagsData::trusted();
    // Element accesses are only 4-byte aligned: no `aligned` flag, so no SSE memory operands.
    let mem = MemFlagsData::new().with_notrap();
    let i64t = types::I64;
    let out = b.ins().load(i64t, ptrf, p.bufs, 0);
    let ptrs: Vec<Value> = (0..plan.leaves.len())
        .map(|l| b.ins().load(i64t, ptrf, p.bufs, 8 * (l as i32 + 1)))
        .collect();
    let k = plan.dims.len();
    let inner = plan.dims[k - 1] as i64;
    let chunk = plan.chunk as i64;

    let ihead = b.create_block();
    let ibody = b.create_block();
    let vhead = b.create_block();
    let vbody = b.create_block();
    let shead = b.create_block();
    let sbody = b.create_block();
    let inext = b.create_block();
    let exit = b.create_block();
    b.append_block_param(ihead, i64t);
    b.append_block_param(vhead, i64t);
    b.append_block_param(shead, i64t);
    b.ins().jump(ihead, &[p.begin.into()]);

    b.switch_to_block(ihead);
    let i = b.block_params(ihead)[0];
    let more = b.ins().icmp(IntCC::UnsignedLessThan, i, p.end);
    b.ins().brif(more, ibody, &[], exit, &[]);

    // Item: row r, elements [j0, j0 + len) of it.
    b.switch_to_block(ibody);
    let (r, j0, len) = if plan.nchunks == 1 {
        let z = b.ins().iconst(i64t, 0);
        let len = b.ins().iconst(i64t, inner);
        (i, z, len)
    } else {
        let nc = b.ins().iconst(i64t, plan.nchunks as i64);
        let r = b.ins().udiv(i, nc);
        let c = b.ins().urem(i, nc);
        let j0 = b.ins().imul_imm_s(c, chunk);
        let inner_v = b.ins().iconst(i64t, inner);
        let rest = b.ins().isub(inner_v, j0);
        let ch = b.ins().iconst(i64t, chunk);
        let len = b.ins().umin(rest, ch);
        (r, j0, len)
    };
    // Element offsets of the row's start for each leaf.
    let zero = b.ins().iconst(i64t, 0);
    let mut offs: Vec<Value> = vec![zero; plan.leaves.len()];
    let mut rem = r;
    for d in (0..k - 1).rev() {
        let dim = plan.dims[d] as i64;
        let dv = b.ins().iconst(i64t, dim);
        let idx = if d == 0 { rem } else { b.ins().urem(rem, dv) };
        for (l, leaf) in plan.leaves.iter().enumerate() {
            let s = leaf.strides[d];
            if s != 0 {
                let t = b.ins().imul_imm_s(idx, s);
                offs[l] = b.ins().iadd(offs[l], t);
            }
        }
        if d > 0 {
            rem = b.ins().udiv(rem, dv);
        }
    }
    let row_start = b.ins().imul_imm_s(r, inner);
    let out_el = b.ins().iadd(row_start, j0);
    let out_off = b.ins().ishl_imm_s(out_el, 2);
    let out_base = b.ins().iadd(out, out_off);
    let mut bases: Vec<Value> = Vec::new();
    // Leaves broadcast along the inner dim: one load per item.
    let mut bcast: Vec<Option<Value>> = Vec::new();
    for (l, leaf) in plan.leaves.iter().enumerate() {
        let contiguous = leaf.strides[k - 1] != 0;
        let el = if contiguous {
            b.ins().iadd(offs[l], j0)
        } else {
            offs[l]
        };
        let off = b.ins().ishl_imm_s(el, 2);
        let base = b.ins().iadd(ptrs[l], off);
        bases.push(base);
        bcast.push(if contiguous {
            None
        } else {
            let s = b.ins().load(types::F32, mem, base, 0);
            Some(b.ins().splat(types::F32X4, s))
        });
    }
    b.ins().jump(vhead, &[zero.into()]);

    // Vector loop.
    b.switch_to_block(vhead);
    let j = b.block_params(vhead)[0];
    let j4 = b.ins().iadd_imm_s(j, 4);
    let fits = b.ins().icmp(IntCC::UnsignedLessThanOrEqual, j4, len);
    b.ins().brif(fits, vbody, &[], shead, &[j.into()]);

    b.switch_to_block(vbody);
    let off = b.ins().ishl_imm_s(j, 2);
    let xs: Vec<Value> = (0..plan.leaves.len())
        .map(|l| match bcast[l] {
            Some(v) => v,
            None => {
                let a = b.ins().iadd(bases[l], off);
                b.ins().load(types::F32X4, mem, a, 0)
            }
        })
        .collect();
    let y = emit_expr(b, plan, &xs);
    let a = b.ins().iadd(out_base, off);
    b.ins().store(mem, y, a, 0);
    b.ins().jump(vhead, &[j4.into()]);

    // Scalar tail: the same expression on lane 0.
    b.switch_to_block(shead);
    let j = b.block_params(shead)[0];
    let more = b.ins().icmp(IntCC::UnsignedLessThan, j, len);
    b.ins().brif(more, sbody, &[], inext, &[]);

    b.switch_to_block(sbody);
    let off = b.ins().ishl_imm_s(j, 2);
    let xs: Vec<Value> = (0..plan.leaves.len())
        .map(|l| match bcast[l] {
            Some(v) => v,
            None => {
                let a = b.ins().iadd(bases[l], off);
                let s = b.ins().load(types::F32, mem, a, 0);
                b.ins().splat(types::F32X4, s)
            }
        })
        .collect();
    let y = emit_expr(b, plan, &xs);
    let y0 = b.ins().extractlane(y, 0);
    let a = b.ins().iadd(out_base, off);
    b.ins().store(mem, y0, a, 0);
    let j1 = b.ins().iadd_imm_s(j, 1);
    b.ins().jump(shead, &[j1.into()]);

    b.switch_to_block(inext);
    let i1 = b.ins().iadd_imm_s(i, 1);
    b.ins().jump(ihead, &[i1.into()]);

    b.switch_to_block(exit);
    b.ins().return_(&[]);
}

/// A launch applying `act` in place to the `len` f32 values of the node's output 0 (the
/// epilogue of kernels whose own epilogue lacks `act`). A work item is a block of `CHUNK`
/// values; tails go through lane 0 of a vector.
pub fn activation_in_place(
    cx: &mut KernelCx,
    act: &graphc_passes::ir::fused::Activation,
    len: usize,
) -> Result<Launch, String> {
    let act = act.clone();
    let func = cx.define_kernel("activation", |b, p| {
        let ptrf = MemFlagsData::trusted();
        let mem = MemFlagsData::new().with_notrap();
        let i64t = types::I64;
        let base = b.ins().load(i64t, ptrf, p.bufs, 0);
        let lo = b.ins().imul_imm_s(p.begin, CHUNK as i64);
        let hi = b.ins().imul_imm_s(p.end, CHUNK as i64);
        let total = b.ins().iconst(i64t, len as i64);
        let hi = b.ins().umin(hi, total);
        let vhead = b.create_block();
        let vbody = b.create_block();
        let shead = b.create_block();
        let sbody = b.create_block();
        let exit = b.create_block();
        b.append_block_param(vhead, i64t);
        b.append_block_param(shead, i64t);
        b.ins().jump(vhead, &[lo.into()]);

        b.switch_to_block(vhead);
        let i = b.block_params(vhead)[0];
        let next = b.ins().iadd_imm_s(i, 4);
        let fits = b.ins().icmp(IntCC::UnsignedLessThanOrEqual, next, hi);
        b.ins().brif(fits, vbody, &[], shead, &[i.into()]);

        b.switch_to_block(vbody);
        let off = b.ins().ishl_imm_s(i, 2);
        let at = b.ins().iadd(base, off);
        let x = b.ins().load(types::F32X4, mem, at, 0);
        let y = vm::activation(b, &act, x);
        b.ins().store(mem, y, at, 0);
        b.ins().jump(vhead, &[next.into()]);

        b.switch_to_block(shead);
        let j = b.block_params(shead)[0];
        let more = b.ins().icmp(IntCC::UnsignedLessThan, j, hi);
        b.ins().brif(more, sbody, &[], exit, &[]);

        b.switch_to_block(sbody);
        let off = b.ins().ishl_imm_s(j, 2);
        let at = b.ins().iadd(base, off);
        let x = b.ins().load(types::F32, mem, at, 0);
        let xv = b.ins().splat(types::F32X4, x);
        let yv = vm::activation(b, &act, xv);
        let y = b.ins().extractlane(yv, 0);
        b.ins().store(mem, y, at, 0);
        let j1 = b.ins().iadd_imm_s(j, 1);
        b.ins().jump(shead, &[j1.into()]);

        b.switch_to_block(exit);
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Launch {
        func,
        operands: vec![Operand::Output(0)],
        items: len.div_ceil(CHUNK) as u64,
        grain: 1,
        name: "activation".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codegen::kernel::Target;
    use crate::codegen::testing::{check_graph, check_text, run_node, single_compute_node};
    use graphc_passes::eval::{compare, eval_graph, random_inputs};
    use graphc_passes::ir::text::parse;

    /// Exact ops: rounding as the reference's f64 computation rounded once.
    const EXACT: f64 = 0.0;
    /// vmath functions: ~2 ulp measured (vmath tests); 1e-6 leaves margin for the ops that
    /// compose them (gelu, swish, elu, ...). atol forgives subnormal-sized results only.
    const RTOL: f64 = 1e-6;
    const ATOL: f64 = 1e-30;

    fn unary(op: &str, shape: &str) -> String {
        format!("graph \"g\" (%x: f32{shape}) {{\n  %y: f32{shape} = {op} (%x)\n  return %y\n}}\n")
    }

    fn binary(op: &str, a: &str, b: &str, out: &str) -> String {
        format!(
            "graph \"g\" (%a: f32{a}, %b: f32{b}) {{\n  %y: f32{out} = {op} (%a, %b)\n  return %y\n}}\n"
        )
    }

    /// `check_text` on the host target and on the baseline (no AVX2) target.
    fn check(text: &str, rtol: f64, atol: f64) {
        for seed in [1, 2] {
            check_text(text, seed, rtol, atol).unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
        let g = parse(text).unwrap();
        check_graph(&g, 3, rtol, atol, Target::baseline())
            .unwrap_or_else(|e| panic!("baseline: {e}\n{text}"));
    }

    /// Runs the graph's node on random inputs scaled by `scale` with special values mixed in,
    /// against the reference.
    fn check_special(text: &str, scale: f64, rtol: f64, atol: f64) {
        let g = parse(text).unwrap();
        let node = single_compute_node(&g).unwrap();
        let specials = [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            1e30,
            -1e30,
        ];
        let inputs: Vec<Option<Tensor>> = random_inputs(&g, 7)
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(k, t)| {
                t.map(|t| {
                    let v: Vec<f64> = t
                        .to_f64_vec()
                        .iter()
                        .enumerate()
                        .map(|(i, x)| {
                            if (i + k) % 5 == 0 {
                                specials[(i / 5 + k) % specials.len()]
                            } else {
                                x * scale
                            }
                        })
                        .collect();
                    Tensor::from_vec(t.shape(), v).unwrap().cast(DType::F32)
                })
            })
            .collect();
        let want = eval_graph(&g, &inputs).unwrap();
        for target in [Target::host(), Target::baseline()] {
            let got = run_node(&g, node, &inputs, target)
                .unwrap()
                .expect("a kernel");
            compare(&got[0], &want[0], rtol, atol).unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
    }

    #[test]
    fn unary_ops_all_shapes() {
        let ops: &[(&str, f64)] = &[
            ("relu", EXACT),
            ("leaky_relu {alpha: 0.1}", EXACT),
            ("sigmoid", RTOL),
            ("hard_sigmoid {alpha: 0.25, beta: 0.5}", RTOL),
            ("hard_swish", RTOL),
            ("swish", RTOL),
            // alpha x is rounded to f32 before the sigmoid (the reference keeps it exact in
            // f64): relative error up to |alpha x| * 6e-8, so 1e-5 for the sweep to |x| = 60.
            ("swish {alpha: 1.5}", 1e-5),
            ("gelu", 4e-6),
            ("gelu {approximate: \"tanh\"}", 2e-6),
            ("tanh", RTOL),
            ("exp", RTOL),
            ("log", RTOL),
            ("sqrt", EXACT),
            ("abs", EXACT),
            ("neg", EXACT),
            ("reciprocal", EXACT),
            ("erf", RTOL),
            ("elu {alpha: 2.0}", RTOL),
            ("selu", RTOL),
            ("celu {alpha: 0.5}", RTOL),
            ("softplus", RTOL),
            ("softsign", RTOL),
            ("floor", EXACT),
            ("ceil", EXACT),
            // Computed in f64 lanes, rounded once (vmath tests: 2.5e-7 over whole ranges).
            ("sin", RTOL),
            ("cos", RTOL),
            ("tan", RTOL),
            ("asin", RTOL),
            ("acos", RTOL),
            ("atan", RTOL),
            ("sinh", RTOL),
            ("cosh", RTOL),
            ("asinh", RTOL),
            ("acosh", RTOL),
            ("atanh", RTOL),
            ("mish", RTOL),
            ("thresholded_relu {alpha: 0.5}", EXACT),
            ("thresholded_relu", EXACT),
            ("shrink {bias: 0.5, lambd: 1.0}", EXACT),
            ("shrink {bias: -1.5, lambd: 0.0}", EXACT),
        ];
        let mut failed = Vec::new();
        for (op, rtol) in ops {
            // erf's absolute error in its tails is below 1e-7 (under 1 ulp of 1).
            let atol = if op.starts_with("erf") { 1e-7 } else { ATOL };
            // Gelu's negative tail (x < -6) is below 1e-9, where the reference's own
            // `1 + erf` / `1 + tanh` in f64 cancels to a few significant digits.
            let atol_special = if op.starts_with("gelu") { 1e-9 } else { atol };
            let r = std::panic::catch_unwind(|| {
                for shape in [
                    "[7]", "[3,5]", "[1,1,1]", "[2,3,4]", "[]", "[0,3]", "[40000]",
                ] {
                    check(&unary(op, shape), *rtol, atol);
                }
                check_special(&unary(op, "[4,37]"), 30.0, *rtol, atol_special);
            });
            if r.is_err() {
                failed.push(*op);
            }
        }
        assert!(failed.is_empty(), "failed: {failed:?}");
    }

    #[test]
    fn binary_ops_broadcast() {
        let shapes = [
            ("[7]", "[7]", "[7]"),
            ("[2,3,4]", "[4]", "[2,3,4]"),
            ("[2,3,4]", "[3,1]", "[2,3,4]"),
            ("[1]", "[2,1,5]", "[2,1,5]"),
            ("[]", "[3,5]", "[3,5]"),
            ("[3,5]", "[]", "[3,5]"),
            ("[2,1,3]", "[4,1]", "[2,4,3]"),
            ("[1,1,1]", "[1,1,1]", "[1,1,1]"),
            ("[0,4]", "[4]", "[0,4]"),
            ("[5,1,6]", "[1,7,1]", "[5,7,6]"),
            ("[3,20000]", "[3,1]", "[3,20000]"),
            ("[40001]", "[1]", "[40001]"),
        ];
        // Pow in f64 lanes, rounded once: within an ulp of the reference's powf.
        for (a, b, o) in shapes {
            check(&binary("pow", a, b, o), RTOL, ATOL);
        }
        check_special(&binary("pow", "[4,9]", "[9]", "[4,9]"), 3.0, RTOL, ATOL);
        for op in ["add", "sub", "mul", "div", "max", "min", "sum", "mean"] {
            // All exact: f32 + - * / round as the reference's f64 result rounded once; Mean
            // divides the f32 sum by n, as the reference does.
            for (a, b, o) in shapes {
                check(&binary(op, a, b, o), EXACT, 0.0);
            }
            check_special(&binary(op, "[4,9]", "[9]", "[4,9]"), 10.0, 0.0, 0.0);
        }
        // PRelu: the slope broadcasts to x.
        for (a, b) in [
            ("[2,3,4]", "[3,1]"),
            ("[2,3,4]", "[4]"),
            ("[7]", "[1]"),
            ("[7]", "[]"),
        ] {
            check(&binary("prelu", a, b, a), 0.0, 0.0);
        }
        check_special(&binary("prelu", "[4,9]", "[9]", "[4,9]"), 10.0, 0.0, 0.0);
    }

    #[test]
    fn variadic_ops() {
        for op in ["max", "min", "sum", "mean"] {
            let text = format!(
                "graph \"g\" (%a: f32[2,3,4], %b: f32[4], %c: f32[3,1]) {{\n  %y: f32[2,3,4] = {op} (%a, %b, %c)\n  return %y\n}}\n"
            );
            check(&text, 0.0, 0.0);
            check_special(&text, 5.0, 0.0, 0.0);
            check(&unary(op, "[5]"), 0.0, 0.0);
        }
    }

    #[test]
    fn clip_and_pow_with_constants() {
        for (lo, hi) in [("-1.0", "1.5"), ("2.0", "1.0"), ("0.0", "6.0")] {
            let text = format!(
                "graph \"g\" (%x: f32[3,7]) {{\n  %lo: f32[] = constant {{value: f32[] [{lo}]}}\n  %hi: f32[] = constant {{value: f32[] [{hi}]}}\n  %y: f32[3,7] = clip (%x, %lo, %hi)\n  return %y\n}}\n"
            );
            check(&text, 0.0, 0.0);
            check_special(&text, 5.0, 0.0, 0.0);
        }
        // Only a max; no bounds at all.
        let text = "graph \"g\" (%x: f32[9]) {\n  %hi: f32[1] = constant {value: f32[1] [0.5]}\n  %y: f32[9] = clip (%x, _, %hi)\n  return %y\n}\n";
        check(text, 0.0, 0.0);
        check(&unary("clip", "[9]"), 0.0, 0.0);
        for (e, rtol) in [
            ("2.0", 0.0),
            ("0.5", 0.0),
            ("3.0", 2e-7),
            ("-1.0", 0.0),
            ("0.0", 0.0),
            ("-0.5", 2e-7),
            ("1.0", 0.0),
        ] {
            let text = format!(
                "graph \"g\" (%x: f32[3,7]) {{\n  %e: f32[] = constant {{value: f32[] [{e}]}}\n  %y: f32[3,7] = pow (%x, %e)\n  return %y\n}}\n"
            );
            check(&text, rtol, 0.0);
            check_special(&text, 5.0, rtol, 0.0);
        }
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        // An f32 op on f16 (no kernel family takes it).
        let g = parse("graph \"g\" (%x: f16[3]) {\n  %y: f16[3] = mish (%x)\n  return %y\n}\n")
            .unwrap();
        let node = single_compute_node(&g).unwrap();
        let inputs = random_inputs(&g, 1).unwrap();
        assert!(run_node(&g, node, &inputs, Target::host())
            .unwrap()
            .is_none());
    }

    /// A fused body as the fuse-elementwise pass makes it (body inputs = node inputs).
    fn fused(sig: &str, out: &str, args: &str, body_sig: &str, body: &str) -> String {
        format!(
            "graph \"g\" ({sig}) {{\n  %y: f32{out} = fused_elementwise {{body: graph \"b\" ({body_sig}) {{\n{body}\n  }}}} ({args})\n  return %y\n}}\n"
        )
    }

    #[test]
    fn fused_bodies() {
        // BN then Relu (DenseNet): x * scale[C,1,1] + shift[C,1,1], relu.
        let bn = fused(
            "%x: f32[2,3,5,5], %s: f32[3,1,1], %t: f32[3,1,1]",
            "[2,3,5,5]",
            "%x, %s, %t",
            "%x0: f32[2,3,5,5], %x1: f32[3,1,1], %x2: f32[3,1,1]",
            "    %m: f32[2,3,5,5] = mul (%x0, %x1)\n    %a: f32[2,3,5,5] = add (%m, %x2)\n    %r: f32[2,3,5,5] = relu (%a)\n    return %r",
        );
        // SiLU.
        let silu = fused(
            "%x: f32[3,7]",
            "[3,7]",
            "%x",
            "%x0: f32[3,7]",
            "    %s: f32[3,7] = sigmoid (%x0)\n    %m: f32[3,7] = mul (%x0, %s)\n    return %m",
        );
        // GELU spelled out: 0.5 x (1 + erf(x / sqrt 2)), with scalar constants as inputs.
        let gelu = fused(
            "%x: f32[2,9]",
            "[2,9]",
            "%x, %k, %one, %half",
            "%x0: f32[2,9], %x1: f32[], %x2: f32[], %x3: f32[]",
            "    %d: f32[2,9] = div (%x0, %x1)\n    %e: f32[2,9] = erf (%d)\n    %p: f32[2,9] = add (%e, %x2)\n    %m: f32[2,9] = mul (%x0, %p)\n    %h: f32[2,9] = mul (%m, %x3)\n    return %h",
        )
        .replace(
            "(%x: f32[2,9]) {\n",
            "(%x: f32[2,9]) {\n  %k: f32[] = constant {value: f32[] [1.4142135]}\n  %one: f32[] = constant {value: f32[] [1.0]}\n  %half: f32[] = constant {value: f32[] [0.5]}\n",
        );
        // The pass's test chain: broadcast constant, two inputs, a value used twice.
        let chain = fused(
            "%x: f32[2,3,4], %z: f32[2,3,4]",
            "[2,3,4]",
            "%x, %s, %z",
            "%x0: f32[2,3,4], %x1: f32[4], %x2: f32[2,3,4]",
            "    %a: f32[2,3,4] = mul (%x0, %x1)\n    %b: f32[2,3,4] = add (%a, %x2)\n    %t: f32[2,3,4] = tanh (%b)\n    %u: f32[2,3,4] = sigmoid (%t)\n    %v: f32[2,3,4] = mul (%t, %u)\n    %w: f32[2,3,4] = relu (%v)\n    return %w",
        )
        .replace(
            "(%x: f32[2,3,4], %z: f32[2,3,4]) {\n",
            "(%x: f32[2,3,4], %z: f32[2,3,4]) {\n  %s: f32[4] = constant {value: f32[4] [0.5, 1.0, 2.0, -1.0]}\n",
        );
        // Ops computed in f64 lanes inside a body: sin(x) * cosh(z) + pow(x, z), atan.
        let trig = fused(
            "%x: f32[3,7], %z: f32[7]",
            "[3,7]",
            "%x, %z",
            "%x0: f32[3,7], %x1: f32[7]",
            "    %s: f32[3,7] = sin (%x0)\n    %c: f32[7] = cosh (%x1)\n    %m: f32[3,7] = mul (%s, %c)\n    %p: f32[3,7] = pow (%x0, %x1)\n    %a: f32[3,7] = add (%m, %p)\n    %t: f32[3,7] = atan (%a)\n    return %t",
        );
        for (name, text, rtol) in [
            ("trig", &trig, 2e-6),
            ("bn", &bn, 0.0),
            ("silu", &silu, RTOL),
            ("gelu", &gelu, 4e-6),
            ("chain", &chain, 2e-6),
        ] {
            parse(text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
            check(text, rtol, 1e-7);
        }
        check_special(&bn, 3.0, 0.0, 0.0);
    }
}
