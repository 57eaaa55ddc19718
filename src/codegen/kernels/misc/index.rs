//! Indexed reads and writes and the two losses built on them:
//!
//! - GatherElements and GatherND (any `batch_dims`): data of any fixed-size type, i32 or i64
//!   indices. A work item is one output element (GatherElements) or one index tuple's block
//!   (GatherND).
//! - ScatterElements and ScatterND with reduction none/add/mul/max/min: a copy of the data,
//!   then one sequential pass over the updates (later updates see earlier ones, duplicates
//!   combine in index order exactly like the reference). Reductions need f32, f64 or an
//!   integer type (integers wrap); `none` moves any fixed-size type.
//! - OneHot (indices i32/i64/f32/f64, values of any fixed-size type; the depth is the output
//!   shape's, checked against a constant depth input) and EyeLike.
//! - NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss on f32 `[N, C, d...]` scores with
//!   i32/i64 targets, optional f32 class weights, `ignore_index`, reductions none/sum/mean and
//!   the optional log-prob output. A work item is one `(n, d...)` position; sums run in target
//!   order in one item so that they round like the reference.
//!
//! The reference rejects an index or target outside its range; a kernel cannot, so it never
//! reads or writes out of bounds instead: a gather yields zeros, a scatter skips the update,
//! OneHot selects no class (as the reference does), a loss is NaN. Constant indices are
//! checked here and the node declined when one is out of range.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Type, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{add_off, buf, c64, copy_bytes, fill_bytes, for_n, for_range, index, int_type};
use super::ir::{sflags, CHUNK};
use super::movement::{rows_loop, strided_launch, Strided};
use super::{const_input, in_shape, input, norm_axis, out_shape, output_used, strides};
use crate::codegen::kernel::{KernelCx, Launch, Lowered, Operand};
use crate::codegen::kernels::vmath;

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    match &n.op {
        Op::GatherElements { axis } => gather_elements(cx, g, node, *axis),
        Op::ScatterElements { axis, reduction } => scatter_elements(cx, g, node, *axis, reduction),
        Op::GatherND { batch_dims } => gather_nd(cx, g, node, *batch_dims),
        Op::ScatterND { reduction } => scatter_nd(cx, g, node, reduction),
        Op::OneHot { axis } => one_hot(cx, g, node, *axis),
        Op::EyeLike { k, .. } => eye_like(cx, g, node, *k),
        Op::NegativeLogLikelihoodLoss {
            ignore_index,
            reduction,
        } => loss(cx, g, node, *ignore_index, reduction, false),
        Op::SoftmaxCrossEntropyLoss {
            ignore_index,
            reduction,
        } => loss(cx, g, node, *ignore_index, reduction, true),
        _ => Ok(None),
    }
}

/// Work items of an element-wise gather handed out together.
const GRAIN: u64 = 1024;

/// The element size of input slot `i` when it is a fixed-size (non-string) type.
fn elem_size(g: &Graph, node: NodeId, i: usize) -> Option<usize> {
    let dt = g.dtype(input(g, node, i)?);
    (dt != DType::String && int_type(dt.size()).is_some()).then(|| dt.size())
}

/// The size of the i32 or i64 index input at slot `i`, or `None` for another type or when it
/// is a constant with an entry outside `[-d, d)` for its position's dimension `dim(k)` (k the
/// entry's flat position).
fn index_size(g: &Graph, node: NodeId, i: usize, dim: impl Fn(usize) -> usize) -> Option<i64> {
    let size = match g.dtype(input(g, node, i)?) {
        DType::I32 => 4,
        DType::I64 => 8,
        _ => return None,
    };
    if let Some(t) = const_input(g, node, i) {
        let v = t.to_i64_vec().ok()?;
        let ok = v.iter().enumerate().all(|(k, &x)| {
            let d = dim(k) as i64;
            (-d..d).contains(&x)
        });
        if !ok {
            return None;
        }
    }
    Some(size)
}

/// Loads the index at `addr` (i32 sign-extended, or i64).
fn load_index(b: &mut FunctionBuilder, addr: Value, isz: i64) -> Value {
    if isz == 8 {
        b.ins().load(types::I64, sflags(), addr, 0)
    } else {
        let v = b.ins().load(types::I32, sflags(), addr, 0);
        b.ins().sextend(types::I64, v)
    }
}

/// `(i + d if i < 0 else i, whether that is in 0..d)`.
fn wrap_index(b: &mut FunctionBuilder, i: Value, d: usize) -> (Value, Value) {
    let neg = b.ins().icmp_imm_s(IntCC::SignedLessThan, i, 0);
    let wrapped = b.ins().iadd_imm_s(i, d as i64);
    let i = b.ins().select(neg, wrapped, i);
    let ok = b.ins().icmp_imm_s(IntCC::UnsignedLessThan, i, d as i64);
    (i, ok)
}

/// `if cond { then(b) }`, leaving the builder after it.
fn if_then(b: &mut FunctionBuilder, cond: Value, then: impl FnOnce(&mut FunctionBuilder)) {
    let yes = b.create_block();
    let done = b.create_block();
    b.ins().brif(cond, yes, &[], done, &[]);
    b.switch_to_block(yes);
    then(b);
    b.ins().jump(done, &[]);
    b.switch_to_block(done);
}

/// `if cond { then(b) } else { other(b) }`, leaving the builder after it.
fn if_else(
    b: &mut FunctionBuilder,
    cond: Value,
    then: impl FnOnce(&mut FunctionBuilder),
    other: impl FnOnce(&mut FunctionBuilder),
) {
    let yes = b.create_block();
    let no = b.create_block();
    let done = b.create_block();
    b.ins().brif(cond, yes, &[], no, &[]);
    b.switch_to_block(yes);
    then(b);
    b.ins().jump(done, &[]);
    b.switch_to_block(no);
    other(b);
    b.ins().jump(done, &[]);
    b.switch_to_block(done);
}

/// Byte strides of a shape for elements of `es` bytes.
fn byte_strides(shape: &[usize], es: usize) -> Vec<i64> {
    strides(shape).iter().map(|&s| (s * es) as i64).collect()
}

/// GatherElements: `out[ix] = data[ix with ix[axis] = indices[ix]]`.
fn gather_elements(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    axis: i64,
) -> Result<Option<Lowered>, String> {
    let (Some(xs), Some(is), Some(ys), Some(es)) = (
        in_shape(g, node, 0),
        in_shape(g, node, 1),
        out_shape(g, node, 0),
        elem_size(g, node, 0),
    ) else {
        return Ok(None);
    };
    let r = xs.len();
    let Some(ax) = norm_axis(axis, r) else {
        return Ok(None);
    };
    if g.node(node).outputs[0].ty.dtype != g.dtype(input(g, node, 0).expect("present"))
        || is.len() != r
        || ys != is
        || (0..r).any(|k| k != ax && is[k] > xs[k])
    {
        return Ok(None);
    }
    let d = xs[ax];
    let Some(isz) = index_size(g, node, 1, |_| d) else {
        return Ok(None);
    };
    let items: usize = is.iter().product();
    if items == 0 {
        return Ok(Some(Lowered::default()));
    }
    if d == 0 {
        return Ok(None);
    }
    let xst = byte_strides(&xs, es);
    let mut src = xst.clone();
    src[ax] = 0;
    let flat: Vec<i64> = strides(&is).iter().map(|&s| s as i64).collect();
    let ety = int_type(es).expect("checked");
    let func = cx.define_kernel("gather_elements", |b, p| {
        let data = buf(b, p, 0);
        let idx = buf(b, p, 1);
        let out = buf(b, p, 2);
        rows_loop(b, p.begin, p.end, &is, &src, &flat, |b, so, k| {
            let ia = index(b, idx, k, isz);
            let i = load_index(b, ia, isz);
            let (i, ok) = wrap_index(b, i, d);
            // An out-of-range index reads element 0 and yields a zero.
            let zero = c64(b, 0);
            let i = b.ins().select(ok, i, zero);
            let sp = b.ins().iadd(data, so);
            let sp = index(b, sp, i, xst[ax]);
            let v = b.ins().load(ety, sflags(), sp, 0);
            let z = b.ins().iconst(ety, 0);
            let v = b.ins().select(ok, v, z);
            let dp = index(b, out, k, es as i64);
            b.ins().store(sflags(), v, dp, 0);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Input(1), Operand::Output(0)],
        (items as u64, GRAIN),
        "gather_elements",
        0,
    )))
}

/// How a scatter combines an update `u` with the value `a` already there.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reduction {
    None,
    Add,
    Mul,
    Max,
    Min,
}

/// The reduction for `name` on data of type `dt`, or `None` when not handled.
fn reduction_for(name: &str, dt: DType) -> Option<Reduction> {
    let r = match name {
        "none" => return Some(Reduction::None),
        "add" => Reduction::Add,
        "mul" => Reduction::Mul,
        "max" => Reduction::Max,
        "min" => Reduction::Min,
        _ => return None,
    };
    (matches!(dt, DType::F32 | DType::F64) || dt.is_int()).then_some(r)
}

/// `combine(a, u)` for elements of `dt` (the reference's: wrapping integer sums and products,
/// `u > a ? u : a` for max and `u < a ? u : a` for min).
fn combine(b: &mut FunctionBuilder, red: Reduction, dt: DType, a: Value, u: Value) -> Value {
    let float = matches!(dt, DType::F32 | DType::F64);
    match red {
        Reduction::None => u,
        Reduction::Add if float => b.ins().fadd(a, u),
        Reduction::Add => b.ins().iadd(a, u),
        Reduction::Mul if float => b.ins().fmul(a, u),
        Reduction::Mul => b.ins().imul(a, u),
        Reduction::Max | Reduction::Min => {
            let take = if float {
                let cc = if red == Reduction::Max {
                    FloatCC::GreaterThan
                } else {
                    FloatCC::LessThan
                };
                b.ins().fcmp(cc, u, a)
            } else {
                let cc = match (red == Reduction::Max, dt.is_signed()) {
                    (true, true) => IntCC::SignedGreaterThan,
                    (true, false) => IntCC::UnsignedGreaterThan,
                    (false, true) => IntCC::SignedLessThan,
                    (false, false) => IntCC::UnsignedLessThan,
                };
                b.ins().icmp(cc, u, a)
            };
            b.ins().select(take, u, a)
        }
    }
}

/// The Cranelift type elements of `dt` are loaded as for combining.
fn value_type(dt: DType) -> Type {
    match dt {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
        _ => int_type(dt.size()).expect("fixed-size types only"),
    }
}

/// The launch copying input 0 (`bytes` long) to output 0, if any.
fn copy_data_launch(cx: &mut KernelCx, bytes: usize, es: usize) -> Result<Option<Launch>, String> {
    let n = bytes / es;
    let c = Strided {
        es,
        dims: vec![n],
        src: vec![es as i64],
        dst: vec![es as i64],
        src_off: 0,
        dst_off: 0,
    };
    strided_launch(
        cx,
        &c,
        Operand::Input(0),
        Operand::Output(0),
        "scatter.copy",
    )
}

/// The common checks of both scatters: data, updates and output of one fixed-size type, the
/// output shaped like the data. Returns (data shape, element type, reduction).
fn scatter_common(
    g: &Graph,
    node: NodeId,
    reduction: &str,
) -> Option<(Vec<usize>, DType, Reduction)> {
    let xs = in_shape(g, node, 0)?;
    let dt = g.dtype(input(g, node, 0)?);
    elem_size(g, node, 0)?;
    if g.dtype(input(g, node, 2)?) != dt
        || g.node(node).outputs[0].ty.dtype != dt
        || out_shape(g, node, 0)? != xs
    {
        return None;
    }
    let red = reduction_for(reduction, dt)?;
    Some((xs, dt, red))
}

/// ScatterElements: GatherElements' addressing, writing (or combining) the updates in order.
fn scatter_elements(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    axis: i64,
    reduction: &str,
) -> Result<Option<Lowered>, String> {
    let Some((xs, dt, red)) = scatter_common(g, node, reduction) else {
        return Ok(None);
    };
    let (Some(is), Some(us)) = (in_shape(g, node, 1), in_shape(g, node, 2)) else {
        return Ok(None);
    };
    let r = xs.len();
    let Some(ax) = norm_axis(axis, r) else {
        return Ok(None);
    };
    if r == 0 || us != is || is.len() != r || (0..r).any(|k| k != ax && is[k] > xs[k]) {
        return Ok(None);
    }
    let d = xs[ax];
    let Some(isz) = index_size(g, node, 1, |_| d) else {
        return Ok(None);
    };
    let es = dt.size();
    let total = xs.iter().product::<usize>() * es;
    let n: usize = is.iter().product();
    let mut launches: Vec<Launch> = copy_data_launch(cx, total, es)?.into_iter().collect();
    if n > 0 {
        if d == 0 {
            return Ok(None);
        }
        let xst = byte_strides(&xs, es);
        let mut dst = xst.clone();
        dst[ax] = 0;
        let flat: Vec<i64> = strides(&is).iter().map(|&s| s as i64).collect();
        let vty = value_type(dt);
        let func = cx.define_kernel("scatter_elements", |b, p| {
            let idx = buf(b, p, 0);
            let upd = buf(b, p, 1);
            let out = buf(b, p, 2);
            // One item does the whole pass, in index order.
            for_range(b, p.begin, p.end, |b, _| {
                let lo = c64(b, 0);
                let hi = c64(b, n as i64);
                rows_loop(b, lo, hi, &is, &dst, &flat, |b, doff, k| {
                    let ia = index(b, idx, k, isz);
                    let i = load_index(b, ia, isz);
                    let (i, ok) = wrap_index(b, i, d);
                    if_then(b, ok, |b| {
                        let up = index(b, upd, k, es as i64);
                        let u = b.ins().load(vty, sflags(), up, 0);
                        let dp = b.ins().iadd(out, doff);
                        let dp = index(b, dp, i, xst[ax]);
                        let v = if red == Reduction::None {
                            u
                        } else {
                            let a = b.ins().load(vty, sflags(), dp, 0);
                            combine(b, red, dt, a, u)
                        };
                        b.ins().store(sflags(), v, dp, 0);
                    });
                });
            });
            b.ins().return_(&[]);
            Ok(())
        })?;
        launches.push(Launch {
            func,
            operands: vec![Operand::Input(1), Operand::Input(2), Operand::Output(0)],
            items: 1,
            grain: 1,
            name: "scatter_elements".into(),
        });
    }
    Ok(Some(Lowered {
        launches,
        scratch_bytes: 0,
    }))
}

/// The addressing GatherND and ScatterND share.
struct NdPlan {
    /// Index tuples.
    tuples: usize,
    /// Entries per tuple.
    m: usize,
    /// Elements each tuple addresses (a contiguous block).
    inner: usize,
    /// Tuples per batch.
    per_batch: usize,
    /// Elements per batch of the data.
    batch_stride: usize,
    /// For entry `j` of a tuple: the dimension it indexes and that dimension's element stride.
    dims: Vec<(usize, usize)>,
    /// The index element size.
    isz: i64,
}

/// The plan for data shape `xs`, the index input at slot 1 and `batch_dims`, with the shape
/// of the tuple grid; `None` when the shapes do not fit (the reference's errors).
fn nd_plan(g: &Graph, node: NodeId, xs: &[usize], bd: i64) -> Option<(NdPlan, Vec<usize>)> {
    let is = in_shape(g, node, 1)?;
    let bd = usize::try_from(bd).ok()?;
    let q = is.len();
    let m = *is.last()?;
    let r = xs.len();
    if bd >= q || bd + m > r || is[..bd] != xs[..bd] {
        return None;
    }
    let st = strides(xs);
    let dims: Vec<(usize, usize)> = (0..m).map(|j| (xs[bd + j], st[bd + j])).collect();
    let isz = index_size(g, node, 1, |k| dims[k % m.max(1)].0)?;
    let grid = is[..q - 1].to_vec();
    let plan = NdPlan {
        tuples: grid.iter().product(),
        m,
        inner: xs[bd + m..].iter().product(),
        per_batch: is[bd..q - 1].iter().product(),
        batch_stride: xs[bd..].iter().product(),
        dims,
        isz,
    };
    Some((plan, grid))
}

/// For tuple `t`: the element offset of its block in the data and whether all its entries are
/// in range (the offset is then 0).
fn nd_offset(b: &mut FunctionBuilder, plan: &NdPlan, idx: Value, t: Value) -> (Value, Value) {
    let batch = if plan.per_batch > 1 {
        let pb = c64(b, plan.per_batch as i64);
        b.ins().udiv(t, pb)
    } else {
        t
    };
    let mut off = b.ins().imul_imm_s(batch, plan.batch_stride as i64);
    let mut all = b.ins().iconst(types::I8, 1);
    let tp = index(b, idx, t, plan.isz * plan.m as i64);
    for (j, &(d, s)) in plan.dims.iter().enumerate() {
        let a = add_off(b, tp, plan.isz * j as i64);
        let i = load_index(b, a, plan.isz);
        let (i, ok) = wrap_index(b, i, d);
        let o = b.ins().imul_imm_s(i, s as i64);
        off = b.ins().iadd(off, o);
        all = b.ins().band(all, ok);
    }
    let zero = c64(b, 0);
    let off = b.ins().select(all, off, zero);
    (off, all)
}

/// GatherND: the data block addressed by each index tuple.
fn gather_nd(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    batch_dims: i64,
) -> Result<Option<Lowered>, String> {
    let (Some(xs), Some(ys), Some(es)) = (
        in_shape(g, node, 0),
        out_shape(g, node, 0),
        elem_size(g, node, 0),
    ) else {
        return Ok(None);
    };
    if g.node(node).outputs[0].ty.dtype != g.dtype(input(g, node, 0).expect("present")) {
        return Ok(None);
    }
    let Some((plan, grid)) = nd_plan(g, node, &xs, batch_dims) else {
        return Ok(None);
    };
    let bd = batch_dims as usize;
    let want: Vec<usize> = grid.iter().chain(&xs[bd + plan.m..]).copied().collect();
    if want != ys {
        return Ok(None);
    }
    if plan.tuples == 0 || plan.inner == 0 {
        return Ok(Some(Lowered::default()));
    }
    let block = plan.inner * es;
    let tuples = plan.tuples;
    let func = cx.define_kernel("gather_nd", |b, p| {
        let data = buf(b, p, 0);
        let idx = buf(b, p, 1);
        let out = buf(b, p, 2);
        for_range(b, p.begin, p.end, |b, t| {
            let (off, ok) = nd_offset(b, &plan, idx, t);
            let dp = index(b, out, t, block as i64);
            if_else(
                b,
                ok,
                |b| {
                    let sp = index(b, data, off, es as i64);
                    copy_bytes(b, sp, dp, block);
                },
                |b| fill_bytes(b, dp, block, es, 0),
            );
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Input(1), Operand::Output(0)],
        (tuples as u64, (CHUNK / block).max(1) as u64),
        "gather_nd",
        0,
    )))
}

/// ScatterND: GatherND's addressing (no batch dims), writing (or combining) update blocks in
/// order.
fn scatter_nd(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    reduction: &str,
) -> Result<Option<Lowered>, String> {
    let Some((xs, dt, red)) = scatter_common(g, node, reduction) else {
        return Ok(None);
    };
    let Some(us) = in_shape(g, node, 2) else {
        return Ok(None);
    };
    let Some((plan, grid)) = nd_plan(g, node, &xs, 0) else {
        return Ok(None);
    };
    let want: Vec<usize> = grid.iter().chain(&xs[plan.m..]).copied().collect();
    if want != us {
        return Ok(None);
    }
    let es = dt.size();
    let total = xs.iter().product::<usize>() * es;
    let mut launches: Vec<Launch> = copy_data_launch(cx, total, es)?.into_iter().collect();
    if plan.tuples > 0 && plan.inner > 0 {
        let block = plan.inner * es;
        let (tuples, inner) = (plan.tuples, plan.inner);
        let vty = value_type(dt);
        let func = cx.define_kernel("scatter_nd", |b, p| {
            let idx = buf(b, p, 0);
            let upd = buf(b, p, 1);
            let out = buf(b, p, 2);
            for_range(b, p.begin, p.end, |b, _| {
                let lo = c64(b, 0);
                let hi = c64(b, tuples as i64);
                for_range(b, lo, hi, |b, t| {
                    let (off, ok) = nd_offset(b, &plan, idx, t);
                    if_then(b, ok, |b| {
                        let sp = index(b, upd, t, block as i64);
                        let dp = index(b, out, off, es as i64);
                        if red == Reduction::None {
                            copy_bytes(b, sp, dp, block);
                        } else {
                            for_n(b, inner, 4, |b, j| {
                                let s = index(b, sp, j, es as i64);
                                let d = index(b, dp, j, es as i64);
                                let u = b.ins().load(vty, sflags(), s, 0);
                                let a = b.ins().load(vty, sflags(), d, 0);
                                let v = combine(b, red, dt, a, u);
                                b.ins().store(sflags(), v, d, 0);
                            });
                        }
                    });
                });
            });
            b.ins().return_(&[]);
            Ok(())
        })?;
        launches.push(Launch {
            func,
            operands: vec![Operand::Input(1), Operand::Input(2), Operand::Output(0)],
            items: 1,
            grain: 1,
            name: "scatter_nd".into(),
        });
    }
    Ok(Some(Lowered {
        launches,
        scratch_bytes: 0,
    }))
}

/// A launch storing element 0 of input `from` (`es` bytes) into every element of output 0.
fn splat_launch(
    cx: &mut KernelCx,
    elems: usize,
    es: usize,
    from: usize,
    name: &str,
) -> Result<Launch, String> {
    let ety = int_type(es).ok_or("element size")?;
    let func = cx.define_kernel(name, |b, p| {
        let src = buf(b, p, 0);
        let out = buf(b, p, 1);
        let v = b.ins().load(ety, sflags(), src, 0);
        for_range(b, p.begin, p.end, |b, i| {
            let d = index(b, out, i, es as i64);
            b.ins().store(sflags(), v, d, 0);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Launch {
        func,
        operands: vec![Operand::Input(from), Operand::Output(0)],
        items: elems as u64,
        grain: (CHUNK / es) as u64,
        name: name.into(),
    })
}

/// OneHot: `values[0]` everywhere, then `values[1]` at each index's class.
fn one_hot(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    axis: i64,
) -> Result<Option<Lowered>, String> {
    let (Some(is), Some(ys), Some(vs), Some(es)) = (
        in_shape(g, node, 0),
        out_shape(g, node, 0),
        in_shape(g, node, 2),
        elem_size(g, node, 2),
    ) else {
        return Ok(None);
    };
    let idt = g.dtype(input(g, node, 0).expect("present"));
    let isz: i64 = match idt {
        DType::I32 | DType::F32 => 4,
        DType::I64 | DType::F64 => 8,
        _ => return Ok(None),
    };
    let vdt = g.dtype(input(g, node, 2).expect("present"));
    if g.node(node).outputs[0].ty.dtype != vdt || vs.iter().product::<usize>() != 2 {
        return Ok(None);
    }
    let r = is.len() as i64;
    let ax = if axis < 0 { axis + r + 1 } else { axis };
    if !(0..=r).contains(&ax) || ys.len() != is.len() + 1 {
        return Ok(None);
    }
    let ax = ax as usize;
    let depth = ys[ax];
    let mut want = is.clone();
    want.insert(ax, depth);
    if want != ys {
        return Ok(None);
    }
    // The depth must be the output's (a run-time depth is taken to agree with the shape).
    match const_input(g, node, 1) {
        Some(t) if t.len() == 1 => {
            if t.to_f64_vec()[0] as i64 != depth as i64 {
                return Ok(None);
            }
        }
        Some(_) => return Ok(None),
        None if input(g, node, 1).is_none() => return Ok(None),
        None => {}
    }
    let total: usize = ys.iter().product();
    if total == 0 {
        return Ok(Some(Lowered::default()));
    }
    let outer: usize = is[..ax].iter().product();
    let inner: usize = is[ax..].iter().product();
    let fill = splat_launch(cx, total, es, 2, "one_hot.fill")?;
    let ety = int_type(es).ok_or("element size")?;
    let func = cx.define_kernel("one_hot", |b, p| {
        let idx = buf(b, p, 0);
        let vals = buf(b, p, 1);
        let out = buf(b, p, 2);
        let on = b.ins().load(ety, sflags(), vals, es as i32);
        let src = [(inner as i64) * isz, isz];
        let dst = [(depth * inner * es) as i64, es as i64];
        rows_loop(
            b,
            p.begin,
            p.end,
            &[outer, inner],
            &src,
            &dst,
            |b, io, dof| {
                let ia = b.ins().iadd(idx, io);
                // The reference's `as i64` of the index's f64 value: truncation, NaN gives 0.
                let k = match idt {
                    DType::F32 | DType::F64 => {
                        let fty = if idt == DType::F32 {
                            types::F32
                        } else {
                            types::F64
                        };
                        let v = b.ins().load(fty, sflags(), ia, 0);
                        b.ins().fcvt_to_sint_sat(types::I64, v)
                    }
                    _ => load_index(b, ia, isz),
                };
                let (k, ok) = wrap_index(b, k, depth);
                if_then(b, ok, |b| {
                    let dp = b.ins().iadd(out, dof);
                    let dp = index(b, dp, k, (inner * es) as i64);
                    b.ins().store(sflags(), on, dp, 0);
                });
            },
        );
        b.ins().return_(&[]);
        Ok(())
    })?;
    let mut launches = vec![fill];
    if outer * inner > 0 {
        launches.push(Launch {
            func,
            operands: vec![Operand::Input(0), Operand::Input(2), Operand::Output(0)],
            items: (outer * inner) as u64,
            grain: GRAIN,
            name: "one_hot".into(),
        });
    }
    Ok(Some(Lowered {
        launches,
        scratch_bytes: 0,
    }))
}

/// The bit pattern of 1 in `dt` (the reference's `from_i64(1)`), for fixed-size numbers and
/// bool.
fn one_bits(dt: DType) -> Option<u64> {
    Some(match dt {
        DType::F32 => 1f32.to_bits() as u64,
        DType::F64 => 1f64.to_bits(),
        DType::F16 => 0x3c00,
        DType::BF16 => 0x3f80,
        DType::String => return None,
        _ => 1,
    })
}

/// EyeLike: a row of zeros with a 1 at column `row + k` (when inside the row).
fn eye_like(cx: &mut KernelCx, g: &Graph, node: NodeId, k: i64) -> Result<Option<Lowered>, String> {
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    let dt = g.node(node).outputs[0].ty.dtype;
    let Some(one) = one_bits(dt) else {
        return Ok(None);
    };
    if xs.len() != 2 || ys != xs {
        return Ok(None);
    }
    let (rows, cols) = (xs[0], xs[1]);
    if rows * cols == 0 {
        return Ok(Some(Lowered::default()));
    }
    let es = dt.size();
    let ety = int_type(es).ok_or("element size")?;
    let row = cols * es;
    let func = cx.define_kernel("eye_like", |b, p| {
        let out = buf(b, p, 0);
        for_range(b, p.begin, p.end, |b, i| {
            let dp = index(b, out, i, row as i64);
            fill_bytes(b, dp, row, es, 0);
            let c = b.ins().iadd_imm_s(i, k);
            let inside = b.ins().icmp_imm_s(IntCC::UnsignedLessThan, c, cols as i64);
            if_then(b, inside, |b| {
                let a = index(b, dp, c, es as i64);
                let v = b.ins().iconst(ety, one as i64);
                b.ins().store(sflags(), v, a, 0);
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![Operand::Output(0)],
        (rows as u64, (CHUNK / row).max(1) as u64),
        "eye_like",
        0,
    )))
}

/// NegativeLogLikelihoodLoss (`softmax` false) or SoftmaxCrossEntropyLoss (`softmax` true).
///
/// Launch 1, one item per position `(n, d)` of the target: for SCE the log-softmax of the
/// position's lane of C scores (max-shifted like the reference: the largest non-NaN score, 0
/// when it is infinite; exp and log by `vmath`), written to the log-prob output when used;
/// then the loss `-x[n, t, d] * w[t]` (0 when `t` is the ignored index, NaN when `t` is
/// outside `0..C`) and its weight. With reduction none the loss is the output, else both go
/// to scratch and launch 2 (one item) sums them in target order: `sum` or `sum / weights`.
fn loss(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    ignore_index: Option<i64>,
    reduction: &str,
    softmax: bool,
) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let (Some(xs), Some(ts), Some(ys)) = (
        in_shape(g, node, 0),
        in_shape(g, node, 1),
        out_shape(g, node, 0),
    ) else {
        return Ok(None);
    };
    let is_f32 = |i: usize| input(g, node, i).map(|v| g.dtype(v)) == Some(DType::F32);
    if !is_f32(0) || n.outputs.iter().any(|o| o.ty.dtype != DType::F32) {
        return Ok(None);
    }
    let tsz: i64 = match g.dtype(input(g, node, 1).expect("present")) {
        DType::I32 => 4,
        DType::I64 => 8,
        _ => return Ok(None),
    };
    if xs.len() < 2 || xs[1] == 0 {
        return Ok(None);
    }
    let (batch, classes) = (xs[0], xs[1]);
    let inner: usize = xs[2..].iter().product();
    let want: Vec<usize> = std::iter::once(batch)
        .chain(xs[2..].iter().copied())
        .collect();
    if ts != want {
        return Ok(None);
    }
    let weighted = input(g, node, 2).is_some();
    if weighted && (!is_f32(2) || in_shape(g, node, 2) != Some(vec![classes])) {
        return Ok(None);
    }
    let reduce = match reduction {
        "none" => false,
        "sum" | "mean" => true,
        _ => return Ok(None),
    };
    let mean = reduction == "mean";
    if (reduce && !ys.is_empty()) || (!reduce && ys != ts) {
        return Ok(None);
    }
    let log_prob = softmax && n.outputs.len() > 1 && output_used(g, node, 1);
    if log_prob && out_shape(g, node, 1) != Some(xs.clone()) {
        return Ok(None);
    }
    let max_outputs = if softmax { 2 } else { 1 };
    if n.outputs.len() > max_outputs {
        return Ok(None);
    }
    let lanes = batch * inner;
    // Operands: x, target, [weight], [log_prob], losses (output or scratch).
    let mut operands = vec![Operand::Input(0), Operand::Input(1)];
    if weighted {
        operands.push(Operand::Input(2));
    }
    if log_prob {
        operands.push(Operand::Output(1));
    }
    operands.push(if reduce {
        Operand::Scratch(0)
    } else {
        Operand::Output(0)
    });
    let func = cx.define_kernel(if softmax { "sce" } else { "nll" }, |b, p| {
        let x = buf(b, p, 0);
        let tgt = buf(b, p, 1);
        let mut at = 2;
        let w = weighted.then(|| {
            at += 1;
            buf(b, p, at - 1)
        });
        let lp = log_prob.then(|| {
            at += 1;
            buf(b, p, at - 1)
        });
        let out = buf(b, p, at);
        let cst = (inner * 4) as i64;
        rows_loop(
            b,
            p.begin,
            p.end,
            &[batch, inner],
            &[(classes * inner * 4) as i64, 4],
            &[(inner * 4) as i64, 4],
            |b, xo, lo| {
                let xp = b.ins().iadd(x, xo);
                // The lane's scores, as log-probabilities for SCE.
                let lse = softmax.then(|| log_sum_exp(b, xp, classes, cst));
                if let (Some(lse), Some(lp)) = (lse, lp) {
                    let yp = b.ins().iadd(lp, xo);
                    for_n(b, classes, 8, |b, c| {
                        let a = index(b, xp, c, cst);
                        let v = b.ins().load(types::F32, sflags(), a, 0);
                        let v = b.ins().fsub(v, lse);
                        let a = index(b, yp, c, cst);
                        b.ins().store(sflags(), v, a, 0);
                    });
                }
                // lo / 4 is the position's flat index.
                let pos = b.ins().ushr_imm_s(lo, 2);
                let ta = index(b, tgt, pos, tsz);
                let t = load_index(b, ta, tsz);
                let ignored = match ignore_index {
                    Some(ii) => b.ins().icmp_imm_s(IntCC::Equal, t, ii),
                    None => b.ins().iconst(types::I8, 0),
                };
                let valid = b
                    .ins()
                    .icmp_imm_s(IntCC::UnsignedLessThan, t, classes as i64);
                let zero = c64(b, 0);
                let c = b.ins().select(valid, t, zero);
                let a = index(b, xp, c, cst);
                let v = b.ins().load(types::F32, sflags(), a, 0);
                let v = match lse {
                    Some(lse) => b.ins().fsub(v, lse),
                    None => v,
                };
                let l = b.ins().fneg(v);
                let (l, wt) = match w {
                    Some(w) => {
                        let a = index(b, w, c, 4);
                        let wt = b.ins().load(types::F32, sflags(), a, 0);
                        (b.ins().fmul(l, wt), wt)
                    }
                    None => (l, b.ins().f32const(1.0)),
                };
                let nan = b.ins().f32const(f32::NAN);
                let l = b.ins().select(valid, l, nan);
                let wt = b.ins().select(valid, wt, nan);
                let fz = b.ins().f32const(0.0);
                let l = b.ins().select(ignored, fz, l);
                let wt = b.ins().select(ignored, fz, wt);
                let op = b.ins().iadd(out, lo);
                b.ins().store(sflags(), l, op, 0);
                if reduce {
                    // The weights follow the losses in scratch.
                    let wp = add_off(b, op, (lanes * 4) as i64);
                    b.ins().store(sflags(), wt, wp, 0);
                }
            },
        );
        b.ins().return_(&[]);
        Ok(())
    })?;
    let mut launches = Vec::new();
    if lanes > 0 {
        launches.push(Launch {
            func,
            operands,
            items: lanes as u64,
            grain: (2048 / classes).max(1) as u64,
            name: if softmax { "sce" } else { "nll" }.into(),
        });
    }
    if !reduce {
        return Ok(Some(Lowered {
            launches,
            scratch_bytes: 0,
        }));
    }
    let func = cx.define_kernel("loss_reduce", |b, p| {
        let s = buf(b, p, 0);
        let sw = add_off(b, s, (lanes * 4) as i64);
        let out = buf(b, p, 1);
        for_range(b, p.begin, p.end, |b, _| {
            let tot = b.declare_var(types::F32);
            let ws = b.declare_var(types::F32);
            let z = b.ins().f32const(0.0);
            b.def_var(tot, z);
            b.def_var(ws, z);
            let lo = c64(b, 0);
            let hi = c64(b, lanes as i64);
            for_range(b, lo, hi, |b, k| {
                let a = index(b, s, k, 4);
                let l = b.ins().load(types::F32, sflags(), a, 0);
                let a = index(b, sw, k, 4);
                let wt = b.ins().load(types::F32, sflags(), a, 0);
                let t = b.use_var(tot);
                let t = b.ins().fadd(t, l);
                b.def_var(tot, t);
                let u = b.use_var(ws);
                let u = b.ins().fadd(u, wt);
                b.def_var(ws, u);
            });
            let t = b.use_var(tot);
            let r = if mean {
                let u = b.use_var(ws);
                b.ins().fdiv(t, u)
            } else {
                t
            };
            b.ins().store(sflags(), r, out, 0);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    launches.push(Launch {
        func,
        operands: vec![Operand::Scratch(0), Operand::Output(0)],
        items: 1,
        grain: 1,
        name: "loss.reduce".into(),
    });
    Ok(Some(Lowered {
        launches,
        scratch_bytes: 2 * lanes * 4,
    }))
}

/// `log(sum(exp(x_c - m))) + m` over the `classes` scores at `xp + c * cst` (bytes), `m` the
/// largest non-NaN score (0 when that is infinite), summed in class order like the reference.
fn log_sum_exp(b: &mut FunctionBuilder, xp: Value, classes: usize, cst: i64) -> Value {
    let mx = b.declare_var(types::F32);
    let ninf = b.ins().f32const(f32::NEG_INFINITY);
    b.def_var(mx, ninf);
    for_n(b, classes, 8, |b, c| {
        let a = index(b, xp, c, cst);
        let v = b.ins().load(types::F32, sflags(), a, 0);
        let m = b.use_var(mx);
        // `m.max(v)` with m never NaN: a NaN v keeps m.
        let gt = b.ins().fcmp(FloatCC::GreaterThan, v, m);
        let m = b.ins().select(gt, v, m);
        b.def_var(mx, m);
    });
    let m = b.use_var(mx);
    let am = b.ins().fabs(m);
    let inf = b.ins().f32const(f32::INFINITY);
    let infinite = b.ins().fcmp(FloatCC::Equal, am, inf);
    let zero = b.ins().f32const(0.0);
    let m = b.ins().select(infinite, zero, m);
    let sum = b.declare_var(types::F32);
    b.def_var(sum, zero);
    for_n(b, classes, 8, |b, c| {
        let a = index(b, xp, c, cst);
        let v = b.ins().load(types::F32, sflags(), a, 0);
        let t = b.ins().fsub(v, m);
        let tv = b.ins().splat(types::F32X4, t);
        let e = vmath::exp(b, tv);
        let e = b.ins().extractlane(e, 0u8);
        let s = b.use_var(sum);
        let s = b.ins().fadd(s, e);
        b.def_var(sum, s);
    });
    let s = b.use_var(sum);
    let sv = b.ins().splat(types::F32X4, s);
    let l = vmath::log(b, sv);
    let l = b.ins().extractlane(l, 0u8);
    b.ins().fadd(l, m)
}
