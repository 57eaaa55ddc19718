//! Kernels: ReverseSequence (any fixed-size element type) and Det (f32, f64).
//!
//! - ReverseSequence: a work item copies one `[batch, time]` row of the trailing dims from
//!   time `l − 1 − t` when `t < l` (`l` the batch's `sequence_lens`, read at run time), from
//!   `t` otherwise. A length outside `0..=T` (the reference refuses it) is clamped into it,
//!   so no read leaves the input.
//! - Det: a work item is one matrix, copied to f64 scratch and reduced by Gaussian
//!   elimination with partial pivoting exactly as the reference evaluator's `lu_det`
//!   (`passes/src/eval/nn/linalg.rs`): the pivot is the last row of largest `|m[i, c]|` in
//!   IEEE total order (NaN largest), a zero pivot gives 0, a row swap negates, and rows are
//!   updated as `m[i, j] − f · m[c, j]` with `f = m[i, c] / pivot` (two roundings, no FMA).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{buf, c64, copy_bytes, for_range, index, sflags, CHUNK};
use super::{in_shape, input, norm_axis, out_shape};
use crate::codegen::kernel::{KernelCx, Lowered, Operand};

/// The largest f64 scratch Det uses (bytes, one matrix per item).
const MAX_SCRATCH: usize = 1 << 28;

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    match g.node(node).op {
        Op::ReverseSequence {
            batch_axis,
            time_axis,
        } => reverse_sequence(cx, g, node, batch_axis, time_axis),
        Op::Det {} => det(cx, g, node),
        _ => Ok(None),
    }
}

fn reverse_sequence(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    batch_axis: i64,
    time_axis: i64,
) -> Result<Option<Lowered>, String> {
    let (Some(x), Some(lens)) = (input(g, node, 0), input(g, node, 1)) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    let (Some(xs), Some(ys), Some(ls)) = (
        in_shape(g, node, 0),
        out_shape(g, node, 0),
        in_shape(g, node, 1),
    ) else {
        return Ok(None);
    };
    if dt == DType::String || g.node(node).outputs[0].ty.dtype != dt || ys != xs || xs.len() < 2 {
        return Ok(None);
    }
    let (Some(ba), Some(ta)) = (
        norm_axis(batch_axis, xs.len()),
        norm_axis(time_axis, xs.len()),
    ) else {
        return Ok(None);
    };
    if ba == ta || ba > 1 || ta > 1 || ls != [xs[ba]] {
        return Ok(None);
    }
    let lty = match g.dtype(lens) {
        DType::I64 => types::I64,
        DType::I32 => types::I32,
        _ => return Ok(None),
    };
    let t_len = xs[ta] as i64;
    let row = xs[2..].iter().product::<usize>() * dt.size();
    let items = xs[0] * xs[1];
    if items == 0 || row == 0 {
        return Ok(Some(Lowered::default()));
    }
    let d1 = xs[1] as i64;
    let func = cx.define_kernel("reverse_sequence", |b, p| {
        let xp = buf(b, p, 0);
        let lp = buf(b, p, 1);
        let yp = buf(b, p, 2);
        for_range(b, p.begin, p.end, |b, item| {
            let d1v = c64(b, d1);
            let i0 = b.ins().udiv(item, d1v);
            let i1 = b.ins().urem(item, d1v);
            let (bi, ti) = if ba == 0 { (i0, i1) } else { (i1, i0) };
            let la = index(b, lp, bi, if lty == types::I64 { 8 } else { 4 });
            let l = b.ins().load(lty, sflags(), la, 0);
            let l = if lty == types::I64 {
                l
            } else {
                b.ins().sextend(types::I64, l)
            };
            // Clamp into 0..=T.
            let zero = c64(b, 0);
            let tv = c64(b, t_len);
            let l = b.ins().smax(l, zero);
            let l = b.ins().smin(l, tv);
            let rev = b.ins().isub(l, ti);
            let rev = b.ins().iadd_imm_s(rev, -1);
            let inside = b.ins().icmp(IntCC::SignedLessThan, ti, l);
            let src_t = b.ins().select(inside, rev, ti);
            let src = if ba == 0 {
                let r = b.ins().imul_imm_s(bi, d1);
                b.ins().iadd(r, src_t)
            } else {
                let r = b.ins().imul_imm_s(src_t, d1);
                b.ins().iadd(r, bi)
            };
            let s = index(b, xp, src, row as i64);
            let d = index(b, yp, item, row as i64);
            copy_bytes(b, s, d, row);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Input(1), Operand::Output(0)],
        (items as u64, (CHUNK / row).max(1) as u64),
        "reverse_sequence",
        0,
    )))
}

fn det(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    let ety = match dt {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
        _ => return Ok(None),
    };
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    let r = xs.len();
    if g.node(node).outputs[0].ty.dtype != dt
        || r < 2
        || xs[r - 1] != xs[r - 2]
        || ys != xs[..r - 2]
    {
        return Ok(None);
    }
    let n = xs[r - 1];
    let items: usize = ys.iter().product();
    if items == 0 {
        return Ok(Some(Lowered::default()));
    }
    let mat = n * n * 8;
    let Some(scratch) = items.checked_mul(mat).filter(|&s| s <= MAX_SCRATCH) else {
        return Ok(None);
    };
    let es = dt.size() as i64;
    let ni = n as i64;
    let func = cx.define_kernel("det", |b, p| {
        let xp = buf(b, p, 0);
        let yp = buf(b, p, 1);
        let sp = buf(b, p, 2);
        for_range(b, p.begin, p.end, |b, item| {
            let m = index(b, sp, item, mat as i64);
            let xm = index(b, xp, item, (n * n) as i64 * es);
            let nn = c64(b, (n * n) as i64);
            let zero = c64(b, 0);
            for_range(b, zero, nn, |b, k| {
                let a = index(b, xm, k, es);
                let v = b.ins().load(ety, sflags(), a, 0);
                let v = if ety == types::F32 {
                    b.ins().fpromote(types::F64, v)
                } else {
                    v
                };
                let a = index(b, m, k, 8);
                b.ins().store(sflags(), v, a, 0);
            });
            // m[i, j] at m + (i · n + j) · 8.
            let at = |b: &mut FunctionBuilder, i: Value, j: Value| {
                let o = b.ins().imul_imm_s(i, ni);
                let o = b.ins().iadd(o, j);
                index(b, m, o, 8)
            };
            let det = b.declare_var(types::F64);
            let one = b.ins().f64const(1.0);
            b.def_var(det, one);
            let singular = b.declare_var(types::I8);
            let no = b.ins().iconst(types::I8, 0);
            b.def_var(singular, no);
            let (lo, hi) = (c64(b, 0), c64(b, ni));
            for_range(b, lo, hi, |b, c| {
                // The pivot: the last row of largest |m[i, c]| (total order on the bits).
                let best = b.declare_var(types::I64);
                let best_bits = b.declare_var(types::I64);
                b.def_var(best, c);
                let a = at(b, c, c);
                let bits = abs_bits(b, a);
                b.def_var(best_bits, bits);
                let from = b.ins().iadd_imm_s(c, 1);
                let hi = c64(b, ni);
                for_range(b, from, hi, |b, i| {
                    let a = at(b, i, c);
                    let bits = abs_bits(b, a);
                    let cur = b.use_var(best_bits);
                    let ge = b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, bits, cur);
                    let nb = b.ins().select(ge, bits, cur);
                    b.def_var(best_bits, nb);
                    let cur = b.use_var(best);
                    let ni_ = b.ins().select(ge, i, cur);
                    b.def_var(best, ni_);
                });
                let pr = b.use_var(best);
                let a = at(b, pr, c);
                let pv = b.ins().load(types::F64, sflags(), a, 0);
                let zf = b.ins().f64const(0.0);
                let is_zero = b.ins().fcmp(FloatCC::Equal, pv, zf);
                let s = b.use_var(singular);
                let s = b.ins().bor(s, is_zero);
                b.def_var(singular, s);
                // Swap rows pr and c (a no-op when equal), negating det when they differ.
                let (lo, hi) = (c64(b, 0), c64(b, ni));
                for_range(b, lo, hi, |b, j| {
                    let pa = at(b, pr, j);
                    let ca = at(b, c, j);
                    let u = b.ins().load(types::F64, sflags(), pa, 0);
                    let v = b.ins().load(types::F64, sflags(), ca, 0);
                    b.ins().store(sflags(), v, pa, 0);
                    b.ins().store(sflags(), u, ca, 0);
                });
                let swapped = b.ins().icmp(IntCC::NotEqual, pr, c);
                let d = b.use_var(det);
                let nd = b.ins().fneg(d);
                let d = b.ins().select(swapped, nd, d);
                let d = b.ins().fmul(d, pv);
                b.def_var(det, d);
                let from = b.ins().iadd_imm_s(c, 1);
                let hi = c64(b, ni);
                for_range(b, from, hi, |b, i| {
                    let a = at(b, i, c);
                    let e = b.ins().load(types::F64, sflags(), a, 0);
                    let f = b.ins().fdiv(e, pv);
                    let hi = c64(b, ni);
                    for_range(b, c, hi, |b, j| {
                        let ia = at(b, i, j);
                        let ca = at(b, c, j);
                        let u = b.ins().load(types::F64, sflags(), ia, 0);
                        let v = b.ins().load(types::F64, sflags(), ca, 0);
                        let fv = b.ins().fmul(f, v);
                        let w = b.ins().fsub(u, fv);
                        b.ins().store(sflags(), w, ia, 0);
                    });
                });
            });
            let d = b.use_var(det);
            let s = b.use_var(singular);
            let zf = b.ins().f64const(0.0);
            let d = b.ins().select(s, zf, d);
            let d = if ety == types::F32 {
                b.ins().fdemote(types::F32, d)
            } else {
                d
            };
            let ya = index(b, yp, item, es);
            b.ins().store(sflags(), d, ya, 0);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Output(0), Operand::Scratch(0)],
        (items as u64, (CHUNK / (mat * n).max(1)).max(1) as u64),
        "det",
        scratch,
    )))
}

/// The bits of `|*a|` (an f64) as an i64: their unsigned order is IEEE total order.
fn abs_bits(b: &mut FunctionBuilder, a: Value) -> Value {
    let v = b.ins().load(types::F64, sflags(), a, 0);
    let v = b.ins().fabs(v);
    b.ins().bitcast(types::I64, MemFlagsData::new(), v)
}
