//! Kernel: Dropout.
//!
//! Where the result is known to be the data unchanged (and an all-true mask) — `training_mode`
//! absent or a constant false (inference), or `ratio` a constant 0 — the data is copied. The
//! single-output case with training_mode absent or a constant false is the copy family's.
//!
//! Otherwise (`training_mode` a run-time bool scalar or a constant true; `ratio` absent, i.e.
//! 0.5, a constant, or a run-time f16/bf16/f32/f64 scalar) the kernel reads the two scalars at
//! run time. Not training, or a ratio of exactly 0, gives the data bit for bit and an all-true
//! mask (what the reference evaluator computes). Training with another ratio `r` draws, for
//! element `i` (row-major), `u_i` in `[0, 1)` from a counter-based generator: the top 53 bits
//! of the splitmix64 finalizer of `seed_mix + (i + 1) * 0x9E3779B97F4A7C15` (wrapping), where
//! `seed_mix` is the finalizer of the op's `seed` attribute, or of [`DEFAULT_SEED`] without
//! one. Element `i` is kept when `u_i >= r`: `y_i = x_i * (1 / (1 - r))` (in f64, rounded once
//! to the element type) and `mask_i = true`; else `y_i = +0` and `mask_i = false`. So `r >= 1`
//! (or a NaN `r`) drops every element, producing no inf or NaN, and a negative `r` keeps every
//! element, scaled. A compiled kernel has no state and `u_i` depends only on the seed and `i`:
//! the masks are the same on every run of a compiled model, whatever the data. The reference
//! evaluator refuses training with a non-zero ratio (ONNX leaves the draws unspecified), so
//! this is the documented behaviour of compiled code (JIT and `.so`) there. Random masks are
//! drawn for f16, bf16, f32 and f64 data; other element types have no kernel in training.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::typed::{f64_to_half, half_to_f64};
use crate::codegen::kernel::{KernelCx, Launch, Lowered, Operand};
use crate::codegen::kernels::copy;
use crate::codegen::kernels::misc::ir::{buf, copy_bytes_dyn, for_range, sflags};

/// Mask bytes one work item fills.
const CHUNK: usize = 16 * 1024;

/// Elements one work item of the training kernel handles (a multiple of 16, so every item's
/// first byte is 16-byte aligned for its copy).
const ELEMS: usize = 4 * 1024;

/// The seed of the training kernel's generator when the op has no `seed` attribute.
pub const DEFAULT_SEED: u64 = 0x6772_6170_6863_6430; // "graphcd0"

/// splitmix64's odd increment (2^64 / golden ratio).
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's finalizer (bijective on u64), on the host.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A scalar input of the training kernel: known at compile time or read at run time (the
/// input's element type).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scalar {
    Const(f64),
    Input(DType),
}

/// See [`self`].
pub fn lower(cx: &mut KernelCx, g: &Graph, node: NodeId) -> Result<Option<Lowered>, String> {
    let n = g.node(node);
    if !matches!(n.op, Op::Dropout { .. }) || !(1..=2).contains(&n.outputs.len()) {
        return Ok(None);
    }
    let Some(Some(src)) = n.inputs.first() else {
        return Ok(None);
    };
    // The constant scalar of input `i`, if it is one.
    let constant = |i: usize| match n.inputs.get(i).copied().flatten() {
        Some(v) => match &g.node(v.node).op {
            Op::Constant { value } => Some(Some(value.to_f64_vec().first().copied()?)),
            _ => None,
        },
        None => Some(None),
    };
    let inference = matches!(constant(2), Some(None) | Some(Some(0.0)));
    let no_ratio = matches!(constant(1), Some(Some(0.0)));
    let ty = g.ty(*src);
    let Some(dims) = ty.shape.as_known() else {
        return Ok(None);
    };
    let out = &n.outputs[0].ty;
    if ty.dtype == DType::String
        || out.dtype != ty.dtype
        || out.shape.as_known() != Some(dims.clone())
    {
        return Ok(None);
    }
    if let Some(mask) = n.outputs.get(1) {
        if mask.ty.dtype != DType::Bool || mask.ty.shape.as_known() != Some(dims.clone()) {
            return Ok(None);
        }
    }
    let count: usize = dims.iter().product();
    if !(inference || no_ratio) {
        // A run-time scalar input `i` of an allowed element type.
        let runtime = |i: usize, ok: &dyn Fn(DType) -> bool| {
            let v = n.inputs.get(i).copied().flatten()?;
            let t = g.ty(v);
            let one = t.shape.as_known().map(|d| d.iter().product::<usize>()) == Some(1);
            (one && ok(t.dtype)).then_some(Scalar::Input(t.dtype))
        };
        let float = |d: DType| matches!(d, DType::F16 | DType::BF16 | DType::F32 | DType::F64);
        let ratio = match constant(1) {
            Some(None) => Scalar::Const(0.5),
            Some(Some(r)) => Scalar::Const(r),
            None => match runtime(1, &float) {
                Some(s) => s,
                None => return Ok(None),
            },
        };
        // A constant flag here is true (false is the identity above).
        let training_input = match constant(2) {
            Some(_) => false,
            None => match runtime(2, &|d| d == DType::Bool) {
                Some(_) => true,
                None => return Ok(None),
            },
        };
        if !float(ty.dtype) {
            return Ok(None);
        }
        let seed = match n.op {
            Op::Dropout { seed: Some(s) } => s as u64,
            _ => DEFAULT_SEED,
        };
        let mut launches = Vec::new();
        if count > 0 {
            launches.push(training_launch(
                cx,
                ty.dtype,
                count,
                n.outputs.len() == 2,
                ratio,
                training_input,
                seed,
            )?);
        }
        return Ok(Some(Lowered {
            launches,
            scratch_bytes: 0,
        }));
    }
    let bytes = (count * ty.dtype.size()) as u64;
    let mut launches = Vec::new();
    if count > 0 {
        let func = copy::emit_copy(cx, bytes)?;
        launches.push(Launch {
            func,
            operands: vec![Operand::Input(0), Operand::Output(0)],
            items: bytes.div_ceil(copy::CHUNK),
            grain: 16,
            name: "dropout.copy".into(),
        });
        if n.outputs.len() == 2 {
            launches.push(fill_true(cx, count)?);
        }
    }
    Ok(Some(Lowered {
        launches,
        scratch_bytes: 0,
    }))
}

/// The training kernel (see [`self`]) over `count` elements of `dt`: operands x, y, the mask
/// when `mask`, then the ratio input when it is [`Scalar::Input`], then the training flag
/// when `training_input`. Item `i` handles elements `[i*ELEMS, min((i+1)*ELEMS, count))`.
fn training_launch(
    cx: &mut KernelCx,
    dt: DType,
    count: usize,
    mask: bool,
    ratio: Scalar,
    training_input: bool,
    seed: u64,
) -> Result<Launch, String> {
    let mut operands = vec![Operand::Input(0), Operand::Output(0)];
    if mask {
        operands.push(Operand::Output(1));
    }
    let ratio_at = operands.len();
    if matches!(ratio, Scalar::Input(_)) {
        operands.push(Operand::Input(1));
    }
    let training_at = operands.len();
    if training_input {
        operands.push(Operand::Input(2));
    }
    let es = dt.size() as i64;
    let seed_mix = mix64(seed);
    let func = cx.define_kernel("dropout_train", |b, p| {
        let i64t = types::I64;
        let x = buf(b, p, 0);
        let y = buf(b, p, 1);
        let m = mask.then(|| buf(b, p, 2));
        let lo = b.ins().imul_imm_s(p.begin, ELEMS as i64);
        let hi = b.ins().imul_imm_s(p.end, ELEMS as i64);
        let total = b.ins().iconst(i64t, count as i64);
        let hi = b.ins().umin(hi, total);
        // The effective ratio: 0 when not training.
        let mut r = match ratio {
            Scalar::Const(v) => b.ins().f64const(v),
            Scalar::Input(rt) => {
                let at = buf(b, p, ratio_at);
                load_f64(b, rt, at)
            }
        };
        let zero = b.ins().f64const(0.0);
        if training_input {
            let at = buf(b, p, training_at);
            let t = b.ins().load(types::I8, sflags(), at, 0);
            let on = b.ins().icmp_imm_s(IntCC::NotEqual, t, 0);
            r = b.ins().select(on, r, zero);
        }
        let copy_blk = b.create_block();
        let draw_blk = b.create_block();
        let exit = b.create_block();
        let unchanged = b.ins().fcmp(FloatCC::Equal, r, zero);
        b.ins().brif(unchanged, copy_blk, &[], draw_blk, &[]);

        // The data unchanged, the mask all true.
        b.switch_to_block(copy_blk);
        let blo = b.ins().imul_imm_s(lo, es);
        let bhi = b.ins().imul_imm_s(hi, es);
        copy_bytes_dyn(b, x, y, blo, bhi);
        if let Some(m) = m {
            let one = b.ins().iconst(types::I8, 1);
            for_range(b, lo, hi, |b, i| {
                let at = b.ins().iadd(m, i);
                b.ins().store(sflags(), one, at, 0);
            });
        }
        b.ins().jump(exit, &[]);

        // One draw per element.
        b.switch_to_block(draw_blk);
        let onef = b.ins().f64const(1.0);
        let keepf = b.ins().fsub(onef, r);
        let scale = b.ins().fdiv(onef, keepf);
        let ulp = b.ins().f64const(1.0 / (1u64 << 53) as f64);
        for_range(b, lo, hi, |b, i| {
            let h = hash(b, seed_mix, i);
            let top = b.ins().ushr_imm_s(h, 11);
            let u = b.ins().fcvt_from_uint(types::F64, top);
            let u = b.ins().fmul(u, ulp);
            let keep = b.ins().fcmp(FloatCC::GreaterThanOrEqual, u, r);
            let off = b.ins().imul_imm_s(i, es);
            let xa = b.ins().iadd(x, off);
            let xv = load_f64(b, dt, xa);
            let kept = b.ins().fmul(xv, scale);
            let zero = b.ins().f64const(0.0);
            let v = b.ins().select(keep, kept, zero);
            let ya = b.ins().iadd(y, off);
            store_f64(b, dt, v, ya);
            if let Some(m) = m {
                let at = b.ins().iadd(m, i);
                b.ins().store(sflags(), keep, at, 0);
            }
        });
        b.ins().jump(exit, &[]);

        b.switch_to_block(exit);
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Launch {
        func,
        operands,
        items: count.div_ceil(ELEMS) as u64,
        grain: 1,
        name: "dropout.train".into(),
    })
}

/// 64 random bits for element `i` (i64): splitmix64's finalizer of
/// `seed_mix + (i + 1) * GAMMA`.
fn hash(b: &mut FunctionBuilder, seed_mix: u64, i: Value) -> Value {
    let i64t = types::I64;
    let gamma = b.ins().iconst(i64t, GAMMA as i64);
    let z = b.ins().iadd_imm_s(i, 1);
    let z = b.ins().imul(z, gamma);
    let z = b.ins().iadd_imm_s(z, seed_mix as i64);
    let mut z = z;
    for (shift, mul) in [(30, 0xBF58_476D_1CE4_E5B9u64), (27, 0x94D0_49BB_1331_11EB)] {
        let s = b.ins().ushr_imm_s(z, shift);
        let x = b.ins().bxor(z, s);
        let c = b.ins().iconst(i64t, mul as i64);
        z = b.ins().imul(x, c);
    }
    let s = b.ins().ushr_imm_s(z, 31);
    b.ins().bxor(z, s)
}

/// The float scalar of type `dt` at `at`, widened exactly to f64.
fn load_f64(b: &mut FunctionBuilder, dt: DType, at: Value) -> Value {
    match dt {
        DType::F64 => b.ins().load(types::F64, sflags(), at, 0),
        DType::F32 => {
            let v = b.ins().load(types::F32, sflags(), at, 0);
            b.ins().fpromote(types::F64, v)
        }
        _ => {
            let h = b.ins().load(types::I16, sflags(), at, 0);
            half_to_f64(b, h, dt)
        }
    }
}

/// Stores f64 `v` at `at` as `dt`, rounded once to nearest-even.
fn store_f64(b: &mut FunctionBuilder, dt: DType, v: Value, at: Value) {
    let v = match dt {
        DType::F64 => v,
        DType::F32 => b.ins().fdemote(types::F32, v),
        _ => f64_to_half(b, v, dt),
    };
    b.ins().store(sflags(), v, at, 0);
}

/// A launch setting the `count` bools of output 1 to true; item `i` fills bytes
/// `[i*CHUNK, min((i+1)*CHUNK, count))`.
fn fill_true(cx: &mut KernelCx, count: usize) -> Result<Launch, String> {
    let func = cx.define_kernel("fill_true", |b, p| {
        let table = MemFlagsData::trusted();
        let mem = MemFlagsData::new().with_notrap();
        let i64t = types::I64;
        let base = b.ins().load(i64t, table, p.bufs, 0);
        let lo = b.ins().imul_imm_s(p.begin, CHUNK as i64);
        let hi = b.ins().imul_imm_s(p.end, CHUNK as i64);
        let total = b.ins().iconst(i64t, count as i64);
        let hi = b.ins().umin(hi, total);
        let one = b.ins().iconst(types::I8, 1);
        let ones = b.ins().splat(types::I8X16, one);
        let vhead = b.create_block();
        let vbody = b.create_block();
        let shead = b.create_block();
        let sbody = b.create_block();
        let exit = b.create_block();
        b.append_block_param(vhead, i64t);
        b.append_block_param(shead, i64t);
        b.ins().jump(vhead, &[lo.into()]);

        b.switch_to_block(vhead);
        let i = b.block_params(vhead)[0];
        let next = b.ins().iadd_imm_s(i, 16);
        let fits = b.ins().icmp(IntCC::UnsignedLessThanOrEqual, next, hi);
        b.ins().brif(fits, vbody, &[], shead, &[i.into()]);

        b.switch_to_block(vbody);
        let at = b.ins().iadd(base, i);
        b.ins().store(mem, ones, at, 0);
        b.ins().jump(vhead, &[next.into()]);

        b.switch_to_block(shead);
        let j = b.block_params(shead)[0];
        let more = b.ins().icmp(IntCC::UnsignedLessThan, j, hi);
        b.ins().brif(more, sbody, &[], exit, &[]);

        b.switch_to_block(sbody);
        let at = b.ins().iadd(base, j);
        b.ins().store(mem, one, at, 0);
        let j1 = b.ins().iadd_imm_s(j, 1);
        b.ins().jump(shead, &[j1.into()]);

        b.switch_to_block(exit);
        b.ins().return_(&[]);
        Ok(())
    })?;
    Ok(Launch {
        func,
        operands: vec![Operand::Output(1)],
        items: count.div_ceil(CHUNK) as u64,
        grain: 1,
        name: "dropout.mask".into(),
    })
}

#[cfg(test)]
mod tests {
    use crate::codegen::kernel::Target;
    use crate::codegen::testing::{run_node, single_compute_node};
    use graphc_passes::eval::{compare, eval_graph, random_inputs};
    use graphc_passes::ir::text::parse;
    use graphc_passes::ir::{DType, Tensor};

    /// Runs the graph's node against the reference on `inputs` (all outputs compared exactly).
    fn check(text: &str, inputs: &[Option<Tensor>]) {
        let g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let node = single_compute_node(&g).unwrap();
        let want = eval_graph(&g, inputs).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for target in [Target::host(), Target::baseline()] {
            let got = run_node(&g, node, inputs, target)
                .unwrap()
                .unwrap_or_else(|| panic!("no kernel\n{text}"));
            assert_eq!(got.len(), want.len());
            for (a, w) in got.iter().zip(&want) {
                compare(a, w, 0.0, 0.0).unwrap_or_else(|e| panic!("{e}\n{text}"));
            }
        }
    }

    #[test]
    fn dropout_with_mask_and_constant_training() {
        // Shapes: a tail below 16 bytes of mask, a 1-sized dim, several work items.
        for (s, t) in [
            ("[3,4,5]", "f32"),
            ("[7]", "f64"),
            ("[1,1]", "i32"),
            ("[3,20000]", "f32"),
            ("[0,3]", "f32"),
            ("[5,3]", "f16"),
        ] {
            // Inference with a mask, ratio given or not.
            let text = format!(
                "graph \"g\" (%x: {t}{s}) {{\n  %y: {t}{s}, %z: bool{s} = dropout (%x)\n  return %y, %z\n}}\n"
            );
            let g = parse(&text).unwrap();
            check(&text, &random_inputs(&g, 1).unwrap());
            let text = format!(
                "graph \"g\" (%x: {t}{s}, %r: f32[]) {{\n  %y: {t}{s}, %z: bool{s} = dropout (%x, %r)\n  return %y, %z\n}}\n"
            );
            let g = parse(&text).unwrap();
            let mut inputs = random_inputs(&g, 2).unwrap();
            inputs[1] = Some(Tensor::scalar(0.3f32));
            check(&text, &inputs);
            // Training mode and ratio as constants: training with ratio 0, and not training
            // with ratio 0.5 (the data unchanged either way).
            for (outs, ret) in [
                (format!("%y: {t}{s}"), "%y"),
                (format!("%y: {t}{s}, %z: bool{s}"), "%y, %z"),
            ] {
                for (ratio, training) in [("0", "true"), ("0.5", "false")] {
                    let text = format!(
                        "graph \"g\" (%x: {t}{s}) {{\n  %r: f32[] = constant {{value: f32[] [{ratio}]}}\n  %m: bool[] = constant {{value: bool[] [{training}]}}\n  {outs} = dropout (%x, %r, %m)\n  return {ret}\n}}\n"
                    );
                    let g = parse(&text).unwrap();
                    check(&text, &random_inputs(&g, 3).unwrap());
                }
            }
        }
    }

    /// A graph of one Dropout with `x: {t}{s}`, a run-time ratio `%r: {rt}[]` and training
    /// flag `%m: bool[]`, attributes `attrs` (e.g. "{seed: 3} "), the mask output if `mask`.
    fn runtime_graph(t: &str, s: &str, rt: &str, attrs: &str, mask: bool) -> String {
        let (outs, ret) = if mask {
            (format!("%y: {t}{s}, %z: bool{s}"), "%y, %z")
        } else {
            (format!("%y: {t}{s}"), "%y")
        };
        format!(
            "graph \"g\" (%x: {t}{s}, %r: {rt}[], %m: bool[]) {{\n  {outs} = dropout {attrs}(%x, %r, %m)\n  return {ret}\n}}\n"
        )
    }

    /// Runs the graph's node with `inputs` on both targets; the outputs (the same on both).
    fn run(text: &str, inputs: &[Option<Tensor>]) -> Vec<Tensor> {
        let g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let node = single_compute_node(&g).unwrap();
        let mut first: Option<Vec<Tensor>> = None;
        for target in [Target::host(), Target::baseline()] {
            let got = run_node(&g, node, inputs, target)
                .unwrap()
                .unwrap_or_else(|| panic!("no kernel\n{text}"));
            if let Some(f) = &first {
                for (a, b) in got.iter().zip(f) {
                    compare(a, b, 0.0, 0.0).unwrap_or_else(|e| panic!("targets differ: {e}"));
                }
            } else {
                first = Some(got);
            }
        }
        first.unwrap()
    }

    /// Run-time training flag and ratio whose result is the data: training with ratio 0, or
    /// not training with ratio 0.5; exactly the reference, any float element and ratio type.
    #[test]
    fn dropout_runtime_unchanged_matches_reference() {
        for s in ["[0]", "[1]", "[7]", "[3,5,17]", "[2,4099]"] {
            for t in ["f32", "f64", "f16", "bf16"] {
                for rt in ["f32", "f16", "f64", "bf16"] {
                    for mask in [true, false] {
                        let text = runtime_graph(t, s, rt, "", mask);
                        let g = parse(&text).unwrap();
                        for (ratio, training) in [(0.0f32, true), (0.5, false)] {
                            let mut inputs = random_inputs(&g, 7).unwrap();
                            inputs[1] = Some(Tensor::scalar(ratio).cast(dtype(rt)));
                            inputs[2] = Some(Tensor::scalar(training));
                            check(&text, &inputs);
                        }
                    }
                }
            }
        }
        // Ratio absent (0.5) and not training; a constant ratio with a run-time flag.
        for (ratio_def, args) in [
            ("", "%x, _, %m"),
            (
                "%q: f32[] = constant {value: f32[] [0.25]}\n  ",
                "%x, %q, %m",
            ),
        ] {
            let text = format!(
                "graph \"g\" (%x: f32[3,7], %m: bool[]) {{\n  {ratio_def}%y: f32[3,7], %z: bool[3,7] = dropout ({args})\n  return %y, %z\n}}\n"
            );
            let g = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let mut inputs = random_inputs(&g, 8).unwrap();
            inputs[1] = Some(Tensor::scalar(false));
            check(&text, &inputs);
        }
    }

    /// Unchanged data is copied bit for bit: NaN payloads (signaling ones too), -0, inf and
    /// subnormals survive, in f32 and f16.
    #[test]
    fn dropout_runtime_unchanged_keeps_bit_patterns() {
        let f32_bits = [
            0x7f80_0001u32,
            0xffc0_1234,
            0x8000_0000,
            0x7f80_0000,
            0x0000_0001,
            0x3f80_0000,
            0xbf00_0000,
        ];
        let f16_bits = [0x7c01u16, 0xfe12, 0x8000, 0x7c00, 0x0001, 0x3c00, 0xb800];
        let n = f32_bits.len();
        let xs = [
            (
                "f32",
                Tensor::from_vec(&[n], f32_bits.iter().map(|&b| f32::from_bits(b)).collect())
                    .unwrap(),
            ),
            (
                "f16",
                Tensor::from_vec(
                    &[n],
                    f16_bits.iter().map(|&b| half::f16::from_bits(b)).collect(),
                )
                .unwrap(),
            ),
        ];
        for (t, x) in xs {
            let text = runtime_graph(t, &format!("[{n}]"), "f32", "", true);
            for (ratio, training) in [(0.0f32, true), (0.5, false)] {
                let out = run(
                    &text,
                    &[
                        Some(x.clone()),
                        Some(Tensor::scalar(ratio)),
                        Some(Tensor::scalar(training)),
                    ],
                );
                let (got, want): (Vec<u64>, Vec<u64>) = match t {
                    "f32" => (
                        out[0]
                            .as_array::<f32>()
                            .unwrap()
                            .iter()
                            .map(|v| v.to_bits() as u64)
                            .collect(),
                        x.as_array::<f32>()
                            .unwrap()
                            .iter()
                            .map(|v| v.to_bits() as u64)
                            .collect(),
                    ),
                    _ => (
                        out[0]
                            .as_array::<half::f16>()
                            .unwrap()
                            .iter()
                            .map(|v| v.to_bits() as u64)
                            .collect(),
                        x.as_array::<half::f16>()
                            .unwrap()
                            .iter()
                            .map(|v| v.to_bits() as u64)
                            .collect(),
                    ),
                };
                assert_eq!(got, want, "{t} ratio {ratio} training {training}");
                assert!(out[1].as_array::<bool>().unwrap().iter().all(|&k| k));
            }
        }
    }

    /// Through the JIT, whose output buffers start zeroed (`run_node`'s poison byte reads as
    /// true, so only this shows a mask left unwritten), on 1 and 2 threads: the unchanged
    /// cases give the data and an all-true mask. Training with ratio 0.5 runs too (the
    /// reference would refuse it, so the node is not a fallback).
    #[test]
    fn dropout_runtime_through_the_jit() {
        use crate::codegen::jit::{JitModel, JitOptions};
        let n = 9000;
        let text = runtime_graph("f32", &format!("[{n}]"), "f32", "", true);
        let g = parse(&text).unwrap();
        let x = data(n, "f32");
        for threads in [1, 2] {
            let opts = JitOptions {
                threads,
                ..JitOptions::default()
            };
            let mut model = JitModel::compile(&g, &opts).unwrap();
            let out = model
                .run(&[x.clone(), Tensor::scalar(0.5f32), Tensor::scalar(true)])
                .unwrap();
            let kept = out[1]
                .as_array::<bool>()
                .unwrap()
                .iter()
                .filter(|&&k| k)
                .count();
            assert!(kept > 0 && kept < n, "kept {kept} of {n}");
            for (ratio, training) in [(0.0f32, true), (0.5, false)] {
                let out = model
                    .run(&[x.clone(), Tensor::scalar(ratio), Tensor::scalar(training)])
                    .unwrap();
                compare(&out[0], &x, 0.0, 0.0).unwrap();
                assert!(out[1].as_array::<bool>().unwrap().iter().all(|&k| k));
            }
        }
    }

    /// The draws are the documented generator's, and an element whose draw equals the ratio
    /// is kept (`u >= ratio`): the ratio (f64) is set to one element's draw.
    #[test]
    fn dropout_training_draws_are_the_documented_generator() {
        use super::{mix64, DEFAULT_SEED, GAMMA};
        let n = 5000;
        for (attrs, seed) in [("", DEFAULT_SEED), ("{seed: -7} ", -7i64 as u64)] {
            let draw = |i: usize| {
                let z = mix64(seed).wrapping_add((i as u64 + 1).wrapping_mul(GAMMA));
                (mix64(z) >> 11) as f64 / (1u64 << 53) as f64
            };
            let k = (0..n).find(|&i| (0.3..0.7).contains(&draw(i))).unwrap();
            let ratio = draw(k);
            let text = runtime_graph("f64", &format!("[{n}]"), "f64", attrs, true);
            let inputs = vec![
                Some(data(n, "f64")),
                Some(Tensor::scalar(ratio)),
                Some(Tensor::scalar(true)),
            ];
            let out = run(&text, &inputs);
            let mask: Vec<bool> = out[1].as_array::<bool>().unwrap().iter().copied().collect();
            let want: Vec<bool> = (0..n).map(|i| draw(i) >= ratio).collect();
            assert!(mask[k]);
            assert_eq!(mask, want);
        }
    }

    fn dtype(t: &str) -> DType {
        match t {
            "f32" => DType::F32,
            "f64" => DType::F64,
            "f16" => DType::F16,
            "bf16" => DType::BF16,
            _ => unreachable!("{t}"),
        }
    }

    /// `n` non-zero data values (both signs, several magnitudes, not all representable in
    /// f16 after scaling).
    fn data(n: usize, t: &str) -> Tensor {
        let v: Vec<f64> = (0..n)
            .map(|i| {
                let m = 1.0 + (i % 97) as f64 / 97.0 + (i % 13) as f64 * 0.001;
                let sign = if i % 3 == 0 { -1.0 } else { 1.0 };
                sign * m * 2f64.powi((i % 9) as i32 - 4)
            })
            .collect();
        Tensor::from_vec(&[n], v).unwrap().cast(dtype(t))
    }

    /// Training with ratio `ratio` (f32) on `n` elements of `t` with attributes `attrs`:
    /// (x, y, mask) as f64 / bool vectors, after checking each y against its mask.
    fn train(t: &str, n: usize, ratio: f32, attrs: &str) -> (Vec<f64>, Vec<f64>, Vec<bool>) {
        let text = runtime_graph(t, &format!("[{n}]"), "f32", attrs, true);
        let x = data(n, t);
        let inputs = vec![
            Some(x.clone()),
            Some(Tensor::scalar(ratio)),
            Some(Tensor::scalar(true)),
        ];
        let out = run(&text, &inputs);
        let (x, y) = (x.to_f64_vec(), out[0].to_f64_vec());
        let mask: Vec<bool> = out[1].as_array::<bool>().unwrap().iter().copied().collect();
        assert_eq!((y.len(), mask.len()), (n, n));
        // Relative tolerance: one ulp of the element type.
        let ulp = match t {
            "f64" => 2f64.powi(-52),
            "f32" => 2f64.powi(-23),
            "f16" => 2f64.powi(-10),
            _ => 2f64.powi(-7),
        };
        let scale = 1.0 / (1.0 - ratio as f64);
        for i in 0..n {
            if mask[i] {
                let want = x[i] * scale;
                assert!(
                    (y[i] - want).abs() <= want.abs() * ulp,
                    "{t} ratio {ratio} element {i}: {} kept as {}, want {want}",
                    x[i],
                    y[i]
                );
            } else {
                assert!(
                    y[i] == 0.0 && y[i].is_sign_positive(),
                    "{t} ratio {ratio} element {i}: dropped as {}",
                    y[i]
                );
            }
        }
        (x, y, mask)
    }

    /// Training with a ratio in (0, 1): each element kept (scaled) or zero with its mask, the
    /// kept fraction near 1 - ratio.
    #[test]
    fn dropout_training_keeps_about_one_minus_ratio() {
        let n = 20000;
        for t in ["f32", "f64", "f16", "bf16"] {
            for ratio in [0.1f32, 0.5, 0.9] {
                let (_, _, mask) = train(t, n, ratio, "");
                let p = 1.0 - ratio as f64;
                let kept = mask.iter().filter(|&&k| k).count() as f64;
                let sd = (n as f64 * p * (1.0 - p)).sqrt();
                assert!(
                    (kept - n as f64 * p).abs() <= 4.0 * sd,
                    "{t} ratio {ratio}: kept {kept} of {n}"
                );
                // Neither half of the data is favoured (the draws depend on the index well).
                let head = mask[..n / 2].iter().filter(|&&k| k).count() as f64;
                let sd2 = (n as f64 / 2.0 * p * (1.0 - p)).sqrt();
                assert!(
                    (head - n as f64 / 2.0 * p).abs() <= 4.0 * sd2,
                    "{t} ratio {ratio}: first half kept {head}"
                );
            }
        }
    }

    /// A run-time ratio of each float type: 0.25 and 0.75 (exact in all of them) keep about
    /// 3/4 and 1/4, scaled by 1/0.75 and 4 (f64 data, so the product is checked exactly).
    #[test]
    fn dropout_training_ratio_of_any_float_type() {
        let n = 20000;
        let x = data(n, "f64");
        for rt in ["f16", "bf16", "f32", "f64"] {
            let text = runtime_graph("f64", &format!("[{n}]"), rt, "", true);
            for ratio in [0.25f32, 0.75] {
                let r = Tensor::scalar(ratio).cast(dtype(rt));
                let out = run(
                    &text,
                    &[Some(x.clone()), Some(r), Some(Tensor::scalar(true))],
                );
                let mask: Vec<bool> = out[1].as_array::<bool>().unwrap().iter().copied().collect();
                let p = 1.0 - ratio as f64;
                let kept = mask.iter().filter(|&&k| k).count() as f64;
                let sd = (n as f64 * p * (1.0 - p)).sqrt();
                assert!(
                    (kept - n as f64 * p).abs() <= 4.0 * sd,
                    "{rt} {ratio}: kept {kept}"
                );
                for ((a, y), k) in x.to_f64_vec().iter().zip(out[0].to_f64_vec()).zip(&mask) {
                    // The documented f64 product x * (1 / (1 - ratio)).
                    assert_eq!(y, if *k { *a * (1.0 / p) } else { 0.0 }, "{rt} {ratio}");
                }
            }
        }
    }

    /// The masks are a function of the seed: the same on every run, different across seeds.
    #[test]
    fn dropout_training_masks_follow_the_seed() {
        let n = 10000;
        let (_, _, a) = train("f32", n, 0.5, "");
        let (_, _, b) = train("f32", n, 0.5, "");
        assert_eq!(a, b);
        let (_, _, s1) = train("f32", n, 0.5, "{seed: 1} ");
        let (_, _, s1b) = train("f32", n, 0.5, "{seed: 1} ");
        let (_, _, s2) = train("f32", n, 0.5, "{seed: 2} ");
        assert_eq!(s1, s1b);
        for (p, q) in [(&a, &s1), (&a, &s2), (&s1, &s2)] {
            let differ = p.iter().zip(q).filter(|(u, v)| u != v).count();
            // Independent masks differ in about half the places.
            assert!(
                differ > n / 4,
                "masks differ in only {differ} of {n} places"
            );
        }
        // Draws depend on the element's index, not its place in a work item (4096 elements):
        // the first two items' masks are unrelated.
        let blocks = (a[..2048].iter()).zip(&a[4096..6144]);
        let differ = blocks.filter(|(u, v)| u != v).count();
        assert!(
            differ > 512,
            "items' masks differ in only {differ} of 2048 places"
        );
        // The same seed: the mask does not depend on the element type.
        let (_, _, h) = train("f16", n, 0.5, "");
        assert_eq!(a, h);
    }

    /// A ratio of 1 or more drops everything, even inf and NaN data: +0 and a false mask.
    #[test]
    fn dropout_training_ratio_one_drops_everything() {
        for t in ["f32", "f64", "f16", "bf16"] {
            for ratio in [1.0f32, 1.5, f32::INFINITY] {
                let (_, y, mask) = train(t, 333, ratio, "");
                assert!(mask.iter().all(|&k| !k), "{t} ratio {ratio}");
                assert!(y.iter().all(|v| v.to_bits() == 0), "{t} ratio {ratio}");
            }
            let text = runtime_graph(t, "[4]", "f32", "", true);
            let x = Tensor::from_vec(&[4], vec![f64::INFINITY, f64::NAN, -f64::INFINITY, 1.0])
                .unwrap()
                .cast(dtype(t));
            let out = run(
                &text,
                &[
                    Some(x),
                    Some(Tensor::scalar(1.0f32)),
                    Some(Tensor::scalar(true)),
                ],
            );
            assert!(out[0].to_f64_vec().iter().all(|v| v.to_bits() == 0), "{t}");
            assert!(
                out[1].as_array::<bool>().unwrap().iter().all(|&k| !k),
                "{t}"
            );
        }
    }

    /// A constant true flag with a run-time ratio, and a run-time flag with no ratio (0.5).
    #[test]
    fn dropout_training_with_constant_flag_or_default_ratio() {
        let n = 8000;
        let x = data(n, "f32");
        for (text, ratio) in [
            (format!("graph \"g\" (%x: f32[{n}], %r: f32[]) {{\n  %m: bool[] = constant {{value: bool[] [true]}}\n  %y: f32[{n}], %z: bool[{n}] = dropout (%x, %r, %m)\n  return %y, %z\n}}\n"), Some(0.25f32)),
            (format!("graph \"g\" (%x: f32[{n}], %m: bool[]) {{\n  %y: f32[{n}], %z: bool[{n}] = dropout (%x, _, %m)\n  return %y, %z\n}}\n"), None),
        ] {
            let second = match ratio {
                Some(r) => Tensor::scalar(r),
                None => Tensor::scalar(true),
            };
            let out = run(&text, &[Some(x.clone()), Some(second)]);
            let p = 1.0 - ratio.unwrap_or(0.5) as f64;
            let mask: Vec<bool> = out[1].as_array::<bool>().unwrap().iter().copied().collect();
            let kept = mask.iter().filter(|&&k| k).count() as f64;
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!((kept - n as f64 * p).abs() <= 4.0 * sd, "kept {kept}\n{text}");
            for ((a, y), k) in x.to_f64_vec().iter().zip(out[0].to_f64_vec()).zip(&mask) {
                assert_eq!(y, if *k { (*a / p) as f32 as f64 } else { 0.0 });
            }
        }
    }
}
