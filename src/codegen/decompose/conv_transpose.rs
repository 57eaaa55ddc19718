//! ConvTranspose as a Conv, so that it runs on the GEMM convolution kernels.
//!
//! ConvTranspose scatters `x[i] · w[k]` to output position `i·s + k·d - pad_begin`. Gathered
//! per output position instead, that is a stride-1 Conv over `u`, the input with `s - 1` zeros
//! after every element (`u[i·s] = x[i]`), with the kernel reversed and its two channel axes
//! swapped per group (`W'[g·mg + o, c, k] = w[g·cg + c, o, K - 1 - k]`), dilation `d`, and
//! padding `(K - 1)·d - pad_begin` before and whatever makes the output the ConvTranspose's
//! size after (a negative padding crops `u` instead). A constant weight is rearranged at
//! compile time; a weight known only at run time goes through Reshape, Transpose, a reversing
//! Slice and Reshape.
//!
//! A stride of `s` multiplies the Conv's work by `s` per spatial axis (the inserted zeros);
//! a dedicated col2im kernel would avoid that.

use graphc_passes::ir::{AutoPad, DType, Graph, NodeId, Op, Tensor, ValueRef};

use super::{become_last_step, known, Builder};

/// The Conv a ConvTranspose node stands for.
struct Plan {
    x: ValueRef,
    w: ValueRef,
    bias: Option<ValueRef>,
    /// [N, C, in...] of x and [C, M/g, k...] of w.
    xs: Vec<usize>,
    ws: Vec<usize>,
    group: usize,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    /// Per spatial axis: elements cropped from the start / end of `u`, then Conv padding.
    crop: Vec<(usize, usize)>,
    pads: Vec<(usize, usize)>,
}

/// A per-axis attribute list, `default` when empty.
fn list(v: &[i64], nd: usize, default: usize) -> Option<Vec<usize>> {
    if v.is_empty() {
        return Some(vec![default; nd]);
    }
    (v.len() == nd)
        .then(|| v.iter().map(|&x| usize::try_from(x).ok()).collect())
        .flatten()
}

fn plan(g: &Graph, id: NodeId) -> Option<Plan> {
    let node = g.node(id);
    let Op::ConvTranspose {
        auto_pad,
        dilations,
        group,
        kernel_shape,
        output_padding,
        output_shape: _,
        pads,
        strides,
    } = &node.op
    else {
        return None;
    };
    let input = |i: usize| node.inputs.get(i).copied().flatten();
    let (x, w, bias) = (input(0)?, input(1)?, input(2));
    let f32s = [Some(x), Some(w), bias]
        .into_iter()
        .flatten()
        .map(|v| g.dtype(v));
    if node.outputs.len() != 1 || node.outputs[0].ty.dtype != DType::F32 {
        return None;
    }
    if f32s.into_iter().any(|t| t != DType::F32) {
        return None;
    }
    let (xs, ws) = (known(g, x)?, known(g, w)?);
    let ys = node.outputs[0].ty.shape.as_known()?;
    let nd = xs.len().checked_sub(2).filter(|&n| n > 0)?;
    let group = usize::try_from(*group).ok().filter(|&g| g > 0)?;
    let c = xs[1];
    if ws.len() != xs.len() || ys.len() != xs.len() || ws[0] != c || c % group != 0 {
        return None;
    }
    if ys[0] != xs[0] || ys[1] != ws[1] * group {
        return None;
    }
    let kernel = &ws[2..];
    if !kernel_shape.is_empty() && list(kernel_shape, nd, 0)? != kernel {
        return None;
    }
    let strides = list(strides, nd, 1)?;
    let dilations = list(dilations, nd, 1)?;
    let opad = list(output_padding, nd, 0)?;
    if strides.contains(&0) || dilations.contains(&0) || kernel.contains(&0) {
        return None;
    }
    let out = &ys[2..];
    // Padding before the output, as the reference evaluator computes it.
    let pad_begin: Vec<i64> =
        if matches!(auto_pad, AutoPad::SameUpper | AutoPad::SameLower) && pads.is_empty() {
            (0..nd)
                .map(|d| {
                    let natural =
                        strides[d] * (xs[d + 2] - 1) + opad[d] + (kernel[d] - 1) * dilations[d] + 1;
                    let total = natural as i64 - out[d] as i64;
                    if *auto_pad == AutoPad::SameUpper {
                        total.div_euclid(2)
                    } else {
                        total - total.div_euclid(2)
                    }
                })
                .collect()
        } else if pads.is_empty() {
            vec![0; nd]
        } else if pads.len() == 2 * nd {
            pads[..nd].to_vec()
        } else {
            return None;
        };
    if pad_begin.iter().any(|&p| p < 0) {
        return None;
    }
    let mut crop = Vec::with_capacity(nd);
    let mut conv_pads = Vec::with_capacity(nd);
    for d in 0..nd {
        let reach = ((kernel[d] - 1) * dilations[d]) as i64;
        let u_len = (xs[d + 2] * strides[d]) as i64;
        let before = reach - pad_begin[d];
        let after = out[d] as i64 - u_len - before + reach;
        let (cb, ce) = ((-before).max(0), (-after).max(0));
        if cb + ce >= u_len {
            return None;
        }
        crop.push((cb as usize, ce as usize));
        conv_pads.push((before.max(0) as usize, after.max(0) as usize));
    }
    Some(Plan {
        x,
        w,
        bias,
        xs,
        ws,
        group,
        strides,
        dilations,
        crop,
        pads: conv_pads,
    })
}

fn i64s(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

/// Rewrites ConvTranspose node `id` into a Conv over kernel-backed ops (see the module docs);
/// leaves it whole when its form is not covered.
pub fn decompose(g: &mut Graph, id: NodeId) {
    let Some(p) = plan(g, id) else {
        return;
    };
    let nd = p.xs.len() - 2;
    let (n, c) = (p.xs[0], p.xs[1]);
    let (mg, kernel) = (p.ws[1], p.ws[2..].to_vec());
    let (cg, m) = (c / p.group, mg * p.group);
    let taps: usize = kernel.iter().product();
    let mut bld = Builder::for_node(g, id);

    // u: every input element followed by s - 1 zeros along each spatial axis.
    let mut u = p.x;
    let mut u_dims = p.xs.clone();
    if p.strides.iter().any(|&s| s > 1) {
        let mut split = vec![n, c];
        let mut ends = vec![0i64, 0];
        for d in 0..nd {
            split.extend([p.xs[d + 2], 1]);
            ends.extend([0, p.strides[d] as i64 - 1]);
        }
        let one = bld.reshape("upsample.split", u, &split);
        let mut pads = vec![0i64; split.len()];
        pads.extend(ends);
        let pads = bld.constant(
            "upsample.pads",
            Tensor::from_vec(&[pads.len()], pads).expect("size"),
        );
        let mut wide = vec![n, c];
        for d in 0..nd {
            wide.extend([p.xs[d + 2], p.strides[d]]);
        }
        let padded = bld.f32(
            "upsample.zeros",
            Op::Pad {
                mode: "constant".into(),
            },
            vec![one, pads],
            &wide,
        );
        for d in 0..nd {
            u_dims[d + 2] = p.xs[d + 2] * p.strides[d];
        }
        u = bld.reshape("upsample", padded, &u_dims);
    }
    if p.crop.iter().any(|&(b, e)| b > 0 || e > 0) {
        let starts: Vec<i64> = p.crop.iter().map(|&(b, _)| b as i64).collect();
        let ends: Vec<i64> = (0..nd)
            .map(|d| (u_dims[d + 2] - p.crop[d].1) as i64)
            .collect();
        let axes: Vec<i64> = (2..nd as i64 + 2).collect();
        for d in 0..nd {
            u_dims[d + 2] -= p.crop[d].0 + p.crop[d].1;
        }
        let starts = bld.constant(
            "crop.starts",
            Tensor::from_vec(&[nd], starts).expect("size"),
        );
        let ends = bld.constant("crop.ends", Tensor::from_vec(&[nd], ends).expect("size"));
        let axes = bld.constant("crop.axes", Tensor::from_vec(&[nd], axes).expect("size"));
        u = bld.f32("crop", Op::Slice {}, vec![u, starts, ends, axes], &u_dims);
    }

    // W'[g·mg + o, c, k] = w[g·cg + c, o, taps - 1 - k].
    let mut w_dims = vec![m, cg];
    w_dims.extend(&kernel);
    let weight = match &bld.g.node(p.w.node).op {
        Op::Constant { value } => value.as_array::<f32>().map(|a| {
            let src: Vec<f32> = a.iter().copied().collect();
            let mut dst = vec![0f32; src.len()];
            for gi in 0..p.group {
                for o in 0..mg {
                    for ci in 0..cg {
                        for k in 0..taps {
                            let from = (((gi * cg + ci) * mg + o) * taps) + taps - 1 - k;
                            dst[((gi * mg + o) * cg + ci) * taps + k] = src[from];
                        }
                    }
                }
            }
            Tensor::from_vec(&w_dims, dst).expect("size")
        }),
        _ => None,
    };
    let w = match weight {
        Some(t) => bld.constant("weight", t),
        None => {
            let grouped = bld.reshape("weight.groups", p.w, &[p.group, cg, mg, taps]);
            let swapped = bld.transpose(
                "weight.swap",
                grouped,
                &[0, 2, 1, 3],
                &[p.group, mg, cg, taps],
            );
            let starts = bld.constant(
                "weight.rev.starts",
                Tensor::from_vec(&[1], vec![-1i64]).expect("size"),
            );
            let ends = bld.constant(
                "weight.rev.ends",
                Tensor::from_vec(&[1], vec![i64::MIN]).expect("size"),
            );
            let axes = bld.constant(
                "weight.rev.axes",
                Tensor::from_vec(&[1], vec![3i64]).expect("size"),
            );
            let steps = bld.constant(
                "weight.rev.steps",
                Tensor::from_vec(&[1], vec![-1i64]).expect("size"),
            );
            let rev = bld.f32(
                "weight.reversed",
                Op::Slice {},
                vec![swapped, starts, ends, axes, steps],
                &[p.group, mg, cg, taps],
            );
            bld.reshape("weight", rev, &w_dims)
        }
    };

    let mut pads: Vec<i64> = p.pads.iter().map(|&(b, _)| b as i64).collect();
    pads.extend(p.pads.iter().map(|&(_, e)| e as i64));
    let conv = Op::Conv {
        auto_pad: AutoPad::NotSet,
        dilations: i64s(&p.dilations),
        group: p.group as i64,
        kernel_shape: i64s(&kernel),
        pads,
        strides: vec![1; nd],
    };
    let mut inputs = vec![u, w];
    inputs.extend(p.bias);
    become_last_step(bld.g, id, conv, inputs, &[]);
}
