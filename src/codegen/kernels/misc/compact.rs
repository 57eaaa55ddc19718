//! Kernels whose output shape the data decides: NonZero and Compress (any fixed-size element
//! type). They lower only outputs compiled with an upper bound
//! ([`crate::codegen::bounded`]): a first pass counts, the kernel writes the actual dims
//! ([`Operand::Dims`]), then a second pass writes the tensor densely at the start of the
//! bounded buffer. One work item does it all (the count decides where everything goes).
//!
//! - NonZero: an element is non-zero unless all its bits but the sign are 0 for floats (so
//!   −0 is zero and NaN is not, as `x != 0`), unless it is 0 for integers and bool. The
//!   coordinates of the k-th non-zero element go to column k of the `[rank, count]` result.
//! - Compress: the slices along `axis` (the elements of the flattened input without one)
//!   whose condition byte is non-zero, in order. The condition may be longer than the axis;
//!   true entries past its end select nothing (the reference refuses them; a kernel cannot).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op, ValueRef};

use super::ir::{buf, c64, copy_bytes, for_range, if_then, index, int_type, sflags};
use super::{in_shape, input, norm_axis, out_shape};
use crate::codegen::kernel::{KernelCx, Lowered, Operand};

/// See [`self`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let bounded = cx.is_bounded(ValueRef { node, port: 0 });
    match g.node(node).op {
        Op::NonZero {} if bounded => non_zero(cx, g, node),
        Op::Compress { axis } if bounded => compress(cx, g, node, axis),
        _ => Ok(None),
    }
}

/// Whether the element at `p` is non-zero (an i8 0/1): its bits, without a float's sign.
fn is_non_zero(b: &mut FunctionBuilder, p: Value, dt: DType) -> Option<Value> {
    let ty = int_type(dt.size())?;
    let bits = b.ins().load(ty, sflags(), p, 0);
    let bits = if dt.is_float() {
        let magnitude = (1u64 << (8 * dt.size() - 1)) - 1;
        b.ins().band_imm_u(bits, magnitude as i64)
    } else {
        bits
    };
    Some(b.ins().icmp_imm_u(IntCC::NotEqual, bits, 0))
}

fn non_zero(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let (Some(x), Some(xs), Some(ys)) = (
        input(g, node, 0),
        in_shape(g, node, 0),
        out_shape(g, node, 0),
    ) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    let n = g.node(node);
    if dt == DType::String
        || int_type(dt.size()).is_none()
        || n.outputs[0].ty.dtype != DType::I64
        || ys.len() != 2
    {
        return Ok(None);
    }
    let count: usize = xs.iter().product();
    let rank = xs.len();
    let es = dt.size() as i64;
    let func = cx.define_kernel("non_zero", |b, p| {
        let xp = buf(b, p, 0);
        let yp = buf(b, p, 1);
        let dp = buf(b, p, 2);
        let (zero, total) = (c64(b, 0), c64(b, count as i64));
        // Pass 1: count.
        let nnz = b.declare_var(types::I64);
        b.def_var(nnz, zero);
        for_range(b, zero, total, |b, i| {
            let a = index(b, xp, i, es);
            let nz = is_non_zero(b, a, dt).expect("checked above");
            let nz = b.ins().uextend(types::I64, nz);
            let c = b.use_var(nnz);
            let c = b.ins().iadd(c, nz);
            b.def_var(nnz, c);
        });
        let nnz = b.use_var(nnz);
        let r = c64(b, rank as i64);
        b.ins().store(sflags(), r, dp, 0);
        b.ins().store(sflags(), nnz, dp, 8);
        // Pass 2: the coordinates of the k-th non-zero element into column k.
        let k = b.declare_var(types::I64);
        b.def_var(k, zero);
        for_range(b, zero, total, |b, i| {
            let a = index(b, xp, i, es);
            let nz = is_non_zero(b, a, dt).expect("checked above");
            if_then(b, nz, |b| {
                let kv = b.use_var(k);
                let mut rest = i;
                for d in (0..rank).rev() {
                    let coord = if d == 0 {
                        rest
                    } else {
                        let dim = c64(b, xs[d].max(1) as i64);
                        let c = b.ins().urem(rest, dim);
                        rest = b.ins().udiv(rest, dim);
                        c
                    };
                    // Element (d, k) of the [rank, nnz] result.
                    let row = b.ins().imul_imm_s(nnz, d as i64);
                    let at = b.ins().iadd(row, kv);
                    let ya = index(b, yp, at, 8);
                    b.ins().store(sflags(), coord, ya, 0);
                }
                let k1 = b.ins().iadd_imm_s(kv, 1);
                b.def_var(k, k1);
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Output(0), Operand::Dims(0)],
        (1, 1),
        "non_zero",
        0,
    )))
}

fn compress(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    axis: Option<i64>,
) -> Result<Option<Lowered>, String> {
    let (Some(x), Some(c), Some(xs), Some(cs)) = (
        input(g, node, 0),
        input(g, node, 1),
        in_shape(g, node, 0),
        in_shape(g, node, 1),
    ) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    if dt == DType::String || g.dtype(c) != DType::Bool || g.node(node).outputs[0].ty.dtype != dt {
        return Ok(None);
    }
    // The input as [outer, d, inner] along the axis; the output's dims with d replaced.
    let (outer, d, inner, out_dims, ax) = match axis {
        Some(a) => {
            let Some(a) = norm_axis(a, xs.len()) else {
                return Ok(None);
            };
            let outer: usize = xs[..a].iter().product();
            let inner: usize = xs[a + 1..].iter().product();
            (outer, xs[a], inner, xs.clone(), a)
        }
        None => (1, xs.iter().product(), 1, vec![0], 0),
    };
    let m = d.min(cs.iter().product());
    let row = inner * dt.size();
    let func = cx.define_kernel("compress", |b, p| {
        let xp = buf(b, p, 0);
        let cp = buf(b, p, 1);
        let yp = buf(b, p, 2);
        let dp = buf(b, p, 3);
        let (zero, mv) = (c64(b, 0), c64(b, m as i64));
        let kept = b.declare_var(types::I64);
        b.def_var(kept, zero);
        for_range(b, zero, mv, |b, j| {
            let a = b.ins().iadd(cp, j);
            let v = b.ins().load(types::I8, sflags(), a, 0);
            let t = b.ins().icmp_imm_u(IntCC::NotEqual, v, 0);
            let t = b.ins().uextend(types::I64, t);
            let s = b.use_var(kept);
            let s = b.ins().iadd(s, t);
            b.def_var(kept, s);
        });
        let kept = b.use_var(kept);
        for (k, &dim) in out_dims.iter().enumerate() {
            let v = if k == ax { kept } else { c64(b, dim as i64) };
            b.ins().store(sflags(), v, dp, (8 * k) as i32);
        }
        if row == 0 || outer == 0 {
            b.ins().return_(&[]);
            return Ok(());
        }
        let ov = c64(b, outer as i64);
        for_range(b, zero, ov, |b, o| {
            let src_row = b.ins().imul_imm_s(o, d as i64);
            let dst_row = b.ins().imul(o, kept);
            let k = b.declare_var(types::I64);
            b.def_var(k, dst_row);
            for_range(b, zero, mv, |b, j| {
                let a = b.ins().iadd(cp, j);
                let v = b.ins().load(types::I8, sflags(), a, 0);
                if_then(b, v, |b| {
                    let kv = b.use_var(k);
                    let si = b.ins().iadd(src_row, j);
                    let s = index(b, xp, si, row as i64);
                    let t = index(b, yp, kv, row as i64);
                    copy_bytes(b, s, t, row);
                    let k1 = b.ins().iadd_imm_s(kv, 1);
                    b.def_var(k, k1);
                });
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![
            Operand::Input(0),
            Operand::Input(1),
            Operand::Output(0),
            Operand::Dims(0),
        ],
        (1, 1),
        "compress",
        0,
    )))
}
