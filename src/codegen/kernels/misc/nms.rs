//! NonMaxSuppression (f32 boxes and scores), whose output shape the data decides: it lowers
//! only an output compiled with an upper bound ([`crate::codegen::bounded`]), writes the
//! selected `[batch, class, box]` rows densely at the start of the bounded buffer and the
//! actual dims `[selected, 3]` ([`Operand::Dims`]).
//!
//! One work item does it all, as the reference evaluator does: for each batch and class, the
//! candidates (scores strictly above `score_threshold` when given) are taken in order of
//! decreasing score, equal scores by increasing box index, each by a linear scan over a
//! byte per box in scratch marking the ones taken or filtered out (O(S²) per class). A
//! candidate is kept unless its IoU with a box already kept for this batch and class is
//! strictly above `iou_threshold` (0 when absent); at most `max_output_boxes_per_class` (0
//! when absent or empty, negative as 0) are kept per class. Geometry is computed in f64 from
//! the f32 inputs with the reference's operations in the reference's order, so decisions are
//! the same bit for bit: corners normalized with NaN-ignoring min/max (corner format) or
//! centre ± half size (centre format, not normalized), IoU with the same early-outs (each as
//! `!(x <= 0)`, as written there; a NaN anywhere ends in a NaN IoU, which suppresses
//! nothing, so a box with a NaN coordinate neither suppresses nor is suppressed).
//!
//! The optional inputs may be absent, constants, or read at run time (max as i64, the
//! thresholds as f32 or f64). Scores that are NaN (the reference's order is undefined for
//! them; only reachable without a score threshold) are taken after all others, by index.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op, ValueRef};

use super::ir::{buf, c64, for_range, index, sflags};
use super::{const_input, in_shape, input, out_shape};
use crate::codegen::kernel::{KernelCx, Lowered, Operand};

/// How the kernel gets an optional scalar input.
#[derive(Clone, Copy)]
enum Param<T> {
    /// Known at compile time (absent and empty inputs included, with their defaults).
    Fixed(T),
    /// Read from operand `bufs[i]`, of this element type.
    Run(usize, DType),
}

/// See [`self`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let Op::NonMaxSuppression { center_point_box } = g.node(node).op else {
        return Ok(None);
    };
    if !cx.is_bounded(ValueRef { node, port: 0 }) {
        return Ok(None);
    }
    let (Some(bx), Some(sc), Some(bs), Some(ss), Some(ys)) = (
        input(g, node, 0),
        input(g, node, 1),
        in_shape(g, node, 0),
        in_shape(g, node, 1),
        out_shape(g, node, 0),
    ) else {
        return Ok(None);
    };
    let (&[nb, ns, 4], &[nb2, nc, ns2]) = (bs.as_slice(), ss.as_slice()) else {
        return Ok(None);
    };
    if nb != nb2
        || ns != ns2
        || g.dtype(bx) != DType::F32
        || g.dtype(sc) != DType::F32
        || g.node(node).outputs[0].ty.dtype != DType::I64
        || ys.len() != 2
        || ys[1] != 3
    {
        return Ok(None);
    }
    let center = center_point_box != 0;

    let mut operands = vec![Operand::Input(0), Operand::Input(1)];
    // An optional scalar input: `Fixed(None)` when absent or empty, `Fixed(Some(first))` for
    // a constant, else read at run time when of one of `types`.
    let mut scalar = |slot: usize, types: &[DType]| -> Option<Param<Option<f64>>> {
        let Some(v) = input(g, node, slot) else {
            return Some(Param::Fixed(None));
        };
        let shape = in_shape(g, node, slot)?;
        if shape.iter().product::<usize>() == 0 {
            return Some(Param::Fixed(None));
        }
        if let Some(t) = const_input(g, node, slot) {
            return Some(Param::Fixed(t.to_f64_vec().first().copied()));
        }
        let dt = g.dtype(v);
        if !types.contains(&dt) {
            return None;
        }
        operands.push(Operand::Input(slot));
        Some(Param::Run(operands.len() - 1, dt))
    };
    // max_output_boxes_per_class: an i64 (a constant's first value read as one below).
    let Some(max_out) = scalar(2, &[DType::I64]) else {
        return Ok(None);
    };
    let max_out = match max_out {
        Param::Fixed(None) => Param::Fixed(0),
        Param::Fixed(Some(_)) => {
            let Some(first) = const_input(g, node, 2).and_then(|t| t.to_i64_vec().ok()) else {
                return Ok(None);
            };
            Param::Fixed(first.first().map_or(0, |&m| m.max(0)))
        }
        Param::Run(i, dt) => Param::Run(i, dt),
    };
    let Some(iou_th) = scalar(3, &[DType::F32, DType::F64]) else {
        return Ok(None);
    };
    let Some(score_th) = scalar(4, &[DType::F32, DType::F64]) else {
        return Ok(None);
    };
    operands.extend([Operand::Output(0), Operand::Dims(0), Operand::Scratch(0)]);
    let (out_i, dims_i, flags_i) = (operands.len() - 3, operands.len() - 2, operands.len() - 1);

    let func = cx.define_kernel("non_max_suppression", |b, p| {
        let boxes = buf(b, p, 0);
        let scores = buf(b, p, 1);
        let out = buf(b, p, out_i);
        let dims = buf(b, p, dims_i);
        let flags = buf(b, p, flags_i);
        let max_out = match max_out {
            Param::Fixed(m) => c64(b, m),
            Param::Run(i, _) => {
                let a = buf(b, p, i);
                let m = b.ins().load(types::I64, sflags(), a, 0);
                let zero = c64(b, 0);
                b.ins().smax(m, zero)
            }
        };
        let iou_th = load_f64(b, p, iou_th, 0.0);
        let score_th = match score_th {
            Param::Fixed(None) => None,
            t => Some(load_f64(b, p, t, 0.0)),
        };
        let (zero, s_len) = (c64(b, 0), c64(b, ns as i64));
        let count = b.declare_var(types::I64);
        let best = b.declare_var(types::I64);
        let suppressed = b.declare_var(types::I8);
        b.def_var(count, zero);
        let (bn, cn) = (c64(b, nb as i64), c64(b, nc as i64));
        for_range(b, zero, bn, |b, bi| {
            let box_base = b.ins().imul_imm_s(bi, (ns * 16) as i64);
            let box_base = b.ins().iadd(boxes, box_base);
            for_range(b, zero, cn, |b, ci| {
                let row = b.ins().imul_imm_s(bi, nc as i64);
                let row = b.ins().iadd(row, ci);
                let sp = b.ins().imul_imm_s(row, (ns * 4) as i64);
                let sp = b.ins().iadd(scores, sp);
                let start = b.use_var(count);
                // Flags: 0 for a candidate not yet taken, 1 otherwise.
                for_range(b, zero, s_len, |b, k| {
                    let fa = b.ins().iadd(flags, k);
                    let f = match score_th {
                        None => b.ins().iconst(types::I8, 0),
                        Some(th) => {
                            let s = load_score(b, sp, k);
                            let s = b.ins().fpromote(types::F64, s);
                            // Filtered out unless s > th (so NaN is filtered out): !(s > th).
                            b.ins().fcmp(FloatCC::UnorderedOrLessThanOrEqual, s, th)
                        }
                    };
                    b.ins().store(sflags(), f, fa, 0);
                });
                let head = b.create_block();
                let scan = b.create_block();
                let found = b.create_block();
                let exit = b.create_block();
                b.ins().jump(head, &[]);

                // At most max_out kept for this class.
                b.switch_to_block(head);
                let now = b.use_var(count);
                let kept = b.ins().isub(now, start);
                let full = b.ins().icmp(IntCC::SignedGreaterThanOrEqual, kept, max_out);
                b.ins().brif(full, exit, &[], scan, &[]);

                // The best candidate not taken: highest score, the lowest index among equal
                // ones, NaN after all numbers.
                b.switch_to_block(scan);
                let none = c64(b, -1);
                b.def_var(best, none);
                for_range(b, zero, s_len, |b, k| {
                    let fa = b.ins().iadd(flags, k);
                    let f = b.ins().load(types::I8, sflags(), fa, 0);
                    let free = b.ins().icmp_imm_u(IntCC::Equal, f, 0);
                    let cur = b.use_var(best);
                    let first = b.ins().icmp_imm_s(IntCC::SignedLessThan, cur, 0);
                    let other = b.ins().select(first, k, cur);
                    let sk = load_score(b, sp, k);
                    let so = load_score(b, sp, other);
                    let higher = b.ins().fcmp(FloatCC::GreaterThan, sk, so);
                    let o_nan = b.ins().fcmp(FloatCC::Unordered, so, so);
                    let k_num = b.ins().fcmp(FloatCC::Ordered, sk, sk);
                    let over_nan = b.ins().band(o_nan, k_num);
                    let better = b.ins().bor(higher, over_nan);
                    let better = b.ins().bor(better, first);
                    let take = b.ins().band(free, better);
                    let next = b.ins().select(take, k, cur);
                    b.def_var(best, next);
                });
                let i = b.use_var(best);
                let nothing = b.ins().icmp_imm_s(IntCC::SignedLessThan, i, 0);
                b.ins().brif(nothing, exit, &[], found, &[]);

                // Take it; keep it unless a box kept for this class suppresses it.
                b.switch_to_block(found);
                let fa = b.ins().iadd(flags, i);
                let one = b.ins().iconst(types::I8, 1);
                b.ins().store(sflags(), one, fa, 0);
                let a = corners(b, box_base, i, center);
                let no = b.ins().iconst(types::I8, 0);
                b.def_var(suppressed, no);
                let now = b.use_var(count);
                for_range(b, start, now, |b, r| {
                    let ra = index(b, out, r, 24);
                    let k = b.ins().load(types::I64, sflags(), ra, 16);
                    let o = corners(b, box_base, k, center);
                    let s = suppresses(b, a, o, iou_th);
                    let acc = b.use_var(suppressed);
                    let acc = b.ins().bor(acc, s);
                    b.def_var(suppressed, acc);
                });
                let s = b.use_var(suppressed);
                let keep = b.create_block();
                b.ins().brif(s, head, &[], keep, &[]);

                b.switch_to_block(keep);
                let ra = index(b, out, now, 24);
                b.ins().store(sflags(), bi, ra, 0);
                b.ins().store(sflags(), ci, ra, 8);
                b.ins().store(sflags(), i, ra, 16);
                let n1 = b.ins().iadd_imm_s(now, 1);
                b.def_var(count, n1);
                b.ins().jump(head, &[]);

                b.switch_to_block(exit);
            });
        });
        let n = b.use_var(count);
        b.ins().store(sflags(), n, dims, 0);
        let three = c64(b, 3);
        b.ins().store(sflags(), three, dims, 8);
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        operands,
        (1, 1),
        "non_max_suppression",
        ns.max(1),
    )))
}

/// An optional f64 scalar: a compile-time value (`default` when absent) or its first
/// element, read (f32 widened) at run time.
fn load_f64(
    b: &mut FunctionBuilder,
    p: crate::codegen::kernel::KernelParams,
    v: Param<Option<f64>>,
    default: f64,
) -> Value {
    match v {
        Param::Fixed(x) => b.ins().f64const(x.unwrap_or(default)),
        Param::Run(i, dt) => {
            let a = buf(b, p, i);
            if dt == DType::F64 {
                b.ins().load(types::F64, sflags(), a, 0)
            } else {
                let x = b.ins().load(types::F32, sflags(), a, 0);
                b.ins().fpromote(types::F64, x)
            }
        }
    }
}

/// Score `k` of the class whose scores start at `sp`.
fn load_score(b: &mut FunctionBuilder, sp: Value, k: Value) -> Value {
    let a = index(b, sp, k, 4);
    b.ins().load(types::F32, sflags(), a, 0)
}

/// Rust's `f64::min` (`max` when `max`): the other argument when one is NaN.
fn min_max(b: &mut FunctionBuilder, x: Value, y: Value, max: bool) -> Value {
    let cc = if max {
        FloatCC::GreaterThan
    } else {
        FloatCC::LessThan
    };
    let pick_x = b.ins().fcmp(cc, x, y);
    let y_nan = b.ins().fcmp(FloatCC::Unordered, y, y);
    let pick_x = b.ins().bor(pick_x, y_nan);
    b.ins().select(pick_x, x, y)
}

/// The corners `[y1, x1, y2, x2]` (f64) of box `i` of the batch whose boxes start at `base`,
/// as the reference computes them.
fn corners(b: &mut FunctionBuilder, base: Value, i: Value, center: bool) -> [Value; 4] {
    let a = index(b, base, i, 16);
    let v: Vec<Value> = (0..4)
        .map(|k| {
            let x = b.ins().load(types::F32, sflags(), a, 4 * k);
            b.ins().fpromote(types::F64, x)
        })
        .collect();
    if center {
        let (xc, yc, w, h) = (v[0], v[1], v[2], v[3]);
        let two = b.ins().f64const(2.0);
        let hh = b.ins().fdiv(h, two);
        let hw = b.ins().fdiv(w, two);
        [
            b.ins().fsub(yc, hh),
            b.ins().fsub(xc, hw),
            b.ins().fadd(yc, hh),
            b.ins().fadd(xc, hw),
        ]
    } else {
        [
            min_max(b, v[0], v[2], false),
            min_max(b, v[1], v[3], false),
            min_max(b, v[0], v[2], true),
            min_max(b, v[1], v[3], true),
        ]
    }
}

/// Whether kept box `o` suppresses candidate `a` (an i8 0/1): the reference's test, each
/// early-out `x <= 0` as its negation so NaN continues.
fn suppresses(b: &mut FunctionBuilder, a: [Value; 4], o: [Value; 4], th: Value) -> Value {
    let lo_y = min_max(b, a[2], o[2], false);
    let hi_y = min_max(b, a[0], o[0], true);
    let ih = b.ins().fsub(lo_y, hi_y);
    let lo_x = min_max(b, a[3], o[3], false);
    let hi_x = min_max(b, a[1], o[1], true);
    let iw = b.ins().fsub(lo_x, hi_x);
    let inter = b.ins().fmul(ih, iw);
    let area = |b: &mut FunctionBuilder, c: [Value; 4]| {
        let h = b.ins().fsub(c[2], c[0]);
        let w = b.ins().fsub(c[3], c[1]);
        b.ins().fmul(h, w)
    };
    let aa = area(b, a);
    let ao = area(b, o);
    let sum = b.ins().fadd(aa, ao);
    let union = b.ins().fsub(sum, inter);
    let zero = b.ins().f64const(0.0);
    let mut all = None;
    for x in [ih, iw, aa, ao, union] {
        let pos = b.ins().fcmp(FloatCC::UnorderedOrGreaterThan, x, zero);
        all = Some(match all {
            None => pos,
            Some(acc) => b.ins().band(acc, pos),
        });
    }
    let iou = b.ins().fdiv(inter, union);
    let over = b.ins().fcmp(FloatCC::GreaterThan, iou, th);
    let all = all.expect("five tests");
    b.ins().band(all, over)
}
