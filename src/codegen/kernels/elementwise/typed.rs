//! Kernels: standalone elementwise ops on f64, f16, bf16, the integer types and bool, and the
//! f32 ops the f32x4 engine of [`super`] lacks (comparisons, IsNaN/IsInf, Round, Sign, Clip
//! with tensor bounds, Pow with integer exponents or f64 exponents, float Mod, CastLike).
//!
//! A node becomes a small typed expression ([`Expr`]) over its inputs read per element
//! (broadcast by numpy rules, collapsed as in [`super`]). The kernel walks the output in rows
//! of the innermost collapsed dim; a row is computed with 128-bit vectors when every operand and
//! the result have one element type and every op is a cheap vector instruction for it (integer
//! add/sub/and/or/xor/not/neg, i16/i32 mul, f32/f64 add/sub/mul/div/neg/abs/sqrt, bool
//! and/or/xor/not), otherwise one element at a time.
//!
//! Semantics are the reference evaluator's (numpy's): integers wrap; integer Div truncates
//! toward zero and `MIN / -1` wraps to `MIN`; Mod follows the divisor's sign (`fmod = 0`) or the
//! dividend's (`fmod = 1`), float Mod from the exact `fmod` computed in f64; integer Pow
//! multiplies exactly (wrapping; negative exponents give 0 unless the base is 1 or -1); Pow
//! with a float exponent is the f64 `powf` converted to the base's type; f64 Max/Min propagate
//! NaN and keep the first operand on ties; comparisons are false with NaN; BitShift by the
//! width or more gives 0. A zero integer divisor (an error in the reference) gives 0 here
//! rather than a trap: the divisor is replaced by 1 before the division instruction, as is -1
//! (so `MIN / -1` never traps either). CastLike (and Cast from or to f16/bf16) converts as the
//! reference's Cast (numpy `astype`; to f16/bf16 rounding to nearest even in one step).
//!
//! f16 and bf16 values are widened exactly to f64 when read, every op runs in f64, and the
//! result is rounded once to the half type: the reference computes the same way (a variadic
//! Sum rounds after each addition, as the reference's pairwise fold does). f64 Exp and Log
//! use vmath's f64 lanes.
//!
//! Declined: string, Pow with a bool exponent, BitShift on signed types, Mean on integers,
//! transcendental functions other than f64/f16/bf16 Exp and Log, fused bodies (the fuse
//! pass makes f32 ones), dynamic shapes.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::{collapse, vm, CHUNK};
use crate::codegen::kernel::{KernelCx, KernelParams, Lowered, Operand};

/// A unary function.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Un {
    Neg,
    Abs,
    Sign,
    Relu,
    /// Bool `!`.
    Not,
    BitNot,
    IsNaN,
    IsInf {
        neg: bool,
        pos: bool,
    },
    Sqrt,
    Floor,
    Ceil,
    Round,
    Reciprocal,
    /// Conversion to the node's type.
    Cast,
    /// f64 only (computed in vmath's f64 lanes).
    Exp,
    Log,
}

/// A binary function (operands of one type, except Pow's exponent).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Mod {
        fmod: bool,
    },
    /// Integer exponent.
    Pow,
    /// Float exponent (any numeric base): computed in f64.
    PowF,
    Max,
    Min,
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
    /// Bitwise, also logical on bool.
    And,
    Or,
    Xor,
    Shl,
    Shr,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ex {
    /// Leaf `k` of [`Expr::leaves`].
    Leaf(usize),
    /// A scalar constant (f64 value for floats, i64 bit pattern for integers).
    Const(f64, i64),
    Un(Un, usize),
    Bin(Bin, usize, usize),
}

/// An expression node and its element type.
#[derive(Clone, Copy, Debug)]
struct Node {
    ex: Ex,
    dt: DType,
}

#[derive(Default)]
struct Expr {
    nodes: Vec<Node>,
    /// Node input slot and type of each leaf.
    leaves: Vec<(usize, DType)>,
}

impl Expr {
    fn push(&mut self, ex: Ex, dt: DType) -> usize {
        self.nodes.push(Node { ex, dt });
        self.nodes.len() - 1
    }
}

/// The element types handled.
fn supported(dt: DType) -> bool {
    matches!(
        dt,
        DType::F32
            | DType::F64
            | DType::I8
            | DType::I16
            | DType::I32
            | DType::I64
            | DType::U8
            | DType::U16
            | DType::U32
            | DType::U64
            | DType::Bool
            | DType::F16
            | DType::BF16
    )
}

/// f16 and bf16: read and written as 16-bit patterns, computed in f64 (exact widening, one
/// rounding back, as the reference's f64 computation).
fn is_half(dt: DType) -> bool {
    matches!(dt, DType::F16 | DType::BF16)
}

fn is_float(dt: DType) -> bool {
    matches!(dt, DType::F32 | DType::F64)
}

fn is_signed(dt: DType) -> bool {
    matches!(dt, DType::I8 | DType::I16 | DType::I32 | DType::I64)
}

fn is_int(dt: DType) -> bool {
    supported(dt) && !is_float(dt) && !is_half(dt) && dt != DType::Bool
}

fn is_num(dt: DType) -> bool {
    supported(dt) && dt != DType::Bool
}

/// The Cranelift type of an element.
fn cl_type(dt: DType) -> Type {
    match dt {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
        DType::I16 | DType::U16 | DType::F16 | DType::BF16 => types::I16,
        DType::I32 | DType::U32 => types::I32,
        DType::I64 | DType::U64 => types::I64,
        _ => types::I8,
    }
}

/// Builds the expression of a standalone node; `None` if unsupported.
fn build(g: &Graph, node: NodeId) -> Option<(Expr, usize)> {
    let n = g.node(node);
    if n.outputs.len() != 1 {
        return None;
    }
    let odt = n.outputs[0].ty.dtype;
    if !supported(odt) {
        return None;
    }
    let mut e = Expr::default();
    // The element type of input slot i as the graph has it.
    let raw = |i: usize| -> Option<DType> { Some(g.ty((*n.inputs.get(i)?)?).dtype) };
    // Input slot i as a leaf (one per slot) and the type the expression sees: an f16/bf16
    // leaf is widened to f64 by a Cast node pushed right after it.
    let arg = |e: &mut Expr, i: usize| -> Option<(usize, DType)> {
        let v = (*n.inputs.get(i)?)?;
        let dt = g.ty(v).dtype;
        if !supported(dt) {
            return None;
        }
        let leaf = match e.leaves.iter().position(|l| l.0 == i) {
            Some(k) => e.nodes.iter().position(|nd| nd.ex == Ex::Leaf(k))?,
            None => {
                e.leaves.push((i, dt));
                let k = e.leaves.len() - 1;
                let leaf = e.push(Ex::Leaf(k), dt);
                if is_half(dt) {
                    e.push(Ex::Un(Un::Cast, leaf), DType::F64);
                }
                leaf
            }
        };
        Some(if is_half(dt) {
            (leaf + 1, DType::F64)
        } else {
            (leaf, dt)
        })
    };
    // Rounds an f64 value to the half type `h` and back (what the reference does between
    // the steps of a variadic f16/bf16 Sum).
    let round_to = |e: &mut Expr, x: usize, h: DType| -> usize {
        let r = e.push(Ex::Un(Un::Cast, x), h);
        e.push(Ex::Un(Un::Cast, r), DType::F64)
    };
    let nin = n.inputs.len();
    let root = match &n.op {
        Op::Add {} | Op::Sub {} | Op::Mul {} | Op::Div {} | Op::Mod { .. } | Op::Pow {} => {
            if nin != 2 {
                return None;
            }
            let (x, xd) = arg(&mut e, 0)?;
            let (y, yd) = arg(&mut e, 1)?;
            let op = match &n.op {
                Op::Add {} => Bin::Add,
                Op::Sub {} => Bin::Sub,
                Op::Mul {} => Bin::Mul,
                Op::Div {} => Bin::Div,
                Op::Mod { fmod } => {
                    if !matches!(fmod, 0 | 1) {
                        return None;
                    }
                    Bin::Mod { fmod: *fmod == 1 }
                }
                _ => {
                    // Pow: any numeric base, an integer or float exponent.
                    if !is_num(xd) {
                        return None;
                    }
                    if is_int(yd) {
                        Bin::Pow
                    } else if is_float(yd) {
                        Bin::PowF
                    } else {
                        return None;
                    }
                }
            };
            let pow = matches!(op, Bin::Pow | Bin::PowF);
            if !pow && (xd != yd || raw(0) != raw(1) || !is_num(xd)) {
                return None;
            }
            e.push(Ex::Bin(op, x, y), xd)
        }
        Op::Max {} | Op::Min {} | Op::Sum {} | Op::Mean {} => {
            let op = match &n.op {
                Op::Max {} => Bin::Max,
                Op::Min {} => Bin::Min,
                _ => Bin::Add,
            };
            let (mut acc, dt) = arg(&mut e, 0)?;
            let rdt = raw(0)?;
            if !is_num(dt) {
                return None;
            }
            for i in 1..nin {
                let (y, yd) = arg(&mut e, i)?;
                if yd != dt || raw(i)? != rdt {
                    return None;
                }
                acc = e.push(Ex::Bin(op, acc, y), dt);
                if is_half(rdt) && op == Bin::Add {
                    acc = round_to(&mut e, acc, rdt);
                }
            }
            if matches!(n.op, Op::Mean {}) {
                if !is_float(dt) {
                    return None;
                }
                let c = e.push(Ex::Const(nin as f64, 0), dt);
                acc = e.push(Ex::Bin(Bin::Div, acc, c), dt);
            }
            acc
        }
        Op::And {}
        | Op::Or {}
        | Op::Xor {}
        | Op::BitwiseAnd {}
        | Op::BitwiseOr {}
        | Op::BitwiseXor {}
        | Op::BitShift { .. } => {
            if nin != 2 {
                return None;
            }
            let (x, xd) = arg(&mut e, 0)?;
            let (y, yd) = arg(&mut e, 1)?;
            if xd != yd || raw(0) != raw(1) {
                return None;
            }
            let logical = matches!(n.op, Op::And {} | Op::Or {} | Op::Xor {});
            if logical != (xd == DType::Bool) || (!logical && !is_int(xd)) {
                return None;
            }
            let op = match &n.op {
                Op::And {} | Op::BitwiseAnd {} => Bin::And,
                Op::Or {} | Op::BitwiseOr {} => Bin::Or,
                Op::Xor {} | Op::BitwiseXor {} => Bin::Xor,
                Op::BitShift { direction } => {
                    if is_signed(xd) {
                        return None;
                    }
                    match direction.as_str() {
                        "LEFT" => Bin::Shl,
                        "RIGHT" => Bin::Shr,
                        _ => return None,
                    }
                }
                _ => return None,
            };
            e.push(Ex::Bin(op, x, y), xd)
        }
        Op::Equal {}
        | Op::Less {}
        | Op::LessOrEqual {}
        | Op::Greater {}
        | Op::GreaterOrEqual {} => {
            if nin != 2 {
                return None;
            }
            let (x, xd) = arg(&mut e, 0)?;
            let (y, yd) = arg(&mut e, 1)?;
            if xd != yd || raw(0) != raw(1) {
                return None;
            }
            let op = match &n.op {
                Op::Equal {} => Bin::Eq,
                Op::Less {} => Bin::Lt,
                Op::LessOrEqual {} => Bin::Le,
                Op::Greater {} => Bin::Gt,
                _ => Bin::Ge,
            };
            e.push(Ex::Bin(op, x, y), DType::Bool)
        }
        Op::Neg {}
        | Op::Abs {}
        | Op::Sign {}
        | Op::Relu {}
        | Op::Not {}
        | Op::BitwiseNot {}
        | Op::IsNaN {}
        | Op::IsInf { .. }
        | Op::Sqrt {}
        | Op::Floor {}
        | Op::Ceil {}
        | Op::Round {}
        | Op::Reciprocal {}
        | Op::Exp {}
        | Op::Log {} => {
            if nin != 1 {
                return None;
            }
            let (x, xd) = arg(&mut e, 0)?;
            let (u, ok, dt) = match &n.op {
                Op::Neg {} => (Un::Neg, is_signed(xd) || is_float(xd), xd),
                Op::Abs {} => (Un::Abs, is_num(xd), xd),
                Op::Sign {} => (Un::Sign, is_num(xd), xd),
                Op::Relu {} => (Un::Relu, is_num(xd), xd),
                Op::Not {} => (Un::Not, xd == DType::Bool, xd),
                Op::BitwiseNot {} => (Un::BitNot, is_int(xd), xd),
                Op::IsNaN {} => (Un::IsNaN, is_float(xd), DType::Bool),
                Op::IsInf {
                    detect_negative,
                    detect_positive,
                } => (
                    Un::IsInf {
                        neg: *detect_negative != 0,
                        pos: *detect_positive != 0,
                    },
                    is_float(xd),
                    DType::Bool,
                ),
                Op::Sqrt {} => (Un::Sqrt, is_float(xd), xd),
                Op::Floor {} => (Un::Floor, is_float(xd), xd),
                Op::Ceil {} => (Un::Ceil, is_float(xd), xd),
                Op::Round {} => (Un::Round, is_float(xd), xd),
                Op::Exp {} => (Un::Exp, xd == DType::F64, xd),
                Op::Log {} => (Un::Log, xd == DType::F64, xd),
                _ => (Un::Reciprocal, is_float(xd), xd),
            };
            if !ok {
                return None;
            }
            e.push(Ex::Un(u, x), dt)
        }
        Op::CastLike { .. } => {
            if nin != 2 {
                return None;
            }
            let (x, _) = arg(&mut e, 0)?;
            let target = g.ty(*n.inputs.get(1)?.as_ref()?).dtype;
            if target != odt {
                return None;
            }
            e.push(Ex::Un(Un::Cast, x), odt)
        }
        // Casts from or to f16/bf16 (the misc family takes the others).
        Op::Cast { to, .. } => {
            if nin != 1 || *to != odt || !(is_half(odt) || is_half(raw(0)?)) {
                return None;
            }
            let (x, _) = arg(&mut e, 0)?;
            e.push(Ex::Un(Un::Cast, x), odt)
        }
        Op::Clip {} => {
            if nin > 3 {
                return None;
            }
            let (mut x, dt) = arg(&mut e, 0)?;
            if !is_num(dt) {
                return None;
            }
            for (i, op) in [(1, Bin::Max), (2, Bin::Min)] {
                let Some(Some(v)) = n.inputs.get(i) else {
                    continue;
                };
                // A bound has one element (an empty one is absent).
                let len = g.ty(*v).shape.as_known()?.iter().product::<usize>();
                if len == 0 {
                    continue;
                }
                let (b, bd) = arg(&mut e, i)?;
                if len != 1 || bd != dt || raw(i) != raw(0) {
                    return None;
                }
                x = e.push(Ex::Bin(op, x, b), dt);
            }
            x
        }
        _ => return None,
    };
    // Half results are computed in f64 and rounded once.
    let root = if is_half(odt) && e.nodes[root].dt == DType::F64 {
        e.push(Ex::Un(Un::Cast, root), odt)
    } else {
        root
    };
    (e.nodes[root].dt == odt).then_some((e, root))
}

/// Whether the expression can run on 128-bit vectors of its one element type.
fn vector_ok(e: &Expr) -> bool {
    let dt = e.nodes[0].dt;
    let f = is_float(dt);
    e.nodes.iter().all(|nd| {
        nd.dt == dt
            && match nd.ex {
                Ex::Leaf(_) | Ex::Const(..) => true,
                Ex::Un(u, _) => match u {
                    Un::Neg => true,
                    Un::Abs | Un::Sqrt => f,
                    Un::Not => dt == DType::Bool,
                    Un::BitNot => is_int(dt),
                    _ => false,
                },
                Ex::Bin(o, _, _) => match o {
                    Bin::Add | Bin::Sub => dt != DType::Bool,
                    Bin::Mul => f || matches!(dt.size(), 2 | 4),
                    Bin::Div => f,
                    Bin::And | Bin::Or | Bin::Xor => !f,
                    _ => false,
                },
            }
    })
}

/// See [`super`]: the typed kernels.
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let Some(out) = n.outputs.first().and_then(|o| o.ty.shape.as_known()) else {
        return Ok(None);
    };
    let Some((expr, root)) = build(g, node) else {
        return Ok(None);
    };
    let mut shapes: Vec<Vec<usize>> = Vec::new();
    for &(slot, _) in &expr.leaves {
        let Some(Some(v)) = n.inputs.get(slot) else {
            return Ok(None);
        };
        let Some(dims) = g.ty(*v).shape.as_known() else {
            return Ok(None);
        };
        shapes.push(dims);
    }
    let total: usize = out.iter().product();
    if total == 0 {
        return Ok(Some(Lowered::default()));
    }
    let Some((dims, strides)) = collapse(&out, &shapes) else {
        return Ok(None);
    };
    if strides.iter().any(|s| !matches!(s.last(), Some(0 | 1))) {
        return Ok(None);
    }
    let inner = *dims.last().unwrap_or(&1);
    let chunk = inner.min(CHUNK);
    let nchunks = inner.div_ceil(chunk);
    let rows = total / inner;
    let plan = Plan {
        expr: &expr,
        root,
        odt: n.outputs[0].ty.dtype,
        strides: &strides,
        dims: &dims,
        chunk,
        nchunks,
        vector: vector_ok(&expr),
    };
    let func = cx.define_kernel(&format!("eltwise_t_{}", n.op.name()), |b, p| {
        emit(b, p, &plan);
        Ok(())
    })?;
    let mut operands = vec![Operand::Output(0)];
    operands.extend(expr.leaves.iter().map(|l| Operand::Input(l.0)));
    Ok(Some(Lowered::one(
        func,
        operands,
        ((rows * nchunks) as u64, (CHUNK / chunk).max(1) as u64),
        &format!("eltwise.{}", n.op.name()),
        0,
    )))
}

struct Plan<'a> {
    expr: &'a Expr,
    root: usize,
    odt: DType,
    /// Per leaf, element strides over the collapsed dims.
    strides: &'a [Vec<i64>],
    dims: &'a [usize],
    chunk: usize,
    nchunks: usize,
    vector: bool,
}

/// Lanes of a 128-bit vector of `dt`.
fn lanes(dt: DType) -> usize {
    16 / dt.size()
}

/// An integer constant of type `ty` (scalar or vector) from its bit pattern.
fn iconst(b: &mut FunctionBuilder, ty: Type, v: i64) -> Value {
    let lane = ty.lane_type();
    let bits = lane.bits();
    let v = if bits < 64 {
        v & ((1i64 << bits) - 1)
    } else {
        v
    };
    let s = b.ins().iconst(lane, v);
    if ty.is_vector() {
        b.ins().splat(ty, s)
    } else {
        s
    }
}

/// A float constant of type `ty` (scalar or vector).
fn fconst(b: &mut FunctionBuilder, ty: Type, v: f64) -> Value {
    let s = if ty.lane_type() == types::F32 {
        b.ins().f32const(v as f32)
    } else {
        b.ins().f64const(v)
    };
    if ty.is_vector() {
        b.ins().splat(ty, s)
    } else {
        s
    }
}

/// The condition codes of a comparison for `dt`.
fn int_cc(o: Bin, dt: DType) -> IntCC {
    let s = is_signed(dt);
    match o {
        Bin::Eq => IntCC::Equal,
        Bin::Lt | Bin::Min if s => IntCC::SignedLessThan,
        Bin::Lt | Bin::Min => IntCC::UnsignedLessThan,
        Bin::Le if s => IntCC::SignedLessThanOrEqual,
        Bin::Le => IntCC::UnsignedLessThanOrEqual,
        Bin::Gt if s => IntCC::SignedGreaterThan,
        Bin::Gt => IntCC::UnsignedGreaterThan,
        Bin::Ge | Bin::Max if s => IntCC::SignedGreaterThanOrEqual,
        _ => IntCC::UnsignedGreaterThanOrEqual,
    }
}

fn float_cc(o: Bin) -> FloatCC {
    match o {
        Bin::Eq => FloatCC::Equal,
        Bin::Lt => FloatCC::LessThan,
        Bin::Le | Bin::Min => FloatCC::LessThanOrEqual,
        Bin::Gt => FloatCC::GreaterThan,
        _ => FloatCC::GreaterThanOrEqual,
    }
}

/// Emits the expression on leaf values (scalars, or vectors when `plan.vector`).
fn eval(b: &mut FunctionBuilder, plan: &Plan, leaf_vals: &[Value], vector: bool) -> Value {
    let e = plan.expr;
    let ty_of = |dt: DType| {
        let t = cl_type(dt);
        if vector {
            t.by(lanes(dt) as u32).expect("128-bit vector")
        } else {
            t
        }
    };
    let mut vals: Vec<Value> = Vec::with_capacity(plan.root + 1);
    for i in 0..=plan.root {
        let nd = e.nodes[i];
        let ty = ty_of(nd.dt);
        let v = match nd.ex {
            Ex::Leaf(k) => leaf_vals[k],
            Ex::Const(f, bits) => {
                if is_float(nd.dt) {
                    fconst(b, ty, f)
                } else {
                    iconst(b, ty, bits)
                }
            }
            Ex::Un(u, a) => {
                let adt = e.nodes[a].dt;
                emit_un(b, u, vals[a], adt, nd.dt, ty)
            }
            Ex::Bin(o, a, c) => {
                let adt = e.nodes[a].dt;
                let cdt = e.nodes[c].dt;
                emit_bin(b, o, vals[a], vals[c], adt, cdt, ty_of(adt))
            }
        };
        vals.push(v);
    }
    vals[plan.root]
}

fn emit_un(b: &mut FunctionBuilder, u: Un, x: Value, xdt: DType, odt: DType, ty: Type) -> Value {
    let f = is_float(xdt);
    let xty = cl_type(xdt);
    match u {
        Un::Neg if f => b.ins().fneg(x),
        Un::Neg => b.ins().ineg(x),
        Un::Abs if f => b.ins().fabs(x),
        Un::Abs if is_signed(xdt) => {
            let n = b.ins().ineg(x);
            let m = b.ins().icmp_imm_s(IntCC::SignedLessThan, x, 0);
            b.ins().select(m, n, x)
        }
        Un::Abs => x,
        Un::Sign if f => {
            let z = fconst(b, xty, 0.0);
            let one = fconst(b, xty, 1.0);
            let mone = fconst(b, xty, -1.0);
            let lt = b.ins().fcmp(FloatCC::LessThan, x, z);
            let gt = b.ins().fcmp(FloatCC::GreaterThan, x, z);
            let r = b.ins().select(lt, mone, x);
            b.ins().select(gt, one, r)
        }
        Un::Sign => {
            let z = iconst(b, xty, 0);
            let one = iconst(b, xty, 1);
            let gt = b.ins().icmp(int_cc(Bin::Gt, xdt), x, z);
            let r = b.ins().select(gt, one, z);
            if is_signed(xdt) {
                let mone = iconst(b, xty, -1);
                let lt = b.ins().icmp(IntCC::SignedLessThan, x, z);
                b.ins().select(lt, mone, r)
            } else {
                r
            }
        }
        Un::Relu if f => {
            let z = fconst(b, xty, 0.0);
            let lt = b.ins().fcmp(FloatCC::LessThan, x, z);
            b.ins().select(lt, z, x)
        }
        Un::Relu if is_signed(xdt) => {
            let z = iconst(b, xty, 0);
            let lt = b.ins().icmp(IntCC::SignedLessThan, x, z);
            b.ins().select(lt, z, x)
        }
        Un::Relu => x,
        Un::Not => {
            let one = iconst(b, ty, 1);
            b.ins().bxor(x, one)
        }
        Un::BitNot => b.ins().bnot(x),
        Un::IsNaN => b.ins().fcmp(FloatCC::Unordered, x, x),
        Un::IsInf { neg, pos } => {
            let mut r = iconst(b, types::I8, 0);
            for (on, v) in [(pos, f64::INFINITY), (neg, f64::NEG_INFINITY)] {
                if on {
                    let c = fconst(b, xty, v);
                    let m = b.ins().fcmp(FloatCC::Equal, x, c);
                    r = b.ins().bor(r, m);
                }
            }
            r
        }
        Un::Sqrt => b.ins().sqrt(x),
        Un::Floor => b.ins().floor(x),
        Un::Ceil => b.ins().ceil(x),
        Un::Round => b.ins().nearest(x),
        Un::Reciprocal => {
            let one = fconst(b, ty, 1.0);
            b.ins().fdiv(one, x)
        }
        Un::Cast => convert(b, x, xdt, odt),
        Un::Exp | Un::Log => {
            let f = if u == Un::Exp {
                vm::F64Fn::Exp
            } else {
                vm::F64Fn::Log
            };
            let v = b.ins().splat(types::F64X2, x);
            let r = vm::dapply(b, f, v);
            b.ins().extractlane(r, 0)
        }
    }
}

/// `o` on `x` (type `xdt`, Cranelift type `ty`) and `y` (type `ydt`).
fn emit_bin(
    b: &mut FunctionBuilder,
    o: Bin,
    x: Value,
    y: Value,
    xdt: DType,
    ydt: DType,
    ty: Type,
) -> Value {
    let f = is_float(xdt);
    match o {
        Bin::Add if f => b.ins().fadd(x, y),
        Bin::Add => b.ins().iadd(x, y),
        Bin::Sub if f => b.ins().fsub(x, y),
        Bin::Sub => b.ins().isub(x, y),
        Bin::Mul if f => b.ins().fmul(x, y),
        Bin::Mul => b.ins().imul(x, y),
        Bin::Div if f => b.ins().fdiv(x, y),
        Bin::Mod { fmod } if f => float_mod(b, x, y, xdt, fmod),
        Bin::Div | Bin::Mod { .. } => int_div(b, o, x, y, xdt, ty),
        Bin::Pow => pow(b, x, y, xdt, ydt),
        Bin::PowF => pow_float(b, x, y, xdt, ydt),
        Bin::Max | Bin::Min if f => {
            // numpy: NaN in x wins, then the comparison (x on ties), else y (NaN included).
            let c = b.ins().fcmp(float_cc(o), x, y);
            let nan = b.ins().fcmp(FloatCC::Unordered, x, x);
            let c = b.ins().bor(c, nan);
            b.ins().select(c, x, y)
        }
        Bin::Max | Bin::Min => {
            let c = b.ins().icmp(int_cc(o, xdt), x, y);
            b.ins().select(c, x, y)
        }
        Bin::Eq | Bin::Lt | Bin::Le | Bin::Gt | Bin::Ge if f => b.ins().fcmp(float_cc(o), x, y),
        Bin::Eq | Bin::Lt | Bin::Le | Bin::Gt | Bin::Ge => b.ins().icmp(int_cc(o, xdt), x, y),
        Bin::And => b.ins().band(x, y),
        Bin::Or => b.ins().bor(x, y),
        Bin::Xor => b.ins().bxor(x, y),
        Bin::Shl | Bin::Shr => {
            let bits = iconst(b, ty, i64::from(ty.bits()));
            let big = b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, y, bits);
            let s = if o == Bin::Shl {
                b.ins().ishl(x, y)
            } else {
                b.ins().ushr(x, y)
            };
            let z = iconst(b, ty, 0);
            b.ins().select(big, z, s)
        }
    }
}

/// Integer Div or Mod (scalar) that never traps: a 0 or -1 divisor is replaced by 1 before
/// the instruction and the result fixed after (x / 0 = x % 0 = 0, x / -1 = -x, x % -1 = 0).
fn int_div(b: &mut FunctionBuilder, o: Bin, x: Value, d: Value, dt: DType, ty: Type) -> Value {
    let zero = iconst(b, ty, 0);
    let one = iconst(b, ty, 1);
    let dz = b.ins().icmp(IntCC::Equal, d, zero);
    if !is_signed(dt) {
        let dd = b.ins().select(dz, one, d);
        let r = if o == Bin::Div {
            b.ins().udiv(x, dd)
        } else {
            b.ins().urem(x, dd)
        };
        return b.ins().select(dz, zero, r);
    }
    let mone = iconst(b, ty, -1);
    let dm = b.ins().icmp(IntCC::Equal, d, mone);
    let bad = b.ins().bor(dz, dm);
    let dd = b.ins().select(bad, one, d);
    match o {
        Bin::Div => {
            let q = b.ins().sdiv(x, dd);
            let nx = b.ins().ineg(x);
            let q = b.ins().select(dm, nx, q);
            b.ins().select(dz, zero, q)
        }
        Bin::Mod { fmod } => {
            // srem(x, 1) = 0 covers both replaced divisors.
            let r = b.ins().srem(x, dd);
            if fmod {
                return r;
            }
            // Python's %: a non-zero remainder takes the divisor's sign.
            let rn = b.ins().icmp(IntCC::NotEqual, r, zero);
            let rneg = b.ins().icmp(IntCC::SignedLessThan, r, zero);
            let dneg = b.ins().icmp(IntCC::SignedLessThan, d, zero);
            let differ = b.ins().bxor(rneg, dneg);
            let fix = b.ins().band(rn, differ);
            let adj = b.ins().iadd(r, d);
            b.ins().select(fix, adj, r)
        }
        _ => unreachable!("int_div takes Div and Mod"),
    }
}

/// `x ^ e` for an integer exponent `e` (scalar): square-and-multiply in the base's type
/// (wrapping), or in f64 for float bases (`1 / x^|e|` for negative `e`).
fn pow(b: &mut FunctionBuilder, x: Value, e: Value, xdt: DType, edt: DType) -> Value {
    let i64t = types::I64;
    // The exponent as i64 (u64 beyond i64::MAX saturates, as the reference).
    let e = if edt.size() == 8 {
        if edt == DType::U64 {
            let big = b.ins().icmp_imm_s(IntCC::SignedLessThan, e, 0);
            let max = b.ins().iconst(i64t, i64::MAX);
            b.ins().select(big, max, e)
        } else {
            e
        }
    } else if is_signed(edt) {
        b.ins().sextend(i64t, e)
    } else {
        b.ins().uextend(i64t, e)
    };
    let eneg = b.ins().icmp_imm_s(IntCC::SignedLessThan, e, 0);
    let f = is_float(xdt);
    let (wty, base) = if xdt == DType::F32 {
        (types::F64, b.ins().fpromote(types::F64, x))
    } else {
        (cl_type(xdt), x)
    };
    // |e| for floats, through f64 as the reference's `powf(x, e as f64)` (which rounds
    // exponents beyond 2^53, parity included), as u64; max(e, 0) for integers.
    let mag = if f {
        let ef = b.ins().fcvt_from_sint(types::F64, e);
        let ef = b.ins().fabs(ef);
        b.ins().fcvt_to_uint_sat(i64t, ef)
    } else {
        let z = b.ins().iconst(i64t, 0);
        b.ins().select(eneg, z, e)
    };
    let one = if f {
        fconst(b, wty, 1.0)
    } else {
        iconst(b, wty, 1)
    };
    let head = b.create_block();
    let body = b.create_block();
    let exit = b.create_block();
    b.append_block_param(head, wty);
    b.append_block_param(head, wty);
    b.append_block_param(head, i64t);
    b.append_block_param(exit, wty);
    b.ins().jump(head, &[one.into(), base.into(), mag.into()]);
    b.switch_to_block(head);
    let [acc, bb, m] = [0, 1, 2].map(|i| b.block_params(head)[i]);
    b.ins().brif(m, body, &[], exit, &[acc.into()]);
    b.switch_to_block(body);
    let bit = b.ins().band_imm_s(m, 1);
    let (prod, sq) = if f {
        (b.ins().fmul(acc, bb), b.ins().fmul(bb, bb))
    } else {
        (b.ins().imul(acc, bb), b.ins().imul(bb, bb))
    };
    let acc2 = b.ins().select(bit, prod, acc);
    let m2 = b.ins().ushr_imm_s(m, 1);
    b.ins().jump(head, &[acc2.into(), sq.into(), m2.into()]);
    b.switch_to_block(exit);
    let p = b.block_params(exit)[0];
    if f {
        let inv = b.ins().fdiv(one, p);
        let r = b.ins().select(eneg, inv, p);
        return if xdt == DType::F32 {
            b.ins().fdemote(types::F32, r)
        } else {
            r
        };
    }
    // Negative exponents: 1 for a base of 1, ±1 for -1 (by parity), else 0.
    let z = iconst(b, wty, 0);
    let is1 = b.ins().icmp(IntCC::Equal, x, one);
    let mut neg = b.ins().select(is1, one, z);
    // The reference compares the base as i64: u64::MAX counts as -1.
    if is_signed(xdt) || xdt == DType::U64 {
        let mone = iconst(b, wty, -1);
        let ism1 = b.ins().icmp(IntCC::Equal, x, mone);
        let odd = b.ins().band_imm_s(e, 1);
        let odd = b.ins().icmp_imm_s(IntCC::NotEqual, odd, 0);
        let pm = b.ins().select(odd, mone, one);
        neg = b.ins().select(ism1, pm, neg);
    }
    b.ins().select(eneg, neg, p)
}

/// Converts a scalar of type `from` to `to` with the reference's (numpy `astype`) semantics:
/// integers wrap, floats truncate toward zero (NaN gives 0, negative values saturate through
/// i64, the rest through u64), integers convert to f32 through f64, non-zero is true.
fn convert(b: &mut FunctionBuilder, v: Value, from: DType, to: DType) -> Value {
    let tty = cl_type(to);
    if from == to {
        return v;
    }
    if is_half(from) {
        let d = half_to_f64(b, v, from);
        return convert(b, d, DType::F64, to);
    }
    if is_half(to) {
        let d = convert(b, v, from, DType::F64);
        return f64_to_half(b, d, to);
    }
    if to == DType::Bool {
        return if is_float(from) {
            let z = fconst(b, cl_type(from), 0.0);
            b.ins().fcmp(FloatCC::NotEqual, v, z)
        } else {
            b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
        };
    }
    let widen = |b: &mut FunctionBuilder, v: Value| {
        if from.size() == 8 {
            v
        } else if is_signed(from) {
            b.ins().sextend(types::I64, v)
        } else {
            b.ins().uextend(types::I64, v)
        }
    };
    match (is_float(from), is_float(to)) {
        (true, true) => {
            if from == DType::F32 {
                b.ins().fpromote(types::F64, v)
            } else {
                b.ins().fdemote(types::F32, v)
            }
        }
        (true, false) => {
            let d = if from == DType::F32 {
                b.ins().fpromote(types::F64, v)
            } else {
                v
            };
            let s = b.ins().fcvt_to_sint_sat(types::I64, d);
            let u = b.ins().fcvt_to_uint_sat(types::I64, d);
            let z = b.ins().f64const(0.0);
            let neg = b.ins().fcmp(FloatCC::LessThan, d, z);
            let r = b.ins().select(neg, s, u);
            if tty == types::I64 {
                r
            } else {
                b.ins().ireduce(tty, r)
            }
        }
        (false, true) => {
            let w = widen(b, v);
            let d = if is_signed(from) {
                b.ins().fcvt_from_sint(types::F64, w)
            } else {
                b.ins().fcvt_from_uint(types::F64, w)
            };
            if to == DType::F32 {
                b.ins().fdemote(types::F32, d)
            } else {
                d
            }
        }
        (false, false) => {
            let w = widen(b, v);
            if tty == types::I64 {
                w
            } else {
                b.ins().ireduce(tty, w)
            }
        }
    }
}

/// An f16/bf16 bit pattern (i16) widened exactly to f64.
pub(super) fn half_to_f64(b: &mut FunctionBuilder, h: Value, dt: DType) -> Value {
    let i64t = types::I64;
    let fl = MemFlagsData::new();
    let w = b.ins().uextend(i64t, h);
    if dt == DType::BF16 {
        // The upper half of an f32.
        let w32 = b.ins().ireduce(types::I32, w);
        let s = b.ins().ishl_imm_s(w32, 16);
        let f = b.ins().bitcast(types::F32, fl, s);
        return b.ins().fpromote(types::F64, f);
    }
    // f16: (implicit bit | mantissa) * 2^(max(e, 1) - 25), all in integer and normal f64
    // arithmetic; exponent 31 is inf or NaN.
    let e = b.ins().ushr_imm_s(w, 10);
    let e = b.ins().band_imm_s(e, 0x1f);
    let m = b.ins().band_imm_s(w, 0x3ff);
    let normal = b.ins().icmp_imm_s(IntCC::NotEqual, e, 0);
    let mi = b.ins().bor_imm_s(m, 0x400);
    let m = b.ins().select(normal, mi, m);
    let one = b.ins().iconst(i64t, 1);
    let e = b.ins().select(normal, e, one);
    let mf = b.ins().fcvt_from_sint(types::F64, m);
    let sb = b.ins().iadd_imm_s(e, 1023 - 25);
    let sb = b.ins().ishl_imm_s(sb, 52);
    let scale = b.ins().bitcast(types::F64, fl, sb);
    let fin = b.ins().fmul(mf, scale);
    let is_inf = b.ins().icmp_imm_s(IntCC::Equal, m, 0x400);
    let inf = b.ins().f64const(f64::INFINITY);
    let nan = b.ins().f64const(f64::NAN);
    let special = b.ins().select(is_inf, inf, nan);
    let top = b.ins().icmp_imm_s(IntCC::Equal, e, 31);
    let r = b.ins().select(top, special, fin);
    // The sign.
    let rb = b.ins().bitcast(i64t, fl, r);
    let sg = b.ins().band_imm_s(w, 0x8000);
    let sg = b.ins().ishl_imm_s(sg, 48);
    let rb = b.ins().bor(rb, sg);
    b.ins().bitcast(types::F64, fl, rb)
}

/// f64 `v` rounded to nearest-even f16/bf16 (`dt`) in one step, as the reference (`half`
/// after its round-to-odd f32), returned as an i16 bit pattern: NaN gives a quiet NaN,
/// overflow gives inf, subnormal results are rounded at their own precision.
pub(super) fn f64_to_half(b: &mut FunctionBuilder, v: Value, dt: DType) -> Value {
    let i64t = types::I64;
    let fl = MemFlagsData::new();
    // Dropped mantissa bits, exponent rebias, smallest normal, a constant whose ulp is the
    // smallest subnormal, the overflow threshold, inf and NaN patterns.
    let (sh, bias, min_normal, magic, over, inf, nan): (i64, i64, f64, f64, f64, i64, i64) =
        if dt == DType::F16 {
            (
                42,
                15 - 1023,
                2f64.powi(-14),
                2f64.powi(28),
                65520.0,
                0x7c00,
                0x7e00,
            )
        } else {
            (
                45,
                127 - 1023,
                2f64.powi(-126),
                2f64.powi(-81),
                2f64.powi(128),
                0x7f80,
                0x7fc0,
            )
        };
    let bits = b.ins().bitcast(i64t, fl, v);
    let sign = b.ins().ushr_imm_s(bits, 48);
    let sign = b.ins().band_imm_s(sign, 0x8000);
    let a = b.ins().fabs(v);
    let ab = b.ins().bitcast(i64t, fl, a);
    // Normal results: rebias, add half an ulp minus one plus the kept lowest bit (ties to
    // even), shift; a carry into the exponent is right (up to inf).
    let odd = b.ins().ushr_imm_s(ab, sh);
    let odd = b.ins().band_imm_s(odd, 1);
    let t = b
        .ins()
        .iadd_imm_s(ab, (bias << 52) + (1i64 << (sh - 1)) - 1);
    let t = b.ins().iadd(t, odd);
    let hn = b.ins().ushr_imm_s(t, sh);
    // Subnormal results: the f64 addition rounds to a multiple of the smallest subnormal.
    let mg = b.ins().f64const(magic);
    let s = b.ins().fadd(a, mg);
    let sb = b.ins().bitcast(i64t, fl, s);
    let hs = b.ins().iadd_imm_s(sb, -(magic.to_bits() as i64));
    let mn = b.ins().f64const(min_normal);
    let small = b.ins().fcmp(FloatCC::LessThan, a, mn);
    let h = b.ins().select(small, hs, hn);
    let ov = b.ins().f64const(over);
    let big = b.ins().fcmp(FloatCC::GreaterThanOrEqual, a, ov);
    let infv = b.ins().iconst(i64t, inf);
    let h = b.ins().select(big, infv, h);
    let isnan = b.ins().fcmp(FloatCC::Unordered, v, v);
    let nanv = b.ins().iconst(i64t, nan);
    let h = b.ins().select(isnan, nanv, h);
    let h = b.ins().bor(h, sign);
    b.ins().ireduce(types::I16, h)
}

/// C `fmod(x, y)` on f64 scalars, exactly (the remainder is representable): long division
/// of the integer mantissas, one quotient bit per step (at most ~2100 steps). NaN for a NaN
/// operand, an infinite `x` or a zero `y`; `x` when `|x| < |y|`.
fn fmod_f64(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    let i64t = types::I64;
    let fl = MemFlagsData::new();
    let ax = b.ins().fabs(x);
    let ay = b.ins().fabs(y);
    let ux = b.ins().bitcast(i64t, fl, ax);
    let uy = b.ins().bitcast(i64t, fl, ay);
    // The mantissa with its leading bit at bit 52 and the matching exponent field
    // (subnormals normalized: value = m 2^(e - 1075)).
    let norm = |b: &mut FunctionBuilder, u: Value| -> (Value, Value) {
        let e = b.ins().ushr_imm_s(u, 52);
        let m = b.ins().band_imm_s(u, (1i64 << 52) - 1);
        let m = b.ins().bor_imm_s(m, 1i64 << 52);
        let lz = b.ins().clz(u);
        let lz = b.ins().iadd_imm_s(lz, -11);
        let ms = b.ins().ishl(u, lz);
        let one = b.ins().iconst(i64t, 1);
        let es = b.ins().isub(one, lz);
        let sub = b.ins().icmp_imm_s(IntCC::Equal, e, 0);
        (b.ins().select(sub, ms, m), b.ins().select(sub, es, e))
    };
    let (mx, ex) = norm(b, ux);
    let (my, ey) = norm(b, uy);
    let head = b.create_block();
    let body = b.create_block();
    let done = b.create_block();
    b.append_block_param(head, i64t);
    b.append_block_param(head, i64t);
    b.append_block_param(done, i64t);
    b.ins().jump(head, &[mx.into(), ex.into()]);
    b.switch_to_block(head);
    let m = b.block_params(head)[0];
    let e = b.block_params(head)[1];
    let more = b.ins().icmp(IntCC::SignedGreaterThan, e, ey);
    b.ins().brif(more, body, &[], done, &[m.into()]);
    b.switch_to_block(body);
    let d = b.ins().isub(m, my);
    let ge = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, d, 0);
    let m2 = b.ins().select(ge, d, m);
    let m2 = b.ins().ishl_imm_s(m2, 1);
    let e2 = b.ins().iadd_imm_s(e, -1);
    b.ins().jump(head, &[m2.into(), e2.into()]);
    b.switch_to_block(done);
    let m = b.block_params(done)[0];
    let d = b.ins().isub(m, my);
    let ge = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, d, 0);
    let m = b.ins().select(ge, d, m);
    // Renormalize at exponent ey.
    let lz = b.ins().clz(m);
    let lz = b.ins().iadd_imm_s(lz, -11);
    let mn = b.ins().ishl(m, lz);
    let en = b.ins().isub(ey, lz);
    let mant = b.ins().band_imm_s(mn, (1i64 << 52) - 1);
    let ebits = b.ins().ishl_imm_s(en, 52);
    let normal = b.ins().bor(mant, ebits);
    let one = b.ins().iconst(i64t, 1);
    let shift = b.ins().isub(one, en);
    let subn = b.ins().ushr(mn, shift);
    let pos = b.ins().icmp_imm_s(IntCC::SignedGreaterThan, en, 0);
    let rb = b.ins().select(pos, normal, subn);
    let z = b.ins().iconst(i64t, 0);
    let is0 = b.ins().icmp_imm_s(IntCC::Equal, m, 0);
    let rb = b.ins().select(is0, z, rb);
    // The sign of x.
    let xb = b.ins().bitcast(i64t, fl, x);
    let sg = b.ins().band_imm_s(xb, i64::MIN);
    let rb = b.ins().bor(rb, sg);
    let r = b.ins().bitcast(types::F64, fl, rb);
    let lt = b.ins().fcmp(FloatCC::LessThan, ax, ay);
    let r = b.ins().select(lt, x, r);
    let nan = b.ins().f64const(f64::NAN);
    let zero = b.ins().f64const(0.0);
    let inf = b.ins().f64const(f64::INFINITY);
    let un = b.ins().fcmp(FloatCC::Unordered, x, y);
    let y0 = b.ins().fcmp(FloatCC::Equal, ay, zero);
    let xi = b.ins().fcmp(FloatCC::Equal, ax, inf);
    let bad = b.ins().bor(un, y0);
    let bad = b.ins().bor(bad, xi);
    b.ins().select(bad, nan, r)
}

/// Float Mod (scalar f32/f64) as the reference: the exact `fmod` in f64, and for `fmod = 0`
/// Python's `%` (a zero takes the divisor's sign, a remainder of the other sign gets the
/// divisor added, rounded), rounded to the type.
fn float_mod(b: &mut FunctionBuilder, x: Value, y: Value, xdt: DType, fmod: bool) -> Value {
    let (x, y) = if xdt == DType::F32 {
        (
            b.ins().fpromote(types::F64, x),
            b.ins().fpromote(types::F64, y),
        )
    } else {
        (x, y)
    };
    let mut r = fmod_f64(b, x, y);
    if !fmod {
        let fl = MemFlagsData::new();
        let z = b.ins().f64const(0.0);
        let rz = b.ins().fcmp(FloatCC::Equal, r, z);
        let yb = b.ins().bitcast(types::I64, fl, y);
        let ys = b.ins().band_imm_s(yb, i64::MIN);
        let zs = b.ins().bitcast(types::F64, fl, ys);
        let rneg = b.ins().fcmp(FloatCC::LessThan, r, z);
        let yneg = b.ins().fcmp(FloatCC::LessThan, y, z);
        let differ = b.ins().bxor(rneg, yneg);
        let adj = b.ins().fadd(r, y);
        r = b.ins().select(differ, adj, r);
        r = b.ins().select(rz, zs, r);
    }
    if xdt == DType::F32 {
        b.ins().fdemote(types::F32, r)
    } else {
        r
    }
}

/// `x ^ y` for a float exponent (scalar) as the reference's `powf` in f64, converted to the
/// base's type: square-and-multiply for integral exponents below 2^31 (exact where the
/// result is representable, as libm), `exp(y log|x|)` in f64 lanes otherwise (relative error
/// about 2^-53 (4 + |y log|x||); for integer bases snapped to an integer within that distance).
/// An integer base with a non-integral exponent and a result beyond about 2^40 may therefore
/// differ from libm's correctly rounded value in the low bits that the truncation keeps.
fn pow_float(b: &mut FunctionBuilder, x: Value, y: Value, xdt: DType, ydt: DType) -> Value {
    let xf = convert(b, x, xdt, DType::F64);
    let yf = convert(b, y, ydt, DType::F64);
    let xv = b.ins().splat(types::F64X2, xf);
    let yv = b.ins().splat(types::F64X2, yf);
    let r = vm::dpow(b, xv, yv);
    let mut r = b.ins().extractlane(r, 0);
    if is_int(xdt) {
        // The result is truncated to an integer: a value within the error bound of
        // `exp(y log|x|)` (a few ulp times 4 + |y log|x||) of an integer is taken as that
        // integer (libm's pow is exact there, e.g. 4^0.5 or 25^4.5).
        let n = b.ins().nearest(r);
        let d = b.ins().fsub(r, n);
        let d = b.ins().fabs(d);
        let ar = b.ins().fabs(r);
        let ax = b.ins().fabs(xv);
        let l = vm::dlog(b, ax);
        let l = b.ins().extractlane(l, 0);
        let t = b.ins().fmul(l, yf);
        let t = b.ins().fabs(t);
        let four = b.ins().f64const(4.0);
        let t = b.ins().fadd(t, four);
        let k = b.ins().f64const(4e-16);
        let t = b.ins().fmul(t, k);
        let tol = b.ins().fmul(ar, t);
        let close = b.ins().fcmp(FloatCC::LessThanOrEqual, d, tol);
        r = b.ins().select(close, n, r);
    }
    let fy = b.ins().floor(yf);
    let int = b.ins().fcmp(FloatCC::Equal, fy, yf);
    let ay = b.ins().fabs(yf);
    let lim = b.ins().f64const(2_147_483_648.0);
    let small = b.ins().fcmp(FloatCC::LessThan, ay, lim);
    let exact = b.ins().band(int, small);
    let yi = b.ins().fcvt_to_sint_sat(types::I64, yf);
    let mut sq = pow(b, xf, yi, DType::F64, DType::I64);
    if is_int(xdt) {
        // Non-negative integral exponents on an integer base: exactly, rounded once.
        let ex = int_pow_rounded(b, x, yi, xdt);
        let nonneg = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, yi, 0);
        sq = b.ins().select(nonneg, ex, sq);
    }
    let r = b.ins().select(exact, sq, r);
    convert(b, r, DType::F64, xdt)
}

/// `x^n` for an integer `x` of type `xdt` and `0 <= n`, as f64: the exact power rounded once
/// (what a correctly rounded `powf` of the f64 base gives, even beyond 2^53), `±inf` when
/// |x^n| reaches 2^64 (every conversion back to an integer type saturates there anyway).
/// `|x|` above 2^53 matters only for `n = 1`, where rounding `|x|` is rounding the base.
fn int_pow_rounded(b: &mut FunctionBuilder, x: Value, n: Value, xdt: DType) -> Value {
    let i64t = types::I64;
    let w = if xdt.size() == 8 {
        x
    } else if is_signed(xdt) {
        b.ins().sextend(i64t, x)
    } else {
        b.ins().uextend(i64t, x)
    };
    // |x| as u64 (i64::MIN gives 2^63).
    let neg = if is_signed(xdt) {
        b.ins().icmp_imm_s(IntCC::SignedLessThan, w, 0)
    } else {
        b.ins().iconst(types::I8, 0)
    };
    let nw = b.ins().ineg(w);
    let mag = b.ins().select(neg, nw, w);
    let head = b.create_block();
    let body = b.create_block();
    let exit = b.create_block();
    for t in [i64t, i64t, i64t, types::I8] {
        b.append_block_param(head, t);
    }
    b.append_block_param(exit, i64t);
    b.append_block_param(exit, types::I8);
    let one = b.ins().iconst(i64t, 1);
    let no = b.ins().iconst(types::I8, 0);
    b.ins()
        .jump(head, &[one.into(), mag.into(), n.into(), no.into()]);
    b.switch_to_block(head);
    let [acc, bb, m, ovf] = [0, 1, 2, 3].map(|i| b.block_params(head)[i]);
    b.ins().brif(m, body, &[], exit, &[acc.into(), ovf.into()]);
    b.switch_to_block(body);
    let bit = b.ins().band_imm_s(m, 1);
    let (prod, po) = b.ins().umul_overflow(acc, bb);
    let acc2 = b.ins().select(bit, prod, acc);
    let po = b.ins().select(bit, po, no);
    let m2 = b.ins().ushr_imm_s(m, 1);
    // The square is needed (and its overflow counts) only while bits remain.
    let (sq, so) = b.ins().umul_overflow(bb, bb);
    let so = b.ins().select(m2, so, no);
    let o = b.ins().bor(ovf, po);
    let o = b.ins().bor(o, so);
    b.ins()
        .jump(head, &[acc2.into(), sq.into(), m2.into(), o.into()]);
    b.switch_to_block(exit);
    let acc = b.block_params(exit)[0];
    let ovf = b.block_params(exit)[1];
    let f = b.ins().fcvt_from_uint(types::F64, acc);
    let inf = b.ins().f64const(f64::INFINITY);
    let f = b.ins().select(ovf, inf, f);
    // Negative for a negative base and an odd power.
    let odd = b.ins().band_imm_s(n, 1);
    let odd = b.ins().icmp_imm_s(IntCC::NotEqual, odd, 0);
    let flip = b.ins().band(neg, odd);
    let nf = b.ins().fneg(f);
    b.ins().select(flip, nf, f)
}

/// Emits the kernel: items are (row of the outer collapsed dims, chunk of the inner dim).
fn emit(b: &mut FunctionBuilder, p: KernelParams, plan: &Plan) {
    let ptrf = MemFlagsData::trusted();
    let mem = MemFlagsData::new().with_notrap();
    let i64t = types::I64;
    let leaves = &plan.expr.leaves;
    let nl = leaves.len();
    let out = b.ins().load(i64t, ptrf, p.bufs, 0);
    let ptrs: Vec<Value> = (0..nl)
        .map(|l| b.ins().load(i64t, ptrf, p.bufs, 8 * (l as i32 + 1)))
        .collect();
    let k = plan.dims.len();
    let inner = plan.dims[k - 1] as i64;
    let chunk = plan.chunk as i64;
    let osize = plan.odt.size() as i64;
    let oty = cl_type(plan.odt);
    let step = lanes(plan.odt) as i64;

    let ihead = b.create_block();
    let ibody = b.create_block();
    let shead = b.create_block();
    let sbody = b.create_block();
    let inext = b.create_block();
    let exit = b.create_block();
    b.append_block_param(ihead, i64t);
    b.append_block_param(shead, i64t);
    b.ins().jump(ihead, &[p.begin.into()]);

    b.switch_to_block(ihead);
    let i = b.block_params(ihead)[0];
    let more = b.ins().icmp(IntCC::UnsignedLessThan, i, p.end);
    b.ins().brif(more, ibody, &[], exit, &[]);

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
    let zero = b.ins().iconst(i64t, 0);
    let mut offs: Vec<Value> = vec![zero; nl];
    let mut rem = r;
    for d in (0..k - 1).rev() {
        let dv = b.ins().iconst(i64t, plan.dims[d] as i64);
        let idx = if d == 0 { rem } else { b.ins().urem(rem, dv) };
        for (l, st) in plan.strides.iter().enumerate() {
            if st[d] != 0 {
                let t = b.ins().imul_imm_s(idx, st[d]);
                offs[l] = b.ins().iadd(offs[l], t);
            }
        }
        if d > 0 {
            rem = b.ins().udiv(rem, dv);
        }
    }
    let row_start = b.ins().imul_imm_s(r, inner);
    let out_el = b.ins().iadd(row_start, j0);
    let out_off = b.ins().imul_imm_s(out_el, osize);
    let out_base = b.ins().iadd(out, out_off);
    // Per leaf: row base address, and the value itself when broadcast along the row.
    let mut bases: Vec<Value> = Vec::new();
    let mut bcast: Vec<Option<Value>> = Vec::new();
    for l in 0..nl {
        let contiguous = plan.strides[l][k - 1] != 0;
        let el = if contiguous {
            b.ins().iadd(offs[l], j0)
        } else {
            offs[l]
        };
        let off = b.ins().imul_imm_s(el, leaves[l].1.size() as i64);
        let base = b.ins().iadd(ptrs[l], off);
        bases.push(base);
        bcast.push(if contiguous {
            None
        } else {
            Some(b.ins().load(cl_type(leaves[l].1), mem, base, 0))
        });
    }
    if plan.vector {
        let vhead = b.create_block();
        let vbody = b.create_block();
        b.append_block_param(vhead, i64t);
        b.ins().jump(vhead, &[zero.into()]);
        b.switch_to_block(vhead);
        let j = b.block_params(vhead)[0];
        let jn = b.ins().iadd_imm_s(j, step);
        let fits = b.ins().icmp(IntCC::UnsignedLessThanOrEqual, jn, len);
        b.ins().brif(fits, vbody, &[], shead, &[j.into()]);

        b.switch_to_block(vbody);
        let vty = oty.by(step as u32).expect("128-bit vector");
        let off = b.ins().imul_imm_s(j, osize);
        let xs: Vec<Value> = (0..nl)
            .map(|l| match bcast[l] {
                Some(s) => b.ins().splat(vty, s),
                None => {
                    let a = b.ins().iadd(bases[l], off);
                    b.ins().load(vty, mem, a, 0)
                }
            })
            .collect();
        let y = eval(b, plan, &xs, true);
        let a = b.ins().iadd(out_base, off);
        b.ins().store(mem, y, a, 0);
        b.ins().jump(vhead, &[jn.into()]);
    } else {
        b.ins().jump(shead, &[zero.into()]);
    }

    b.switch_to_block(shead);
    let j = b.block_params(shead)[0];
    let more = b.ins().icmp(IntCC::UnsignedLessThan, j, len);
    b.ins().brif(more, sbody, &[], inext, &[]);

    b.switch_to_block(sbody);
    let xs: Vec<Value> = (0..nl)
        .map(|l| match bcast[l] {
            Some(s) => s,
            None => {
                let off = b.ins().imul_imm_s(j, leaves[l].1.size() as i64);
                let a = b.ins().iadd(bases[l], off);
                b.ins().load(cl_type(leaves[l].1), mem, a, 0)
            }
        })
        .collect();
    let y = eval(b, plan, &xs, false);
    let off = b.ins().imul_imm_s(j, osize);
    let a = b.ins().iadd(out_base, off);
    b.ins().store(mem, y, a, 0);
    let j1 = b.ins().iadd_imm_s(j, 1);
    b.ins().jump(shead, &[j1.into()]);

    b.switch_to_block(inext);
    let i1 = b.ins().iadd_imm_s(i, 1);
    b.ins().jump(ihead, &[i1.into()]);

    b.switch_to_block(exit);
    b.ins().return_(&[]);
}
