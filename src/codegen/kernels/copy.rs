//! Kernels: ops that only move bytes unchanged (Reshape, Flatten, Squeeze, Unsqueeze,
//! Identity, Dropout in inference, BitCast): one parallel copy of the input buffer into the output buffer, any element type.

use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use crate::codegen::kernel::{KernelCx, KernelParams, Lowered, Operand};

/// Bytes one work item copies.
pub const CHUNK: u64 = 16 * 1024;

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let moves = match n.op {
        Op::Reshape { .. }
        | Op::Flatten { .. }
        | Op::Squeeze {}
        | Op::Unsqueeze {}
        | Op::Identity {} => true,
        // Dropout in inference: the data unchanged (no mask output, training_mode absent or a
        // constant false).
        Op::Dropout { .. } => n.outputs.len() == 1 && inference_dropout(g, n),
        // The same bytes read as another type (what the reference evaluator does), when they
        // are the output's bytes exactly; bytes other than 0/1 are not a bool.
        Op::BitCast { to } => {
            let src = n.inputs.first().copied().flatten();
            let out = &n.outputs[0].ty;
            let bytes = |t: &graphc_passes::ir::TypeInfo| {
                t.shape.num_elements().map(|e| e * t.dtype.size())
            };
            src.is_some_and(|v| {
                let ty = g.ty(v);
                (to != DType::Bool || ty.dtype == DType::Bool)
                    && out.dtype != DType::String
                    && bytes(ty).is_some()
                    && bytes(ty) == bytes(out)
            })
        }
        _ => false,
    };
    if !moves {
        return Ok(None);
    }
    let Some(Some(src)) = n.inputs.first() else {
        return Ok(None);
    };
    let ty = g.ty(*src);
    let Some(dims) = ty.shape.as_known() else {
        return Ok(None);
    };
    if ty.dtype == DType::String {
        return Ok(None);
    }
    let size = ty.dtype.size();
    let bytes = (dims.iter().product::<usize>() * size) as u64;
    let func = emit_copy(cx, bytes)?;
    Ok(Some(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Output(0)],
        (bytes.div_ceil(CHUNK), 16),
        "copy",
        0,
    )))
}

fn inference_dropout(g: &Graph, n: &graphc_passes::ir::Node) -> bool {
    match n.inputs.get(2).copied().flatten() {
        None => true,
        Some(v) => match &g.node(v.node).op {
            Op::Constant { value } => value
                .cast(DType::Bool)
                .as_array::<bool>()
                .is_some_and(|a| a.iter().all(|t| !t)),
            _ => false,
        },
    }
}

/// A kernel copying `bytes` bytes from `bufs[0]` to `bufs[1]`; item `i` copies
/// `[i*CHUNK, min((i+1)*CHUNK, bytes))`.
pub fn emit_copy(cx: &mut KernelCx, bytes: u64) -> Result<cranelift_module::FuncId, String> {
    cx.define_kernel("copy", |b, p| {
        build_copy(b, p, bytes);
        Ok(())
    })
}

fn build_copy(b: &mut FunctionBuilder, p: KernelParams, bytes: u64) {
    // The operand table is aligned; the bytes copied need not be (no `aligned` flag, so
    // Cranelift never folds a load into an instruction that demands alignment).
    let table = MemFlagsData::trusted();
    let flags = MemFlagsData::new().with_notrap();
    let src = b.ins().load(types::I64, table, p.bufs, 0);
    let dst = b.ins().load(types::I64, table, p.bufs, 8);
    let lo = b.ins().imul_imm_s(p.begin, CHUNK as i64);
    let hi = b.ins().imul_imm_s(p.end, CHUNK as i64);
    let total = b.ins().iconst(types::I64, bytes as i64);
    let hi = b.ins().umin(hi, total);

    // Vector loop while 16 bytes remain, then a byte loop.
    let vhead = b.create_block();
    let vbody = b.create_block();
    let shead = b.create_block();
    let sbody = b.create_block();
    let exit = b.create_block();
    for blk in [vhead, shead] {
        b.append_block_param(blk, types::I64);
    }
    b.ins().jump(vhead, &[lo.into()]);

    b.switch_to_block(vhead);
    let i = b.block_params(vhead)[0];
    let next = b.ins().iadd_imm_s(i, 16);
    let fits = b.ins().icmp(
        cranelift_codegen::ir::condcodes::IntCC::UnsignedLessThanOrEqual,
        next,
        hi,
    );
    b.ins().brif(fits, vbody, &[], shead, &[i.into()]);

    b.switch_to_block(vbody);
    let s = b.ins().iadd(src, i);
    let d = b.ins().iadd(dst, i);
    let v = b.ins().load(types::I8X16, flags, s, 0);
    b.ins().store(flags, v, d, 0);
    b.ins().jump(vhead, &[next.into()]);

    b.switch_to_block(shead);
    let j = b.block_params(shead)[0];
    let more = b.ins().icmp(
        cranelift_codegen::ir::condcodes::IntCC::UnsignedLessThan,
        j,
        hi,
    );
    b.ins().brif(more, sbody, &[], exit, &[]);

    b.switch_to_block(sbody);
    let s = b.ins().iadd(src, j);
    let d = b.ins().iadd(dst, j);
    let v = b.ins().load(types::I8, flags, s, 0);
    b.ins().store(flags, v, d, 0);
    let j1 = b.ins().iadd_imm_s(j, 1);
    b.ins().jump(shead, &[j1.into()]);

    b.switch_to_block(exit);
    b.ins().return_(&[]);
}
