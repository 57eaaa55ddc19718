//! Data movement as strided copies: every op here becomes one or more [`Strided`] copies
//! (output rows copied from computed source addresses), plus a fill for Pad. Works for any
//! fixed-size element type, since nothing looks at the bytes.
//!
//! A [`Strided`] copy walks the output in rows (its innermost merged dim); a work item is a row
//! (or a 16 KiB chunk of the single row of a contiguous copy). Each call splits its first item
//! into a multi-index once, then advances it like an odometer, so there is no division per row.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, ConstantData, Immediate, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op, Tensor};

use super::ir::{
    add_off, buf, c64, copy_bytes, copy_bytes_dyn, fill_bytes, for_n, for_range, index, int_type,
    sflags, unflatten, CHUNK,
};
use super::{const_input, in_shape, input, norm_axis, out_shape, strides};
use crate::codegen::kernel::{KernelCx, Launch, Lowered, Operand};

/// A copy of a `dims`-shaped block: element `i` (a multi-index) goes from byte
/// `src_off + sum(i[k] * src[k])` of the source to byte `dst_off + sum(i[k] * dst[k])` of the
/// destination. Strides are in bytes and may be negative (reversed slices) or zero (broadcast).
#[derive(Clone, Debug, PartialEq)]
pub struct Strided {
    /// Element size in bytes (1, 2, 4 or 8).
    pub es: usize,
    /// The block's shape.
    pub dims: Vec<usize>,
    /// Source byte strides.
    pub src: Vec<i64>,
    /// Destination byte strides.
    pub dst: Vec<i64>,
    /// Source byte offset.
    pub src_off: i64,
    /// Destination byte offset.
    pub dst_off: i64,
}

impl Strided {
    /// A copy whose destination is a whole contiguous tensor of shape `dims`.
    fn into_dense(es: usize, dims: &[usize], src: Vec<i64>, src_off: i64) -> Strided {
        let dst = strides(dims).iter().map(|&s| (s * es) as i64).collect();
        Strided {
            es,
            dims: dims.to_vec(),
            src,
            dst,
            src_off,
            dst_off: 0,
        }
    }

    /// Drops 1-sized dims and merges dims that are contiguous in both source and destination.
    /// `None` when the block is empty.
    fn normalized(&self) -> Option<Strided> {
        if self.dims.contains(&0) {
            return None;
        }
        let mut m: Vec<(usize, i64, i64)> = Vec::new();
        for k in 0..self.dims.len() {
            let (n, s, t) = (self.dims[k], self.src[k], self.dst[k]);
            if n == 1 {
                continue;
            }
            match m.last_mut() {
                Some(o) if o.1 == s * n as i64 && o.2 == t * n as i64 => {
                    *o = (o.0 * n, s, t);
                }
                _ => m.push((n, s, t)),
            }
        }
        if m.is_empty() {
            m.push((1, self.es as i64, self.es as i64));
        }
        Some(Strided {
            es: self.es,
            dims: m.iter().map(|x| x.0).collect(),
            src: m.iter().map(|x| x.1).collect(),
            dst: m.iter().map(|x| x.2).collect(),
            src_off: self.src_off,
            dst_off: self.dst_off,
        })
    }
}

/// Compiles a strided copy from operand `from` to operand `to`; `None` when it moves nothing.
pub fn strided_launch(
    cx: &mut KernelCx,
    copy: &Strided,
    from: Operand,
    to: Operand,
    name: &str,
) -> Result<Option<Launch>, String> {
    int_type(copy.es).ok_or_else(|| format!("element size {}", copy.es))?;
    let Some(c) = copy.normalized() else {
        return Ok(None);
    };
    let r = c.dims.len();
    let n = c.dims[r - 1];
    let (ss, ds) = (c.src[r - 1], c.dst[r - 1]);
    let es = c.es;
    let row_bytes = n * es;
    let contiguous = ss == es as i64 && ds == es as i64;
    let rows: usize = c.dims[..r - 1].iter().product();
    if rows == 1 && contiguous {
        // One long run: chunks of it.
        let (so, dof) = (c.src_off, c.dst_off);
        let func = cx.define_kernel(name, |b, p| {
            let src = buf(b, p, 0);
            let dst = buf(b, p, 1);
            let src = add_off(b, src, so);
            let dst = add_off(b, dst, dof);
            let lo = b.ins().imul_imm_s(p.begin, CHUNK as i64);
            let hi = b.ins().imul_imm_s(p.end, CHUNK as i64);
            let total = c64(b, row_bytes as i64);
            let hi = b.ins().smin(hi, total);
            copy_bytes_dyn(b, src, dst, lo, hi);
            b.ins().return_(&[]);
            Ok(())
        })?;
        return Ok(Some(Launch {
            func,
            operands: vec![from, to],
            items: row_bytes.div_ceil(CHUNK) as u64,
            grain: 1,
            name: name.into(),
        }));
    }
    let outer = c.dims[..r - 1].to_vec();
    let c2 = c.clone();
    let func = cx.define_kernel(name, move |b, p| {
        let src = buf(b, p, 0);
        let dst = buf(b, p, 1);
        let src = add_off(b, src, c2.src_off);
        let dst = add_off(b, dst, c2.dst_off);
        let ety = int_type(es).expect("checked");
        rows_loop(b, p.begin, p.end, &outer, &c2.src, &c2.dst, |b, so, dof| {
            let sp = b.ins().iadd(src, so);
            let dp = b.ins().iadd(dst, dof);
            if contiguous {
                copy_bytes(b, sp, dp, row_bytes);
            } else {
                for_n(b, n, 4, |b, j| {
                    let s = index(b, sp, j, ss);
                    let d = index(b, dp, j, ds);
                    let v = b.ins().load(ety, sflags(), s, 0);
                    b.ins().store(sflags(), v, d, 0);
                });
            }
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Launch {
        func,
        operands: vec![from, to],
        items: rows as u64,
        grain: (CHUNK / row_bytes.max(1)).max(1) as u64,
        name: name.into(),
    }))
}

/// Runs `row(src_off, dst_off)` for the rows `begin..end` of an `outer`-shaped grid whose
/// byte strides are `src[k]`, `dst[k]` (extra trailing strides are ignored). Offsets advance
/// like an odometer.
pub fn rows_loop(
    b: &mut FunctionBuilder,
    begin: Value,
    end: Value,
    outer: &[usize],
    src: &[i64],
    dst: &[i64],
    row: impl FnOnce(&mut FunctionBuilder, Value, Value),
) {
    let idx0 = unflatten(b, begin, outer);
    let vars: Vec<_> = idx0
        .iter()
        .map(|&v| {
            let var = b.declare_var(types::I64);
            b.def_var(var, v);
            var
        })
        .collect();
    let mut so = c64(b, 0);
    let mut dof = c64(b, 0);
    for k in 0..outer.len() {
        so = {
            let t = b.ins().imul_imm_s(idx0[k], src[k]);
            b.ins().iadd(so, t)
        };
        dof = {
            let t = b.ins().imul_imm_s(idx0[k], dst[k]);
            b.ins().iadd(dof, t)
        };
    }
    let so_v = b.declare_var(types::I64);
    let do_v = b.declare_var(types::I64);
    b.def_var(so_v, so);
    b.def_var(do_v, dof);
    let outer = outer.to_vec();
    let (src, dst) = (src.to_vec(), dst.to_vec());
    for_range(b, begin, end, move |b, _| {
        let so = b.use_var(so_v);
        let dof = b.use_var(do_v);
        row(b, so, dof);
        let cont = b.create_block();
        for k in (0..outer.len()).rev() {
            let i = b.use_var(vars[k]);
            let i = b.ins().iadd_imm_s(i, 1);
            b.def_var(vars[k], i);
            let so = b.use_var(so_v);
            let so = b.ins().iadd_imm_s(so, src[k]);
            b.def_var(so_v, so);
            let dof = b.use_var(do_v);
            let dof = b.ins().iadd_imm_s(dof, dst[k]);
            b.def_var(do_v, dof);
            if k == 0 {
                b.ins().jump(cont, &[]);
                break;
            }
            let more = b
                .ins()
                .icmp_imm_s(IntCC::SignedLessThan, i, outer[k] as i64);
            let carry = b.create_block();
            b.ins().brif(more, cont, &[], carry, &[]);
            b.switch_to_block(carry);
            let zero = c64(b, 0);
            b.def_var(vars[k], zero);
            let so = b.ins().iadd_imm_s(so, -src[k] * outer[k] as i64);
            b.def_var(so_v, so);
            let dof = b.ins().iadd_imm_s(dof, -dst[k] * outer[k] as i64);
            b.def_var(do_v, dof);
        }
        if outer.is_empty() {
            b.ins().jump(cont, &[]);
        }
        b.switch_to_block(cont);
    });
}

/// See [`super`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    let Some(x) = input(g, node, 0) else {
        return Ok(None);
    };
    let dt = g.dtype(x);
    if dt == DType::String || int_type(dt.size()).is_none() {
        return Ok(None);
    }
    if n.outputs.iter().any(|o| o.ty.dtype != dt) {
        return Ok(None);
    }
    let es = dt.size();
    let Some(xs) = in_shape(g, node, 0) else {
        return Ok(None);
    };
    let outs: Option<Vec<Vec<usize>>> = (0..n.outputs.len())
        .map(|i| out_shape(g, node, i))
        .collect();
    let Some(outs) = outs else {
        return Ok(None);
    };
    let xst: Vec<i64> = strides(&xs).iter().map(|&s| (s * es) as i64).collect();
    let mut launches = Vec::new();
    let mut push = |cx: &mut KernelCx, c: &Strided, from, to, name: &str| -> Result<(), String> {
        if let Some(l) = strided_launch(cx, c, from, to, name)? {
            launches.push(l);
        }
        Ok(())
    };
    match &n.op {
        Op::Transpose { perm } => {
            let r = xs.len();
            let perm: Vec<usize> = match perm {
                None => (0..r).rev().collect(),
                Some(p) => {
                    let v: Option<Vec<usize>> = p.iter().map(|&a| norm_axis(a, r)).collect();
                    let Some(v) = v else { return Ok(None) };
                    let mut seen = v.clone();
                    seen.sort_unstable();
                    if v.len() != r || seen != (0..r).collect::<Vec<_>>() {
                        return Ok(None);
                    }
                    v
                }
            };
            let dims: Vec<usize> = perm.iter().map(|&a| xs[a]).collect();
            if outs[0] != dims {
                return Ok(None);
            }
            let src = perm.iter().map(|&a| xst[a]).collect();
            let c = Strided::into_dense(es, &dims, src, 0);
            match transpose_4x4(cx, &c)? {
                Some(l) => launches.push(l),
                None => push(cx, &c, Operand::Input(0), Operand::Output(0), "transpose")?,
            }
        }
        Op::Concat { axis } => {
            let r = outs[0].len();
            let Some(ax) = norm_axis(*axis, r) else {
                return Ok(None);
            };
            let ost: Vec<i64> = strides(&outs[0]).iter().map(|&s| (s * es) as i64).collect();
            let mut at = 0usize;
            for i in 0..n.inputs.len() {
                let Some(s) = in_shape(g, node, i) else {
                    return Ok(None);
                };
                if s.len() != r || (0..r).any(|k| k != ax && s[k] != outs[0][k]) {
                    return Ok(None);
                }
                let c = Strided {
                    es,
                    dims: s.clone(),
                    src: strides(&s).iter().map(|&v| (v * es) as i64).collect(),
                    dst: ost.clone(),
                    src_off: 0,
                    dst_off: at as i64 * ost[ax],
                };
                push(cx, &c, Operand::Input(i), Operand::Output(0), "concat")?;
                at += s[ax];
            }
            if at != outs[0][ax] {
                return Ok(None);
            }
        }
        Op::Split { axis, .. } => {
            let r = xs.len();
            let Some(ax) = norm_axis(*axis, r) else {
                return Ok(None);
            };
            // The output shapes say the split sizes; they must tile the axis.
            let mut at = 0usize;
            for (i, s) in outs.iter().enumerate() {
                if s.len() != r || (0..r).any(|k| k != ax && s[k] != xs[k]) {
                    return Ok(None);
                }
                let c = Strided::into_dense(es, s, xst.clone(), at as i64 * xst[ax]);
                push(cx, &c, Operand::Input(0), Operand::Output(i), "split")?;
                at += s[ax];
            }
            if at != xs[ax] || !split_sizes_match(g, node, &outs, ax, xs[ax]) {
                return Ok(None);
            }
        }
        Op::Slice {} => {
            let Some(c) = slice_copy(g, node, &xs, &outs[0], es) else {
                return Ok(None);
            };
            push(cx, &c, Operand::Input(0), Operand::Output(0), "slice")?;
        }
        Op::Expand {} => {
            let o = &outs[0];
            if o.len() < xs.len() {
                return Ok(None);
            }
            let lead = o.len() - xs.len();
            let mut src = vec![0i64; o.len()];
            for k in 0..xs.len() {
                if xs[k] == o[lead + k] {
                    src[lead + k] = xst[k];
                } else if xs[k] != 1 {
                    return Ok(None);
                }
            }
            // The shape input must agree with the recorded output shape.
            if let Some(t) = const_input(g, node, 1) {
                let Ok(want) = t.to_i64_vec() else {
                    return Ok(None);
                };
                let r = want.len().max(xs.len());
                if r != o.len() {
                    return Ok(None);
                }
            }
            let c = Strided::into_dense(es, o, src, 0);
            push(cx, &c, Operand::Input(0), Operand::Output(0), "expand")?;
        }
        Op::Tile {} => {
            let o = &outs[0];
            if o.len() != xs.len() || (0..o.len()).any(|k| xs[k] == 0 && o[k] != 0) {
                return Ok(None);
            }
            let mut dims = Vec::new();
            let mut src = Vec::new();
            let mut dst = Vec::new();
            let ost = strides(o);
            for k in 0..o.len() {
                if xs[k] == 0 || o[k] % xs[k] != 0 {
                    if o[k] == 0 {
                        return Ok(Some(Lowered::default()));
                    }
                    return Ok(None);
                }
                dims.extend([o[k] / xs[k], xs[k]]);
                src.extend([0, xst[k]]);
                dst.extend([(xs[k] * ost[k] * es) as i64, (ost[k] * es) as i64]);
            }
            let c = Strided {
                es,
                dims,
                src,
                dst,
                src_off: 0,
                dst_off: 0,
            };
            push(cx, &c, Operand::Input(0), Operand::Output(0), "tile")?;
        }
        Op::Pad { mode } => {
            let Some((begin, end)) = pad_amounts(g, node, xs.len()) else {
                return Ok(None);
            };
            if mode != "constant" {
                return table_pad(cx, &xs, &outs[0], es, &begin, &end, mode);
            }
            let Some(fill) = pad_fill(g, node, es) else {
                return Ok(None);
            };
            if !constant_pad(cx, &xs, &outs[0], es, &begin, &end, fill, &mut launches)? {
                return Ok(None);
            }
        }
        Op::CenterCropPad { axes } => {
            let Some((begin, end)) = center_crop_pad_amounts(g, node, &xs, axes.as_deref()) else {
                return Ok(None);
            };
            let fill = PadFill::Bits(0);
            if !constant_pad(cx, &xs, &outs[0], es, &begin, &end, fill, &mut launches)? {
                return Ok(None);
            }
        }
        Op::Gather { axis } => return gather(cx, g, node, *axis, &xs, &outs[0], es),
        _ => return Ok(None),
    }
    Ok(Some(Lowered {
        launches,
        scratch_bytes: 0,
    }))
}

/// Whether a Split's `split` input (when present) agrees with the output shapes.
fn split_sizes_match(g: &Graph, node: NodeId, outs: &[Vec<usize>], ax: usize, d: usize) -> bool {
    match input(g, node, 1) {
        None => {
            // Even split: ceil(d / n) each, the last one smaller.
            let k = outs.len();
            let chunk = d.div_ceil(k.max(1));
            outs.iter().enumerate().all(|(i, s)| {
                s[ax]
                    == if i + 1 < k {
                        chunk
                    } else {
                        d - chunk * (k - 1)
                    }
            })
        }
        Some(_) => match const_input(g, node, 1).map(Tensor::to_i64_vec) {
            Some(Ok(v)) => {
                v.len() == outs.len() && v.iter().zip(outs).all(|(&s, o)| s == o[ax] as i64)
            }
            _ => false,
        },
    }
}

/// Start and count of a Python-style slice with ONNX clamping (the reference's rule).
fn slice_range(start: i64, end: i64, step: i64, d: usize) -> (i128, usize) {
    let (d, step) = (d as i128, step as i128);
    let norm =
        |v: i64, lo: i128, hi: i128| (if v < 0 { v as i128 + d } else { v as i128 }).clamp(lo, hi);
    let (s, e) = if step > 0 {
        (norm(start, 0, d), norm(end, 0, d))
    } else {
        (norm(start, 0, d - 1), norm(end, -1, d - 1))
    };
    let n = if step > 0 && e > s {
        (e - s - 1) / step + 1
    } else if step < 0 && s > e {
        (s - e - 1) / -step + 1
    } else {
        0
    };
    (s, n as usize)
}

/// The copy of a Slice with constant starts/ends/axes/steps.
fn slice_copy(g: &Graph, node: NodeId, xs: &[usize], out: &[usize], es: usize) -> Option<Strided> {
    let r = xs.len();
    let ints = |i: usize| const_input(g, node, i).and_then(|t| t.to_i64_vec().ok());
    let starts = ints(1)?;
    let ends = ints(2)?;
    let axes: Vec<usize> = match input(g, node, 3) {
        Some(_) => ints(3)?
            .iter()
            .map(|&a| norm_axis(a, r))
            .collect::<Option<_>>()?,
        None => (0..starts.len()).collect(),
    };
    let steps = match input(g, node, 4) {
        Some(_) => ints(4)?,
        None => vec![1; starts.len()],
    };
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return None;
    }
    let xst = strides(xs);
    let mut dims = xs.to_vec();
    let mut src: Vec<i64> = xst.iter().map(|&s| (s * es) as i64).collect();
    let mut off = 0i64;
    let mut seen = vec![false; r];
    for i in 0..axes.len() {
        let a = axes[i];
        if a >= r || seen[a] || steps[i] == 0 {
            return None;
        }
        seen[a] = true;
        let (s, n) = slice_range(starts[i], ends[i], steps[i], xs[a]);
        dims[a] = n;
        if n > 0 {
            off += s as i64 * src[a];
        }
        src[a] = src[a].checked_mul(steps[i])?;
    }
    if dims != out {
        return None;
    }
    Some(Strided::into_dense(es, &dims, src, off))
}

/// Per-axis pads (added before, after; negative crops) of a Pad with constant `pads` and
/// `axes`.
fn pad_amounts(g: &Graph, node: NodeId, r: usize) -> Option<(Vec<i64>, Vec<i64>)> {
    let pads = const_input(g, node, 1)?.to_i64_vec().ok()?;
    let axes: Vec<usize> = match input(g, node, 3) {
        Some(_) => const_input(g, node, 3)?
            .to_i64_vec()
            .ok()?
            .iter()
            .map(|&a| norm_axis(a, r))
            .collect::<Option<_>>()?,
        None => (0..r).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return None;
    }
    let mut begin = vec![0i64; r];
    let mut end = vec![0i64; r];
    for (i, &a) in axes.iter().enumerate() {
        begin[a] = pads[i];
        end[a] = pads[i + axes.len()];
    }
    Some((begin, end))
}

/// CenterCropPad with a constant `shape` as pads: a crop takes `(d - s) / 2` off the start
/// and the rest off the end; a pad adds `(s - d) / 2` zeros before and the rest after.
fn center_crop_pad_amounts(
    g: &Graph,
    node: NodeId,
    xs: &[usize],
    axes: Option<&[i64]>,
) -> Option<(Vec<i64>, Vec<i64>)> {
    let r = xs.len();
    let target = const_input(g, node, 1)?.to_i64_vec().ok()?;
    let axes: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&a| norm_axis(a, r)).collect::<Option<_>>()?,
        None => (0..r).collect(),
    };
    if target.len() != axes.len() {
        return None;
    }
    let mut begin = vec![0i64; r];
    let mut end = vec![0i64; r];
    for (&a, &s) in axes.iter().zip(&target) {
        let d = xs[a] as i64;
        if s < 0 {
            return None;
        }
        let (b, e) = if s <= d {
            let off = (d - s) / 2;
            (-off, -(d - s - off))
        } else {
            let off = (s - d) / 2;
            (off, s - d - off)
        };
        begin[a] = b;
        end[a] = e;
    }
    Some((begin, end))
}

/// What a constant-mode Pad fills with: a compile-time element, or the `constant_value`
/// input read when the kernel runs.
#[derive(Clone, Copy, Debug)]
enum PadFill {
    Bits(u64),
    Input(usize),
}

/// The fill of a constant-mode Pad: absent or empty `constant_value` is zero.
fn pad_fill(g: &Graph, node: NodeId, es: usize) -> Option<PadFill> {
    let Some(v) = input(g, node, 2) else {
        return Some(PadFill::Bits(0));
    };
    let x = input(g, node, 0)?;
    if g.dtype(v) != g.dtype(x) {
        return None;
    }
    match const_input(g, node, 2) {
        Some(t) if t.is_empty() => Some(PadFill::Bits(0)),
        Some(t) => {
            if t.len() != 1 {
                return None;
            }
            let bytes = crate::onnx::tensor::le_bytes(t)?;
            let mut w = [0u8; 8];
            w[..es].copy_from_slice(bytes.get(..es)?);
            Some(PadFill::Bits(u64::from_le_bytes(w)))
        }
        // A run-time value: one element (an empty one would mean zero, which only a
        // constant can say).
        None => {
            (g.ty(v).shape.as_known()?.iter().product::<usize>() == 1).then_some(PadFill::Input(2))
        }
    }
}

/// A constant-mode pad (or crop) of `xs` to `out`: a fill of the whole output, then the
/// interior copy. `false` when the amounts do not give `out`.
#[allow(clippy::too_many_arguments)]
fn constant_pad(
    cx: &mut KernelCx,
    xs: &[usize],
    out: &[usize],
    es: usize,
    begin: &[i64],
    end: &[i64],
    fill: PadFill,
    launches: &mut Vec<Launch>,
) -> Result<bool, String> {
    let Some(copy) = pad_copy(xs, out, es, begin, end) else {
        return Ok(false);
    };
    let total = out.iter().product::<usize>() * es;
    if total > 0 {
        launches.push(match fill {
            PadFill::Bits(bits) => fill_launch(cx, total, es, bits)?,
            PadFill::Input(slot) => fill_from_input(cx, total / es, es, slot)?,
        });
    }
    if let Some(l) = strided_launch(cx, &copy, Operand::Input(0), Operand::Output(0), "pad")? {
        launches.push(l);
    }
    Ok(true)
}

/// The interior copy of a constant-mode Pad: input element `i - begin` to output element `i`
/// where both exist.
fn pad_copy(xs: &[usize], out: &[usize], es: usize, begin: &[i64], end: &[i64]) -> Option<Strided> {
    let r = xs.len();
    let xst = strides(xs);
    let ost = strides(out);
    let mut dims = vec![0usize; r];
    let (mut so, mut dof) = (0i64, 0i64);
    for k in 0..r {
        let (d, b, e) = (xs[k] as i64, begin[k], end[k]);
        if d + b + e != out[k] as i64 || d + b + e < 0 {
            return None;
        }
        let lo = (-b).max(0); // first input index kept
        let hi = d - (-e).max(0); // one past the last
        dims[k] = (hi - lo).max(0) as usize;
        so += lo * (xst[k] * es) as i64;
        dof += b.max(0) * (ost[k] * es) as i64;
    }
    Some(Strided {
        es,
        dims,
        src: xst.iter().map(|&s| (s * es) as i64).collect(),
        dst: ost.iter().map(|&s| (s * es) as i64).collect(),
        src_off: so,
        dst_off: dof,
    })
}

/// An edge, reflect or wrap Pad as a gather through per-axis index tables, built by the
/// reference's rule: output `j` of an axis reads input `j - begin` mapped back into range.
fn table_pad(
    cx: &mut KernelCx,
    xs: &[usize],
    out: &[usize],
    es: usize,
    begin: &[i64],
    end: &[i64],
    mode: &str,
) -> Result<Option<Lowered>, String> {
    let r = xs.len();
    if r == 0 || !matches!(mode, "edge" | "reflect" | "wrap") {
        return Ok(None);
    }
    let mut tabs = Vec::with_capacity(r);
    for k in 0..r {
        let (d, b) = (xs[k] as i64, begin[k]);
        let n = d + b + end[k];
        if n != out[k] as i64 || n < 0 || (d == 0 && n > 0) {
            return Ok(None);
        }
        let tab: Vec<usize> = (0..n)
            .map(|j| {
                let p = j - b;
                (match mode {
                    "edge" => p.clamp(0, d - 1),
                    "wrap" => p.rem_euclid(d),
                    _ if d == 1 => 0,
                    _ => {
                        let q = p.rem_euclid(2 * (d - 1));
                        if q < d {
                            q
                        } else {
                            2 * (d - 1) - q
                        }
                    }
                }) as usize
            })
            .collect();
        tabs.push(tab);
    }
    if out.contains(&0) {
        return Ok(Some(Lowered::default()));
    }
    let last_same = begin[r - 1] == 0 && end[r - 1] == 0;
    super::resize::table_gather(cx, "pad_table", xs, out, &tabs, last_same, es).map(Some)
}

/// A launch filling the `n` elements of output 0 with the element of input `slot`, read when
/// the kernel runs.
fn fill_from_input(cx: &mut KernelCx, n: usize, es: usize, slot: usize) -> Result<Launch, String> {
    let ety = int_type(es).ok_or("element size")?;
    let per = (CHUNK / es) as i64;
    let func = cx.define_kernel("pad_fill", |b, p| {
        let v = buf(b, p, 0);
        let dst = buf(b, p, 1);
        let v = b.ins().load(ety, sflags(), v, 0);
        for_range(b, p.begin, p.end, |b, item| {
            let lo = b.ins().imul_imm_s(item, per);
            let hi = b.ins().iadd_imm_s(lo, per);
            let total = c64(b, n as i64);
            let hi = b.ins().smin(hi, total);
            for_range(b, lo, hi, |b, e| {
                let d = index(b, dst, e, es as i64);
                b.ins().store(sflags(), v, d, 0);
            });
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Launch {
        func,
        operands: vec![Operand::Input(slot), Operand::Output(0)],
        items: (n as u64).div_ceil(per as u64),
        grain: 1,
        name: "pad.fill".into(),
    })
}

/// A launch filling `total` bytes of output 0 with the element pattern `bits`.
pub(super) fn fill_launch(
    cx: &mut KernelCx,
    total: usize,
    es: usize,
    bits: u64,
) -> Result<Launch, String> {
    let func = cx.define_kernel("fill", |b, p| {
        let dst = buf(b, p, 0);
        // Whole chunks, then the last partial chunk in elements.
        let full = total / CHUNK;
        let tail = total % CHUNK;
        let limit = c64(b, full as i64);
        let hi = b.ins().smin(p.end, limit);
        for_range(b, p.begin, hi, |b, i| {
            let d = index(b, dst, i, CHUNK as i64);
            fill_bytes(b, d, CHUNK, es, bits);
        });
        if tail > 0 {
            let last = b
                .ins()
                .icmp_imm_s(IntCC::SignedGreaterThan, p.end, full as i64);
            let yes = b.create_block();
            let done = b.create_block();
            b.ins().brif(last, yes, &[], done, &[]);
            b.switch_to_block(yes);
            let d = add_off(b, dst, (full * CHUNK) as i64);
            fill_bytes(b, d, tail, es, bits);
            b.ins().jump(done, &[]);
            b.switch_to_block(done);
        }
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Launch {
        func,
        operands: vec![Operand::Output(0)],
        items: total.div_ceil(CHUNK) as u64,
        grain: 1,
        name: "pad.fill".into(),
    })
}

/// Gather along `axis` with i64 or i32 indices, constant or not. Each item copies one block
/// of `inner` elements; an index outside `[-d, d)` (only possible at run time: constant
/// indices are checked here) yields a zero block, never an out-of-bounds access.
fn gather(
    cx: &mut KernelCx,
    g: &Graph,
    node: NodeId,
    axis: i64,
    xs: &[usize],
    out: &[usize],
    es: usize,
) -> Result<Option<Lowered>, String> {
    let Some(iv) = input(g, node, 1) else {
        return Ok(None);
    };
    let Some(ishape) = in_shape(g, node, 1) else {
        return Ok(None);
    };
    let Some(ax) = norm_axis(axis, xs.len()) else {
        return Ok(None);
    };
    let want: Vec<usize> = xs[..ax]
        .iter()
        .chain(&ishape)
        .chain(&xs[ax + 1..])
        .copied()
        .collect();
    if want != out {
        return Ok(None);
    }
    let d = xs[ax];
    let outer: usize = xs[..ax].iter().product();
    let inner: usize = xs[ax + 1..].iter().product();
    let nidx: usize = ishape.iter().product();
    let items = outer * nidx;
    if items == 0 || inner == 0 {
        return Ok(Some(Lowered::default()));
    }
    // Constant indices become a normalized i64 table (or decline when one is out of range).
    let (idx_op, isz) = match const_input(g, node, 1) {
        Some(t) => {
            let Ok(v) = t.to_i64_vec() else {
                return Ok(None);
            };
            let mut norm = Vec::with_capacity(v.len());
            for i in v {
                let j = if i < 0 { i + d as i64 } else { i };
                if j < 0 || j >= d as i64 {
                    return Ok(None);
                }
                norm.push(j);
            }
            let bytes = norm.iter().flat_map(|v| v.to_le_bytes()).collect();
            (Operand::Const(cx.add_const("gather_idx", bytes)?), 8)
        }
        None => match g.dtype(iv) {
            DType::I64 => (Operand::Input(1), 8),
            DType::I32 => (Operand::Input(1), 4),
            _ => return Ok(None),
        },
    };
    let row = inner * es;
    let func = cx.define_kernel("gather", |b, p| {
        let data = buf(b, p, 0);
        let idx = buf(b, p, 1);
        let dst = buf(b, p, 2);
        // Row r = (o, j); source block (o * d + idx[j]) * inner.
        let strides_src = [(d * row) as i64, 0];
        let strides_dst = [(nidx * row) as i64, row as i64];
        let pos = unflatten(b, p.begin, &[outer, nidx]);
        let jv = b.declare_var(types::I64);
        b.def_var(jv, pos[1]);
        rows_loop(
            b,
            p.begin,
            p.end,
            &[outer, nidx],
            &strides_src,
            &strides_dst,
            |b, so, dof| {
                let j = b.use_var(jv);
                let ia = index(b, idx, j, isz);
                let i = if isz == 8 {
                    b.ins().load(types::I64, sflags(), ia, 0)
                } else {
                    let v = b.ins().load(types::I32, sflags(), ia, 0);
                    b.ins().sextend(types::I64, v)
                };
                let neg = b.ins().icmp_imm_s(IntCC::SignedLessThan, i, 0);
                let wrapped = b.ins().iadd_imm_s(i, d as i64);
                let i = b.ins().select(neg, wrapped, i);
                let ok = b.ins().icmp_imm_s(IntCC::UnsignedLessThan, i, d as i64);
                let dp = b.ins().iadd(dst, dof);
                let yes = b.create_block();
                let no = b.create_block();
                let next = b.create_block();
                b.ins().brif(ok, yes, &[], no, &[]);
                b.switch_to_block(yes);
                let sp = b.ins().iadd(data, so);
                let sp = index(b, sp, i, row as i64);
                copy_bytes(b, sp, dp, row);
                b.ins().jump(next, &[]);
                b.switch_to_block(no);
                fill_bytes(b, dp, row, es, 0);
                b.ins().jump(next, &[]);
                b.switch_to_block(next);
                // Track j = item % nidx alongside the odometer.
                let j1 = b.ins().iadd_imm_s(j, 1);
                let wrap = b
                    .ins()
                    .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, j1, nidx as i64);
                let zero = c64(b, 0);
                let j1 = b.ins().select(wrap, zero, j1);
                b.def_var(jv, j1);
            },
        );
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Lowered::one(
        func,
        vec![Operand::Input(0), idx_op, Operand::Output(0)],
        (items as u64, (CHUNK / row.max(1)).max(1) as u64),
        "gather",
        0,
    )))
}

/// A 4-byte-element transpose whose output's innermost dim `I` is strided in the input while
/// another dim `J` is contiguous there (e.g. `[B, S, H, D]` with perm `[0, 2, 3, 1]`), as 4x4
/// blocks: four f32x4 loads along `J`, an in-register transpose, four f32x4 stores along `I`.
/// A work item is one block column: four consecutive `J` indices (fewer at the end) of one
/// outer index, over the whole `I` row. `None` when the shape does not fit this pattern.
fn transpose_4x4(cx: &mut KernelCx, copy: &Strided) -> Result<Option<Launch>, String> {
    if copy.es != 4 {
        return Ok(None);
    }
    let Some(c) = copy.normalized() else {
        return Ok(None);
    };
    let m = c.dims.len();
    if m < 2 || c.src[m - 1] == 4 || c.dst[m - 1] != 4 {
        return Ok(None);
    }
    let Some(jd) = (0..m - 1).find(|&k| c.src[k] == 4) else {
        return Ok(None);
    };
    let (ni, nj) = (c.dims[m - 1], c.dims[jd]);
    if ni < 4 || nj < 4 {
        return Ok(None);
    }
    let (si, dj) = (c.src[m - 1], c.dst[jd]);
    // Immediate offsets within a block stay small.
    if 4 * si.abs().max(dj.abs()) > i32::MAX as i64 {
        return Ok(None);
    }
    let others: Vec<usize> = (0..m - 1).filter(|&k| k != jd).collect();
    let njb = nj.div_ceil(4);
    let rem = nj - 4 * (njb - 1);
    let mut grid: Vec<usize> = others.iter().map(|&k| c.dims[k]).collect();
    grid.push(njb);
    let items: usize = grid.iter().product();
    let gsrc: Vec<i64> = others.iter().map(|&k| c.src[k]).chain([16]).collect();
    let gdst: Vec<i64> = others.iter().map(|&k| c.dst[k]).chain([4 * dj]).collect();
    let (so, dof) = (c.src_off, c.dst_off);
    let func = cx.define_kernel("transpose4x4", |b, p| {
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        let x = add_off(b, x, so);
        let y = add_off(b, y, dof);
        let mask = |b: &mut FunctionBuilder, lanes: [u8; 4]| -> Immediate {
            // 32-bit lanes 0..3 of the first operand, 4..7 of the second.
            let bytes: Vec<u8> = lanes
                .iter()
                .flat_map(|&l| (0..4).map(move |k| l * 4 + k))
                .collect();
            b.func.dfg.immediates.push(ConstantData::from(bytes))
        };
        let lo = mask(b, [0, 4, 1, 5]);
        let hi = mask(b, [2, 6, 3, 7]);
        let lo2 = mask(b, [0, 1, 4, 5]);
        let hi2 = mask(b, [2, 3, 6, 7]);
        let vf = MemFlagsData::new().with_notrap();
        for_range(b, p.begin, p.end, |b, item| {
            let idx = unflatten(b, item, &grid);
            let (mut sp, mut dp) = (x, y);
            for (k, &iv) in idx.iter().enumerate() {
                sp = index(b, sp, iv, gsrc[k]);
                dp = index(b, dp, iv, gdst[k]);
            }
            let jb = idx[idx.len() - 1];
            // Scalar copy of the block's columns 0..cols for rows i in lo..hi.
            let scalar = |b: &mut FunctionBuilder, cols: usize, lo: usize, hi: usize| {
                for col in 0..cols {
                    let s0 = add_off(b, sp, lo as i64 * si + col as i64 * 4);
                    let d0 = add_off(b, dp, col as i64 * dj + lo as i64 * 4);
                    for_n(b, hi - lo, 4, |b, t| {
                        let s = index(b, s0, t, si);
                        let d = index(b, d0, t, 4);
                        let v = b.ins().load(types::I32, sflags(), s, 0);
                        b.ins().store(sflags(), v, d, 0);
                    });
                }
            };
            let full = b.create_block();
            let part = b.create_block();
            let done = b.create_block();
            if rem == 4 {
                b.ins().jump(full, &[]);
            } else {
                let last = b.ins().icmp_imm_s(IntCC::Equal, jb, (njb - 1) as i64);
                b.ins().brif(last, part, &[], full, &[]);
            }
            b.switch_to_block(full);
            let nib = ni / 4;
            for_n(b, nib, 1, |b, ib| {
                let s0 = index(b, sp, ib, 4 * si);
                let d0 = index(b, dp, ib, 16);
                let v: Vec<Value> = (0..4)
                    .map(|k| {
                        let v = b.ins().load(types::I8X16, vf, s0, (k as i64 * si) as i32);
                        v
                    })
                    .collect();
                let t0 = b.ins().shuffle(v[0], v[1], lo);
                let t1 = b.ins().shuffle(v[0], v[1], hi);
                let t2 = b.ins().shuffle(v[2], v[3], lo);
                let t3 = b.ins().shuffle(v[2], v[3], hi);
                let w = [
                    b.ins().shuffle(t0, t2, lo2),
                    b.ins().shuffle(t0, t2, hi2),
                    b.ins().shuffle(t1, t3, lo2),
                    b.ins().shuffle(t1, t3, hi2),
                ];
                for (k, &wk) in w.iter().enumerate() {
                    b.ins().store(vf, wk, d0, (k as i64 * dj) as i32);
                }
            });
            scalar(b, 4, nib * 4, ni);
            b.ins().jump(done, &[]);
            b.switch_to_block(part);
            if rem != 4 {
                scalar(b, rem, 0, ni);
            }
            b.ins().jump(done, &[]);
            b.switch_to_block(done);
        });
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Some(Launch {
        func,
        operands: vec![Operand::Input(0), Operand::Output(0)],
        items: items as u64,
        grain: (CHUNK / (16 * ni)).max(1) as u64,
        name: "transpose4x4".into(),
    }))
}
