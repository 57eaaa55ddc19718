//! Elementwise odds and ends the elementwise family does not take:
//!
//! - ConstantOfShape: a fill of the (static) output with the value's bit pattern.
//! - Cast between f32, f64, the integer types and bool, with the reference's (numpy
//!   `astype`) semantics exactly: integers wrap, floats truncate toward zero (NaN gives 0,
//!   negative values saturate through i64, positive ones through u64), integers convert to
//!   f32 through f64, non-zero (and NaN) is true. f16/bf16/string are declined.
//! - Where: bool condition, values of any fixed-size type, all three broadcasting.
//!
//! Cast and Where walk the output in rows of its innermost merged dim, one scalar element at a
//! time (they are rare and small in real models, or memory bound).

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Type, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::ir::{buf, c64, for_n, for_range, index, int_type, sflags, unflatten, CHUNK};
use super::{in_shape, input, out_shape, strides};
use crate::codegen::kernel::{KernelCx, Lowered, Operand};

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let Some(ys) = out_shape(g, node, 0) else {
        return Ok(None);
    };
    let odt = n.outputs[0].ty.dtype;
    match &n.op {
        Op::ConstantOfShape { value } => {
            let bits = match value {
                None => {
                    if odt != DType::F32 {
                        return Ok(None);
                    }
                    0
                }
                Some(t) => {
                    if t.len() != 1 || t.dtype() != odt || int_type(odt.size()).is_none() {
                        return Ok(None);
                    }
                    if odt == DType::String {
                        return Ok(None);
                    }
                    let Some(bytes) = crate::onnx::tensor::le_bytes(t) else {
                        return Ok(None);
                    };
                    let mut w = [0u8; 8];
                    let es = odt.size();
                    w[..es].copy_from_slice(bytes.get(..es).ok_or("constant size")?);
                    u64::from_le_bytes(w)
                }
            };
            let total = ys.iter().product::<usize>() * odt.size();
            if total == 0 {
                return Ok(Some(Lowered::default()));
            }
            let l = super::movement::fill_launch(cx, total, odt.size(), bits)?;
            Ok(Some(Lowered {
                launches: vec![l],
                scratch_bytes: 0,
            }))
        }
        Op::Cast { to, .. } => {
            let Some(x) = input(g, node, 0) else {
                return Ok(None);
            };
            let idt = g.dtype(x);
            if *to != odt || !castable(idt) || !castable(odt) {
                return Ok(None);
            }
            let Some(xs) = in_shape(g, node, 0) else {
                return Ok(None);
            };
            if xs != ys {
                return Ok(None);
            }
            let len: usize = ys.iter().product();
            cast(cx, len, idt, odt).map(Some)
        }
        Op::Where {} => {
            let (Some(c), Some(a), Some(b)) =
                (input(g, node, 0), input(g, node, 1), input(g, node, 2))
            else {
                return Ok(None);
            };
            let dt = g.dtype(a);
            if g.dtype(c) != DType::Bool
                || g.dtype(b) != dt
                || odt != dt
                || dt == DType::String
                || int_type(dt.size()).is_none()
            {
                return Ok(None);
            }
            let shapes: Option<Vec<Vec<usize>>> = (0..3).map(|i| in_shape(g, node, i)).collect();
            let Some(shapes) = shapes else {
                return Ok(None);
            };
            where_(cx, &shapes, &ys, dt.size())
        }
        _ => Ok(None),
    }
}

/// Element types Cast handles.
fn castable(dt: DType) -> bool {
    matches!(
        dt,
        DType::F32
            | DType::F64
            | DType::I8
            | DType::I16
            | DType::I32
            | DType::I64
            | DType::U8
            | DType::U16
            | DType::U32
            | DType::U64
            | DType::Bool
    )
}

/// The Cranelift type of a stored element.
fn mem_type(dt: DType) -> Type {
    match dt {
        DType::F32 => types::F32,
        DType::F64 => types::F64,
        _ => int_type(dt.size()).expect("castable types have 1..8 byte sizes"),
    }
}

fn is_unsigned(dt: DType) -> bool {
    matches!(
        dt,
        DType::U8 | DType::U16 | DType::U32 | DType::U64 | DType::Bool
    )
}

/// Converts one loaded element `v` of type `from` to `to` (reference semantics).
fn convert(b: &mut FunctionBuilder, v: Value, from: DType, to: DType) -> Value {
    let fl = |d: DType| matches!(d, DType::F32 | DType::F64);
    let tty = mem_type(to);
    if to == DType::Bool {
        let t = if fl(from) {
            let z = if from == DType::F32 {
                b.ins().f32const(0.0)
            } else {
                b.ins().f64const(0.0)
            };
            // NotEqual is true for NaN, like the reference's `v != 0.0`.
            b.ins().fcmp(FloatCC::NotEqual, v, z)
        } else {
            b.ins().icmp_imm_s(IntCC::NotEqual, v, 0)
        };
        return t; // an i8 0/1
    }
    match (fl(from), fl(to)) {
        (true, true) => {
            if from == DType::F32 {
                b.ins().fpromote(types::F64, v)
            } else {
                b.ins().fdemote(types::F32, v)
            }
        }
        (true, false) => {
            let d = if from == DType::F32 {
                b.ins().fpromote(types::F64, v)
            } else {
                v
            };
            // NaN -> 0; negative through i64 (saturating), the rest through u64; then wrap.
            let s = b.ins().fcvt_to_sint_sat(types::I64, d);
            let u = b.ins().fcvt_to_uint_sat(types::I64, d);
            let z = b.ins().f64const(0.0);
            let neg = b.ins().fcmp(FloatCC::LessThan, d, z);
            let r = b.ins().select(neg, s, u);
            if tty == types::I64 {
                r
            } else {
                b.ins().ireduce(tty, r)
            }
        }
        (false, true) => {
            let w = widen_int(b, v, from);
            let d = if is_unsigned(from) {
                b.ins().fcvt_from_uint(types::F64, w)
            } else {
                b.ins().fcvt_from_sint(types::F64, w)
            };
            if to == DType::F32 {
                b.ins().fdemote(types::F32, d)
            } else {
                d
            }
        }
        (false, false) => {
            let w = widen_int(b, v, from);
            if tty == types::I64 {
                w
            } else {
                b.ins().ireduce(tty, w)
            }
        }
    }
}

/// An integer element widened to i64 (sign- or zero-extended by its type).
fn widen_int(b: &mut FunctionBuilder, v: Value, from: DType) -> Value {
    if from.size() == 8 {
        v
    } else if is_unsigned(from) {
        b.ins().uextend(types::I64, v)
    } else {
        b.ins().sextend(types::I64, v)
    }
}

/// Cast of `len` contiguous elements; a work item is a chunk of 1024 elements.
fn cast(cx: &mut KernelCx, len: usize, from: DType, to: DType) -> Result<Lowered, String> {
    if len == 0 {
        return Ok(Lowered::default());
    }
    const BLOCK: usize = 1024;
    let (fs, ts) = (from.size() as i64, to.size() as i64);
    let fty = mem_type(from);
    let func = cx.define_kernel("cast", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        let lo = b.ins().imul_imm_s(p.begin, BLOCK as i64);
        let hi = b.ins().imul_imm_s(p.end, BLOCK as i64);
        let n = c64(b, len as i64);
        let hi = b.ins().smin(hi, n);
        for_range(b, lo, hi, |b, i| {
            let s = index(b, x, i, fs);
            let v = b.ins().load(fty, sflags(), s, 0);
            let r = convert(b, v, from, to);
            let d = index(b, y, i, ts);
            b.ins().store(sflags(), r, d, 0);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Lowered::one(
        func,
        vec![Operand::Input(0), Operand::Output(0)],
        (
            len.div_ceil(BLOCK) as u64,
            (CHUNK / BLOCK / 4).max(1) as u64,
        ),
        "cast",
        0,
    ))
}

/// Where with broadcasting: `y = c ? a : b`, elements of `es` bytes, `c` bool bytes.
fn where_(
    cx: &mut KernelCx,
    shapes: &[Vec<usize>],
    ys: &[usize],
    es: usize,
) -> Result<Option<Lowered>, String> {
    let r = ys.len();
    // The output must be exactly the broadcast of the inputs.
    let mut bshape = vec![1usize; r];
    for s in shapes {
        if s.len() > r {
            return Ok(None);
        }
        for (k, &d) in s.iter().enumerate() {
            let o = &mut bshape[r - s.len() + k];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return Ok(None);
            }
        }
    }
    if bshape != ys {
        return Ok(None);
    }
    // Byte strides of each input over the output's dims (0 where broadcast).
    let mut st: Vec<Vec<i64>> = Vec::new();
    for (i, s) in shapes.iter().enumerate() {
        if s.len() > r {
            return Ok(None);
        }
        let e = if i == 0 { 1 } else { es };
        let lead = r - s.len();
        let ss = strides(s);
        let mut v = vec![0i64; r];
        for k in 0..s.len() {
            if s[k] == ys[lead + k] {
                v[lead + k] = (ss[k] * e) as i64;
            } else if s[k] != 1 {
                return Ok(None);
            }
        }
        st.push(v);
    }
    let ost: Vec<i64> = strides(ys).iter().map(|&s| (s * es) as i64).collect();
    if ys.contains(&0) {
        return Ok(Some(Lowered::default()));
    }
    // Merge dims (dropping 1-sized ones) while every operand stays contiguous across them.
    let mut dims: Vec<usize> = Vec::new();
    let mut ss: Vec<[i64; 4]> = Vec::new();
    for k in 0..r {
        if ys[k] == 1 {
            continue;
        }
        let cur = [st[0][k], st[1][k], st[2][k], ost[k]];
        let n = ys[k] as i64;
        match (dims.last_mut(), ss.last_mut()) {
            (Some(d), Some(p)) if (0..4).all(|j| p[j] == cur[j] * n) => {
                *d *= ys[k];
                *p = cur;
            }
            _ => {
                dims.push(ys[k]);
                ss.push(cur);
            }
        }
    }
    if dims.is_empty() {
        dims.push(1);
        ss.push([1, es as i64, es as i64, es as i64]);
    }
    let m = dims.len();
    let inner = dims[m - 1];
    let last = ss[m - 1];
    let outer = dims[..m - 1].to_vec();
    let rows: usize = outer.iter().product();
    let ety = int_type(es).ok_or("element size")?;
    let func = cx.define_kernel("where", |b, p| {
        let base: Vec<Value> = (0..4).map(|i| buf(b, p, i)).collect();
        for_range(b, p.begin, p.end, |b, row| {
            let idx = unflatten(b, row, &outer);
            let mut ptr = base.clone();
            for (k, &iv) in idx.iter().enumerate() {
                for j in 0..4 {
                    ptr[j] = index(b, ptr[j], iv, ss[k][j]);
                }
            }
            for_n(b, inner, 4, |b, i| {
                let cp = index(b, ptr[0], i, last[0]);
                let c = b.ins().load(types::I8, sflags(), cp, 0);
                let ap = index(b, ptr[1], i, last[1]);
                let av = b.ins().load(ety, sflags(), ap, 0);
                let bp = index(b, ptr[2], i, last[2]);
                let bv = b.ins().load(ety, sflags(), bp, 0);
                let v = b.ins().select(c, av, bv);
                let yp = index(b, ptr[3], i, last[3]);
                b.ins().store(sflags(), v, yp, 0);
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![
            Operand::Input(0),
            Operand::Input(1),
            Operand::Input(2),
            Operand::Output(0),
        ],
        (rows as u64, (CHUNK / (inner * es).max(1)).max(1) as u64),
        "where",
        0,
    )))
}
