//! QuantizeLinear and DequantizeLinear (8- and 16-bit integers, f32, per tensor or per axis)
//! as Cast and elementwise ops (and DynamicQuantizeLinear, see [`decompose_dynamic`]):
//!
//! ```text
//! dequantize  y = (f32(x) - f32(zero_point)) · scale
//! quantize    y = T(clip(nan_to_0(round_half_even(x / scale) + zero_point), T::MIN, T::MAX))
//! ```
//!
//! which is what the reference evaluator computes (`passes/src/eval/nn/quant.rs`): the
//! division in f32, the subtraction exact for these types, and the product of two f32 values
//! rounded once either way. Blocked scales are repeated along their axis first (Reshape,
//! Expand, Reshape, Slice). Other types and a `precision` attribute are left whole.

use graphc_passes::ir::{DType, Graph, NodeId, Op, Tensor, ValueRef};

use super::{become_last_step, known, Builder};

/// The quantized integer types handled.
fn small_int(dt: DType) -> Option<(f32, f32)> {
    match dt {
        DType::U8 => Some((0.0, u8::MAX as f32)),
        DType::I8 => Some((i8::MIN as f32, i8::MAX as f32)),
        DType::U16 => Some((0.0, u16::MAX as f32)),
        DType::I16 => Some((i16::MIN as f32, i16::MAX as f32)),
        _ => None,
    }
}

/// A scale or zero point of shape `[]`, `[1]` or `[d]` (d along `axis`) as a value that
/// broadcasts against `xs`.
fn param_shape(g: &Graph, p: ValueRef, xs: &[usize], axis: i64) -> Option<Vec<usize>> {
    let ps = known(g, p)?;
    if ps.iter().product::<usize>() == 1 && ps.len() <= 1 {
        return Some(vec![]);
    }
    let r = xs.len() as i64;
    let ax = if axis < 0 { axis + r } else { axis };
    let ax = usize::try_from(ax).ok().filter(|&a| a < xs.len())?;
    if ps.len() != 1 || ps[0] != xs[ax] {
        return None;
    }
    let mut s = vec![1; xs.len()];
    s[ax] = ps[0];
    Some(s)
}

struct Plan {
    x: ValueRef,
    scale: ValueRef,
    zero: Option<ValueRef>,
    xs: Vec<usize>,
    /// Broadcast shapes of the scale and zero point.
    pshape: Vec<usize>,
    /// Blocked scales: the axis and the block size (each value covers `block` elements).
    blocked: Option<(usize, usize)>,
    /// The integer type: the output's (quantize) or the input's (dequantize).
    int: DType,
    quantize: bool,
}

fn plan(g: &Graph, id: NodeId) -> Option<Plan> {
    let node = g.node(id);
    let (axis, block, quantize) = match node.op {
        Op::QuantizeLinear {
            axis,
            block_size,
            precision: 0,
            ..
        } => (axis, block_size, true),
        Op::DequantizeLinear {
            axis, block_size, ..
        } => (axis, block_size, false),
        _ => return None,
    };
    if block < 0 || node.outputs.len() != 1 || node.inputs.len() > 3 {
        return None;
    }
    let input = |i: usize| node.inputs.get(i).copied().flatten();
    let (x, scale, zero) = (input(0)?, input(1)?, input(2));
    let out = node.outputs[0].ty.dtype;
    let int = if quantize { out } else { g.dtype(x) };
    small_int(int)?;
    let float = if quantize { g.dtype(x) } else { out };
    if float != DType::F32 || g.dtype(scale) != DType::F32 {
        return None;
    }
    if zero.is_some_and(|z| g.dtype(z) != int) {
        return None;
    }
    let xs = known(g, x)?;
    let (pshape, blocked) = if block == 0 {
        (param_shape(g, scale, &xs, axis)?, None)
    } else {
        // Same rank as x, ceil(d / block) values along the axis.
        let r = xs.len() as i64;
        let ax = usize::try_from(if axis < 0 { axis + r } else { axis })
            .ok()
            .filter(|&a| a < xs.len())?;
        let b = block as usize;
        let mut want = xs.clone();
        want[ax] = xs[ax].div_ceil(b);
        (known(g, scale).filter(|s| *s == want)?, Some((ax, b)))
    };
    if let Some(z) = zero {
        let zs = match blocked {
            None => param_shape(g, z, &xs, axis)?,
            Some(_) => known(g, z)?,
        };
        if zs != pshape {
            return None;
        }
    }
    Some(Plan {
        x,
        scale,
        zero,
        xs,
        pshape,
        blocked,
        int,
        quantize,
    })
}

/// Rewrites QuantizeLinear / DequantizeLinear node `id` into kernel-backed ops (see the module
/// docs); leaves it whole when its form is not covered.
pub fn decompose(g: &mut Graph, id: NodeId) {
    let Some(p) = plan(g, id) else {
        return;
    };
    let mut bld = Builder::for_node(g, id);
    let xs = p.xs.clone();
    // Blocked parameters: each value repeated `block` times along the axis, cut to x's size.
    let unblock = |bld: &mut Builder, what: &str, v: ValueRef| match p.blocked {
        None => v,
        Some((ax, b)) => {
            let nb = p.pshape[ax];
            let mut one = p.pshape.clone();
            one.insert(ax + 1, 1);
            let v = bld.reshape(&format!("{what}.blocks"), v, &one);
            let mut wide = one.clone();
            wide[ax + 1] = b;
            let to = bld.shape(&format!("{what}.expand.shape"), &wide);
            let v = bld.f32(&format!("{what}.expand"), Op::Expand {}, vec![v, to], &wide);
            let mut flat = p.pshape.clone();
            flat[ax] = nb * b;
            let v = bld.reshape(&format!("{what}.repeated"), v, &flat);
            if nb * b == xs[ax] {
                v
            } else {
                bld.range(&format!("{what}.cut"), v, ax, 0, xs[ax])
            }
        }
    };
    let scale = bld.reshape("scale", p.scale, &p.pshape);
    let scale = unblock(&mut bld, "scale", scale);
    let zero = p.zero.map(|z| {
        let z = bld.reshape("zero", z, &p.pshape);
        let cast = Op::Cast {
            to: DType::F32,
            saturate: 1,
            round_mode: "up".into(),
        };
        let z = bld.f32("zero.f32", cast, vec![z], &p.pshape);
        unblock(&mut bld, "zero", z)
    });
    let (op, inputs) = if p.quantize {
        let (lo, hi) = small_int(p.int).expect("checked by plan");
        let q = bld.f32("div", Op::Div {}, vec![p.x, scale], &xs);
        let mut r = bld.f32("round", Op::Round {}, vec![q], &xs);
        if let Some(z) = zero {
            r = bld.f32("shift", Op::Add {}, vec![r, z], &xs);
        }
        let nan = bld.add("nan", Op::IsNaN {}, vec![r], DType::Bool, &xs);
        let zero_f = bld.constant("nan.zero", Tensor::scalar(0f32));
        let r = bld.f32("nan.zeroed", Op::Where {}, vec![nan, zero_f, r], &xs);
        let lo = bld.constant("min", Tensor::scalar(lo));
        let hi = bld.constant("max", Tensor::scalar(hi));
        let r = bld.f32("saturate", Op::Clip {}, vec![r, lo, hi], &xs);
        let cast = Op::Cast {
            to: p.int,
            saturate: 1,
            round_mode: "up".into(),
        };
        (cast, vec![r])
    } else {
        let cast = Op::Cast {
            to: DType::F32,
            saturate: 1,
            round_mode: "up".into(),
        };
        let xf = bld.f32("x.f32", cast, vec![p.x], &xs);
        let d = match zero {
            Some(z) => bld.f32("centered", Op::Sub {}, vec![xf, z], &xs),
            None => xf,
        };
        (Op::Mul {}, vec![d, scale])
    };
    become_last_step(bld.g, id, op, inputs, &[]);
}

/// Rewrites a DynamicQuantizeLinear node `id` (f32 to u8) into kernel-backed ops:
///
/// ```text
/// lo, hi      min(0, min(x)), max(0, max(x))     (NaN elements ignored, as 0 would be)
/// scale       (hi - lo) / 255
/// zero_point  u8(clip(nan_to_0(round(-lo / scale)), 0, 255))
/// y           u8(clip(nan_to_0(round(x / scale) + zero_point), 0, 255))
/// ```
///
/// A zero or infinite scale makes every division NaN or 0, so y and the zero point are 0,
/// which is the reference evaluator's special case (`passes/src/eval/nn/quant.rs`).
pub fn decompose_dynamic(g: &mut Graph, id: NodeId) {
    let node = g.node(id);
    if !matches!(node.op, Op::DynamicQuantizeLinear {}) || node.outputs.len() != 3 {
        return;
    }
    let Some(x) = node.inputs.first().copied().flatten() else {
        return;
    };
    let Some(xs) = known(g, x) else {
        return;
    };
    if g.dtype(x) != DType::F32 || xs.iter().product::<usize>() == 0 {
        return;
    }
    let mut bld = Builder::for_node(g, id);
    let zero = bld.constant("zero", Tensor::scalar(0f32));
    // NaN as 0, then to a u8: what `round().clamp(0, 255) as u8` does.
    let to_u8 = |bld: &mut Builder, what: &str, v: ValueRef, dims: &[usize]| {
        let nan = bld.add(
            &format!("{what}.nan"),
            Op::IsNaN {},
            vec![v],
            DType::Bool,
            dims,
        );
        let v = bld.f32(
            &format!("{what}.zeroed"),
            Op::Where {},
            vec![nan, zero, v],
            dims,
        );
        let lo = bld.constant(&format!("{what}.min"), Tensor::scalar(0f32));
        let hi = bld.constant(&format!("{what}.max"), Tensor::scalar(255f32));
        bld.f32(&format!("{what}.clip"), Op::Clip {}, vec![v, lo, hi], dims)
    };
    let nan = bld.add("x.nan", Op::IsNaN {}, vec![x], DType::Bool, &xs);
    let clean = bld.f32("x.clean", Op::Where {}, vec![nan, zero, x], &xs);
    // Over all axes (no axes input), to a scalar.
    let (keepdims, noop) = (0, 0);
    let mn = bld.f32(
        "min",
        Op::ReduceMin {
            keepdims,
            noop_with_empty_axes: noop,
        },
        vec![clean],
        &[],
    );
    let mx = bld.f32(
        "max",
        Op::ReduceMax {
            keepdims,
            noop_with_empty_axes: noop,
        },
        vec![clean],
        &[],
    );
    let lo = bld.f32("lo", Op::Min {}, vec![mn, zero], &[]);
    let hi = bld.f32("hi", Op::Max {}, vec![mx, zero], &[]);
    let range = bld.f32("range", Op::Sub {}, vec![hi, lo], &[]);
    let levels = bld.constant("levels", Tensor::scalar(255f32));
    let scale = bld.f32("scale", Op::Div {}, vec![range, levels], &[]);
    let neg = bld.f32("neg_lo", Op::Sub {}, vec![zero, lo], &[]);
    let z = bld.f32("zp.div", Op::Div {}, vec![neg, scale], &[]);
    let z = bld.f32("zp.round", Op::Round {}, vec![z], &[]);
    let zf = to_u8(&mut bld, "zp", z, &[]);
    let u8_cast = || Op::Cast {
        to: DType::U8,
        saturate: 1,
        round_mode: "up".into(),
    };
    let zp = bld.add("zp.u8", u8_cast(), vec![zf], DType::U8, &[]);
    let q = bld.f32("y.div", Op::Div {}, vec![x, scale], &xs);
    let q = bld.f32("y.round", Op::Round {}, vec![q], &xs);
    let q = bld.f32("y.shift", Op::Add {}, vec![q, zf], &xs);
    let q = to_u8(&mut bld, "y", q, &xs);
    become_last_step(bld.g, id, u8_cast(), vec![q], &[scale, zp]);
}
