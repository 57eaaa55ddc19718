//! The scattering inverses of pooling and im2col: MaxUnpool (any fixed-size element type)
//! and Col2Im (f32), with their shape inputs (`output_shape`, `image_shape`, `block_shape`)
//! constants; a run-time shape input is declined.
//!
//! - MaxUnpool: one work item (the scatter is sequential, so that of two equal indices the
//!   later element wins, like the reference): the output is zeroed, then element `j` of X
//!   goes to flat position `I[j]` of the unpooled shape `(in - 1) * stride + kernel - pads`,
//!   placed at the same multi-index of the output (which `output_shape` may make larger,
//!   padded with zeros at the end of each dim). Indices are data: one outside
//!   `[0, unpooled size)` is skipped (the reference rejects it), so nothing is written out of
//!   bounds whatever the values.
//! - Col2Im: a work item is one `(n, c)` image plane: zeroed, then the `taps * L` column
//!   values of its block rows added at the image offsets of a compile-time table (taps in the
//!   padding skipped), in the reference's order (row-major taps, then positions), summed in
//!   f32 (the reference in f64).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder};
use graphc_passes::ir::{AutoPad, DType, Graph, NodeId, Op};

use super::ir::{buf, c64, fill_bytes, for_range, index, int_type, sflags};
use super::pool::window;
use super::{const_input, in_shape, input, out_shape, strides};
use crate::codegen::kernel::{KernelCx, Lowered, Operand};

/// See the module docs.
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    match &g.node(node).op {
        Op::MaxUnpool {
            kernel_shape,
            pads,
            strides,
        } => max_unpool(cx, g, node, kernel_shape, pads, strides),
        Op::Col2Im {
            dilations,
            pads,
            strides,
        } => col2im(cx, g, node, dilations, pads, strides),
        _ => Ok(None),
    }
}

/// `v` as non-negative sizes, `fill` when empty, `None` for a wrong length or a negative.
fn sizes(v: &[i64], n: usize, fill: usize) -> Option<Vec<usize>> {
    if v.is_empty() {
        return Some(vec![fill; n]);
    }
    if v.len() != n {
        return None;
    }
    v.iter().map(|&x| usize::try_from(x).ok()).collect()
}

fn max_unpool(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    kernel: &[i64],
    pads: &[i64],
    stride: &[i64],
) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let (Some(x), Some(iv)) = (input(g, node, 0), input(g, node, 1)) else {
        return Ok(None);
    };
    // Element types whose values the reference's f64 round trip keeps exactly.
    let dt = g.dtype(x);
    if !matches!(
        dt,
        DType::F32
            | DType::F64
            | DType::I8
            | DType::U8
            | DType::I16
            | DType::U16
            | DType::I32
            | DType::U32
    ) || g.dtype(iv) != DType::I64
        || n.outputs[0].ty.dtype != dt
    {
        return Ok(None);
    }
    let es = dt.size();
    let Some(ety) = int_type(es) else {
        return Ok(None);
    };
    let (Some(xs), Some(is), Some(ys)) = (
        in_shape(g, node, 0),
        in_shape(g, node, 1),
        out_shape(g, node, 0),
    ) else {
        return Ok(None);
    };
    if xs.len() < 3 || is != xs || ys.len() != xs.len() {
        return Ok(None);
    }
    let nd = xs.len() - 2;
    let (Some(k), Some(st), Some(pd)) = (
        sizes(kernel, nd, 0),
        sizes(stride, nd, 1),
        sizes(pads, 2 * nd, 0),
    ) else {
        return Ok(None);
    };
    let mut unpooled = xs[..2].to_vec();
    for d in 0..nd {
        let full = (xs[2 + d].max(1) - 1) * st[d] + k[d];
        let Some(u) = full.checked_sub(pd[d] + pd[d + nd]) else {
            return Ok(None);
        };
        unpooled.push(u);
    }
    // The output: the unpooled shape, or the constant output_shape (at least as large).
    if input(g, node, 2).is_some() {
        let Some(Ok(want)) = const_input(g, node, 2).map(|t| t.to_i64_vec()) else {
            return Ok(None);
        };
        let want: Option<Vec<usize>> = want.iter().map(|&v| usize::try_from(v).ok()).collect();
        if want.as_ref() != Some(&ys) {
            return Ok(None);
        }
    } else if ys != unpooled {
        return Ok(None);
    }
    if ys.iter().zip(&unpooled).any(|(y, u)| y < u) {
        return Ok(None);
    }
    let total: usize = unpooled.iter().product();
    let out_len: usize = ys.iter().product();
    let count: usize = xs.iter().product();
    if out_len == 0 {
        return Ok(Some(Lowered::default()));
    }
    let same = ys == unpooled;
    let ustr = strides(&unpooled);
    let ystr = strides(&ys);
    let func = cx.define_kernel("max_unpool", |b, p| {
        let xp = buf(b, p, 0);
        let ip = buf(b, p, 1);
        let yp = buf(b, p, 2);
        fill_bytes(b, yp, out_len * es, es, 0);
        let lo = c64(b, 0);
        let hi = c64(b, count as i64);
        for_range(b, lo, hi, |b, j| {
            let ia = index(b, ip, j, 8);
            let i = b.ins().load(types::I64, sflags(), ia, 0);
            // Unsigned compare: negative indices are huge, so skipped too.
            let ok = b.ins().icmp_imm_s(IntCC::UnsignedLessThan, i, total as i64);
            let store = b.create_block();
            let next = b.create_block();
            b.ins().brif(ok, store, &[], next, &[]);
            b.switch_to_block(store);
            let off = if same {
                i
            } else {
                // The multi-index in the unpooled shape, re-flattened in the output's.
                let mut rem = i;
                let mut off = c64(b, 0);
                for d in 0..ustr.len() {
                    let q = b.ins().udiv_imm_u(rem, ustr[d] as i64);
                    rem = b.ins().urem_imm_u(rem, ustr[d] as i64);
                    let t = b.ins().imul_imm_s(q, ystr[d] as i64);
                    off = b.ins().iadd(off, t);
                }
                off
            };
            let xa = index(b, xp, j, es as i64);
            let v = b.ins().load(ety, sflags(), xa, 0);
            let ya = index(b, yp, off, es as i64);
            b.ins().store(sflags(), v, ya, 0);
            b.ins().jump(next, &[]);
            b.switch_to_block(next);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Input(1), Operand::Output(0)],
        (1, 1),
        "max_unpool",
        0,
    )))
}

/// Most entries of Col2Im's offset table (taps times positions).
const MAX_COL2IM_TABLE: usize = 1 << 24;

fn col2im(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    dilations: &[i64],
    pads: &[i64],
    strides_: &[i64],
) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    if g.dtype(x) != DType::F32 || n.outputs[0].ty.dtype != DType::F32 {
        return Ok(None);
    }
    let (Some(xs), Some(ys)) = (in_shape(g, node, 0), out_shape(g, node, 0)) else {
        return Ok(None);
    };
    let (Some(Ok(image)), Some(Ok(block))) = (
        const_input(g, node, 1).map(|t| t.to_i64_vec()),
        const_input(g, node, 2).map(|t| t.to_i64_vec()),
    ) else {
        return Ok(None);
    };
    let (Some(image), Some(block)) = (sizes(&image, image.len(), 0), sizes(&block, block.len(), 0))
    else {
        return Ok(None);
    };
    let block_i64: Vec<i64> = block.iter().map(|&v| v as i64).collect();
    if xs.len() != 3 || image.is_empty() || image.len() != block.len() {
        return Ok(None);
    }
    let Some(dims) = window(
        &image,
        &block_i64,
        strides_,
        dilations,
        pads,
        AutoPad::NotSet,
        false,
    ) else {
        return Ok(None);
    };
    let taps: usize = block.iter().product();
    let positions: usize = dims.iter().map(|d| d.o).product();
    if taps == 0 || xs[1] % taps != 0 || xs[2] != positions {
        return Ok(None);
    }
    let c = xs[1] / taps;
    let mut want = vec![xs[0], c];
    want.extend(&image);
    if ys != want {
        return Ok(None);
    }
    let planes = xs[0] * c;
    let pimg: usize = image.iter().product();
    let len = taps * positions;
    if planes == 0 || pimg == 0 {
        return Ok(Some(Lowered::default()));
    }
    if len > MAX_COL2IM_TABLE || pimg > i32::MAX as usize {
        return Ok(None);
    }
    // Per (tap, position), row-major both: the image offset, or -1 in the padding.
    let istr = strides(&image);
    let r = dims.len();
    let mut table = Vec::with_capacity(len);
    let mut tap = vec![0usize; r];
    for _ in 0..taps {
        let mut pos = vec![0usize; r];
        for _ in 0..positions {
            let mut off = Some(0i64);
            for d in 0..r {
                let dim = &dims[d];
                off = off
                    .filter(|_| dim.valid(pos[d], tap[d]))
                    .map(|o| o + dim.at(pos[d], tap[d]) * istr[d] as i64);
            }
            table.push(off.unwrap_or(-1) as i32);
            step(&mut pos, &dims.iter().map(|d| d.o).collect::<Vec<_>>());
        }
        step(&mut tap, &block);
    }
    let tab = cx.add_const(
        "col2im_offsets",
        table.iter().flat_map(|v| v.to_le_bytes()).collect(),
    )?;
    let func = cx.define_kernel("col2im", |b, p| {
        let xp = buf(b, p, 0);
        let yp = buf(b, p, 1);
        let tp = buf(b, p, 2);
        for_range(b, p.begin, p.end, |b, item| {
            let xrow = index(b, xp, item, (len * 4) as i64);
            let yrow = index(b, yp, item, (pimg * 4) as i64);
            fill_bytes(b, yrow, pimg * 4, 4, 0);
            let lo = c64(b, 0);
            let hi = c64(b, len as i64);
            for_range(b, lo, hi, |b, j| {
                let ta = index(b, tp, j, 4);
                let o = b.ins().sload32(sflags(), ta, 0);
                let inside = b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, o, 0);
                let add = b.create_block();
                let next = b.create_block();
                b.ins().brif(inside, add, &[], next, &[]);
                b.switch_to_block(add);
                let xa = index(b, xrow, j, 4);
                let v = b.ins().load(types::F32, sflags(), xa, 0);
                let ya = index(b, yrow, o, 4);
                let acc = b.ins().load(types::F32, sflags(), ya, 0);
                let s = b.ins().fadd(acc, v);
                b.ins().store(sflags(), s, ya, 0);
                b.ins().jump(next, &[]);
                b.switch_to_block(next);
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Output(0), Operand::Const(tab)],
        (planes as u64, (4096 / len.max(1)).max(1) as u64),
        "col2im",
        0,
    )))
}

/// Advances a row-major multi-index within `shape`.
fn step(idx: &mut [usize], shape: &[usize]) {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < shape[d] {
            return;
        }
        idx[d] = 0;
    }
}
