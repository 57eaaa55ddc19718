//! Attention (opset 23/24) as the ops it stands for, each of which has a kernel.
//!
//! `prepare` calls [`decompose`] on every Attention node before compiling. An f32 Attention
//! with static shapes becomes:
//!
//! ```text
//! Q, K, V   3-D [batch, seq, heads * head]: Reshape + Transpose to [batch, heads, seq, head]
//! K, V      Concat after past_key / past_value (axis 2): present_key / present_value
//! K, V      grouped-query heads: Reshape, Expand, Reshape to Q's head count
//! scores    MatMul(Q, Kᵀ) · scale                    (qk_matmul_output_mode 0)
//! bias      the mask (bool as 0 / -inf; keys past its end -inf) + causal and constant
//!           nonpad_kv_seqlen masking as one compile-time constant + run-time
//!           nonpad_kv_seqlen as Where(position < length, 0, -inf)
//! masked    scores + bias                             (mode 1)
//! capped    softcap · tanh(masked / softcap)          (mode 2)
//! probs     Softmax over the keys                     (mode 3)
//! Y         MatMul(probs, V), back to 3-D when Q was
//! ```
//!
//! exactly the reference evaluator's definition (`passes/src/eval/misc/attention.rs`). The
//! Attention node becomes the last step of Y, so its readers are unchanged; readers of the other
//! outputs are moved to the values above. Forms this does not cover (other element types,
//! unknown shapes) are left whole.

use graphc_passes::ir::{DType, Graph, Node, NodeId, Op, Tensor, ValueRef};

use super::{become_last_step, broadcast, known, Builder};

/// What an Attention node computes, checked before anything is added to the graph.
struct Plan {
    q: ValueRef,
    k: ValueRef,
    v: ValueRef,
    mask: Option<ValueRef>,
    past_key: Option<ValueRef>,
    past_value: Option<ValueRef>,
    /// The 3-D shapes of Q, K and V, when they are 3-D.
    q3: Option<[usize; 3]>,
    k3: Option<[usize; 3]>,
    v3: Option<[usize; 3]>,
    /// [batch, heads, seq, head] of Q, K (before past) and V (before past).
    q4: [usize; 4],
    k4: [usize; 4],
    v4: [usize; 4],
    total: usize,
    group: usize,
    scale: f32,
    softcap: f32,
    mode: i64,
    /// The causal and nonpad_kv_seqlen masking as an additive constant.
    fixed_bias: Option<Tensor>,
    /// nonpad_kv_seqlen when it is known only at run time (i64 [batch]).
    runtime_lens: Option<ValueRef>,
}

/// `[batch, heads, seq, head]` of a 3-D or 4-D input, and its 3-D shape when it is 3-D.
fn heads_of(dims: &[usize], heads: Option<i64>) -> Option<([usize; 4], Option<[usize; 3]>)> {
    match *dims {
        [b, h, s, d] => Some(([b, h, s, d], None)),
        [b, s, hidden] => {
            let h = usize::try_from(heads?)
                .ok()
                .filter(|&h| h > 0 && hidden % h == 0)?;
            Some(([b, h, s, hidden / h], Some([b, s, hidden])))
        }
        _ => None,
    }
}

fn plan(g: &Graph, node: &Node) -> Option<Plan> {
    let Op::Attention {
        is_causal,
        kv_num_heads,
        q_num_heads,
        qk_matmul_output_mode: mode,
        scale,
        softcap,
        softmax_precision: _,
    } = node.op
    else {
        return None;
    };
    if node.outputs.is_empty() || node.outputs.len() > 4 || !(0..=3).contains(&mode) {
        return None;
    }
    if node.inputs.len() > 7 {
        return None;
    }
    let input = |i: usize| node.inputs.get(i).copied().flatten();
    let (q, k, v) = (input(0)?, input(1)?, input(2)?);
    let (mask, past_key, past_value, nonpad) = (input(3), input(4), input(5), input(6));
    for x in [Some(q), Some(k), Some(v), past_key, past_value]
        .into_iter()
        .flatten()
    {
        if g.dtype(x) != DType::F32 {
            return None;
        }
    }
    let (q4, q3) = heads_of(&known(g, q)?, q_num_heads)?;
    let (k4, k3) = heads_of(&known(g, k)?, kv_num_heads)?;
    let (v4, v3) = heads_of(&known(g, v)?, kv_num_heads)?;
    let [b, hq, sq, d] = q4;
    let hkv = k4[1];
    if k4[0] != b || v4[0] != b || k4[3] != d || v4[1] != hkv || v4[2] != k4[2] {
        return None;
    }
    if hkv == 0 || hq % hkv != 0 {
        return None;
    }
    let past = |p: Option<ValueRef>, cur: [usize; 4]| -> Option<usize> {
        match p {
            None => Some(0),
            Some(p) => match *known(g, p)? {
                [pb, ph, ps, pd] if pb == cur[0] && ph == cur[1] && pd == cur[3] => Some(ps),
                _ => None,
            },
        }
    };
    let past_len = past(past_key, k4)?;
    if past(past_value, v4)? != past_len {
        return None;
    }
    let total = k4[2] + past_len;
    if let Some(m) = mask {
        if !matches!(g.dtype(m), DType::F32 | DType::Bool) {
            return None;
        }
        let ms = known(g, m)?;
        let last = *ms.last()?;
        if ms.len() > 4 || last > total {
            return None;
        }
        let mut padded = ms.clone();
        *padded.last_mut()? = total;
        if broadcast(&padded, &[b, hq, sq, total])? != [b, hq, sq, total] {
            return None;
        }
    }
    // Causal and nonpad_kv_seqlen masking: one constant [b or 1, 1, sq, total] when the
    // lengths are constants; lengths known only at run time are compared with key positions.
    let mut runtime_lens = None;
    let lens = match nonpad {
        None => None,
        Some(n) => match &g.node(n.node).op {
            Op::Constant { value } => {
                let lens = value.to_i64_vec().ok()?;
                Some((lens.len() == b).then_some(lens)?)
            }
            _ => {
                if g.dtype(n) != DType::I64 || known(g, n)? != [b] {
                    return None;
                }
                runtime_lens = Some(n);
                None
            }
        },
    };
    let fixed_bias = (is_causal != 0 || lens.is_some()).then(|| {
        let rows = if lens.is_some() { b } else { 1 };
        let mut data = vec![0f32; rows * sq * total];
        for (r, row) in data.chunks_mut(sq * total).enumerate() {
            for i in 0..sq {
                for j in 0..total {
                    let causal = is_causal != 0 && j > i + past_len;
                    let padded = lens.as_ref().is_some_and(|l| (j as i64) >= l[r]);
                    if causal || padded {
                        row[i * total + j] = f32::NEG_INFINITY;
                    }
                }
            }
        }
        Tensor::from_vec(&[rows, 1, sq, total], data).expect("size matches")
    });
    Some(Plan {
        q,
        k,
        v,
        mask,
        past_key,
        past_value,
        q3,
        k3,
        v3,
        q4,
        k4,
        v4,
        total,
        group: hq / hkv,
        scale: scale.unwrap_or((1.0 / (d as f64).sqrt()) as f32),
        softcap,
        mode,
        fixed_bias,
        runtime_lens,
    })
}

impl Builder<'_> {
    /// A 3-D [b, s, h * d] input as [b, h, s, d].
    fn to_heads(
        &mut self,
        suffix: &str,
        x: ValueRef,
        three: Option<[usize; 3]>,
        four: [usize; 4],
    ) -> ValueRef {
        match three {
            None => x,
            Some([b, s, _]) => {
                let [_, h, _, d] = four;
                let split = self.reshape(&format!("{suffix}.split"), x, &[b, s, h, d]);
                self.transpose(&format!("{suffix}.heads"), split, &[0, 2, 1, 3], &four)
            }
        }
    }

    /// [b, hkv, t, d] repeated to [b, hkv * group, t, d] (head h reads kv head h / group).
    fn repeat_heads(
        &mut self,
        suffix: &str,
        x: ValueRef,
        dims: [usize; 4],
        group: usize,
    ) -> ValueRef {
        if group == 1 {
            return x;
        }
        let [b, h, t, d] = dims;
        let one = self.reshape(&format!("{suffix}.one"), x, &[b, h, 1, t, d]);
        let to = self.shape(&format!("{suffix}.expand.shape"), &[b, h, group, t, d]);
        let wide = self.f32(
            &format!("{suffix}.expand"),
            Op::Expand {},
            vec![one, to],
            &[b, h, group, t, d],
        );
        self.reshape(&format!("{suffix}.repeat"), wide, &[b, h * group, t, d])
    }
}

/// Rewrites Attention node `id` into kernel-backed ops (see the module docs); leaves it whole
/// when its form is not covered.
pub fn decompose(g: &mut Graph, id: NodeId) {
    let node = g.node(id).clone();
    let Some(p) = plan(g, &node) else {
        return;
    };
    let [b, hq, sq, _] = p.q4;
    let (hkv, d, dv) = (p.k4[1], p.k4[3], p.v4[3]);
    let total = p.total;
    let s_dims = [b, hq, sq, total];
    let mut bld = Builder::for_node(g, id);

    let q = bld.to_heads("q", p.q, p.q3, p.q4);
    let k = bld.to_heads("k", p.k, p.k3, p.k4);
    let v = bld.to_heads("v", p.v, p.v3, p.v4);
    let cat = |bld: &mut Builder,
               suffix: &str,
               past: Option<ValueRef>,
               cur: ValueRef,
               dims: [usize; 4]| match past {
        None => cur,
        Some(past) => bld.f32(
            suffix,
            Op::Concat { axis: 2 },
            vec![past, cur],
            &[dims[0], dims[1], total, dims[3]],
        ),
    };
    let k = cat(&mut bld, "present_key", p.past_key, k, p.k4);
    let v = cat(&mut bld, "present_value", p.past_value, v, p.v4);
    let kx = bld.repeat_heads("k", k, [b, hkv, total, d], p.group);
    let vx = bld.repeat_heads("v", v, [b, hkv, total, dv], p.group);

    // Kᵀ: read through a Transpose by [0, 1, 3, 2] (how the optimizer's fusion writes K).
    let through = (kx == p.k && p.k3.is_none())
        .then(|| match &bld.g.node(p.k.node).op {
            Op::Transpose { perm: Some(perm) } if perm == &[0, 1, 3, 2] => {
                bld.g.node(p.k.node).inputs[0]
            }
            _ => None,
        })
        .flatten();
    let kt = match through {
        Some(kt) => kt,
        None => bld.transpose("kt", kx, &[0, 1, 3, 2], &[b, hq, d, total]),
    };
    let scores = bld.f32("scores", Op::MatMul {}, vec![q, kt], &s_dims);
    let scale = bld.constant("scale", Tensor::scalar(p.scale));
    let scaled = bld.f32("scaled", Op::Mul {}, vec![scores, scale], &s_dims);

    // The additive bias: the mask (bool as 0 / -inf, keys past its end -inf), plus the fixed
    // causal / padding constant.
    let mask_bias = p.mask.map(|m| {
        let ms = known(bld.g, m).expect("checked by plan");
        let m = if bld.g.dtype(m) == DType::Bool {
            let zero = bld.constant("mask.zero", Tensor::scalar(0f32));
            let ninf = bld.constant("mask.ninf", Tensor::scalar(f32::NEG_INFINITY));
            bld.f32("mask.additive", Op::Where {}, vec![m, zero, ninf], &ms)
        } else {
            m
        };
        let last = *ms.last().expect("rank >= 1");
        if last == total {
            return (m, ms);
        }
        let mut rest = ms.clone();
        *rest.last_mut().expect("rank >= 1") = total - last;
        let n: usize = rest.iter().product();
        let fill = Tensor::from_vec(&rest, vec![f32::NEG_INFINITY; n]).expect("size matches");
        let fill = bld.constant("mask.beyond", fill);
        let mut padded = ms.clone();
        *padded.last_mut().expect("rank >= 1") = total;
        let axis = ms.len() as i64 - 1;
        let m = bld.f32("mask.padded", Op::Concat { axis }, vec![m, fill], &padded);
        (m, padded)
    });
    let fixed = p.fixed_bias.clone().map(|t| {
        let dims = t.shape().to_vec();
        (bld.constant("mask.fixed", t), dims)
    });
    // Keys at or past a batch's nonpad length: positions [1, 1, 1, total] < lens [b, 1, 1, 1].
    let padding = p.runtime_lens.map(|lens| {
        let pos: Vec<i64> = (0..total as i64).collect();
        let pos = bld.constant(
            "kv.pos",
            Tensor::from_vec(&[1, 1, 1, total], pos).expect("size"),
        );
        let lens = bld.reshape("kv.lens", lens, &[b, 1, 1, 1]);
        let dims = [b, 1, 1, total];
        let keep = bld.add("kv.keep", Op::Less {}, vec![pos, lens], DType::Bool, &dims);
        let zero = bld.constant("kv.zero", Tensor::scalar(0f32));
        let ninf = bld.constant("kv.ninf", Tensor::scalar(f32::NEG_INFINITY));
        (
            bld.f32("kv.padding", Op::Where {}, vec![keep, zero, ninf], &dims),
            dims.to_vec(),
        )
    });
    let mut bias: Option<(ValueRef, Vec<usize>)> = None;
    for (i, part) in [mask_bias, fixed, padding]
        .into_iter()
        .flatten()
        .enumerate()
    {
        bias = Some(match bias {
            None => part,
            Some((acc, ad)) => {
                let (x, xd) = part;
                let dims = broadcast(&ad, &xd).expect("all broadcast to the scores");
                (
                    bld.f32(&format!("mask.sum{i}"), Op::Add {}, vec![acc, x], &dims),
                    dims,
                )
            }
        });
    }
    let plain_mask = p.mask.is_some_and(|m| bld.g.dtype(m) == DType::F32)
        && p.fixed_bias.is_none()
        && p.runtime_lens.is_none();
    let (masked, capped, probs);
    let qk_wanted = node.outputs.len() == 4 && (p.mode == 1 || p.mode == 2);
    if p.softcap == 0.0 && !qk_wanted && plain_mask && bias.is_some() {
        // Scores plus a float mask then Softmax: one fused kernel.
        let (bias, _) = bias.expect("checked");
        masked = scaled;
        capped = scaled;
        probs = bld.f32(
            "probs",
            Op::FusedSoftmax { axis: -1 },
            vec![scaled, bias],
            &s_dims,
        );
    } else {
        masked = match bias {
            Some((bias, _)) => bld.f32("masked", Op::Add {}, vec![scaled, bias], &s_dims),
            None => scaled,
        };
        capped = if p.softcap > 0.0 {
            let inv = bld.constant("softcap.inv", Tensor::scalar(1.0 / p.softcap));
            let cap = bld.constant("softcap", Tensor::scalar(p.softcap));
            let x = bld.f32("softcap.div", Op::Mul {}, vec![masked, inv], &s_dims);
            let t = bld.f32("softcap.tanh", Op::Tanh {}, vec![x], &s_dims);
            bld.f32("capped", Op::Mul {}, vec![t, cap], &s_dims)
        } else {
            masked
        };
        probs = bld.f32(
            "probs",
            Op::Softmax {
                axis: -1,
                coerce_2d: false,
            },
            vec![capped],
            &s_dims,
        );
    }
    let qk = [scaled, masked, capped, probs][p.mode as usize];

    // Y: the Attention node itself becomes its last step.
    let y_dims = [b, hq, sq, dv];
    let (op, inputs) = match p.q3 {
        None => (Op::MatMul {}, vec![probs, vx]),
        Some(_) => {
            let y4 = bld.f32("y4", Op::MatMul {}, vec![probs, vx], &y_dims);
            let yt = bld.transpose("y.seq", y4, &[0, 2, 1, 3], &[b, sq, hq, dv]);
            let s = bld.shape("y.shape", &[b, sq, hq * dv]);
            (Op::Reshape { allowzero: 0 }, vec![yt, s])
        }
    };
    become_last_step(bld.g, id, op, inputs, &[k, v, qk]);
}
