//! Kernels: the compute-heavy ops as GEMM — MatMul, Gemm, FusedMatMul, Conv and FusedConv
//! (f32 only; every other dtype is declined) — and depthwise convs (`depthwise`).
//!
//! Every other node becomes one `Plan`: the same `C = act(A·B + bias + residual)` repeated
//! over batches, where
//! - A is read in place (a MatMul/Gemm input, or the conv weights `Co×(Cin/g·KH·KW)`, one
//!   group's rows per batch);
//! - B is in the packed-panel layout of [`pack_b`]: packed at compile time into a constant
//!   when B is a constant (Gemm's `alpha` folded in), otherwise written at run time by the
//!   vectorized gather of `pack`, which also performs a conv's im2col (B = the input
//!   patches, `Cin/g·KH·KW × OH·OW`; a conv with three or more spatial dims flattens its
//!   kernel taps and output positions the same way, `conv_nd_cols`);
//! - the GEMM function is the emitted AVX2/AVX-512 kernel ([`emit_gemm`]) — or, without
//!   AVX2/FMA (`Target::baseline()`), the 128-bit Cranelift GEMM `launch::baseline_gemm`
//!   with the same ABI and packed layout;
//! - the epilogue is in the GEMM: column bias (MatMul/Gemm bias), row bias (conv bias, per
//!   output channel), residual (same layout as the output), then None/Relu/Clip; other
//!   activations run as an in-place elementwise launch after it.
//!
//! Two launch shapes (`Plan::emit` chooses):
//! - rows: a pack launch over all panels (run-time B only), then the GEMM launch
//!   (`launch::call_kernel`) over (batch, block of 6 rows) — for small N (late conv layers:
//!   A, the weights, is the big operand and is streamed once);
//! - column chunks (`launch::chunk_kernel`): one launch over (batch, column chunk, row
//!   block); with a run-time B each item packs its chunk (at most `CHUNK_BYTES`) into its
//!   own scratch slot and multiplies it right away while it is in L2 (convs with N >= M,
//!   MatMuls with a large run-time B); with a constant B of at most `FEW_ROWS` rows, B is
//!   packed per chunk at compile time so that threads split the columns (FC layers, batch-1
//!   MatMuls).

mod depthwise;
mod launch;
mod pack;
#[cfg(test)]
mod tests;

use cranelift_module::FuncId;
use graphc_passes::ir::fused::Activation;
use graphc_passes::ir::{AutoPad, DType, Graph, NodeId, Op, Tensor, ValueRef};

use crate::codegen::kernel::{KernelCx, Launch, Lowered, Operand};
use crate::codegen::x86::gemm::{
    emit_gemm, k_block, pack_b, packed_b_len, panels, Epilogue, GemmSpec, Isa, MR, NR,
};
use launch::{baseline_gemm, call_kernel, chunk_kernel, pack_kernel, ChunkKind, Chunks, BASE_ROWS};
use pack::{dst_table, Gather};

/// See [`super`]: `None` for nodes this family does not compile.
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    // An activation the GEMM epilogue lacks runs as a second launch over the output, in place
    // (the epilogue order is the same: act(A·B + bias + residual)).
    let (act, post) = match n.op.activation() {
        Some(a) if epilogue(&a).is_none() => (Some(Activation::None), Some(a)),
        a => (a, None),
    };
    let conv_attrs = match &n.op {
        Op::Conv {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            pads,
            strides,
        }
        | Op::FusedConv {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            pads,
            strides,
            ..
        } => Some(ConvAttrs {
            auto_pad: *auto_pad,
            dilations,
            group: *group,
            kernel_shape,
            pads,
            strides,
        }),
        _ => None,
    };
    let conv_act = match &n.op {
        Op::Conv { .. } => Some(Activation::None),
        _ => act.clone(),
    };
    if let (Some(at), Some(a)) = (&conv_attrs, conv_act) {
        if let Some(mut lowered) = depthwise::lower(cx, g, node, at, a)? {
            if let Some(act) = post {
                let Some(len) = n.outputs[0].ty.shape.num_elements() else {
                    return Ok(None);
                };
                lowered
                    .launches
                    .push(super::elementwise::activation_in_place(cx, &act, len)?);
            }
            return Ok(Some(lowered));
        }
    }
    let plan = match &n.op {
        Op::MatMul {} => matmul(g, node, Activation::None, false, false),
        Op::FusedMatMul { .. } => match act {
            Some(act) => matmul(g, node, act, true, false),
            None => None,
        },
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => gemm(g, node, *alpha, *beta, *trans_a != 0, *trans_b != 0, false),
        Op::Conv {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            pads,
            strides,
        } => conv(
            g,
            node,
            &ConvAttrs {
                auto_pad: *auto_pad,
                dilations,
                group: *group,
                kernel_shape,
                pads,
                strides,
            },
            Activation::None,
        ),
        Op::FusedConv {
            auto_pad,
            dilations,
            group,
            kernel_shape,
            pads,
            strides,
            ..
        } => match act {
            Some(act) => conv(
                g,
                node,
                &ConvAttrs {
                    auto_pad: *auto_pad,
                    dilations,
                    group: *group,
                    kernel_shape,
                    pads,
                    strides,
                },
                act,
            ),
            None => None,
        },
        _ => return Ok(None),
    };
    let Some(plan) = plan else {
        return Ok(None);
    };
    let mut lowered = plan.emit(cx)?;
    if let Some(act) = post {
        let Some(len) = n.outputs[0].ty.shape.num_elements() else {
            return Ok(None);
        };
        lowered
            .launches
            .push(super::elementwise::activation_in_place(cx, &act, len)?);
    }
    Ok(Some(lowered))
}

/// Where packed B comes from.
enum BSource {
    /// Packed at compile time from these `mats` matrices (`k×n` row-major each, or `n×k`
    /// when `trans`).
    Const {
        data: Vec<f32>,
        mats: usize,
        trans: bool,
    },
    /// Packed at run time from node input `input` (`mats` matrices, `src_stride` bytes apart
    /// in the input).
    Gather {
        input: usize,
        gather: Gather,
        mats: usize,
        src_stride: usize,
    },
}

/// Bias or residual data: a node input read in place, or a constant made here.
enum Data {
    Input(usize),
    Const(Vec<f32>),
}

/// One GEMM shape repeated over batches (see the module docs).
struct Plan {
    spec: GemmSpec,
    /// The node input holding A.
    a: usize,
    b: BSource,
    bias: Option<Data>,
    residual: Option<Data>,
    /// Per batch: byte offsets of A, the index of its B matrix, byte offsets of C (and the
    /// residual) and of the bias.
    batches: Vec<[u64; 4]>,
    name: &'static str,
}

/// Packed bytes of B one column chunk of a run-time packed B may take (so that it stays in
/// L2 while the GEMM sweeps it once per row block). Measured on ResNet-50 convs: 512 KiB is
/// 2-4% better than 128 or 256 KiB.
const CHUNK_BYTES: usize = 512 << 10;

/// Packed bytes of a constant B one column chunk takes when a tall B is swept in chunks.
const CONST_CHUNK_BYTES: usize = 512 << 10;

/// Rows at most for which a constant B is split into column chunks for parallelism.
const FEW_ROWS: usize = 12;

impl Plan {
    fn emit(self, cx: &mut KernelCx) -> Result<Lowered, String> {
        let spec = &self.spec;
        let np = panels(spec.n);
        let chunk_panels = match &self.b {
            // Pack and multiply column chunks in one launch when B is at least as large as A
            // (otherwise A, re-read per chunk, would dominate).
            BSource::Gather { .. } => {
                let max = (CHUNK_BYTES / (spec.k * NR * 4)).max(4);
                (np > max && spec.n >= spec.m).then(|| np.div_ceil(np.div_ceil(max)))
            }
            // Few rows: split the columns too so that several threads have work. A constant B
            // much larger than L2 and wider than A is tall: sweep it in chunks that stay in L2
            // while every row block uses them (rather than streaming all of B per row block).
            BSource::Const { .. } => {
                let b_bytes = spec.k * spec.n * 4;
                if spec.m <= FEW_ROWS && np >= 8 {
                    Some(np.div_ceil(8).clamp(4, 32))
                } else if b_bytes > 2 * CONST_CHUNK_BYTES && spec.n >= spec.m {
                    let max = (CONST_CHUNK_BYTES / (spec.k * NR * 4)).max(4);
                    (np > max).then(|| np.div_ceil(np.div_ceil(max)))
                } else {
                    None
                }
            }
        };
        match chunk_panels {
            Some(cp) => self.emit_chunks(cx, cp),
            None => self.emit_rows(cx),
        }
    }

    /// Operands for bias and residual.
    fn data_operands(
        cx: &mut KernelCx,
        bias: Option<Data>,
        residual: Option<Data>,
    ) -> Result<(Operand, Operand), String> {
        let mut data = |d: Option<Data>, hint: &str| -> Result<Operand, String> {
            Ok(match d {
                None => Operand::Output(0),
                Some(Data::Input(i)) => Operand::Input(i),
                Some(Data::Const(v)) => Operand::Const(cx.add_const_f32(hint, &v)?),
            })
        };
        Ok((data(bias, "gemm_bias")?, data(residual, "gemm_residual")?))
    }

    /// The batch table with B matrix indices turned into byte offsets `b_bytes` apart.
    fn table(&self, cx: &mut KernelCx, b_bytes: usize) -> Result<Operand, String> {
        let table: Vec<u8> = self
            .batches
            .iter()
            .flat_map(|row| {
                let row = [row[0], row[1] * b_bytes as u64, row[2], row[3]];
                row.into_iter().flat_map(|x| x.to_le_bytes())
            })
            .collect();
        Ok(Operand::Const(cx.add_const("gemm_batches", table)?))
    }

    /// A pack launch over all panels (if B is not constant), then the GEMM over (batch, row
    /// block) items.
    fn emit_rows(self, cx: &mut KernelCx) -> Result<Lowered, String> {
        let spec = self.spec.clone();
        let plen = packed_b_len(spec.k, spec.n);
        let kc = k_block(spec.k, spec.n);
        let mut launches = Vec::new();
        let mut scratch_bytes = 0;
        let b_operand = match &self.b {
            BSource::Const { data, mats, trans } => {
                let (k, n) = (spec.k, spec.n);
                let mut packed = Vec::with_capacity(mats * plen);
                for i in 0..*mats {
                    packed.extend(pack_b(&data[i * k * n..(i + 1) * k * n], k, n, *trans)?);
                }
                Operand::Const(cx.add_const_f32("gemm_b", &packed)?)
            }
            BSource::Gather {
                input,
                gather,
                mats,
                src_stride,
            } => {
                let dst_stride = plen * 4;
                scratch_bytes = mats * dst_stride;
                let (func, ids) = pack_kernel(cx, gather, kc, *src_stride, dst_stride)?;
                let np = panels(spec.n) as u64;
                let mut operands = vec![Operand::Input(*input), Operand::Scratch(0)];
                operands.extend(ids.iter().map(|&id| Operand::Const(id)));
                launches.push(Launch {
                    func,
                    operands,
                    items: *mats as u64 * np,
                    grain: (np / 8).clamp(1, 16),
                    name: format!("{}.pack", self.name),
                });
                Operand::Scratch(0)
            }
        };
        let table = self.table(cx, plen * 4)?;
        let (bias, residual) = Self::data_operands(cx, self.bias, self.residual)?;
        let (gemm, rows) = gemm_function(cx, &spec)?;
        let blocks = spec.m.div_ceil(rows) as u64;
        let func = call_kernel(cx, gemm, blocks, rows as u64)?;
        launches.push(Launch {
            func,
            operands: vec![
                Operand::Input(self.a),
                b_operand,
                Operand::Output(0),
                bias,
                residual,
                table,
            ],
            items: self.batches.len() as u64 * blocks,
            grain: 1,
            name: self.name.into(),
        });
        Ok(Lowered {
            launches,
            scratch_bytes,
        })
    }

    /// One launch over (batch, column chunk, row block) items of `chunk_panels` panels (see
    /// [`chunk_kernel`]).
    fn emit_chunks(self, cx: &mut KernelCx, chunk_panels: usize) -> Result<Lowered, String> {
        let spec = self.spec.clone();
        let np = panels(spec.n);
        let cols = chunk_panels * NR;
        let count = np.div_ceil(chunk_panels);
        let tail_cols = spec.n - (count - 1) * cols;
        let kind = |cx: &mut KernelCx, n: usize| -> Result<(ChunkKind, usize), String> {
            let s = GemmSpec {
                n,
                ldc: spec.ldc,
                ..spec.clone()
            };
            s.validate()?;
            let (gemm, rows) = gemm_function(cx, &s)?;
            Ok((
                ChunkKind {
                    gemm,
                    panels: panels(n),
                    kc: k_block(spec.k, n),
                },
                rows,
            ))
        };
        let (full, rows) = kind(cx, cols.min(spec.n))?;
        let tail = if tail_cols != cols {
            Some(kind(cx, tail_cols)?.0)
        } else {
            None
        };
        let chunk_len = |n: usize| packed_b_len(spec.k, n) * 4;
        let slot = chunk_len(cols).max(chunk_len(tail_cols));
        let mut operands = vec![Operand::Input(self.a)];
        let mut scratch_bytes = 0;
        let nbatch = self.batches.len();
        let table_of = |cx: &mut KernelCx, b_bytes: usize| -> Result<Operand, String> {
            let t: Vec<u8> = self
                .batches
                .iter()
                .flat_map(|row| {
                    let row = [row[0], row[1] * b_bytes as u64, row[2], row[3]];
                    row.into_iter().flat_map(|x| x.to_le_bytes())
                })
                .collect();
            Ok(Operand::Const(cx.add_const("gemm_batches", t)?))
        };
        let (gather, b_bytes, blocks, rows, stride) = match self.b {
            BSource::Const { data, mats, trans } => {
                let (k, n) = (spec.k, spec.n);
                let mut packed = Vec::new();
                for i in 0..mats {
                    let mat = &data[i * k * n..(i + 1) * k * n];
                    for c in 0..count {
                        let (c0, w) = (c * cols, cols.min(n - c * cols));
                        let sub: Vec<f32> = (0..k)
                            .flat_map(|p| {
                                (c0..c0 + w).map(move |j| {
                                    if trans {
                                        mat[j * k + p]
                                    } else {
                                        mat[p * n + j]
                                    }
                                })
                            })
                            .collect();
                        packed.extend(pack_b(&sub, k, w, false)?);
                        packed.resize((i * count + c + 1) * slot / 4, 0.0);
                    }
                }
                operands.push(Operand::Const(cx.add_const_f32("gemm_b", &packed)?));
                let blocks = spec.m.div_ceil(rows);
                (None, count * slot, blocks, rows, slot)
            }
            BSource::Gather {
                input,
                gather,
                src_stride,
                ..
            } => {
                operands.push(Operand::Input(input));
                scratch_bytes = nbatch * count * slot;
                (Some((gather, slot)), src_stride, 1, spec.m, 0)
            }
        };
        let table = table_of(cx, b_bytes)?;
        let (bias, residual) = Self::data_operands(cx, self.bias, self.residual)?;
        operands.extend([
            Operand::Output(0),
            bias,
            residual,
            table,
            Operand::Scratch(0),
        ]);
        match &gather {
            Some((g, _)) => {
                let t = g.tables(cx)?;
                operands.extend(t.iter().map(|&id| Operand::Const(id)));
                let full_dst = dst_table(spec.k, full.kc, full.panels);
                operands.push(Operand::Const(cx.add_const("pack_dst", full_dst)?));
                let tail_dst = match &tail {
                    Some(t) => dst_table(spec.k, t.kc, t.panels),
                    None => vec![0; 4],
                };
                operands.push(Operand::Const(cx.add_const("pack_dst", tail_dst)?));
            }
            None => operands.extend([Operand::Output(0); 5]),
        }
        let chunks = Chunks {
            count,
            cols,
            blocks,
            rows,
            col_bias: spec.bias,
            gather,
            stride,
            full,
            tail,
        };
        let func = chunk_kernel(cx, &chunks)?;
        Ok(Lowered::one(
            func,
            operands,
            ((nbatch * count * blocks) as u64, 1),
            &self.name,
            scratch_bytes,
        ))
    }
}

/// The GEMM function for `spec` on this target and the rows of one work item.
fn gemm_function(cx: &mut KernelCx, spec: &GemmSpec) -> Result<(FuncId, usize), String> {
    if cx.target.avx2_fma {
        let isa = if cx.target.avx512 {
            Isa::Avx512
        } else {
            Isa::Avx2
        };
        let bytes = emit_gemm(&GemmSpec {
            isa,
            ..spec.clone()
        })?;
        Ok((cx.define_bytes_function("gemm", &bytes, 7)?, MR))
    } else {
        Ok((baseline_gemm(cx, spec)?, BASE_ROWS))
    }
}

/// The GEMM epilogue for a fused activation; `None` for activations it lacks.
fn epilogue(act: &Activation) -> Option<Epilogue> {
    match *act {
        Activation::None => Some(Epilogue::None),
        Activation::Relu => Some(Epilogue::Relu),
        Activation::Clip(lo, hi) if !lo.is_nan() && !hi.is_nan() && lo <= hi => {
            Some(Epilogue::Clip { lo, hi })
        }
        // Hook for kernels::vmath::activation (see the module docs).
        _ => None,
    }
}

fn dims(g: &Graph, v: ValueRef) -> Option<Vec<usize>> {
    let ty = g.ty(v);
    if ty.dtype != DType::F32 {
        return None;
    }
    ty.shape.as_known()
}

fn input(g: &Graph, node: NodeId, i: usize) -> Option<ValueRef> {
    g.node(node).inputs.get(i).copied().flatten()
}

/// The f32 data of a constant value (logical order).
fn const_f32(g: &Graph, v: ValueRef) -> Option<Vec<f32>> {
    match &g.node(v.node).op {
        Op::Constant { value } => match value {
            Tensor::F32(a) => Some(a.iter().copied().collect()),
            _ => None,
        },
        _ => None,
    }
}

/// B as constant data ([`const_f32`]); when only `probing` whether a plan exists, an empty
/// stand-in for a constant B, so that the decision is the same without copying the weights.
fn const_b(g: &Graph, v: ValueRef, probing: bool) -> Option<Vec<f32>> {
    if probing {
        let is_f32_const = matches!(
            &g.node(v.node).op,
            Op::Constant {
                value: Tensor::F32(_)
            }
        );
        is_f32_const.then(Vec::new)
    } else {
        const_f32(g, v)
    }
}

/// The output's f32 dims.
fn out_dims(g: &Graph, node: NodeId) -> Option<Vec<usize>> {
    let o = g.node(node).outputs.first()?;
    if o.ty.dtype != DType::F32 {
        return None;
    }
    o.ty.shape.as_known()
}

/// Whether `d` right-aligned against `out` has exactly `out`'s elements in its layout
/// (equal dims after dropping leading ones).
fn same_layout(d: &[usize], out: &[usize]) -> bool {
    let strip = |s: &[usize]| -> Vec<usize> {
        let first = s.iter().position(|&x| x != 1).unwrap_or(s.len());
        s[first..].to_vec()
    };
    d.len() <= out.len() && strip(d) == strip(out)
}

/// Whether `d` broadcasts against `[.., n]` as a vector along the last axis only.
fn is_column_vector(d: &[usize], n: usize) -> bool {
    match d.split_last() {
        None => n == 1,
        Some((&last, rest)) => last == n && rest.iter().all(|&x| x == 1),
    }
}

/// Bias and residual of a product `[batch.., m, n]`: the data and whether the bias is per row.
fn epilogue_operands(
    g: &Graph,
    node: NodeId,
    bias: Option<usize>,
    residual: Option<usize>,
    out: &[usize],
) -> Option<(Option<Data>, Option<Data>)> {
    let n = *out.last()?;
    let mut b = None;
    let mut r = None;
    for (slot, is_bias) in [(bias, true), (residual, false)] {
        let Some(i) = slot else { continue };
        let Some(v) = input(g, node, i) else { continue };
        let d = dims(g, v)?;
        if is_bias && is_column_vector(&d, n) && b.is_none() {
            b = Some(Data::Input(i));
        } else if same_layout(&d, out) && r.is_none() {
            r = Some(Data::Input(i));
        } else {
            return None;
        }
    }
    Some((b, r))
}

/// Row-major strides of `d` in elements (0 where the dim is 1: broadcast).
fn broadcast_index(index: &[usize], d: &[usize]) -> usize {
    // `d` is right-aligned against `index`.
    let skip = index.len() - d.len();
    let mut off = 0;
    for (axis, &size) in d.iter().enumerate() {
        let i = if size == 1 { 0 } else { index[skip + axis] };
        off = off * size + i;
    }
    off
}

/// Whether [`lower`] compiles FusedMatMul node `node` as one GEMM: its bias and residual fit
/// the epilogue (a column bias, a residual of the output's layout).
pub fn takes_fused_mat_mul(g: &Graph, node: NodeId) -> bool {
    let act = match g.node(node).op.activation() {
        Some(a) if epilogue(&a).is_none() => Activation::None,
        Some(a) => a,
        None => return false,
    };
    matmul(g, node, act, true, true).is_some()
}

/// Whether [`lower`] compiles Gemm node `node` as one GEMM (alpha folds into a constant B,
/// C fits the epilogue).
pub fn takes_gemm(g: &Graph, node: NodeId) -> bool {
    match g.node(node).op {
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => gemm(g, node, alpha, beta, trans_a != 0, trans_b != 0, true).is_some(),
        _ => false,
    }
}

/// MatMul and FusedMatMul (bias input 2, residual input 3).
/// `probing`: only whether a plan exists matters (constant weights are not copied).
fn matmul(g: &Graph, node: NodeId, act: Activation, fused: bool, probing: bool) -> Option<Plan> {
    let act = epilogue(&act)?;
    let (av, bv) = (input(g, node, 0)?, input(g, node, 1)?);
    let (ad, bd) = (dims(g, av)?, dims(g, bv)?);
    let out = out_dims(g, node)?;
    if ad.is_empty() || bd.is_empty() {
        return None;
    }
    // 1-D operands per ONNX: [k] is [1, k] on the left, [k, 1] on the right.
    let a2 = if ad.len() == 1 {
        vec![1, ad[0]]
    } else {
        ad.clone()
    };
    let b2 = if bd.len() == 1 {
        vec![bd[0], 1]
    } else {
        bd.clone()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != kb || m == 0 || n == 0 || k == 0 {
        return None;
    }
    let (a_batch, b_batch) = (&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let rank = a_batch.len().max(b_batch.len());
    let mut batch = vec![1usize; rank];
    for (d, shape) in [a_batch, b_batch].iter().enumerate() {
        let _ = d;
        for (i, &x) in shape.iter().enumerate() {
            let slot = &mut batch[rank - shape.len() + i];
            if *slot == 1 {
                *slot = x;
            } else if x != 1 && x != *slot {
                return None;
            }
        }
    }
    let nbatch: usize = batch.iter().product();
    // The product in [batch.., m, n] form (the output may have dropped 1-D axes).
    let mut full = batch.clone();
    full.extend([m, n]);
    if out.iter().product::<usize>() != full.iter().product::<usize>() {
        return None;
    }
    let (bias, residual) = if fused {
        epilogue_operands(g, node, Some(2), Some(3), &full)?
    } else {
        (None, None)
    };
    let b_mats: usize = b_batch.iter().product();
    let a_mats: usize = a_batch.iter().product();
    // B shared by all batches and A not broadcast: fold the batch into M.
    let fold = b_mats == 1 && a_mats == nbatch;
    let (gm, batches_n) = if fold { (m * nbatch, 1) } else { (m, nbatch) };
    let b = match const_b(g, bv, probing) {
        Some(data) => BSource::Const {
            data,
            mats: b_mats,
            trans: false,
        },
        None => BSource::Gather {
            input: 1,
            gather: matrix_gather(k, n, false),
            mats: b_mats,
            src_stride: k * n * 4,
        },
    };
    let mut batches = Vec::with_capacity(batches_n);
    let mut index = vec![0usize; rank];
    for bi in 0..batches_n {
        let ai = if fold {
            0
        } else {
            broadcast_index(&index, a_batch)
        };
        let bj = if fold {
            0
        } else {
            broadcast_index(&index, b_batch)
        };
        batches.push([
            (ai * m * k * 4) as u64,
            bj as u64,
            (bi * m * n * 4) as u64,
            0,
        ]);
        for axis in (0..rank).rev() {
            index[axis] += 1;
            if index[axis] < batch[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    let spec = GemmSpec {
        bias: bias.is_some(),
        residual: residual.is_some(),
        act,
        ..GemmSpec::new(gm, n, k)
    };
    spec.validate().ok()?;
    Some(Plan {
        spec,
        a: 0,
        b,
        bias,
        residual,
        batches,
        name: "matmul",
    })
}

/// B (`k×n` row-major, or `n×k` when `trans`) as a gather of one window.
fn matrix_gather(k: usize, n: usize, trans: bool) -> Gather {
    let width = panels(n) * NR;
    Gather {
        k,
        n,
        windows: 1,
        chan_stride: if trans { 1 } else { n },
        step: if trans { 0 } else { 1 },
        lanes: (0..width)
            .map(|c| match (c < n, trans) {
                (false, _) => -1,
                (true, false) => c as i32,
                (true, true) => (c * k) as i32,
            })
            .collect(),
    }
}

/// Gemm: `alpha·A'·B' + beta·C`; `probing` as for [`matmul`].
fn gemm(
    g: &Graph,
    node: NodeId,
    alpha: f32,
    beta: f32,
    trans_a: bool,
    trans_b: bool,
    probing: bool,
) -> Option<Plan> {
    let (av, bv) = (input(g, node, 0)?, input(g, node, 1)?);
    let (ad, bd) = (dims(g, av)?, dims(g, bv)?);
    let out = out_dims(g, node)?;
    if ad.len() != 2 || bd.len() != 2 {
        return None;
    }
    let (m, k) = if trans_a {
        (ad[1], ad[0])
    } else {
        (ad[0], ad[1])
    };
    let (kb, n) = if trans_b {
        (bd[1], bd[0])
    } else {
        (bd[0], bd[1])
    };
    if k != kb || m == 0 || n == 0 || k == 0 || out != [m, n] {
        return None;
    }
    let b = match const_b(g, bv, probing) {
        Some(mut data) => {
            if alpha != 1.0 {
                data.iter_mut().for_each(|x| *x *= alpha);
            }
            BSource::Const {
                data,
                mats: 1,
                trans: trans_b,
            }
        }
        None if alpha == 1.0 => BSource::Gather {
            input: 1,
            gather: matrix_gather(k, n, trans_b),
            mats: 1,
            src_stride: 0,
        },
        None => return None,
    };
    let mut bias = None;
    let mut row_bias = false;
    let mut residual = None;
    if let Some(cv) = input(g, node, 2).filter(|_| beta != 0.0) {
        let cd = dims(g, cv)?;
        let data = if beta == 1.0 {
            None
        } else {
            let mut v = const_f32(g, cv)?;
            v.iter_mut().for_each(|x| *x *= beta);
            Some(v)
        };
        let source = |d: Option<Vec<f32>>| match d {
            Some(v) => Data::Const(v),
            None => Data::Input(2),
        };
        let numel: usize = cd.iter().product();
        if is_column_vector(&cd, n) {
            bias = Some(source(data));
        } else if same_layout(&cd, &[m, n]) {
            residual = Some(source(data));
        } else if cd.len() == 2 && cd[0] == m && cd[1] == 1 {
            bias = Some(source(data));
            row_bias = true;
        } else if numel == 1 {
            // A scalar: expanded into a column bias (constants only).
            let v = match data {
                Some(v) => v,
                None => const_f32(g, cv)?,
            };
            bias = Some(Data::Const(vec![v[0]; n]));
        } else {
            return None;
        }
    }
    let spec = GemmSpec {
        lda: if trans_a { m } else { k },
        trans_a,
        bias: bias.is_some() && !row_bias,
        row_bias,
        residual: residual.is_some(),
        ..GemmSpec::new(m, n, k)
    };
    spec.validate().ok()?;
    Some(Plan {
        spec,
        a: 0,
        b,
        bias,
        residual,
        batches: vec![[0; 4]],
        name: "gemm",
    })
}

/// Conv attributes.
pub(super) struct ConvAttrs<'a> {
    auto_pad: AutoPad,
    dilations: &'a [i64],
    group: i64,
    kernel_shape: &'a [i64],
    pads: &'a [i64],
    strides: &'a [i64],
}

/// A list attribute of `len` positive values, `default` when absent.
fn list(v: &[i64], len: usize, default: usize, min: i64) -> Option<Vec<usize>> {
    if v.is_empty() {
        return Some(vec![default; len]);
    }
    if v.len() != len || v.iter().any(|&x| x < min) {
        return None;
    }
    Some(v.iter().map(|&x| x as usize).collect())
}

/// A conv's geometry, everything as 2-D (a 1-D conv has H = 1).
pub(super) struct ConvGeom {
    pub batch: usize,
    pub cin: usize,
    pub co: usize,
    pub groups: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pl: usize,
    pub oh: usize,
    pub ow: usize,
    /// The output dims.
    pub out: Vec<usize>,
}

/// The geometry of a Conv/FusedConv node with static f32 shapes it can compile.
fn conv_geom(g: &Graph, node: NodeId, at: &ConvAttrs) -> Option<ConvGeom> {
    let (xv, wv) = (input(g, node, 0)?, input(g, node, 1)?);
    let (xd, wd) = (dims(g, xv)?, dims(g, wv)?);
    let out = out_dims(g, node)?;
    let sp = xd.len().checked_sub(2)?;
    if !(1..=2).contains(&sp) || wd.len() != xd.len() || out.len() != xd.len() {
        return None;
    }
    let ks = &wd[2..];
    if !at.kernel_shape.is_empty() && list(at.kernel_shape, sp, 1, 1)? != ks {
        return None;
    }
    let strides = list(at.strides, sp, 1, 1)?;
    let dil = list(at.dilations, sp, 1, 1)?;
    let pads = match at.auto_pad {
        AutoPad::NotSet => list(at.pads, 2 * sp, 0, 0)?,
        AutoPad::Valid => vec![0; 2 * sp],
        // As the reference evaluator pads: output ceil(in / stride), the total split evenly,
        // the odd element at the end (SAME_UPPER) or the start (SAME_LOWER).
        AutoPad::SameUpper | AutoPad::SameLower => {
            let mut pads = vec![0; 2 * sp];
            for d in 0..sp {
                let (x, s) = (xd[2 + d], strides[d]);
                let span = (ks[d] - 1) * dil[d] + 1;
                let total = ((x.div_ceil(s).max(1) - 1) * s + span).saturating_sub(x);
                let small = total / 2;
                let (b, e) = if at.auto_pad == AutoPad::SameUpper {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                pads[d] = b;
                pads[d + sp] = e;
            }
            pads
        }
    };
    // Everything as 2-D: a 1-D conv is H = 1.
    let two = |v: &[usize], one: usize| -> [usize; 2] {
        if sp == 1 {
            [one, v[0]]
        } else {
            [v[0], v[1]]
        }
    };
    let (h, w) = (two(&xd[2..], 1)[0], two(&xd[2..], 1)[1]);
    let [kh, kw] = two(ks, 1);
    let [sh, sw] = two(&strides, 1);
    let [dh, dw] = two(&dil, 1);
    let (pt, pl) = if sp == 1 {
        (0, pads[0])
    } else {
        (pads[0], pads[1])
    };
    let (pb, pr) = if sp == 1 {
        (0, pads[1])
    } else {
        (pads[2], pads[3])
    };
    let (batch, cin, co) = (xd[0], xd[1], wd[0]);
    let groups = usize::try_from(at.group).ok().filter(|&x| x > 0)?;
    if cin % groups != 0 || co % groups != 0 || wd[1] * groups != cin {
        return None;
    }
    let (cig, cog) = (cin / groups, co / groups);
    let span = |size: usize, pad: usize, k: usize, d: usize, s: usize| -> Option<usize> {
        let eff = d.checked_mul(k - 1)? + 1;
        (size + pad).checked_sub(eff).map(|x| x / s + 1)
    };
    let oh = span(h, pt + pb, kh, dh, sh)?;
    let ow = span(w, pl + pr, kw, dw, sw)?;
    let want = if sp == 1 {
        vec![batch, co, ow]
    } else {
        vec![batch, co, oh, ow]
    };
    if out != want || batch == 0 || cig == 0 || cog == 0 {
        return None;
    }
    Some(ConvGeom {
        batch,
        cin,
        co,
        groups,
        h,
        w,
        kh,
        kw,
        sh,
        sw,
        dh,
        dw,
        pt,
        pl,
        oh,
        ow,
        out,
    })
}

/// Conv and FusedConv (NCHW, 1-D and 2-D here, more spatial dims in [`conv_nd_cols`]): bias
/// input 2 (per output channel), residual input 3.
fn conv(g: &Graph, node: NodeId, at: &ConvAttrs, act: Activation) -> Option<Plan> {
    let act = epilogue(&act)?;
    if input(g, node, 0)
        .and_then(|x| dims(g, x))
        .is_some_and(|d| d.len() > 4)
    {
        return conv_plan(g, node, act, conv_nd_cols(g, node, at)?);
    }
    let ConvGeom {
        batch,
        cin,
        co,
        groups,
        h,
        w,
        kh,
        kw,
        sh,
        sw,
        dh,
        dw,
        pt,
        pl,
        oh,
        ow,
        out,
    } = conv_geom(g, node, at)?;
    let n = oh * ow;
    let windows = kh * kw;
    let width = panels(n) * NR;
    let mut lanes = vec![-1i32; windows * width];
    for r in 0..windows {
        let (ki, kj) = (r / kw, r % kw);
        for c in 0..n {
            let (y, x) = (c / ow, c % ow);
            let iy = (y * sh + ki * dh) as isize - pt as isize;
            let ix = (x * sw + kj * dw) as isize - pl as isize;
            if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                lanes[r * width + c] = i32::try_from(iy as usize * w + ix as usize).ok()?;
            }
        }
    }
    conv_plan(
        g,
        node,
        act,
        ConvCols {
            batch,
            cin,
            co,
            groups,
            n,
            windows,
            chan_stride: h * w,
            step: if sw <= 2 { sw } else { 0 },
            lanes,
            out,
        },
    )
}

/// A conv as a GEMM over its im2col matrix: sizes and the im2col lane table of [`Gather`].
struct ConvCols {
    batch: usize,
    cin: usize,
    co: usize,
    groups: usize,
    /// Output positions per channel (columns of B).
    n: usize,
    /// Kernel taps (window positions).
    windows: usize,
    /// Input elements per channel.
    chan_stride: usize,
    /// Lane spacing of the vector packing path (the stride along the last dim), 0 for none.
    step: usize,
    lanes: Vec<i32>,
    out: Vec<usize>,
}

/// The GEMM plan of a conv's [`ConvCols`] (bias input 2, residual input 3).
fn conv_plan(g: &Graph, node: NodeId, act: Epilogue, c: ConvCols) -> Option<Plan> {
    let ConvCols {
        batch,
        cin,
        co,
        groups,
        n,
        windows,
        chan_stride,
        step,
        lanes,
        out,
    } = c;
    let (cig, cog) = (cin / groups, co / groups);
    let (m, k) = (cog, cig * windows);
    // Bias per output channel (row), residual in the output's layout.
    let mut bias = None;
    if let Some(bv) = input(g, node, 2) {
        if dims(g, bv)? != [co] {
            return None;
        }
        bias = Some(Data::Input(2));
    }
    let mut residual = None;
    if let Some(rv) = input(g, node, 3) {
        if !same_layout(&dims(g, rv)?, &out) {
            return None;
        }
        residual = Some(Data::Input(3));
    }
    let gather = Gather {
        k,
        n,
        windows,
        chan_stride,
        step,
        lanes,
    };
    gather.validate().ok()?;
    let mut batches = Vec::with_capacity(batch * groups);
    for b in 0..batch {
        for gi in 0..groups {
            let mat = b * groups + gi;
            batches.push([
                (gi * cog * k * 4) as u64,
                mat as u64,
                ((b * co + gi * cog) * n * 4) as u64,
                (gi * cog * 4) as u64,
            ]);
        }
    }
    let spec = GemmSpec {
        row_bias: bias.is_some(),
        residual: residual.is_some(),
        act,
        ..GemmSpec::new(m, n, k)
    };
    spec.validate().ok()?;
    Some(Plan {
        spec,
        a: 1,
        b: BSource::Gather {
            input: 0,
            gather,
            mats: batch * groups,
            src_stride: cig * chan_stride * 4,
        },
        bias,
        residual,
        batches,
        name: "conv",
    })
}

/// Most im2col lanes (taps times padded output positions) of an N-D conv's table.
const MAX_ND_LANES: usize = 1 << 24;

/// The [`ConvCols`] of a conv with three or more spatial dims (same padding rules as
/// [`conv_geom`]): lane `(tap, position)` is the input offset within the channel of tap
/// `tap` (row-major over the kernel) of output position `position` (row-major), or -1 in
/// the padding.
fn conv_nd_cols(g: &Graph, node: NodeId, at: &ConvAttrs) -> Option<ConvCols> {
    let (xv, wv) = (input(g, node, 0)?, input(g, node, 1)?);
    let (xd, wd) = (dims(g, xv)?, dims(g, wv)?);
    let out = out_dims(g, node)?;
    let sp = xd.len().checked_sub(2)?;
    if sp < 3 || wd.len() != xd.len() || out.len() != xd.len() {
        return None;
    }
    let ks = &wd[2..];
    if ks.contains(&0) || (!at.kernel_shape.is_empty() && list(at.kernel_shape, sp, 1, 1)? != ks) {
        return None;
    }
    let strides = list(at.strides, sp, 1, 1)?;
    let dil = list(at.dilations, sp, 1, 1)?;
    let xs = &xd[2..];
    let pads = match at.auto_pad {
        AutoPad::NotSet => list(at.pads, 2 * sp, 0, 0)?,
        AutoPad::Valid => vec![0; 2 * sp],
        AutoPad::SameUpper | AutoPad::SameLower => {
            let mut pads = vec![0; 2 * sp];
            for d in 0..sp {
                let (x, s) = (xs[d], strides[d]);
                let span = (ks[d] - 1) * dil[d] + 1;
                let total = ((x.div_ceil(s).max(1) - 1) * s + span).saturating_sub(x);
                let small = total / 2;
                let (b, e) = if at.auto_pad == AutoPad::SameUpper {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                pads[d] = b;
                pads[d + sp] = e;
            }
            pads
        }
    };
    let (batch, cin, co) = (xd[0], xd[1], wd[0]);
    let groups = usize::try_from(at.group).ok().filter(|&x| x > 0)?;
    if cin % groups != 0 || co % groups != 0 || wd[1] * groups != cin {
        return None;
    }
    let mut os = Vec::with_capacity(sp);
    for d in 0..sp {
        let eff = dil[d].checked_mul(ks[d] - 1)? + 1;
        let padded = xs[d] + pads[d] + pads[d + sp];
        os.push(padded.checked_sub(eff)? / strides[d] + 1);
    }
    let mut want = vec![batch, co];
    want.extend(&os);
    if out != want || batch == 0 || cin == 0 || co == 0 {
        return None;
    }
    let n: usize = os.iter().product();
    let windows: usize = ks.iter().product();
    let width = panels(n) * NR;
    if windows.checked_mul(width)? > MAX_ND_LANES {
        return None;
    }
    let chan_stride: usize = xs.iter().product();
    let mut in_strides = vec![1usize; sp];
    for d in (0..sp - 1).rev() {
        in_strides[d] = in_strides[d + 1] * xs[d + 1];
    }
    let mut lanes = vec![-1i32; windows * width];
    let mut tap = vec![0usize; sp];
    for r in 0..windows {
        let mut pos = vec![0usize; sp];
        for c in 0..n {
            let mut off = Some(0usize);
            for d in 0..sp {
                let i = (pos[d] * strides[d] + tap[d] * dil[d]) as isize - pads[d] as isize;
                off = off
                    .filter(|_| (0..xs[d] as isize).contains(&i))
                    .map(|o| o + i as usize * in_strides[d]);
            }
            if let Some(o) = off {
                lanes[r * width + c] = i32::try_from(o).ok()?;
            }
            odometer(&mut pos, &os);
        }
        odometer(&mut tap, ks);
    }
    Some(ConvCols {
        batch,
        cin,
        co,
        groups,
        n,
        windows,
        chan_stride,
        step: if strides[sp - 1] <= 2 {
            strides[sp - 1]
        } else {
            0
        },
        lanes,
        out,
    })
}

/// Advances a row-major multi-index within `shape` (wrapping to zero at the end).
fn odometer(idx: &mut [usize], shape: &[usize]) {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < shape[d] {
            return;
        }
        idx[d] = 0;
    }
}
