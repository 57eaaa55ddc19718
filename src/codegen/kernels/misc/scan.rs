//! Ops that walk lanes along one axis, and Trilu:
//!
//! - CumSum/CumProd (f32, f64, i32, i64; exclusive, reverse), in the element type like the
//!   reference (floats add in their own precision, integers wrap). The axis is a constant or
//!   an i32/i64 scalar read at run time; then every element is a work item and the first
//!   element of each lane does the lane.
//! - Hardmax (f32, f64; any axis, `coerce_2d`): 1 at the first maximum of a lane (NaN
//!   ignored for the maximum), 0 elsewhere.
//! - LpNormalization (f32, f64; p 1 or 2): the lane divided by its norm, computed in f64; a
//!   zero norm gives zeros.
//! - Trilu (any fixed-size element type; `k` absent, a constant or an i32/i64 scalar read at
//!   run time): elements outside the kept triangle of the last two dims become 0.
//! - TopK (floats and integers; constant `k`): the reference's order (NaN first, then by
//!   value, ties by index) by `k` selection passes over a lane, each taking the best element
//!   ranked after the previous one: O(k * d) per lane, no scratch.
//!
//! All are scalar loops: these ops are rare and their lanes short.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Type, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{buf, c64, for_range, index, int_type, sflags};
use super::{const_input, in_shape, input, norm_axis, out_shape, output_used, strides};
use crate::codegen::kernel::{KernelCx, KernelParams, Launch, Lowered, Operand};

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    match &g.node(node).op {
        Op::CumSum { exclusive, reverse } => {
            cumulative(cx, g, node, false, *exclusive != 0, *reverse != 0)
        }
        Op::CumProd { exclusive, reverse } => {
            cumulative(cx, g, node, true, *exclusive != 0, *reverse != 0)
        }
        Op::Hardmax { axis, coerce_2d } => lanes(cx, g, node, *axis, *coerce_2d, Lane::Hardmax),
        Op::LpNormalization { axis, p } => match p {
            1 => lanes(cx, g, node, *axis, false, Lane::L1),
            2 => lanes(cx, g, node, *axis, false, Lane::L2),
            _ => Ok(None),
        },
        Op::Trilu { upper } => trilu(cx, g, node, *upper != 0),
        Op::TopK { axis, largest, .. } => top_k(cx, g, node, *axis, *largest != 0),
        _ => Ok(None),
    }
}

/// A one-element integer input.
enum Scalar {
    /// A constant.
    Const(i64),
    /// Read at run time, of this type (i32 or i64).
    Runtime(Type),
}

/// Input slot `i` as a [`Scalar`], when it is one.
fn scalar_input(g: &Graph, node: NodeId, i: usize) -> Option<Scalar> {
    let v = input(g, node, i)?;
    if let Some(t) = const_input(g, node, i) {
        let v = t.to_i64_vec().ok()?;
        return match v.as_slice() {
            [k] => Some(Scalar::Const(*k)),
            _ => None,
        };
    }
    if in_shape(g, node, i)?.iter().product::<usize>() != 1 {
        return None;
    }
    match g.dtype(v) {
        DType::I64 => Some(Scalar::Runtime(types::I64)),
        DType::I32 => Some(Scalar::Runtime(types::I32)),
        _ => None,
    }
}

/// Loads operand `op` of a kernel as a [`Scalar::Runtime`] of type `ty`, as i64.
fn load_scalar(b: &mut FunctionBuilder, p: KernelParams, op: usize, ty: Type) -> Value {
    let a = buf(b, p, op);
    let v = b.ins().load(ty, sflags(), a, 0);
    if ty == types::I64 {
        v
    } else {
        b.ins().sextend(types::I64, v)
    }
}

/// The Cranelift type of a float or i32/i64 element.
fn num_type(dt: DType) -> Option<Type> {
    Some(match dt {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
        DType::I32 => types::I32,
        DType::I64 => types::I64,
        _ => return None,
    })
}

/// CumSum (or CumProd when `product`).
fn cumulative(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    product: bool,
    exclusive: bool,
    reverse: bool,
) -> Result<Option<Lowered>, String> {
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    let Some(ety) = num_type(dt) else {
        return Ok(None);
    };
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    if ys != xs || xs.is_empty() || g.node(node).outputs[0].ty.dtype != dt {
        return Ok(None);
    }
    let Some(axis) = scalar_input(g, node, 1) else {
        return Ok(None);
    };
    let r = xs.len();
    let n: usize = xs.iter().product();
    let st = strides(&xs);
    let es = dt.size() as i64;
    let (fixed, items, runtime) = match axis {
        Scalar::Const(a) => {
            let Some(a) = norm_axis(a, r) else {
                return Ok(None);
            };
            (Some(a), n / xs[a].max(1), None)
        }
        Scalar::Runtime(ty) => (None, n, Some(ty)),
    };
    if n == 0 {
        return Ok(Some(Lowered::default()));
    }
    let func = cx.define_kernel("cumulative", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        // Walks the lane of `d` elements from element `e` with element stride `inner`.
        let lane = |b: &mut FunctionBuilder, e: Value, d: Value, inner: Value| {
            let acc = b.declare_var(ety);
            let one = if ety.is_float() {
                if ety == types::F32 {
                    b.ins().f32const(if product { 1.0 } else { 0.0 })
                } else {
                    b.ins().f64const(if product { 1.0 } else { 0.0 })
                }
            } else {
                b.ins().iconst(ety, i64::from(product))
            };
            b.def_var(acc, one);
            let lo = c64(b, 0);
            for_range(b, lo, d, |b, t| {
                let k = if reverse {
                    let last = b.ins().iadd_imm_s(d, -1);
                    b.ins().isub(last, t)
                } else {
                    t
                };
                let step = b.ins().imul(k, inner);
                let el = b.ins().iadd(e, step);
                let src = index(b, x, el, es);
                let dst = index(b, y, el, es);
                let v = b.ins().load(ety, sflags(), src, 0);
                let cur = b.use_var(acc);
                let next = match (ety.is_float(), product) {
                    (true, true) => b.ins().fmul(cur, v),
                    (true, false) => b.ins().fadd(cur, v),
                    (false, true) => b.ins().imul(cur, v),
                    (false, false) => b.ins().iadd(cur, v),
                };
                b.ins()
                    .store(sflags(), if exclusive { cur } else { next }, dst, 0);
                b.def_var(acc, next);
            });
        };
        match (fixed, runtime) {
            (Some(a), _) => {
                let (d, inner) = (xs[a], st[a]);
                for_range(b, p.begin, p.end, |b, it| {
                    let iv = c64(b, inner as i64);
                    let o = b.ins().udiv(it, iv);
                    let i = b.ins().urem(it, iv);
                    let o = b.ins().imul_imm_s(o, (d * inner) as i64);
                    let e = b.ins().iadd(o, i);
                    let dv = c64(b, d as i64);
                    lane(b, e, dv, iv);
                });
            }
            (None, Some(ty)) => {
                // An axis out of range (the reference refuses it) walks the last axis.
                let a = load_scalar(b, p, 2, ty);
                let neg = b.ins().icmp_imm_s(IntCC::SignedLessThan, a, 0);
                let wrapped = b.ins().iadd_imm_s(a, r as i64);
                let a = b.ins().select(neg, wrapped, a);
                let mut d = c64(b, xs[r - 1] as i64);
                let mut inner = c64(b, 1);
                for k in 0..r - 1 {
                    let hit = b.ins().icmp_imm_s(IntCC::Equal, a, k as i64);
                    let dk = c64(b, xs[k] as i64);
                    d = b.ins().select(hit, dk, d);
                    let ik = c64(b, st[k] as i64);
                    inner = b.ins().select(hit, ik, inner);
                }
                for_range(b, p.begin, p.end, |b, e| {
                    let q = b.ins().udiv(e, inner);
                    let t = b.ins().urem(q, d);
                    let first = b.ins().icmp_imm_s(IntCC::Equal, t, 0);
                    let body = b.create_block();
                    let next = b.create_block();
                    b.ins().brif(first, body, &[], next, &[]);
                    b.switch_to_block(body);
                    lane(b, e, d, inner);
                    b.ins().jump(next, &[]);
                    b.switch_to_block(next);
                });
            }
            (None, None) => unreachable!("the axis is constant or read at run time"),
        }
        b.ins().return_(&[]);
        Ok(())
    })?;
    let mut operands = vec![Operand::Input(0), Operand::Output(0)];
    if runtime.is_some() {
        operands.push(Operand::Input(1));
    }
    let per_item = n / items.max(1);
    Ok(Some(Lowered::one(
        func,
        operands,
        (items as u64, (4096 / per_item.max(1)).max(1) as u64),
        if product { "cum_prod" } else { "cum_sum" },
        0,
    )))
}

/// What [`lanes`] computes per lane.
#[derive(Clone, Copy, PartialEq)]
enum Lane {
    Hardmax,
    /// LpNormalization, p = 1.
    L1,
    /// LpNormalization, p = 2.
    L2,
}

/// Hardmax or LpNormalization: one work item per lane along `axis` (with `coerce_2d`, over
/// all dims from `axis` on).
fn lanes(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    axis: i64,
    coerce_2d: bool,
    kind: Lane,
) -> Result<Option<Lowered>, String> {
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    if !matches!(dt, DType::F32 | DType::F64) || g.node(node).outputs[0].ty.dtype != dt {
        return Ok(None);
    }
    let ety = num_type(dt).expect("a float type");
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    if ys != xs || xs.is_empty() {
        return Ok(None);
    }
    let r = xs.len();
    let (outer, d, inner) = if coerce_2d {
        let a = if axis < 0 { axis + r as i64 } else { axis };
        if !(0..=r as i64).contains(&a) {
            return Ok(None);
        }
        let a = a as usize;
        (
            xs[..a].iter().product::<usize>(),
            xs[a..].iter().product::<usize>(),
            1,
        )
    } else {
        let Some(a) = norm_axis(axis, r) else {
            return Ok(None);
        };
        (
            xs[..a].iter().product::<usize>(),
            xs[a],
            xs[a + 1..].iter().product::<usize>(),
        )
    };
    let items = outer * inner;
    if items == 0 || d == 0 {
        return Ok(Some(Lowered::default()));
    }
    let es = dt.size() as i64;
    let stride = inner as i64 * es;
    let func = cx.define_kernel("lanes", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        for_range(b, p.begin, p.end, |b, it| {
            let iv = c64(b, inner as i64);
            let o = b.ins().udiv(it, iv);
            let i = b.ins().urem(it, iv);
            let o = b.ins().imul_imm_s(o, (d * inner) as i64);
            let e = b.ins().iadd(o, i);
            let xb = index(b, x, e, es);
            let yb = index(b, y, e, es);
            match kind {
                Lane::Hardmax => hardmax_lane(b, xb, yb, d, stride, ety),
                Lane::L1 | Lane::L2 => lp_lane(b, xb, yb, d, stride, ety, kind == Lane::L2),
            }
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered {
        launches: vec![Launch {
            func,
            operands: vec![Operand::Input(0), Operand::Output(0)],
            items: items as u64,
            grain: (2048 / d).max(1) as u64,
            name: if kind == Lane::Hardmax {
                "hardmax"
            } else {
                "lp_normalization"
            }
            .into(),
        }],
        scratch_bytes: 0,
    }))
}

/// A float constant of type `ty` (f32 or f64).
fn fconst(b: &mut FunctionBuilder, ty: Type, v: f64) -> Value {
    if ty == types::F32 {
        b.ins().f32const(v as f32)
    } else {
        b.ins().f64const(v)
    }
}

/// Hardmax of one lane: the maximum ignoring NaN (from -inf), then 1 at its first position.
fn hardmax_lane(b: &mut FunctionBuilder, x: Value, y: Value, d: usize, stride: i64, ety: Type) {
    let m = b.declare_var(ety);
    let ninf = fconst(b, ety, f64::NEG_INFINITY);
    b.def_var(m, ninf);
    let lo = c64(b, 0);
    let hi = c64(b, d as i64);
    for_range(b, lo, hi, |b, t| {
        let a = index(b, x, t, stride);
        let v = b.ins().load(ety, sflags(), a, 0);
        let cur = b.use_var(m);
        let gt = b.ins().fcmp(FloatCC::GreaterThan, v, cur);
        let n = b.ins().select(gt, v, cur);
        b.def_var(m, n);
    });
    let mv = b.use_var(m);
    let found = b.declare_var(types::I8);
    let no = b.ins().iconst(types::I8, 0);
    b.def_var(found, no);
    let one = fconst(b, ety, 1.0);
    let zero = fconst(b, ety, 0.0);
    let lo = c64(b, 0);
    let hi = c64(b, d as i64);
    for_range(b, lo, hi, |b, t| {
        let a = index(b, x, t, stride);
        let v = b.ins().load(ety, sflags(), a, 0);
        let eq = b.ins().fcmp(FloatCC::Equal, v, mv);
        let f = b.use_var(found);
        let fresh = b.ins().icmp_imm_s(IntCC::Equal, f, 0);
        let first = b.ins().band(eq, fresh);
        let out = b.ins().select(first, one, zero);
        let a = index(b, y, t, stride);
        b.ins().store(sflags(), out, a, 0);
        let f = b.ins().bor(f, first);
        b.def_var(found, f);
    });
}

/// LpNormalization of one lane: the norm (sum of |x|, or the root of the sum of squares) in
/// f64, then `x / norm` (0 when the norm is 0).
fn lp_lane(
    b: &mut FunctionBuilder,
    x: Value,
    y: Value,
    d: usize,
    stride: i64,
    ety: Type,
    l2: bool,
) {
    let load64 = |b: &mut FunctionBuilder, a: Value| {
        let v = b.ins().load(ety, sflags(), a, 0);
        if ety == types::F32 {
            b.ins().fpromote(types::F64, v)
        } else {
            v
        }
    };
    let acc = b.declare_var(types::F64);
    let zero = b.ins().f64const(0.0);
    b.def_var(acc, zero);
    let lo = c64(b, 0);
    let hi = c64(b, d as i64);
    for_range(b, lo, hi, |b, t| {
        let a = index(b, x, t, stride);
        let v = load64(b, a);
        let term = if l2 {
            b.ins().fmul(v, v)
        } else {
            b.ins().fabs(v)
        };
        let cur = b.use_var(acc);
        let n = b.ins().fadd(cur, term);
        b.def_var(acc, n);
    });
    let norm = b.use_var(acc);
    let norm = if l2 { b.ins().sqrt(norm) } else { norm };
    let is_zero = b.ins().fcmp(FloatCC::Equal, norm, zero);
    let lo = c64(b, 0);
    let hi = c64(b, d as i64);
    for_range(b, lo, hi, |b, t| {
        let a = index(b, x, t, stride);
        let v = load64(b, a);
        let q = b.ins().fdiv(v, norm);
        let q = b.ins().select(is_zero, zero, q);
        let q = if ety == types::F32 {
            b.ins().fdemote(types::F32, q)
        } else {
            q
        };
        let a = index(b, y, t, stride);
        b.ins().store(sflags(), q, a, 0);
    });
}

/// Trilu: one work item per row of the last dim; element `(i, j)` of the last two dims is
/// kept when `j - i >= k` (upper) or `j - i <= k` (lower), else written as 0.
fn trilu(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    upper: bool,
) -> Result<Option<Lowered>, String> {
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    if dt == DType::String || g.node(node).outputs[0].ty.dtype != dt {
        return Ok(None);
    }
    let es = dt.size();
    let Some(ity) = int_type(es) else {
        return Ok(None);
    };
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    if ys != xs || xs.len() < 2 {
        return Ok(None);
    }
    let k = match input(g, node, 1) {
        None => Scalar::Const(0),
        Some(_) => match scalar_input(g, node, 1) {
            Some(k) => k,
            None => return Ok(None),
        },
    };
    let n: usize = xs.iter().product();
    if n == 0 {
        return Ok(Some(Lowered::default()));
    }
    let (h, w) = (xs[xs.len() - 2], xs[xs.len() - 1]);
    let rows = n / w;
    let runtime = matches!(k, Scalar::Runtime(_));
    let func = cx.define_kernel("trilu", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        let kv = match k {
            Scalar::Const(k) => c64(b, k),
            Scalar::Runtime(ty) => load_scalar(b, p, 2, ty),
        };
        let cc = if upper {
            IntCC::SignedGreaterThanOrEqual
        } else {
            IntCC::SignedLessThanOrEqual
        };
        for_range(b, p.begin, p.end, |b, row| {
            let hv = c64(b, h as i64);
            let i = b.ins().urem(row, hv);
            let xr = index(b, x, row, (w * es) as i64);
            let yr = index(b, y, row, (w * es) as i64);
            let lo = c64(b, 0);
            let hi = c64(b, w as i64);
            for_range(b, lo, hi, |b, j| {
                let dji = b.ins().isub(j, i);
                let keep = b.ins().icmp(cc, dji, kv);
                let a = index(b, xr, j, es as i64);
                let v = b.ins().load(ity, sflags(), a, 0);
                let z = b.ins().iconst(ity, 0);
                let out = b.ins().select(keep, v, z);
                let a = index(b, yr, j, es as i64);
                b.ins().store(sflags(), out, a, 0);
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    let mut operands = vec![Operand::Input(0), Operand::Output(0)];
    if runtime {
        operands.push(Operand::Input(1));
    }
    Ok(Some(Lowered::one(
        func,
        operands,
        (rows as u64, (4096 / w).max(1) as u64),
        "trilu",
        0,
    )))
}

/// TopK along `axis` with a constant `k`: one work item per lane. Output 0 holds the values,
/// output 1 (when used) their i64 indices.
fn top_k(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    axis: i64,
    largest: bool,
) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    let float = matches!(dt, DType::F32 | DType::F64);
    let signed = matches!(dt, DType::I8 | DType::I16 | DType::I32 | DType::I64);
    let unsigned = matches!(dt, DType::U8 | DType::U16 | DType::U32 | DType::U64);
    if !(float || signed || unsigned) || n.outputs[0].ty.dtype != dt {
        return Ok(None);
    }
    let ety = if float {
        num_type(dt).expect("a float type")
    } else {
        int_type(dt.size()).expect("an integer size")
    };
    let Some(xs) = in_shape(g, node, 0) else {
        return Ok(None);
    };
    let Some(a) = norm_axis(axis, xs.len()) else {
        return Ok(None);
    };
    let k = match const_input(g, node, 1).map(|t| t.to_i64_vec()) {
        Some(Ok(v)) if v.len() == 1 => v[0],
        _ => return Ok(None),
    };
    let d = xs[a];
    if k < 0 || k as usize > d {
        return Ok(None);
    }
    let k = k as usize;
    let mut ys = xs.clone();
    ys[a] = k;
    if out_shape(g, node, 0).as_ref() != Some(&ys) {
        return Ok(None);
    }
    let with_indices = n.outputs.len() > 1 && output_used(g, node, 1);
    if with_indices
        && (n.outputs[1].ty.dtype != DType::I64 || out_shape(g, node, 1).as_ref() != Some(&ys))
    {
        return Ok(None);
    }
    let outer: usize = xs[..a].iter().product();
    let inner: usize = xs[a + 1..].iter().product();
    let items = outer * inner;
    if items == 0 || k == 0 {
        return Ok(Some(Lowered::default()));
    }
    let es = dt.size() as i64;
    // `a` (at index `ia`) ranks before `b` (at `ib`): NaN first, then by value, ties by index.
    let before = move |b: &mut FunctionBuilder, av: Value, ia: Value, bv: Value, ib: Value| {
        let (gt, eq) = if float {
            let an = b.ins().fcmp(FloatCC::Unordered, av, av);
            let bn = b.ins().fcmp(FloatCC::Unordered, bv, bv);
            let bnum = b.ins().icmp_imm_s(IntCC::Equal, bn, 0);
            let nan_first = b.ins().band(an, bnum);
            let cc = if largest {
                FloatCC::GreaterThan
            } else {
                FloatCC::LessThan
            };
            let by_value = b.ins().fcmp(cc, av, bv);
            let gt = b.ins().bor(nan_first, by_value);
            let both_nan = b.ins().band(an, bn);
            let same = b.ins().fcmp(FloatCC::Equal, av, bv);
            (gt, b.ins().bor(both_nan, same))
        } else {
            let cc = match (largest, signed) {
                (true, true) => IntCC::SignedGreaterThan,
                (true, false) => IntCC::UnsignedGreaterThan,
                (false, true) => IntCC::SignedLessThan,
                (false, false) => IntCC::UnsignedLessThan,
            };
            (b.ins().icmp(cc, av, bv), b.ins().icmp(IntCC::Equal, av, bv))
        };
        let earlier = b.ins().icmp(IntCC::SignedLessThan, ia, ib);
        let tie = b.ins().band(eq, earlier);
        b.ins().bor(gt, tie)
    };
    let func = cx.define_kernel("top_k", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        let yi = if with_indices {
            Some(buf(b, p, 2))
        } else {
            None
        };
        for_range(b, p.begin, p.end, |b, it| {
            let iv = c64(b, inner as i64);
            let o = b.ins().udiv(it, iv);
            let i = b.ins().urem(it, iv);
            let xo = b.ins().imul_imm_s(o, (d * inner) as i64);
            let xe = b.ins().iadd(xo, i);
            let xb = index(b, x, xe, es);
            let yo = b.ins().imul_imm_s(o, (k * inner) as i64);
            let ye = b.ins().iadd(yo, i);
            let prev_v = b.declare_var(ety);
            let prev_i = b.declare_var(types::I64);
            let first = b.ins().load(ety, sflags(), xb, 0);
            b.def_var(prev_v, first);
            let none = c64(b, -1);
            b.def_var(prev_i, none);
            let lo = c64(b, 0);
            let hi = c64(b, k as i64);
            for_range(b, lo, hi, |b, j| {
                let best_v = b.declare_var(ety);
                let best_i = b.declare_var(types::I64);
                let pv = b.use_var(prev_v);
                b.def_var(best_v, pv);
                let none = c64(b, -1);
                b.def_var(best_i, none);
                let lo = c64(b, 0);
                let hi = c64(b, d as i64);
                for_range(b, lo, hi, |b, e| {
                    let addr = index(b, xb, e, inner as i64 * es);
                    let v = b.ins().load(ety, sflags(), addr, 0);
                    let pv = b.use_var(prev_v);
                    let pi = b.use_var(prev_i);
                    let after = before(b, pv, pi, v, e);
                    let start = b.ins().icmp_imm_s(IntCC::SignedLessThan, pi, 0);
                    let after = b.ins().bor(after, start);
                    let bv = b.use_var(best_v);
                    let bi = b.use_var(best_i);
                    let better = before(b, v, e, bv, bi);
                    let empty = b.ins().icmp_imm_s(IntCC::SignedLessThan, bi, 0);
                    let better = b.ins().bor(better, empty);
                    let take = b.ins().band(after, better);
                    let nv = b.ins().select(take, v, bv);
                    let ni = b.ins().select(take, e, bi);
                    b.def_var(best_v, nv);
                    b.def_var(best_i, ni);
                });
                let bv = b.use_var(best_v);
                let bi = b.use_var(best_i);
                let off = b.ins().imul_imm_s(j, inner as i64);
                let at = b.ins().iadd(ye, off);
                let dst = index(b, y, at, es);
                b.ins().store(sflags(), bv, dst, 0);
                if let Some(yi) = yi {
                    let dst = index(b, yi, at, 8);
                    b.ins().store(sflags(), bi, dst, 0);
                }
                b.def_var(prev_v, bv);
                b.def_var(prev_i, bi);
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    let mut operands = vec![Operand::Input(0), Operand::Output(0)];
    if with_indices {
        operands.push(Operand::Output(1));
    }
    Ok(Some(Lowered::one(
        func,
        operands,
        (items as u64, (4096 / (d * k).max(1)).max(1) as u64),
        "top_k",
        0,
    )))
}
