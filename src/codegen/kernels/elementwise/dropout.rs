//! Kernel: Dropout where its result is known to be the data unchanged (and an all-true mask):
//! `training_mode` absent or a constant false (inference), or `ratio` a constant 0. Training
//! with a ratio known only at run time is left to the reference evaluator (the JIT) or refused
//! (a `.so`): with a non-zero ratio it is random in ONNX and an error in the reference, and a
//! kernel cannot report that. The single-output case with training_mode absent or a constant
//! false is the copy family's.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData};
use graphc_passes::ir::{DType, Graph, NodeId, Op};

use crate::codegen::kernel::{KernelCx, Launch, Lowered, Operand};
use crate::codegen::kernels::copy;

/// Mask bytes one work item fills.
const CHUNK: usize = 16 * 1024;

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
    if !(inference || no_ratio) {
        return Ok(None);
    }
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
    use graphc_passes::ir::Tensor;

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

    /// Training mode known only at run time: the result may be random, so no kernel.
    #[test]
    fn dropout_with_runtime_training_declines() {
        let text = "graph \"g\" (%x: f32[4], %r: f32[], %m: bool[]) {\n  %y: f32[4], %z: bool[4] = dropout (%x, %r, %m)\n  return %y, %z\n}\n";
        let g = parse(text).unwrap();
        let node = single_compute_node(&g).unwrap();
        let inputs = random_inputs(&g, 1).unwrap();
        assert!(run_node(&g, node, &inputs, Target::host())
            .unwrap()
            .is_none());
    }
}
