//! Reductions: Reduce{Sum,Mean,Max,Min,Prod,L1,L2,SumSquare,LogSum,LogSumExp} over any set of
//! axes (absent, a constant `axes` input, or an i64 `axes` input read at run time; keepdims,
//! noop_with_empty_axes), and ArgMax/ArgMin (f32; keepdims, select_last_index) along any axis.
//!
//! The f32 fast path: Sum/Mean/Max/Min with known axes that form one contiguous run of dims
//! see the input as `[outer, d, inner]` with `d` the reduced extent. With `inner == 1` a
//! work item reduces one contiguous row (f32x4 then a tail); otherwise one output element
//! walks its strided lane. Everything else goes through [`general`], a scalar loop per output
//! element (f32 and f64, i32/i64 for the wrapping reductions and Max/Min, bool Max/Min; see
//! [`handles`]). Max/Min follow the reference: NaN is sticky, any NaN wins.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Type, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{buf, c64, for_range, index, sflags, unflatten};
use super::movement::{strided_launch, Strided};
use super::pool::{nan_max, reduce_run};
use super::{const_input, in_shape, input, norm_axis, out_shape, strides};
use crate::codegen::kernel::{KernelCx, Lowered, Operand};

#[derive(Clone, Copy, PartialEq)]
enum Red {
    Sum,
    Mean,
    Max,
    Min,
    Prod,
    L1,
    L2,
    SumSquare,
    LogSum,
    LogSumExp,
}

/// Whether [`general`] computes `red` on `dt` as the reference does: every reduction on f32
/// and f64; on i32/i64 the wrapping ones and Max/Min; Max/Min (any/all) on bool.
fn handles(red: Red, dt: DType) -> bool {
    match dt {
        DType::F32 | DType::F64 => true,
        DType::I32 | DType::I64 => matches!(
            red,
            Red::Sum | Red::Max | Red::Min | Red::Prod | Red::L1 | Red::SumSquare
        ),
        DType::Bool => matches!(red, Red::Max | Red::Min),
        _ => false,
    }
}

/// Where [`general`] finds the reduced axes.
enum Axes {
    /// Known at compile time: whether each axis is reduced.
    Static(Vec<bool>),
    /// Read at run time from operand 2, an i64 tensor of this many (possibly negative) axes;
    /// an axis out of range reduces nothing. Axes that disagree with the recorded output
    /// shape (the reference refuses them) give meaningless values but never an access out of
    /// bounds: every index is reduced modulo its dim.
    Runtime(usize),
}

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
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
        Op::ReduceProd {
            keepdims,
            noop_with_empty_axes,
        } => (Red::Prod, *keepdims, *noop_with_empty_axes),
        Op::ReduceL1 {
            keepdims,
            noop_with_empty_axes,
        } => (Red::L1, *keepdims, *noop_with_empty_axes),
        Op::ReduceL2 {
            keepdims,
            noop_with_empty_axes,
        } => (Red::L2, *keepdims, *noop_with_empty_axes),
        Op::ReduceSumSquare {
            keepdims,
            noop_with_empty_axes,
        } => (Red::SumSquare, *keepdims, *noop_with_empty_axes),
        Op::ReduceLogSum {
            keepdims,
            noop_with_empty_axes,
        } => (Red::LogSum, *keepdims, *noop_with_empty_axes),
        Op::ReduceLogSumExp {
            keepdims,
            noop_with_empty_axes,
        } => (Red::LogSumExp, *keepdims, *noop_with_empty_axes),
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
            if dt != DType::F32 || n.outputs[0].ty.dtype != DType::I64 {
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
    if n.outputs[0].ty.dtype != dt || !handles(red, dt) {
        return Ok(None);
    }
    // The axes: absent, a constant, or an i64 input read at run time (an empty one is known
    // to be empty from its shape).
    let given: Option<Vec<i64>> = match input(g, node, 1) {
        None => Some(vec![]),
        Some(a) => match const_input(g, node, 1) {
            Some(t) => match t.to_i64_vec() {
                Ok(v) => Some(v),
                Err(_) => return Ok(None),
            },
            None => match in_shape(g, node, 1).as_deref() {
                Some([0]) => Some(vec![]),
                Some([m]) if g.dtype(a) == DType::I64 && *m <= 64 => None,
                _ => return Ok(None),
            },
        },
    };
    let items: usize = ys.iter().product();
    let Some(given) = given else {
        // Run-time axes: the output shape must be one some set of axes gives.
        let m = in_shape(g, node, 1).map_or(0, |s| s[0]);
        let fits = if keepdims != 0 {
            ys.len() == r && (0..r).all(|k| ys[k] == xs[k] || ys[k] == 1)
        } else {
            ys.len() <= r
        };
        if !fits {
            return Ok(None);
        }
        return general(cx, &xs, &Axes::Runtime(m), items, red, dt).map(Some);
    };
    let mut axes: Vec<usize> = if given.is_empty() {
        if noop != 0 {
            // Identity.
            if ys != xs {
                return Ok(None);
            }
            let es = dt.size();
            let c = Strided {
                es,
                dims: vec![xs.iter().product()],
                src: vec![es as i64],
                dst: vec![es as i64],
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
    let mask: Vec<bool> = (0..r).map(|k| axes.contains(&k)).collect();
    let fast = dt == DType::F32 && matches!(red, Red::Sum | Red::Mean | Red::Max | Red::Min);
    // The reduced axes, ignoring 1-sized dims, as one contiguous run: the f32 fast path.
    let big: Vec<usize> = axes.iter().copied().filter(|&a| xs[a] != 1).collect();
    let (lo, hi) = match (big.first(), big.last()) {
        (Some(&lo), Some(&hi)) => (lo, hi + 1),
        _ => (r, r),
    };
    if !fast || (lo..hi).any(|k| xs[k] != 1 && !axes.contains(&k)) {
        return general(cx, &xs, &Axes::Static(mask), items, red, dt).map(Some);
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
    Ok(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Output(0)],
        (items as u64, (2048 / d.max(1)).max(1) as u64),
        "reduce",
        0,
    ))
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
    Ok(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Output(0)],
        (items as u64, (2048 / d.max(1)).max(1) as u64),
        if max { "arg_max" } else { "arg_min" },
        0,
    ))
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

/// Any reduction over any set of axes, one output element per work item: the item's kept
/// multi-index locates the start, then one nested loop per reduced dim (1-sized dims skipped)
/// walks the reduced elements. Floats accumulate in f64 as the reference does (Max/Min stay
/// in the element type, NaN sticky), integers wrap, bools are any (Max) / all (Min).
/// LogSum and LogSumExp compute in f64 like the reference, with the scalar f64 [`exp64`] and
/// [`log64`] (polynomials, no libm; a reduction is a scalar loop anyway).
fn general(
    cx: &mut KernelCx,
    xs: &[usize],
    axes: &Axes,
    items: usize,
    red: Red,
    dt: DType,
) -> Result<Lowered, String> {
    if items == 0 {
        return Ok(Lowered::default());
    }
    let r = xs.len();
    let es = dt.size();
    let xst: Vec<i64> = strides(xs).iter().map(|&s| (s * es) as i64).collect();
    let ety = match dt {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
        DType::I32 => types::I32,
        DType::I64 => types::I64,
        DType::Bool => types::I8,
        _ => return Err(format!("reduce: unexpected {dt}")),
    };
    let float = dt.is_float();
    // Max/Min keep the element type; other float reductions accumulate in f64.
    let extreme = matches!(red, Red::Max | Red::Min);
    let aty = if float && !extreme { types::F64 } else { ety };
    let func = cx.define_kernel("reduce_any", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        // Per dim (1-sized dims have neither): the extent in the output's index space and
        // the extent of the reduction loop.
        let mut keep_ext: Vec<Option<Value>> = vec![None; r];
        let mut red_ext: Vec<Option<Value>> = vec![None; r];
        match axes {
            Axes::Static(mask) => {
                for k in 0..r {
                    if xs[k] == 1 {
                        continue;
                    }
                    let e = c64(b, xs[k] as i64);
                    if mask[k] {
                        red_ext[k] = Some(e);
                    } else {
                        keep_ext[k] = Some(e);
                    }
                }
            }
            Axes::Runtime(m) => {
                let ap = buf(b, p, 2);
                let given: Vec<Value> = (0..*m)
                    .map(|j| {
                        let a = b.ins().load(types::I64, sflags(), ap, (8 * j) as i32);
                        let neg = b.ins().icmp_imm_s(IntCC::SignedLessThan, a, 0);
                        let wrapped = b.ins().iadd_imm_s(a, r as i64);
                        b.ins().select(neg, wrapped, a)
                    })
                    .collect();
                let one = c64(b, 1);
                for k in 0..r {
                    if xs[k] == 1 {
                        continue;
                    }
                    let mut hit = b.ins().iconst(types::I8, 0);
                    for &a in &given {
                        let eq = b.ins().icmp_imm_s(IntCC::Equal, a, k as i64);
                        hit = b.ins().bor(hit, eq);
                    }
                    // A 0-sized kept dim means no items; max(1) keeps the division defined
                    // when the run-time axes disagree with the output shape.
                    let e = c64(b, xs[k].max(1) as i64);
                    keep_ext[k] = Some(b.ins().select(hit, one, e));
                    let e = c64(b, xs[k] as i64);
                    red_ext[k] = Some(b.ins().select(hit, e, one));
                }
            }
        }
        let loops: Vec<(Value, i64)> = (0..r)
            .filter_map(|k| red_ext[k].map(|e| (e, xst[k])))
            .collect();
        let count = {
            let mut c = c64(b, 1);
            for &(e, _) in &loops {
                c = b.ins().imul(c, e);
            }
            c
        };
        for_range(b, p.begin, p.end, |b, it| {
            let mut rem = it;
            let mut base = x;
            for k in (0..r).rev() {
                if let Some(e) = keep_ext[k] {
                    let i = b.ins().urem(rem, e);
                    rem = b.ins().udiv(rem, e);
                    base = index(b, base, i, xst[k]);
                }
            }
            let v = if red == Red::LogSumExp {
                log_sum_exp(b, base, &loops, ety)
            } else {
                let acc = b.declare_var(aty);
                let i0 = init(b, red, aty, dt);
                b.def_var(acc, i0);
                nest(b, &loops, base, &mut |b, a| {
                    let v = b.ins().load(ety, sflags(), a, 0);
                    let v = if aty == types::F64 && ety == types::F32 {
                        b.ins().fpromote(types::F64, v)
                    } else {
                        v
                    };
                    let cur = b.use_var(acc);
                    let n = step(b, red, dt, cur, v);
                    b.def_var(acc, n);
                });
                let v = b.use_var(acc);
                match red {
                    Red::Mean => {
                        let n = b.ins().fcvt_from_sint(types::F64, count);
                        b.ins().fdiv(v, n)
                    }
                    Red::L2 => b.ins().sqrt(v),
                    Red::LogSum => log64(b, v),
                    _ => v,
                }
            };
            let v = if dt == DType::F32 && b.func.dfg.value_type(v) == types::F64 {
                b.ins().fdemote(types::F32, v)
            } else {
                v
            };
            let a = index(b, y, it, es as i64);
            b.ins().store(sflags(), v, a, 0);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    let mut operands = vec![Operand::Input(0), Operand::Output(0)];
    if matches!(axes, Axes::Runtime(_)) {
        operands.push(Operand::Input(1));
    }
    let per_item = xs.iter().product::<usize>() / items;
    Ok(Lowered::one(
        func,
        operands,
        (items as u64, (2048 / per_item.max(1)).max(1) as u64),
        "reduce",
        0,
    ))
}

/// `body(address)` for every element of the nested loops `dims` (extent, byte stride) from
/// `base`, outermost first.
fn nest(
    b: &mut FunctionBuilder,
    dims: &[(Value, i64)],
    base: Value,
    body: &mut dyn FnMut(&mut FunctionBuilder, Value),
) {
    match dims.split_first() {
        None => body(b, base),
        Some((&(hi, stride), rest)) => {
            let lo = c64(b, 0);
            for_range(b, lo, hi, |b, i| {
                let a = index(b, base, i, stride);
                nest(b, rest, a, body);
            });
        }
    }
}

/// The accumulator's start: 0, 1 for Prod, the lowest/highest value for Max/Min (false/true
/// for bool).
fn init(b: &mut FunctionBuilder, red: Red, aty: Type, dt: DType) -> Value {
    let (f, i): (f64, i64) = match (red, dt) {
        (Red::Prod, _) => (1.0, 1),
        (Red::Max, DType::Bool) => (0.0, 0),
        (Red::Min, DType::Bool) => (0.0, 1),
        (Red::Max, DType::I32) => (0.0, i32::MIN as u32 as i64),
        (Red::Min, DType::I32) => (0.0, i32::MAX as i64),
        (Red::Max, _) => (f64::NEG_INFINITY, i64::MIN),
        (Red::Min, _) => (f64::INFINITY, i64::MAX),
        _ => (0.0, 0),
    };
    match aty {
        types::F32 => b.ins().f32const(f as f32),
        types::F64 => b.ins().f64const(f),
        _ => b.ins().iconst(aty, i),
    }
}

/// One accumulation step of `red` (the accumulator `acc`, the element `v` in its type).
fn step(b: &mut FunctionBuilder, red: Red, dt: DType, acc: Value, v: Value) -> Value {
    if dt == DType::Bool {
        return if red == Red::Max {
            b.ins().bor(acc, v)
        } else {
            b.ins().band(acc, v)
        };
    }
    if dt.is_float() {
        return match red {
            Red::Max | Red::Min => nan_max(b, acc, v, red == Red::Max),
            Red::Prod => b.ins().fmul(acc, v),
            Red::L1 => {
                let a = b.ins().fabs(v);
                b.ins().fadd(acc, a)
            }
            Red::L2 | Red::SumSquare => {
                let s = b.ins().fmul(v, v);
                b.ins().fadd(acc, s)
            }
            _ => b.ins().fadd(acc, v),
        };
    }
    match red {
        Red::Max | Red::Min => {
            let cc = if red == Red::Max {
                IntCC::SignedGreaterThan
            } else {
                IntCC::SignedLessThan
            };
            let take = b.ins().icmp(cc, v, acc);
            b.ins().select(take, v, acc)
        }
        Red::Prod => b.ins().imul(acc, v),
        Red::L1 => {
            // wrapping_abs: the minimum stays itself.
            let neg = b.ins().icmp_imm_s(IntCC::SignedLessThan, v, 0);
            let n = b.ins().ineg(v);
            let a = b.ins().select(neg, n, v);
            b.ins().iadd(acc, a)
        }
        Red::SumSquare => {
            let s = b.ins().imul(v, v);
            b.ins().iadd(acc, s)
        }
        _ => b.ins().iadd(acc, v),
    }
}

/// LogSumExp as the reference computes it, in f64: `m` the largest non-NaN element (-inf if
/// none), then `m + log(sum exp(x - m))` when `m` is finite, else `log(sum exp(x))`, with the
/// scalar [`exp64`] and [`log64`].
fn log_sum_exp(b: &mut FunctionBuilder, base: Value, loops: &[(Value, i64)], ety: Type) -> Value {
    let load64 = |b: &mut FunctionBuilder, a: Value| {
        let v = b.ins().load(ety, sflags(), a, 0);
        if ety == types::F32 {
            b.ins().fpromote(types::F64, v)
        } else {
            v
        }
    };
    let m = b.declare_var(types::F64);
    let ninf = b.ins().f64const(f64::NEG_INFINITY);
    b.def_var(m, ninf);
    nest(b, loops, base, &mut |b, a| {
        let v = load64(b, a);
        let cur = b.use_var(m);
        let gt = b.ins().fcmp(FloatCC::GreaterThan, v, cur);
        let n = b.ins().select(gt, v, cur);
        b.def_var(m, n);
    });
    let mv = b.use_var(m);
    let mag = b.ins().fabs(mv);
    let inf = b.ins().f64const(f64::INFINITY);
    let finite = b.ins().fcmp(FloatCC::LessThan, mag, inf);
    let zero = b.ins().f64const(0.0);
    let shift = b.ins().select(finite, mv, zero);
    let s = b.declare_var(types::F64);
    b.def_var(s, zero);
    nest(b, loops, base, &mut |b, a| {
        let v = load64(b, a);
        let d = b.ins().fsub(v, shift);
        let e = exp64(b, d);
        let cur = b.use_var(s);
        let n = b.ins().fadd(cur, e);
        b.def_var(s, n);
    });
    let sv = b.use_var(s);
    let l = log64(b, sv);
    b.ins().fadd(shift, l)
}

/// ln 2 in two parts: `LN2_HI` has trailing zero bits so `n * LN2_HI` is exact for |n| < 2^11.
const LN2_HI: f64 = 6.931_471_803_691_238_2e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// `2^k` for an i64 `k` in [-1022, 1023], built from its exponent bits.
fn pow2_64(b: &mut FunctionBuilder, k: Value) -> Value {
    let e = b.ins().iadd_imm_s(k, 1023);
    let bits = b.ins().ishl_imm_s(e, 52);
    b.ins()
        .bitcast(types::F64, cranelift_codegen::ir::MemFlagsData::new(), bits)
}

/// Scalar f64 `e^x` without libm: `x = n ln2 + r`, |r| <= ln2/2, the Taylor polynomial of
/// `e^r` to degree 13 (truncation below 1e-17 relative), then `2^n` in two halves so that
/// subnormal results and overflow come out right. `exp(-inf) = 0`, `exp(inf) = inf`, NaN
/// stays NaN.
fn exp64(b: &mut FunctionBuilder, x: Value) -> Value {
    // Clamp (keeping NaN): below -746 the result rounds to 0, above 710 it overflows.
    let hi = b.ins().f64const(710.0);
    let lo = b.ins().f64const(-746.0);
    let over = b.ins().fcmp(FloatCC::GreaterThan, x, hi);
    let x = b.ins().select(over, hi, x);
    let under = b.ins().fcmp(FloatCC::LessThan, x, lo);
    let x = b.ins().select(under, lo, x);
    let log2e = b.ins().f64const(std::f64::consts::LOG2_E);
    let t = b.ins().fmul(x, log2e);
    // Rounded to nearest by adding and removing 1.5 * 2^52 (no `nearest`: it may be a
    // libcall on CPUs without SSE4.1).
    let magic = b.ins().f64const(6_755_399_441_055_744.0);
    let t = b.ins().fadd(t, magic);
    let nf = b.ins().fsub(t, magic);
    let c_hi = b.ins().f64const(LN2_HI);
    let c_lo = b.ins().f64const(LN2_LO);
    let a = b.ins().fmul(nf, c_hi);
    let r = b.ins().fsub(x, a);
    let a = b.ins().fmul(nf, c_lo);
    let r = b.ins().fsub(r, a);
    // Horner from the top: sum of r^k / k!, k = 0..=13.
    let inv_fact: Vec<f64> = (0..14)
        .scan(1.0f64, |f, k| {
            *f *= f64::from(k.max(1));
            Some(1.0 / *f)
        })
        .collect();
    let mut p = b.ins().f64const(inv_fact[13]);
    for &c in inv_fact[..13].iter().rev() {
        p = b.ins().fmul(p, r);
        let c = b.ins().f64const(c);
        p = b.ins().fadd(p, c);
    }
    let n = b.ins().fcvt_to_sint_sat(types::I64, nf);
    let n1 = b.ins().sshr_imm_s(n, 1);
    let n2 = b.ins().isub(n, n1);
    let s1 = pow2_64(b, n1);
    let s2 = pow2_64(b, n2);
    let p = b.ins().fmul(p, s1);
    b.ins().fmul(p, s2)
}

/// Scalar f64 natural logarithm without libm: `v = 2^e m` with m in [sqrt(1/2), sqrt(2)),
/// `log m = 2 atanh(f)`, `f = (m - 1)/(m + 1)` (|f| < 0.172, odd series to f^23), plus
/// `e ln2`. `log(±0) = -inf`, `log(v < 0) = NaN`, `log(inf) = inf`, NaN stays NaN,
/// subnormals scaled first.
fn log64(b: &mut FunctionBuilder, v: Value) -> Value {
    let flags = cranelift_codegen::ir::MemFlagsData::new;
    let tiny = b.ins().f64const(f64::MIN_POSITIVE);
    let sub = b.ins().fcmp(FloatCC::LessThan, v, tiny);
    let big = b.ins().f64const(2f64.powi(54));
    let scaled = b.ins().fmul(v, big);
    let w = b.ins().select(sub, scaled, v);
    let e0 = b.ins().iconst(types::I64, -54);
    let z = b.ins().iconst(types::I64, 0);
    let eadj = b.ins().select(sub, e0, z);
    let bits = b.ins().bitcast(types::I64, flags(), w);
    let ex = b.ins().ushr_imm_s(bits, 52);
    let ex = b.ins().iadd_imm_s(ex, -1023);
    let ex = b.ins().iadd(ex, eadj);
    let mbits = b.ins().band_imm_s(bits, 0x000f_ffff_ffff_ffff);
    let mbits = b.ins().bor_imm_s(mbits, 0x3ff0_0000_0000_0000);
    let m = b.ins().bitcast(types::F64, flags(), mbits);
    let sqrt2 = b.ins().f64const(std::f64::consts::SQRT_2);
    let high = b.ins().fcmp(FloatCC::GreaterThanOrEqual, m, sqrt2);
    let half = b.ins().f64const(0.5);
    let mh = b.ins().fmul(m, half);
    let m = b.ins().select(high, mh, m);
    let ex1 = b.ins().iadd_imm_s(ex, 1);
    let ex = b.ins().select(high, ex1, ex);
    let one = b.ins().f64const(1.0);
    let num = b.ins().fsub(m, one);
    let den = b.ins().fadd(m, one);
    let f = b.ins().fdiv(num, den);
    let f2 = b.ins().fmul(f, f);
    // 2 (f + f^3/3 + ... + f^23/23) = f * sum_k 2/(2k+1) f2^k.
    let mut s = b.ins().f64const(2.0 / 23.0);
    for k in (0..11).rev() {
        s = b.ins().fmul(s, f2);
        let c = b.ins().f64const(2.0 / (2 * k + 1) as f64);
        s = b.ins().fadd(s, c);
    }
    let series = b.ins().fmul(f, s);
    let ef = b.ins().fcvt_from_sint(types::F64, ex);
    let c_hi = b.ins().f64const(LN2_HI);
    let c_lo = b.ins().f64const(LN2_LO);
    let lo = b.ins().fmul(ef, c_lo);
    let lo = b.ins().fadd(lo, series);
    let hi = b.ins().fmul(ef, c_hi);
    let r = b.ins().fadd(hi, lo);
    // Special values.
    let zero = b.ins().f64const(0.0);
    let ninf = b.ins().f64const(f64::NEG_INFINITY);
    let pinf = b.ins().f64const(f64::INFINITY);
    let nan = b.ins().f64const(f64::NAN);
    let is_zero = b.ins().fcmp(FloatCC::Equal, v, zero);
    let r = b.ins().select(is_zero, ninf, r);
    let is_inf = b.ins().fcmp(FloatCC::Equal, v, pinf);
    let r = b.ins().select(is_inf, pinf, r);
    let bad = b.ins().fcmp(FloatCC::UnorderedOrLessThan, v, zero);
    b.ins().select(bad, nan, r)
}
