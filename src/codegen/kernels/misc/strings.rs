//! Kernel: Equal of two string tensors, with numpy broadcasting.
//!
//! Compiled code holds a string tensor as an array of pointers to NUL-terminated bytes, one
//! per element: what the caller of a library passes for a string input (only graph inputs
//! may be strings, see `program::byte_len`). Two strings are equal when their bytes are, up
//! to and including the terminating NUL. A work item is one output element.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{buf, c64, for_range, index, sflags, unflatten};
use super::{in_shape, input, out_shape, strides};
use crate::codegen::kernel::{KernelCx, Lowered, Operand};

/// Output elements per grain.
const GRAIN: u64 = 256;

/// See [`self`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    if !matches!(n.op, Op::Equal {}) || n.inputs.len() != 2 {
        return Ok(None);
    }
    let (Some(a), Some(b)) = (input(g, node, 0), input(g, node, 1)) else {
        return Ok(None);
    };
    if g.dtype(a) != DType::String
        || g.dtype(b) != DType::String
        || n.outputs[0].ty.dtype != DType::Bool
    {
        return Ok(None);
    }
    let (Some(ys), Some(as_), Some(bs)) = (
        out_shape(g, node, 0),
        in_shape(g, node, 0),
        in_shape(g, node, 1),
    ) else {
        return Ok(None);
    };
    let (Some(sa), Some(sb)) = (broadcast_strides(&as_, &ys), broadcast_strides(&bs, &ys)) else {
        return Ok(None);
    };
    let total: usize = ys.iter().product();
    if total == 0 {
        return Ok(Some(Lowered::default()));
    }
    let func = cx.define_kernel("equal_string", |b, p| {
        let ap = buf(b, p, 0);
        let bp = buf(b, p, 1);
        let yp = buf(b, p, 2);
        for_range(b, p.begin, p.end, |b, i| {
            let idx = unflatten(b, i, &ys);
            let oa = offset(b, &idx, &sa);
            let ob = offset(b, &idx, &sb);
            let pa = index(b, ap, oa, 8);
            let pa = b.ins().load(types::I64, sflags(), pa, 0);
            let pb = index(b, bp, ob, 8);
            let pb = b.ins().load(types::I64, sflags(), pb, 0);
            let eq = same_bytes(b, pa, pb);
            let at = b.ins().iadd(yp, i);
            b.ins().store(sflags(), eq, at, 0);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Input(1), Operand::Output(0)],
        (total as u64, GRAIN),
        "equal_string",
        0,
    )))
}

/// Element strides of an input of shape `s` broadcast to `out` (0 along broadcast dims), or
/// `None` when it does not broadcast.
fn broadcast_strides(s: &[usize], out: &[usize]) -> Option<Vec<i64>> {
    if s.len() > out.len() {
        return None;
    }
    let own = strides(s);
    let lead = out.len() - s.len();
    (0..out.len())
        .map(|d| {
            if d < lead {
                return Some(0);
            }
            let k = d - lead;
            match s[k] {
                1 => Some(0),
                n if n == out[d] => Some(own[k] as i64),
                _ => None,
            }
        })
        .collect()
}

/// `Σ idx[d] · strides[d]`.
fn offset(b: &mut FunctionBuilder, idx: &[Value], strides: &[i64]) -> Value {
    let mut off = c64(b, 0);
    for (&i, &s) in idx.iter().zip(strides) {
        if s != 0 {
            let t = b.ins().imul_imm_s(i, s);
            off = b.ins().iadd(off, t);
        }
    }
    off
}

/// Whether the NUL-terminated byte strings at `pa` and `pb` are equal: an i8 0 or 1.
fn same_bytes(b: &mut FunctionBuilder, pa: Value, pb: Value) -> Value {
    let head = b.create_block();
    let same = b.create_block();
    let done = b.create_block();
    b.append_block_param(head, types::I64);
    b.append_block_param(done, types::I8);
    let zero = c64(b, 0);
    b.ins().jump(head, &[zero.into()]);

    b.switch_to_block(head);
    let k = b.block_params(head)[0];
    let a = b.ins().iadd(pa, k);
    let a = b.ins().load(types::I8, sflags(), a, 0);
    let c = b.ins().iadd(pb, k);
    let c = b.ins().load(types::I8, sflags(), c, 0);
    let differ = b.ins().icmp(IntCC::NotEqual, a, c);
    let no = b.ins().iconst(types::I8, 0);
    b.ins().brif(differ, done, &[no.into()], same, &[]);

    b.switch_to_block(same);
    let end = b.ins().icmp_imm_u(IntCC::Equal, a, 0);
    let yes = b.ins().iconst(types::I8, 1);
    let next = b.ins().iadd_imm_s(k, 1);
    b.ins().brif(end, done, &[yes.into()], head, &[next.into()]);

    b.switch_to_block(done);
    b.block_params(done)[0]
}
