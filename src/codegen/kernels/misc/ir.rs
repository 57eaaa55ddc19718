//! Small Cranelift IR building blocks shared by the family: operand pointers, counted loops,
//! constant-length byte copies and fills, 4-lane float helpers.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

use crate::codegen::kernel::KernelParams;

/// Bytes of data one work item of a copy-like kernel should move, at least.
pub const CHUNK: usize = 16 * 1024;

/// Flags for scalar accesses (in bounds, aligned to their size).
pub fn sflags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// Flags for 16-byte vector accesses, which may be unaligned (so never folded into an SSE
/// operand that requires alignment).
pub fn vflags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// `bufs[i]`.
pub fn buf(b: &mut FunctionBuilder, p: KernelParams, i: usize) -> Value {
    b.ins().load(types::I64, sflags(), p.bufs, (8 * i) as i32)
}

/// An i64 constant.
pub fn c64(b: &mut FunctionBuilder, v: i64) -> Value {
    b.ins().iconst(types::I64, v)
}

/// `base + off` for a compile-time byte offset (no instruction when 0).
pub fn add_off(b: &mut FunctionBuilder, base: Value, off: i64) -> Value {
    if off == 0 {
        base
    } else {
        b.ins().iadd_imm_s(base, off)
    }
}

/// `base + i * scale` for a run-time index.
pub fn index(b: &mut FunctionBuilder, base: Value, i: Value, scale: i64) -> Value {
    let o = match scale {
        0 => return base,
        1 => i,
        _ => b.ins().imul_imm_s(i, scale),
    };
    b.ins().iadd(base, o)
}

/// `for i in lo..hi { body(i) }` (signed compare, step 1). `body` may create blocks; it must
/// leave the builder in an unterminated block. Leaves the builder after the loop.
pub fn for_range(
    b: &mut FunctionBuilder,
    lo: Value,
    hi: Value,
    body: impl FnOnce(&mut FunctionBuilder, Value),
) {
    let head = b.create_block();
    let blk = b.create_block();
    let exit = b.create_block();
    b.append_block_param(head, types::I64);
    b.ins().jump(head, &[lo.into()]);
    b.switch_to_block(head);
    let i = b.block_params(head)[0];
    let more = b.ins().icmp(IntCC::SignedLessThan, i, hi);
    b.ins().brif(more, blk, &[], exit, &[]);
    b.switch_to_block(blk);
    body(b, i);
    let next = b.ins().iadd_imm_s(i, 1);
    b.ins().jump(head, &[next.into()]);
    b.switch_to_block(exit);
}

/// [`for_range`] over `0..n` for a compile-time `n`; unrolled when `n <= unroll`.
pub fn for_n(
    b: &mut FunctionBuilder,
    n: usize,
    unroll: usize,
    mut body: impl FnMut(&mut FunctionBuilder, Value),
) {
    if n <= unroll {
        for k in 0..n {
            let i = c64(b, k as i64);
            body(b, i);
        }
    } else {
        let lo = c64(b, 0);
        let hi = c64(b, n as i64);
        for_range(b, lo, hi, body);
    }
}

/// `if cond != 0 { body() }`. `body` may create blocks; it must leave the builder in an
/// unterminated block. Leaves the builder after the `if`.
pub fn if_then(b: &mut FunctionBuilder, cond: Value, body: impl FnOnce(&mut FunctionBuilder)) {
    let yes = b.create_block();
    let next = b.create_block();
    b.ins().brif(cond, yes, &[], next, &[]);
    b.switch_to_block(yes);
    body(b);
    b.ins().jump(next, &[]);
    b.switch_to_block(next);
}

/// The integer type of `size` bytes (1, 2, 4 or 8).
pub fn int_type(size: usize) -> Option<Type> {
    Some(match size {
        1 => types::I8,
        2 => types::I16,
        4 => types::I32,
        8 => types::I64,
        _ => return None,
    })
}

/// Copies `len` bytes (compile-time) from `src` to `dst`: 16-byte vectors, then the tail in
/// 8/4/2/1-byte pieces.
pub fn copy_bytes(b: &mut FunctionBuilder, src: Value, dst: Value, len: usize) {
    let nv = len / 16;
    for_n(b, nv, 4, |b, i| {
        let s = index(b, src, i, 16);
        let d = index(b, dst, i, 16);
        let v = b.ins().load(types::I8X16, vflags(), s, 0);
        b.ins().store(vflags(), v, d, 0);
    });
    let mut off = nv * 16;
    for piece in [8, 4, 2, 1] {
        while len - off >= piece {
            let ty = int_type(piece).expect("a power of two up to 8");
            let v = b.ins().load(ty, vflags(), src, off as i32);
            b.ins().store(vflags(), v, dst, off as i32);
            off += piece;
        }
    }
}

/// Fills `len` bytes (compile-time) at `dst` with the repeated element pattern `bits` of
/// `es` bytes (`len` a multiple of `es`).
pub fn fill_bytes(b: &mut FunctionBuilder, dst: Value, len: usize, es: usize, bits: u64) {
    let ety = int_type(es).expect("element sizes are 1, 2, 4 or 8");
    let vty = ety.by(16 / es as u32).expect("a 128-bit vector");
    let nv = len / 16;
    if nv > 0 {
        let e = b.ins().iconst(ety, bits as i64);
        let v = b.ins().splat(vty, e);
        for_n(b, nv, 4, |b, i| {
            let d = index(b, dst, i, 16);
            b.ins().store(vflags(), v, d, 0);
        });
    }
    let mut off = nv * 16;
    let e = b.ins().iconst(ety, bits as i64);
    while off < len {
        b.ins().store(vflags(), e, dst, off as i32);
        off += es;
    }
}

/// Copies bytes `lo..hi` (run time, `lo` a multiple of 16) from `src` to `dst`.
pub fn copy_bytes_dyn(b: &mut FunctionBuilder, src: Value, dst: Value, lo: Value, hi: Value) {
    let vhead = b.create_block();
    let vbody = b.create_block();
    let shead = b.create_block();
    let sbody = b.create_block();
    let exit = b.create_block();
    b.append_block_param(vhead, types::I64);
    b.append_block_param(shead, types::I64);
    b.ins().jump(vhead, &[lo.into()]);

    b.switch_to_block(vhead);
    let i = b.block_params(vhead)[0];
    let next = b.ins().iadd_imm_s(i, 16);
    let fits = b.ins().icmp(IntCC::SignedLessThanOrEqual, next, hi);
    b.ins().brif(fits, vbody, &[], shead, &[i.into()]);

    b.switch_to_block(vbody);
    let s = b.ins().iadd(src, i);
    let d = b.ins().iadd(dst, i);
    let v = b.ins().load(types::I8X16, vflags(), s, 0);
    b.ins().store(vflags(), v, d, 0);
    b.ins().jump(vhead, &[next.into()]);

    b.switch_to_block(shead);
    let j = b.block_params(shead)[0];
    let more = b.ins().icmp(IntCC::SignedLessThan, j, hi);
    b.ins().brif(more, sbody, &[], exit, &[]);

    b.switch_to_block(sbody);
    let s = b.ins().iadd(src, j);
    let d = b.ins().iadd(dst, j);
    let v = b.ins().load(types::I8, sflags(), s, 0);
    b.ins().store(sflags(), v, d, 0);
    let j1 = b.ins().iadd_imm_s(j, 1);
    b.ins().jump(shead, &[j1.into()]);

    b.switch_to_block(exit);
}

/// Splits a flat item index into a multi-index over `dims` (row-major) with one division per
/// dim; for the start of a range only.
pub fn unflatten(b: &mut FunctionBuilder, item: Value, dims: &[usize]) -> Vec<Value> {
    let mut idx = vec![item; dims.len()];
    let mut rem = item;
    for k in (0..dims.len()).rev() {
        if k == 0 {
            idx[0] = rem;
            break;
        }
        let d = c64(b, dims[k].max(1) as i64);
        idx[k] = b.ins().urem(rem, d);
        rem = b.ins().udiv(rem, d);
    }
    idx
}

/// `a > b ? a : b` on f32x4 (the `maxps a, b` idiom): NaN in `b` wins, NaN in `a` loses.
pub fn vmax_keep(b: &mut FunctionBuilder, a: Value, x: Value) -> Value {
    let c = b.ins().fcmp(FloatCC::LessThan, x, a);
    let c = b.ins().bitcast(types::F32X4, MemFlagsData::new(), c);
    b.ins().bitselect(c, a, x)
}

/// Horizontal reduction of an f32x4 with `f` (lanes 0+2, 1+3, then the two).
pub fn hreduce(
    b: &mut FunctionBuilder,
    v: Value,
    mut f: impl FnMut(&mut FunctionBuilder, Value, Value) -> Value,
) -> Value {
    let l: Vec<Value> = (0..4).map(|k| b.ins().extractlane(v, k as u8)).collect();
    let a = f(b, l[0], l[2]);
    let c = f(b, l[1], l[3]);
    f(b, a, c)
}
