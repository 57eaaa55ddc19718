//! DFT (f32, f64) along one axis of a `[..., 1 | 2]` real or complex signal, as the reference
//! evaluator computes it (`passes/src/eval/misc/signal.rs`): forward or inverse, one-sided
//! output, the inverse of a one-sided spectrum, a `dft_length` that truncates or zero-pads.
//!
//! A work item is one output bin `k` of one signal: it sums `sig[j] · tw[(j · k) mod n]` in
//! f64 over `j` ascending, with the reference's twiddle table (the same `cos`/`sin` values,
//! a compile-time constant of `n` pairs) and its per-term arithmetic (`a·c − b·s`,
//! `a·s + b·c`), skipping the zero-padded terms (which add an exact zero), then scales by
//! `1/n` (inverse) and rounds once. For the inverse of a one-sided spectrum, bins `n/2+1..n`
//! read the conjugate of bin `n − j`, as the reference rebuilds the Hermitian spectrum.
//!
//! `dft_length` and `axis` must be constants (or absent); declined otherwise, and for other
//! element types or shapes the reference refuses.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{buf, c64, for_range, index, sflags};
use super::{const_input, in_shape, input, out_shape};
use crate::codegen::kernel::{KernelCx, Lowered, Operand};

/// The largest transform length (the twiddle table has this many pairs).
const MAX_LEN: usize = 1 << 20;

/// A constant scalar integer input, `Some(None)` when absent, `None` when not a constant.
fn const_scalar(g: &Graph, node: NodeId, i: usize) -> Option<Option<i64>> {
    if input(g, node, i).is_none() {
        return Some(None);
    }
    match const_input(g, node, i)?.to_i64_vec().ok()?.as_slice() {
        [v] => Some(Some(*v)),
        _ => None,
    }
}

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let Op::Dft {
        inverse,
        onesided,
        axis,
    } = g.node(node).op
    else {
        return Ok(None);
    };
    let (inverse, onesided) = (inverse != 0, onesided != 0);
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    if !matches!(dt, DType::F32 | DType::F64) || g.node(node).outputs[0].ty.dtype != dt {
        return Ok(None);
    }
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    let rank = xs.len();
    if rank < 2 || !matches!(xs[rank - 1], 1 | 2) {
        return Ok(None);
    }
    let comps = xs[rank - 1];
    let (Some(len), Some(axis_in)) = (const_scalar(g, node, 1), const_scalar(g, node, 2)) else {
        return Ok(None);
    };
    let axis = axis_in.unwrap_or(axis);
    let r = rank as i64;
    let ax = if (-r..=-2).contains(&axis) {
        (axis + r) as usize
    } else if (0..r - 1).contains(&axis) {
        axis as usize
    } else {
        return Ok(None);
    };
    let m = xs[ax];
    let n = match len {
        Some(v) => match usize::try_from(v) {
            Ok(v) if v > 0 => v,
            _ => return Ok(None),
        },
        None if inverse && onesided => 2 * m.saturating_sub(1),
        None => m,
    };
    if n == 0 || n > MAX_LEN {
        return Ok(None);
    }
    let out_len = if !inverse && onesided { n / 2 + 1 } else { n };
    let out_comps = if inverse && onesided { 1 } else { 2 };
    let mut want = xs.clone();
    want[ax] = out_len;
    want[rank - 1] = out_comps;
    if ys != want {
        return Ok(None);
    }
    let pre: usize = xs[..ax].iter().product();
    let post: usize = xs[ax + 1..rank - 1].iter().product();
    let items = pre * out_len * post;
    if items == 0 {
        return Ok(Some(Lowered::default()));
    }
    // The reference's twiddles e^{∓2πi k/n}, as (cos, sin) pairs.
    let sign = if inverse { 1.0 } else { -1.0 };
    let table: Vec<u8> = (0..n)
        .flat_map(|k| {
            let a = sign * 2.0 * std::f64::consts::PI * k as f64 / n as f64;
            [a.cos(), a.sin()]
        })
        .flat_map(f64::to_le_bytes)
        .collect();
    let tw = cx.add_const("dft_twiddles", table)?;
    let scale = if inverse { 1.0 / n as f64 } else { 1.0 };
    let es = dt.size() as i64;
    let ety = if dt == DType::F64 {
        types::F64
    } else {
        types::F32
    };
    // Segments of j (ascending): (lo, hi, conjugate), reading sig[j] = x[j] (or conj x[n - j]).
    let segs: Vec<(usize, usize, bool)> = if inverse && onesided {
        let half = n / 2 + 1;
        vec![
            (0, half.min(m), false),
            ((n + 1).saturating_sub(m).max(half), n, true),
        ]
    } else {
        vec![(0, m.min(n), false)]
    };
    let lane = (post * comps) as i64 * es;
    let func = cx.define_kernel("dft", |b, p| {
        let xp = buf(b, p, 0);
        let yp = buf(b, p, 1);
        let twp = buf(b, p, 2);
        for_range(b, p.begin, p.end, |b, item| {
            let postv = c64(b, post as i64);
            let q = b.ins().urem(item, postv);
            let t = b.ins().udiv(item, postv);
            let lenv = c64(b, out_len as i64);
            let k = b.ins().urem(t, lenv);
            let pp = b.ins().udiv(t, lenv);
            // The signal's first element: x[pp, 0, q, 0].
            let row = b.ins().imul_imm_s(pp, (m * post) as i64);
            let row = b.ins().iadd(row, q);
            let xb = index(b, xp, row, comps as i64 * es);
            let sr = b.declare_var(types::F64);
            let si = b.declare_var(types::F64);
            let zero = b.ins().f64const(0.0);
            b.def_var(sr, zero);
            b.def_var(si, zero);
            for &(lo, hi, conj) in &segs {
                if lo >= hi {
                    continue;
                }
                // idx = (lo · k) mod n, then advanced by k per step.
                let idx = b.declare_var(types::I64);
                let l = b.ins().imul_imm_s(k, lo as i64);
                let nv = c64(b, n as i64);
                let i0 = b.ins().urem(l, nv);
                b.def_var(idx, i0);
                let (lov, hiv) = (c64(b, lo as i64), c64(b, hi as i64));
                for_range(b, lov, hiv, |b, j| {
                    let src = if conj {
                        let nv = c64(b, n as i64);
                        b.ins().isub(nv, j)
                    } else {
                        j
                    };
                    let at = index(b, xb, src, lane);
                    let a = load(b, at, 0, ety);
                    let bi = if comps == 2 {
                        let v = load(b, at, es as i32, ety);
                        Some(if conj { b.ins().fneg(v) } else { v })
                    } else {
                        None
                    };
                    let i = b.use_var(idx);
                    let ta = index(b, twp, i, 16);
                    let c = b.ins().load(types::F64, sflags(), ta, 0);
                    let s = b.ins().load(types::F64, sflags(), ta, 8);
                    // sr += a·c − b·s; si += a·s + b·c.
                    let ac = b.ins().fmul(a, c);
                    let as_ = b.ins().fmul(a, s);
                    let (tr, ti) = match bi {
                        Some(bv) => {
                            let bs = b.ins().fmul(bv, s);
                            let bc = b.ins().fmul(bv, c);
                            (b.ins().fsub(ac, bs), b.ins().fadd(as_, bc))
                        }
                        None => {
                            // b = 0: a·c − 0·s and a·s + 0·c, as the reference computes them.
                            let z = b.ins().f64const(0.0);
                            let zs = b.ins().fmul(z, s);
                            let zc = b.ins().fmul(z, c);
                            (b.ins().fsub(ac, zs), b.ins().fadd(as_, zc))
                        }
                    };
                    let cur = b.use_var(sr);
                    let v = b.ins().fadd(cur, tr);
                    b.def_var(sr, v);
                    let cur = b.use_var(si);
                    let v = b.ins().fadd(cur, ti);
                    b.def_var(si, v);
                    // idx = (idx + k) mod n (k < n).
                    let nx = b.ins().iadd(i, k);
                    let nv = c64(b, n as i64);
                    let wrap = b.ins().isub(nx, nv);
                    let over = b.ins().icmp(IntCC::SignedGreaterThanOrEqual, nx, nv);
                    let nx = b.ins().select(over, wrap, nx);
                    b.def_var(idx, nx);
                });
            }
            let yb = index(b, yp, item, out_comps as i64 * es);
            for (c, var) in [sr, si].into_iter().enumerate().take(out_comps) {
                let v = b.use_var(var);
                let v = if inverse {
                    let s = b.ins().f64const(scale);
                    b.ins().fmul(v, s)
                } else {
                    v
                };
                let v = if ety == types::F32 {
                    b.ins().fdemote(types::F32, v)
                } else {
                    v
                };
                b.ins().store(sflags(), v, yb, (c as i64 * es) as i32);
            }
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Output(0), Operand::Const(tw)],
        (items as u64, (4096 / n).max(1) as u64),
        "dft",
        0,
    )))
}

/// An element of type `ety` at `at + off`, as f64.
fn load(b: &mut FunctionBuilder, at: Value, off: i32, ety: cranelift_codegen::ir::Type) -> Value {
    let v = b.ins().load(ety, sflags(), at, off);
    if ety == types::F32 {
        b.ins().fpromote(types::F64, v)
    } else {
        v
    }
}
