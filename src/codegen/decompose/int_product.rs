//! Integer products (MatMulInteger, ConvInteger, QLinearMatMul on 8-bit operands) as the f32
//! MatMul or Conv of the zero-point-shifted operands, exact as the reference evaluator's
//! (`passes/src/eval/nn/linalg.rs`, `conv.rs`), which computes them in f64.
//!
//! Exactness: the operands `x − zp` are integers of magnitude at most `ma` and `mb` (from the
//! element types), so every partial sum of a dot product of length `K` is an integer of
//! magnitude at most `K · ma · mb`. When that bound is at most 2^24 every such integer is an
//! f32, so the f32 product is exact whatever the summation order; otherwise the node is
//! declined.
//!
//! - MatMulInteger, ConvInteger: the exact product, cast to i32.
//! - QLinearMatMul: the product in f64 times `round(round(sa · sb) / sy)` (each rounding to
//!   the scales' type, computed at run time), rounded half to even, plus `y_zero_point`, then
//!   converted as the reference does (through i64, wrapping to the output type: a result of
//!   2^63 or more, which saturates to `i64::MAX` there, is replaced by that value's
//!   wrapped image before the Cast).
//!
//! Declined: other element types, zero points other than a scalar (or a per-row vector for A
//! and per-column vector for B, per-output-channel for ConvInteger's weights), scales that
//! are not scalars, dynamic shapes, and products the bound above does not cover.

use graphc_passes::ir::{DType, Graph, NodeId, Op, Tensor, ValueRef};

use super::{become_last_step, broadcast, known, Builder};

/// The largest magnitude of an integer every partial sum stays below for exactness in f32.
const F32_EXACT: u64 = 1 << 24;

/// The value range of an 8-bit integer type.
fn range(dt: DType) -> Option<(i64, i64)> {
    match dt {
        DType::U8 => Some((0, 255)),
        DType::I8 => Some((-128, 127)),
        _ => None,
    }
}

/// The largest `|x − zp|` for `x` of type `x_dt` and an optional zero point of type `z_dt`.
fn max_shift(x_dt: DType, z_dt: Option<DType>) -> Option<u64> {
    let (lo, hi) = range(x_dt)?;
    let (zlo, zhi) = match z_dt {
        Some(z) => range(z)?,
        None => (0, 0),
    };
    Some((hi - zlo).max(zhi - lo).unsigned_abs())
}

fn cast(bld: &mut Builder, suffix: &str, x: ValueRef, to: DType) -> ValueRef {
    let dims = known(bld.g, x).expect("static shapes");
    let op = Op::Cast {
        to,
        saturate: 1,
        round_mode: "up".into(),
    };
    bld.add(suffix, op, vec![x], to, &dims)
}

/// `f32(x) − f32(zp)`, the zero point reshaped to `zp_dims`; `None` when the shifted operand
/// would not keep `x`'s shape.
fn shifted(
    bld: &mut Builder,
    what: &str,
    x: ValueRef,
    zp: Option<(ValueRef, Vec<usize>)>,
) -> Option<ValueRef> {
    let xd = known(bld.g, x)?;
    let xf = cast(bld, &format!("{what}.f32"), x, DType::F32);
    let Some((z, zd)) = zp else {
        return Some(xf);
    };
    if broadcast(&xd, &zd)? != xd {
        return None;
    }
    let zf = cast(bld, &format!("{what}.zero_point.f32"), z, DType::F32);
    let zf = bld.reshape(&format!("{what}.zero_point"), zf, &zd);
    Some(bld.f32(&format!("{what}.shifted"), Op::Sub {}, vec![xf, zf], &xd))
}

/// The zero point at input `slot` as (value, broadcast dims): a scalar, or a vector of
/// `per` values laid along `axis_from_end` (1: rows of `[.., M, K]`, 0: columns).
fn zero_point(
    g: &Graph,
    node: NodeId,
    slot: usize,
    per: usize,
    axis_from_end: usize,
) -> Option<Option<(ValueRef, Vec<usize>)>> {
    let Some(z) = g.node(node).inputs.get(slot).copied().flatten() else {
        return Some(None);
    };
    let zd = known(g, z)?;
    let n: usize = zd.iter().product();
    if n == 1 {
        return Some(Some((z, vec![])));
    }
    if zd.len() == 1 && n == per {
        let mut d = vec![per];
        d.extend(std::iter::repeat_n(1, axis_from_end));
        return Some(Some((z, d)));
    }
    None
}

/// Rewrites a MatMulInteger or QLinearMatMul node `id` when the product is exact in f32.
pub fn decompose_matmul(g: &mut Graph, id: NodeId) {
    let node = g.node(id);
    let q = match node.op {
        Op::MatMulInteger {} => false,
        Op::QLinearMatMul {} => true,
        _ => return,
    };
    let input = |i: usize| node.inputs.get(i).copied().flatten();
    let (ai, bi) = if q { (0, 3) } else { (0, 1) };
    let (azi, bzi) = if q { (2, 5) } else { (2, 3) };
    let (Some(a), Some(b)) = (input(ai), input(bi)) else {
        return;
    };
    let (Some(ad), Some(bd), Some(yd)) = (
        known(g, a),
        known(g, b),
        node.outputs[0].ty.shape.as_known(),
    ) else {
        return;
    };
    if ad.len() < 2 || bd.len() < 2 || node.outputs.len() != 1 {
        return;
    }
    let (m, k, n) = (ad[ad.len() - 2], ad[ad.len() - 1], bd[bd.len() - 1]);
    let (Some(az), Some(bz)) = (zero_point(g, id, azi, m, 1), zero_point(g, id, bzi, n, 0)) else {
        return;
    };
    let (Some(ma), Some(mb)) = (
        max_shift(g.dtype(a), az.as_ref().map(|z| g.dtype(z.0))),
        max_shift(g.dtype(b), bz.as_ref().map(|z| g.dtype(z.0))),
    ) else {
        return;
    };
    if (k as u64).saturating_mul(ma).saturating_mul(mb) > F32_EXACT {
        return;
    }
    let odt = node.outputs[0].ty.dtype;
    // QLinearMatMul: scalar scales of one float type, an 8-bit output.
    let scales = if q {
        let Some(s) = [1, 4, 6]
            .iter()
            .map(|&i| input(i))
            .collect::<Option<Vec<_>>>()
        else {
            return;
        };
        let sdt = g.dtype(s[0]);
        if !matches!(sdt, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
            || s.iter().any(|&v| {
                !g.dtype(v).is_float()
                    || known(g, v).is_none_or(|d| d.iter().product::<usize>() != 1)
            })
            || range(odt).is_none()
            || input(7).is_some_and(|z| {
                g.dtype(z) != odt || known(g, z).is_none_or(|d| d.iter().product::<usize>() != 1)
            })
        {
            return;
        }
        Some((s, sdt))
    } else {
        if odt != DType::I32 {
            return;
        }
        None
    };
    let yzp = if q { input(7) } else { None };
    let mut bld = Builder::for_node(g, id);
    let (Some(af), Some(bf)) = (shifted(&mut bld, "a", a, az), shifted(&mut bld, "b", b, bz))
    else {
        return;
    };
    let p = bld.f32("product", Op::MatMul {}, vec![af, bf], &yd);
    let Some((s, sdt)) = scales else {
        let op = Op::Cast {
            to: DType::I32,
            saturate: 1,
            round_mode: "up".into(),
        };
        become_last_step(bld.g, id, op, vec![p], &[]);
        return;
    };
    requantize(&mut bld, id, p, &s, sdt, yzp, odt, &yd);
}

/// `p · round(round(sa · sb) / sy)` rounded half to even, `+ zy`, converted to `odt` as the
/// reference does; the last step replaces node `id`.
#[allow(clippy::too_many_arguments)]
fn requantize(
    bld: &mut Builder,
    id: NodeId,
    p: ValueRef,
    s: &[ValueRef],
    sdt: DType,
    yzp: Option<ValueRef>,
    odt: DType,
    yd: &[usize],
) {
    let f64s: Vec<ValueRef> = s
        .iter()
        .zip(["a_scale", "b_scale", "y_scale"])
        .map(|(&v, what)| {
            let v = bld.reshape(&format!("{what}.scalar"), v, &[]);
            if bld.g.dtype(v) == DType::F64 {
                v
            } else {
                cast(bld, &format!("{what}.f64"), v, DType::F64)
            }
        })
        .collect();
    // Rounding to the scales' type after each operation.
    let round = |bld: &mut Builder, suffix: &str, v: ValueRef| {
        if sdt == DType::F64 {
            return v;
        }
        let r = cast(bld, &format!("{suffix}.rounded"), v, sdt);
        cast(bld, &format!("{suffix}.f64"), r, DType::F64)
    };
    let f64op = |bld: &mut Builder, suffix: &str, op: Op, a: ValueRef, b: ValueRef| {
        let dims = broadcast(
            &known(bld.g, a).expect("static"),
            &known(bld.g, b).expect("static"),
        )
        .expect("broadcasts");
        bld.add(suffix, op, vec![a, b], DType::F64, &dims)
    };
    let ab = f64op(bld, "scale.ab", Op::Mul {}, f64s[0], f64s[1]);
    let ab = round(bld, "scale.ab", ab);
    let f = f64op(bld, "scale", Op::Div {}, ab, f64s[2]);
    let f = round(bld, "scale", f);
    let pd = cast(bld, "product.f64", p, DType::F64);
    let d = f64op(bld, "scaled", Op::Mul {}, pd, f);
    let mut d = bld.add("rounded", Op::Round {}, vec![d], DType::F64, yd);
    if let Some(z) = yzp {
        let z = bld.reshape("y_zero_point.scalar", z, &[]);
        let z = cast(bld, "y_zero_point.f64", z, DType::F64);
        d = f64op(bld, "shifted", Op::Add {}, d, z);
    }
    // The reference converts through i64 (saturating): 2^63 and above become i64::MAX.
    let big = bld.constant("i64_max.bound", Tensor::scalar((1u64 << 63) as f64));
    let over = bld.add(
        "i64_max.over",
        Op::GreaterOrEqual {},
        vec![d, big],
        DType::Bool,
        yd,
    );
    let wrapped = match odt {
        DType::U8 => 255.0,
        _ => -1.0,
    };
    let w = bld.constant("i64_max.wrapped", Tensor::scalar(wrapped));
    let d = bld.add("saturated", Op::Where {}, vec![over, w, d], DType::F64, yd);
    let op = Op::Cast {
        to: odt,
        saturate: 1,
        round_mode: "up".into(),
    };
    become_last_step(bld.g, id, op, vec![d], &[]);
}

/// Rewrites a ConvInteger node `id` when the convolution is exact in f32.
pub fn decompose_conv(g: &mut Graph, id: NodeId) {
    let node = g.node(id);
    let Op::ConvInteger {
        auto_pad,
        dilations,
        group,
        kernel_shape,
        pads,
        strides,
    } = node.op.clone()
    else {
        return;
    };
    let input = |i: usize| node.inputs.get(i).copied().flatten();
    let (Some(x), Some(w)) = (input(0), input(1)) else {
        return;
    };
    let (Some(xd), Some(wd), Some(yd)) = (
        known(g, x),
        known(g, w),
        node.outputs[0].ty.shape.as_known(),
    ) else {
        return;
    };
    if wd.len() < 3 || node.outputs.len() != 1 || node.outputs[0].ty.dtype != DType::I32 {
        return;
    }
    let m = wd[0];
    let xz = match input(2) {
        None => None,
        Some(z) if known(g, z).is_some_and(|d| d.iter().product::<usize>() == 1) => {
            Some((z, vec![]))
        }
        Some(_) => return,
    };
    let Some(wz) = zero_point(g, id, 3, m, wd.len() - 1) else {
        return;
    };
    let (Some(mx), Some(mw)) = (
        max_shift(g.dtype(x), xz.as_ref().map(|z| g.dtype(z.0))),
        max_shift(g.dtype(w), wz.as_ref().map(|z| g.dtype(z.0))),
    ) else {
        return;
    };
    // One output is a sum over C/group channels times the kernel window.
    let k: usize = wd[1..].iter().product();
    if (k as u64).saturating_mul(mx).saturating_mul(mw) > F32_EXACT || xd.len() != wd.len() {
        return;
    }
    let mut bld = Builder::for_node(g, id);
    let (Some(xf), Some(wf)) = (shifted(&mut bld, "x", x, xz), shifted(&mut bld, "w", w, wz))
    else {
        return;
    };
    let conv = Op::Conv {
        auto_pad,
        dilations,
        group,
        kernel_shape,
        pads,
        strides,
    };
    let y = bld.f32("conv", conv, vec![xf, wf], &yd);
    let op = Op::Cast {
        to: DType::I32,
        saturate: 1,
        round_mode: "up".into(),
    };
    become_last_step(bld.g, id, op, vec![y], &[]);
}
