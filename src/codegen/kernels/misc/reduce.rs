//! Reductions over f32: ReduceSum, ReduceMean, ReduceMax, ReduceMin (constant `axes` input,
//! keepdims, noop_with_empty_axes) when the reduced axes are one contiguous run of dims, and
//! ArgMax/ArgMin (keepdims, select_last_index) along any axis.
//!
//! The input is seen as `[outer, d, inner]` with `d` the reduced extent. With `inner == 1` a
//! work item reduces one contiguous row (f32x4 then a tail); otherwise one output element
//! walks its strided lane. Max/Min follow the reference: NaN is sticky, any NaN wins.

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{buf, c64, for_range, index, sflags, unflatten};
use super::movement::{strided_launch, Strided};
use super::pool::{nan_max, reduce_run};
use super::{const_input, in_shape, input, norm_axis, out_shape};
use crate::codegen::kernel::{KernelCx, Launch, Lowered, Operand};

#[derive(Clone, Copy, PartialEq)]
enum Red {
    Sum,
    Mean,
    Max,
    Min,
}

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    if g.dtype(x) != DType::F32 {
        return Ok(None);
    }
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    let r = xs.len();
    let (red, keepdims, noop) = match &n.op {
        Op::ReduceSum {
            keepdims,
            noop_with_empty_axes,
        } => (Red::Sum, *keepdims, *noop_with_empty_axes),
        Op::ReduceMean {
            keepdims,
            noop_with_empty_axes,
        } => (Red::Mean, *keepdims, *noop_with_empty_axes),
        Op::ReduceMax {
            keepdims,
            noop_with_empty_axes,
        } => (Red::Max, *keepdims, *noop_with_empty_axes),
        Op::ReduceMin {
            keepdims,
            noop_with_empty_axes,
        } => (Red::Min, *keepdims, *noop_with_empty_axes),
        Op::ArgMax {
            axis,
            keepdims,
            select_last_index,
        }
        | Op::ArgMin {
            axis,
            keepdims,
            select_last_index,
        } => {
            if n.outputs[0].ty.dtype != DType::I64 {
                return Ok(None);
            }
            let Some(a) = norm_axis(*axis, r) else {
                return Ok(None);
            };
            if xs[a] == 0 {
                return Ok(None);
            }
            let mut want = xs.clone();
            if *keepdims != 0 {
                want[a] = 1;
            } else {
                want.remove(a);
            }
            if ys != want {
                return Ok(None);
            }
            let max = matches!(n.op, Op::ArgMax { .. });
            let outer: usize = xs[..a].iter().product();
            let inner: usize = xs[a + 1..].iter().product();
            return arg(cx, outer, xs[a], inner, max, *select_last_index != 0).map(Some);
        }
        _ => return Ok(None),
    };
    if n.outputs[0].ty.dtype != DType::F32 {
        return Ok(None);
    }
    let given: Vec<i64> = match input(g, node, 1) {
        None => vec![],
        Some(_) => match const_input(g, node, 1).map(|t| t.to_i64_vec()) {
            Some(Ok(v)) => v,
            _ => return Ok(None),
        },
    };
    let mut axes: Vec<usize> = if given.is_empty() {
        if noop != 0 {
            // Identity.
            if ys != xs {
                return Ok(None);
            }
            let c = Strided {
                es: 4,
                dims: vec![xs.iter().product()],
                src: vec![4],
                dst: vec![4],
                src_off: 0,
                dst_off: 0,
            };
            let launches =
                strided_launch(cx, &c, Operand::Input(0), Operand::Output(0), "reduce.noop")?
                    .into_iter()
                    .collect();
            return Ok(Some(Lowered {
                launches,
                scratch_bytes: 0,
            }));
        }
        (0..r).collect()
    } else {
        let v: Option<Vec<usize>> = given.iter().map(|&a| norm_axis(a, r)).collect();
        let Some(v) = v else { return Ok(None) };
        v
    };
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        return Ok(None);
    }
    let want: Vec<usize> = (0..r)
        .filter_map(|k| {
            if axes.contains(&k) {
                (keepdims != 0).then_some(1)
            } else {
                Some(xs[k])
            }
        })
        .collect();
    if ys != want {
        return Ok(None);
    }
    // The reduced axes, ignoring 1-sized dims, must be one contiguous run.
    let big: Vec<usize> = axes.iter().copied().filter(|&a| xs[a] != 1).collect();
    let (lo, hi) = match (big.first(), big.last()) {
        (Some(&lo), Some(&hi)) => (lo, hi + 1),
        _ => (r, r),
    };
    if (lo..hi).any(|k| xs[k] != 1 && !axes.contains(&k)) {
        return Ok(None);
    }
    let outer: usize = xs[..lo.min(r)].iter().product();
    let d: usize = xs[lo.min(r)..hi.min(r)].iter().product();
    let inner: usize = xs[hi.min(r)..].iter().product();
    reduce(cx, outer, d, inner, red).map(Some)
}

/// Reduce `[outer, d, inner]` over `d` into `[outer, inner]`.
fn reduce(
    cx: &mut KernelCx,
    outer: usize,
    d: usize,
    inner: usize,
    red: Red,
) -> Result<Lowered, String> {
    let items = outer * inner;
    if items == 0 {
        return Ok(Lowered::default());
    }
    let sum = matches!(red, Red::Sum | Red::Mean);
    let max = red == Red::Max;
    let func = cx.define_kernel("reduce", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        for_range(b, p.begin, p.end, |b, it| {
            let v = if inner == 1 {
                let xp = index(b, x, it, (d * 4) as i64);
                reduce_run(b, xp, d, sum, max)
            } else {
                let oi = unflatten(b, it, &[outer, inner]);
                let base = index(b, x, oi[0], (d * inner * 4) as i64);
                let base = index(b, base, oi[1], 4);
                let init = if sum {
                    0.0
                } else if max {
                    f32::NEG_INFINITY
                } else {
                    f32::INFINITY
                };
                let acc = b.declare_var(types::F32);
                let i0 = b.ins().f32const(init);
                b.def_var(acc, i0);
                let lo = c64(b, 0);
                let hi = c64(b, d as i64);
                for_range(b, lo, hi, |b, k| {
                    let a = index(b, base, k, (inner * 4) as i64);
                    let v = b.ins().load(types::F32, sflags(), a, 0);
                    let cur = b.use_var(acc);
                    let n = if sum {
                        b.ins().fadd(cur, v)
                    } else {
                        nan_max(b, cur, v, max)
                    };
                    b.def_var(acc, n);
                });
                b.use_var(acc)
            };
            let v = if red == Red::Mean {
                let n = b.ins().f32const(d as f32);
                b.ins().fdiv(v, n)
            } else {
                v
            };
            let a = index(b, y, it, 4);
            b.ins().store(sflags(), v, a, 0);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Lowered {
        launches: vec![Launch {
            func,
            operands: vec![Operand::Input(0), Operand::Output(0)],
            items: items as u64,
            grain: (2048 / d.max(1)).max(1) as u64,
            name: "reduce".into(),
        }],
        scratch_bytes: 0,
    })
}

/// ArgMax/ArgMin of `[outer, d, inner]` over `d` (the reference's order: NaN beats everything,
/// ties keep the first index, or the last with `last`).
fn arg(
    cx: &mut KernelCx,
    outer: usize,
    d: usize,
    inner: usize,
    max: bool,
    last: bool,
) -> Result<Lowered, String> {
    let items = outer * inner;
    if items == 0 {
        return Ok(Lowered::default());
    }
    let func = cx.define_kernel("arg", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        for_range(b, p.begin, p.end, |b, it| {
            let oi = unflatten(b, it, &[outer, inner]);
            let base = index(b, x, oi[0], (d * inner * 4) as i64);
            let base = index(b, base, oi[1], 4);
            let cur = b.declare_var(types::F32);
            let best = b.declare_var(types::I64);
            let v0 = b.ins().load(types::F32, sflags(), base, 0);
            b.def_var(cur, v0);
            let z = c64(b, 0);
            b.def_var(best, z);
            let lo = c64(b, 1);
            let hi = c64(b, d as i64);
            for_range(b, lo, hi, |b, k| {
                let a = index(b, base, k, (inner * 4) as i64);
                let v = b.ins().load(types::F32, sflags(), a, 0);
                let c = b.use_var(cur);
                let take = better(b, v, c, max, last);
                let nc = b.ins().select(take, v, c);
                b.def_var(cur, nc);
                let bi = b.use_var(best);
                let nb = b.ins().select(take, k, bi);
                b.def_var(best, nb);
            });
            let r = b.use_var(best);
            let a = index(b, y, it, 8);
            b.ins().store(sflags(), r, a, 0);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Lowered {
        launches: vec![Launch {
            func,
            operands: vec![Operand::Input(0), Operand::Output(0)],
            items: items as u64,
            grain: (2048 / d.max(1)).max(1) as u64,
            name: if max { "arg_max" } else { "arg_min" }.into(),
        }],
        scratch_bytes: 0,
    })
}

/// Whether `v` replaces the current best `c`: strictly better, a NaN over a number, or equal
/// (NaN equal to NaN) when `last`.
fn better(b: &mut FunctionBuilder, v: Value, c: Value, max: bool, last: bool) -> Value {
    let cc = if max {
        FloatCC::GreaterThan
    } else {
        FloatCC::LessThan
    };
    let gt = b.ins().fcmp(cc, v, c);
    let vnan = b.ins().fcmp(FloatCC::Unordered, v, v);
    let cnum = b.ins().fcmp(FloatCC::Ordered, c, c);
    let nan_wins = b.ins().band(vnan, cnum);
    let take = b.ins().bor(gt, nan_wins);
    if !last {
        return take;
    }
    let eq = b.ins().fcmp(FloatCC::Equal, v, c);
    let cnan = b.ins().fcmp(FloatCC::Unordered, c, c);
    let both_nan = b.ins().band(vnan, cnan);
    let eq = b.ins().bor(eq, both_nan);
    b.ins().bor(take, eq)
}
