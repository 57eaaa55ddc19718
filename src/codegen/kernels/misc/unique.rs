//! Unique, whose output shapes the data decides (every fixed-size element type but strings).
//! Lowers only when each data-dependent output present (Y, indices, counts) is compiled with
//! an upper bound ([`crate::codegen::bounded`]); one work item does it all, in O(n²) item
//! comparisons, as the reference evaluator defines the result:
//!
//! - Items are the elements of the flattened input, or (with `axis`) the slices along it,
//!   compared lexicographically element by element (the slice's elements in row-major order
//!   of the other dims).
//! - Elements compare as `partial_cmp` with NaN above everything: −0 equals 0, every NaN
//!   equals every other NaN. The kernel maps each element to a 64-bit key whose unsigned
//!   order is that order (floats by their bits, signed integers with the sign bit flipped),
//!   so it needs no float instructions.
//! - Unique items in order of first occurrence (`sorted = 0`) or ascending (`sorted = 1`);
//!   Y holds the first occurrence of each (so a −0 or a NaN payload seen first is kept),
//!   `indices` its position, `inverse_indices` the rank of each item's group, `counts` the
//!   group sizes; all three i64.
//!
//! Scratch (i64 each, n = number of items): the first occurrence of each group (groups
//! numbered in order of first occurrence), each item's group, each group's count, the output
//! order of the groups and each group's position in it.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op, ValueRef};

use super::ir::{buf, c64, copy_bytes, for_range, index, int_type, sflags};
use super::{in_shape, input, norm_axis};
use crate::codegen::kernel::{KernelCx, Lowered, Operand};

/// How the input splits into items: `[outer, d, inner]` around the axis (`[1, numel, 1]`
/// without one), and the element type.
#[derive(Clone, Copy)]
struct Layout {
    outer: usize,
    d: usize,
    inner: usize,
    dt: DType,
}

impl Layout {
    /// Elements per item.
    fn item_len(&self) -> usize {
        self.outer * self.inner
    }
}

/// See [`self`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let Op::Unique { axis, sorted } = n.op else {
        return Ok(None);
    };
    let (Some(x), Some(xs)) = (input(g, node, 0), in_shape(g, node, 0)) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    let ports = n.outputs.len();
    if dt == DType::String
        || int_type(dt.size()).is_none()
        || !(1..=4).contains(&ports)
        || n.outputs[0].ty.dtype != dt
        || (1..ports).any(|p| n.outputs[p].ty.dtype != DType::I64)
        || [0, 1, 3].into_iter().filter(|&p| p < ports).any(|p| {
            !cx.is_bounded(ValueRef {
                node,
                port: p as u32,
            })
        })
    {
        return Ok(None);
    }
    let (lay, ax) = match axis {
        Some(a) => {
            let Some(a) = norm_axis(a, xs.len()) else {
                return Ok(None);
            };
            let outer: usize = xs[..a].iter().product();
            let inner: usize = xs[a + 1..].iter().product();
            (
                Layout {
                    outer,
                    d: xs[a],
                    inner,
                    dt,
                },
                Some(a),
            )
        }
        None => (
            Layout {
                outer: 1,
                d: xs.iter().product(),
                inner: 1,
                dt,
            },
            None,
        ),
    };
    let n_items = lay.d;
    let Some(scratch_bytes) = n_items.checked_mul(5 * 8) else {
        return Ok(None);
    };

    // Operands: input, scratch, then per present output its buffer and (bounded) its dims.
    let mut operands = vec![Operand::Input(0), Operand::Scratch(0)];
    let mut out_buf = [None; 4];
    let mut dims_buf = [None; 4];
    for p in 0..ports {
        out_buf[p] = Some(operands.len());
        operands.push(Operand::Output(p));
        if p != 2 {
            dims_buf[p] = Some(operands.len());
            operands.push(Operand::Dims(p));
        }
    }
    let es = dt.size();
    let sorted = sorted != 0;
    let func = cx.define_kernel("unique", |b, p| {
        let xp = buf(b, p, 0);
        let sp = buf(b, p, 1);
        let nv = n_items as i64;
        // Scratch arrays.
        let first = sp;
        let group_of = b.ins().iadd_imm_s(sp, 8 * nv);
        let counts = b.ins().iadd_imm_s(sp, 16 * nv);
        let order = b.ins().iadd_imm_s(sp, 24 * nv);
        let rank = b.ins().iadd_imm_s(sp, 32 * nv);
        let zero = c64(b, 0);
        let total = c64(b, nv);

        // Groups in order of first occurrence.
        let u = b.declare_var(types::I64);
        b.def_var(u, zero);
        for_range(b, zero, total, |b, i| {
            let shead = b.create_block();
            let sbody = b.create_block();
            let found = b.create_block();
            let fresh = b.create_block();
            let next = b.create_block();
            b.append_block_param(shead, types::I64);
            b.append_block_param(found, types::I64);
            b.ins().jump(shead, &[zero.into()]);

            b.switch_to_block(shead);
            let j = b.block_params(shead)[0];
            let uv = b.use_var(u);
            let more = b.ins().icmp(IntCC::SignedLessThan, j, uv);
            b.ins().brif(more, sbody, &[], fresh, &[]);

            b.switch_to_block(sbody);
            let fj = load_at(b, first, j);
            let c = compare_items(b, xp, fj, i, lay);
            let j1 = b.ins().iadd_imm_s(j, 1);
            b.ins().brif(c, shead, &[j1.into()], found, &[j.into()]);

            b.switch_to_block(found);
            let j = b.block_params(found)[0];
            store_at(b, group_of, i, j);
            let cj = load_at(b, counts, j);
            let cj = b.ins().iadd_imm_s(cj, 1);
            store_at(b, counts, j, cj);
            b.ins().jump(next, &[]);

            b.switch_to_block(fresh);
            let uv = b.use_var(u);
            store_at(b, first, uv, i);
            store_at(b, group_of, i, uv);
            let one = c64(b, 1);
            store_at(b, counts, uv, one);
            let u1 = b.ins().iadd_imm_s(uv, 1);
            b.def_var(u, u1);
            b.ins().jump(next, &[]);

            b.switch_to_block(next);
        });
        let u = b.use_var(u);

        // The output order of the groups: as found, or by insertion sort of their first
        // occurrences (distinct groups never compare equal).
        for_range(b, zero, u, |b, k| store_at(b, order, k, k));
        if sorted {
            let one = c64(b, 1);
            for_range(b, one, u, |b, k| {
                let gk = load_at(b, order, k);
                let fk = load_at(b, first, gk);
                let head = b.create_block();
                let test = b.create_block();
                let shift = b.create_block();
                let done = b.create_block();
                b.append_block_param(head, types::I64);
                b.append_block_param(done, types::I64);
                b.ins().jump(head, &[k.into()]);

                b.switch_to_block(head);
                let pos = b.block_params(head)[0];
                let more = b.ins().icmp_imm_s(IntCC::SignedGreaterThan, pos, 0);
                b.ins().brif(more, test, &[], done, &[pos.into()]);

                b.switch_to_block(test);
                let prev = b.ins().iadd_imm_s(pos, -1);
                let gp = load_at(b, order, prev);
                let fp = load_at(b, first, gp);
                let c = compare_items(b, xp, fp, fk, lay);
                let above = b.ins().icmp_imm_s(IntCC::SignedGreaterThan, c, 0);
                b.ins().brif(above, shift, &[], done, &[pos.into()]);

                b.switch_to_block(shift);
                store_at(b, order, pos, gp);
                b.ins().jump(head, &[prev.into()]);

                b.switch_to_block(done);
                let pos = b.block_params(done)[0];
                store_at(b, order, pos, gk);
            });
        }
        for_range(b, zero, u, |b, k| {
            let gk = load_at(b, order, k);
            store_at(b, rank, gk, k);
        });

        // Y: the first occurrence of each group, in output order, as [outer, u, inner].
        let row = lay.inner * es;
        let yp = buf(b, p, out_buf[0].expect("Y is always present"));
        if row > 0 && lay.outer > 0 {
            for_range(b, zero, u, |b, k| {
                let gk = load_at(b, order, k);
                let src = load_at(b, first, gk);
                let ov = c64(b, lay.outer as i64);
                for_range(b, zero, ov, |b, o| {
                    let si = b.ins().imul_imm_s(o, lay.d as i64);
                    let si = b.ins().iadd(si, src);
                    let di = b.ins().imul(o, u);
                    let di = b.ins().iadd(di, k);
                    let s = index(b, xp, si, row as i64);
                    let t = index(b, yp, di, row as i64);
                    copy_bytes(b, s, t, row);
                });
            });
        }
        let dp = buf(b, p, dims_buf[0].expect("Y's dims are always written"));
        match ax {
            Some(a) => {
                for (k, &dim) in xs.iter().enumerate() {
                    let v = if k == a { u } else { c64(b, dim as i64) };
                    b.ins().store(sflags(), v, dp, (8 * k) as i32);
                }
            }
            None => {
                b.ins().store(sflags(), u, dp, 0);
            }
        }
        // indices and counts: per group in output order; their dims [u].
        for (port, src) in [(1, first), (3, counts)] {
            let (Some(ob), Some(db)) = (out_buf[port], dims_buf[port]) else {
                continue;
            };
            let op = buf(b, p, ob);
            for_range(b, zero, u, |b, k| {
                let gk = load_at(b, order, k);
                let v = load_at(b, src, gk);
                store_at(b, op, k, v);
            });
            let dp = buf(b, p, db);
            b.ins().store(sflags(), u, dp, 0);
        }
        // inverse_indices: each item's group's position (a static shape).
        if let Some(ob) = out_buf[2] {
            let op = buf(b, p, ob);
            for_range(b, zero, total, |b, i| {
                let gi = load_at(b, group_of, i);
                let r = load_at(b, rank, gi);
                store_at(b, op, i, r);
            });
        }
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        operands,
        (1, 1),
        "unique",
        scratch_bytes,
    )))
}

/// `base[i]` of an i64 array.
fn load_at(b: &mut FunctionBuilder, base: Value, i: Value) -> Value {
    let a = index(b, base, i, 8);
    b.ins().load(types::I64, sflags(), a, 0)
}

/// `base[i] = v` of an i64 array.
fn store_at(b: &mut FunctionBuilder, base: Value, i: Value, v: Value) {
    let a = index(b, base, i, 8);
    b.ins().store(sflags(), v, a, 0);
}

/// The i64 key of the element at `p`, whose unsigned order is the reference's order of
/// elements: `partial_cmp`, with NaN above everything and equal to NaN.
fn key(b: &mut FunctionBuilder, p: Value, dt: DType) -> Value {
    let size = dt.size();
    let ty = int_type(size).expect("checked by lower");
    let raw = b.ins().load(ty, sflags(), p, 0);
    let bits = if size == 8 {
        raw
    } else if dt.is_signed() && !dt.is_float() {
        b.ins().sextend(types::I64, raw)
    } else {
        b.ins().uextend(types::I64, raw)
    };
    if !dt.is_float() {
        return if dt.is_signed() {
            // Sign bit flipped: signed order as unsigned order.
            b.ins().bxor_imm_s(bits, i64::MIN)
        } else {
            bits
        };
    }
    let w = 8 * size as u32;
    let sign: u64 = 1 << (w - 1);
    let all: u64 = if w == 64 { u64::MAX } else { (1u64 << w) - 1 };
    let inf: u64 = match dt {
        DType::F16 => 0x7C00,
        DType::BF16 => 0x7F80,
        DType::F32 => 0x7F80_0000,
        _ => 0x7FF0_0000_0000_0000,
    };
    let mag = b.ins().band_imm_u(bits, (sign - 1) as i64);
    // ±0 as +0.
    let is_zero = b.ins().icmp_imm_u(IntCC::Equal, mag, 0);
    let bits = {
        let z = c64(b, 0);
        b.ins().select(is_zero, z, bits)
    };
    // Negative: all bits flipped; positive: the sign bit set.
    let neg = b.ins().band_imm_u(bits, sign as i64);
    let neg = b.ins().icmp_imm_u(IntCC::NotEqual, neg, 0);
    let flipped = b.ins().bxor_imm_s(bits, all as i64);
    let signed = b.ins().bor_imm_s(bits, sign as i64);
    let k = b.ins().select(neg, flipped, signed);
    // NaN: above every other key (the largest, +inf, is below u64::MAX for every width).
    let is_nan = b
        .ins()
        .icmp_imm_u(IntCC::UnsignedGreaterThan, mag, inf as i64);
    let top = c64(b, -1);
    b.ins().select(is_nan, top, k)
}

/// Compares items `i` and `j` lexicographically: an i64 −1, 0 or 1.
fn compare_items(b: &mut FunctionBuilder, xp: Value, i: Value, j: Value, lay: Layout) -> Value {
    let m = lay.item_len();
    if m == 0 {
        return c64(b, 0);
    }
    let es = lay.dt.size() as i64;
    let head = b.create_block();
    let body = b.create_block();
    let exit = b.create_block();
    b.append_block_param(head, types::I64);
    b.append_block_param(exit, types::I64);
    let zero = c64(b, 0);
    b.ins().jump(head, &[zero.into()]);

    b.switch_to_block(head);
    let e = b.block_params(head)[0];
    let more = b.ins().icmp_imm_s(IntCC::SignedLessThan, e, m as i64);
    b.ins().brif(more, body, &[], exit, &[zero.into()]);

    b.switch_to_block(body);
    // Element e of an item: (o, t) = (e / inner, e % inner) at (o * d + item) * inner + t.
    let offset = |b: &mut FunctionBuilder, item: Value| -> Value {
        if lay.inner == 1 {
            let r = b.ins().imul_imm_s(e, lay.d as i64);
            b.ins().iadd(r, item)
        } else if lay.outer == 1 {
            let r = b.ins().imul_imm_s(item, lay.inner as i64);
            b.ins().iadd(r, e)
        } else {
            let inner = c64(b, lay.inner as i64);
            let o = b.ins().udiv(e, inner);
            let t = b.ins().urem(e, inner);
            let r = b.ins().imul_imm_s(o, lay.d as i64);
            let r = b.ins().iadd(r, item);
            let r = b.ins().imul_imm_s(r, lay.inner as i64);
            b.ins().iadd(r, t)
        }
    };
    let oi = offset(b, i);
    let oj = offset(b, j);
    let pi = index(b, xp, oi, es);
    let pj = index(b, xp, oj, es);
    let ki = key(b, pi, lay.dt);
    let kj = key(b, pj, lay.dt);
    let differ = b.ins().icmp(IntCC::NotEqual, ki, kj);
    let below = b.ins().icmp(IntCC::UnsignedLessThan, ki, kj);
    let minus = c64(b, -1);
    let plus = c64(b, 1);
    let res = b.ins().select(below, minus, plus);
    let e1 = b.ins().iadd_imm_s(e, 1);
    b.ins()
        .brif(differ, exit, &[res.into()], head, &[e1.into()]);

    b.switch_to_block(exit);
    b.block_params(exit)[0]
}
