//! Einsum (f32, f64, i32, i64) as copies, products and sums, as the reference evaluator
//! computes it (`passes/src/eval/nn/linalg.rs`): the sum over the labels absent from the
//! output of the product of the operands, in f64 for floats (f32 operands are cast to f64
//! and the result rounded once), wrapping for integers.
//!
//! Each operand with a repeated label (a diagonal) first becomes a Gather of its flattened
//! elements with constant indices; a label only one operand has and the output lacks is
//! summed there (ReduceSum). The operands are then transposed into one label order (the
//! output's labels, then the summed ones), reshaped with 1 for their missing labels,
//! multiplied with broadcasting and reduced over the trailing summed labels. Integers wrap
//! as the reference's (which multiplies and adds in wrapping i64 and then narrows).
//!
//! Declined: other element types, dynamic shapes, labels whose sizes disagree, empty dims,
//! a broadcast product of more than [`MAX_PRODUCT`] elements and a diagonal of more than
//! [`MAX_DIAGONAL`].

use std::collections::BTreeMap;

use graphc_passes::ir::{DType, Graph, NodeId, Op, Tensor, ValueRef};

use super::{become_last_step, known, Builder};

/// The largest broadcast product (elements) the decomposition materializes.
const MAX_PRODUCT: usize = 1 << 24;

/// The largest index table (entries) of a diagonal's Gather.
const MAX_DIAGONAL: usize = 1 << 20;

/// Labels of ellipsis dims: `ELL + k` for the k-th dim from the right.
const ELL: u32 = 0x11_0000;

/// One term's labels, ellipsis expanded to `n_ell` dims (`None`: as many as the rank leaves).
fn parse_term(term: &str, rank: Option<usize>, ell_rank: &mut usize) -> Option<Vec<u32>> {
    let (pre, post, has_ell) = match term.split_once("...") {
        Some((a, b)) => (a, b, true),
        None => (term, "", false),
    };
    let letters = |s: &str| -> Option<Vec<u32>> {
        s.chars()
            .map(|c| c.is_ascii_alphabetic().then_some(c as u32))
            .collect()
    };
    let (pre, post) = (letters(pre)?, letters(post)?);
    let n_ell = match (has_ell, rank) {
        (false, _) => 0,
        (true, Some(r)) => {
            let n = r.checked_sub(pre.len() + post.len())?;
            *ell_rank = (*ell_rank).max(n);
            n
        }
        (true, None) => *ell_rank,
    };
    let mut out = pre;
    out.extend((0..n_ell).map(|i| ELL + (n_ell - 1 - i) as u32));
    out.extend(post);
    match rank {
        Some(r) if out.len() != r => None,
        _ => Some(out),
    }
}

/// Rewrites an Einsum node `id` whose form is covered; leaves it as it is otherwise.
pub fn decompose(g: &mut Graph, id: NodeId) {
    let node = g.node(id);
    let Op::Einsum { equation } = &node.op else {
        return;
    };
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(xs) = node
        .inputs
        .iter()
        .copied()
        .collect::<Option<Vec<ValueRef>>>()
    else {
        return;
    };
    if xs.is_empty() || node.outputs.len() != 1 {
        return;
    }
    let dt = g.dtype(xs[0]);
    if !matches!(dt, DType::F32 | DType::F64 | DType::I32 | DType::I64)
        || xs.iter().any(|&x| g.dtype(x) != dt)
        || node.outputs[0].ty.dtype != dt
    {
        return;
    }
    let Some(shapes) = xs.iter().map(|&x| known(g, x)).collect::<Option<Vec<_>>>() else {
        return;
    };
    let Some(out_shape) = node.outputs[0].ty.shape.as_known() else {
        return;
    };
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != xs.len() {
        return;
    }
    let mut ell_rank = 0;
    let Some(labels) = terms
        .iter()
        .zip(&shapes)
        .map(|(t, s)| parse_term(t, Some(s.len()), &mut ell_rank))
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    // Sizes per label; ellipsis dims of size 1 broadcast.
    let mut sizes: BTreeMap<u32, usize> = BTreeMap::new();
    for (ls, s) in labels.iter().zip(&shapes) {
        for (&l, &d) in ls.iter().zip(s) {
            let e = sizes.entry(l).or_insert(d);
            if *e != d {
                if *e == 1 && l >= ELL {
                    *e = d;
                } else if !(d == 1 && l >= ELL) {
                    return;
                }
            }
        }
    }
    if sizes.values().any(|&d| d == 0) {
        return;
    }
    let out_labels: Vec<u32> = match rhs {
        Some(r) => match parse_term(r, None, &mut ell_rank) {
            Some(o) => o,
            None => return,
        },
        None => {
            let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
            for &l in labels.iter().flatten() {
                *counts.entry(l).or_default() += 1;
            }
            let mut o: Vec<u32> = (0..ell_rank).rev().map(|i| ELL + i as u32).collect();
            o.extend(
                counts
                    .iter()
                    .filter(|&(&l, &c)| c == 1 && l < ELL)
                    .map(|(&l, _)| l),
            );
            o
        }
    };
    let mut seen = out_labels.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != out_labels.len() || out_labels.iter().any(|l| !sizes.contains_key(l)) {
        return;
    }
    if out_labels.iter().map(|l| sizes[l]).collect::<Vec<_>>() != out_shape {
        return;
    }
    let mut all = out_labels.clone();
    all.extend(sizes.keys().filter(|l| !out_labels.contains(l)));
    let full: Vec<usize> = all.iter().map(|l| sizes[l]).collect();
    let product = full.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if product.is_none_or(|n| n > MAX_PRODUCT) {
        return;
    }

    // Diagonals: index tables of at most MAX_DIAGONAL entries.
    for ls in &labels {
        let mut uniq = ls.clone();
        uniq.sort_unstable();
        uniq.dedup();
        if uniq.len() != ls.len() && uniq.iter().map(|l| sizes[l]).product::<usize>() > MAX_DIAGONAL
        {
            return;
        }
    }
    // The reference multiplies and adds floats in f64: f32 operands are widened first.
    let cdt = if dt == DType::F32 { DType::F64 } else { dt };
    let cast = |to: DType| Op::Cast {
        to,
        saturate: 1,
        round_mode: "up".into(),
    };
    let mut bld = Builder::for_node(g, id);
    let mut factors = Vec::new();
    for (k, (&x, (ls, shape))) in xs.iter().zip(labels.iter().zip(&shapes)).enumerate() {
        let (mut v, mut ls, mut dims) = (x, ls.clone(), shape.clone());
        if cdt != dt {
            v = bld.add(&format!("x{k}.wide"), cast(cdt), vec![v], cdt, &dims);
        }
        // A diagonal: gather the elements whose repeated labels agree.
        let mut uniq: Vec<u32> = Vec::new();
        for &l in &ls {
            if !uniq.contains(&l) {
                uniq.push(l);
            }
        }
        if uniq.len() != ls.len() {
            let udims: Vec<usize> = uniq
                .iter()
                .map(|u| dims[ls.iter().position(|l| l == u).expect("a label of the term")])
                .collect();
            let mut st = vec![1usize; dims.len()];
            for d in (0..dims.len().saturating_sub(1)).rev() {
                st[d] = st[d + 1] * dims[d + 1];
            }
            let pos: Vec<usize> = ls
                .iter()
                .map(|l| uniq.iter().position(|u| u == l).expect("listed"))
                .collect();
            let n: usize = udims.iter().product();
            let mut idx = Vec::with_capacity(n);
            let mut at = vec![0usize; udims.len()];
            for _ in 0..n {
                idx.push(pos.iter().zip(&st).map(|(&p, &s)| at[p] * s).sum::<usize>() as i64);
                for a in (0..at.len()).rev() {
                    at[a] += 1;
                    if at[a] < udims[a] {
                        break;
                    }
                    at[a] = 0;
                }
            }
            let numel: usize = dims.iter().product();
            let flat = bld.reshape(&format!("x{k}.flat"), v, &[numel]);
            let t = Tensor::from_vec(&udims, idx).expect("size matches");
            let i = bld.constant(&format!("x{k}.diagonal.idx"), t);
            v = bld.add(
                &format!("x{k}.diagonal"),
                Op::Gather { axis: 0 },
                vec![flat, i],
                cdt,
                &udims,
            );
            (ls, dims) = (uniq, udims);
        }
        // Labels only this operand has, absent from the output: summed here.
        let own: Vec<usize> = (0..ls.len())
            .filter(|&d| {
                !out_labels.contains(&ls[d])
                    && labels
                        .iter()
                        .enumerate()
                        .all(|(j, o)| j == k || !o.contains(&ls[d]))
            })
            .collect();
        if !own.is_empty() {
            let axes: Vec<i64> = own.iter().map(|&d| d as i64).collect();
            let a = bld.constant(
                &format!("x{k}.summed.axes"),
                Tensor::from_vec(&[axes.len()], axes).expect("size"),
            );
            let keep: Vec<usize> = (0..ls.len()).filter(|d| !own.contains(d)).collect();
            let kdims: Vec<usize> = keep.iter().map(|&d| dims[d]).collect();
            let op = Op::ReduceSum {
                keepdims: 0,
                noop_with_empty_axes: 0,
            };
            v = bld.add(&format!("x{k}.summed"), op, vec![v, a], cdt, &kdims);
            ls = keep.iter().map(|&d| ls[d]).collect();
            dims = kdims;
        }
        // Into the common label order, 1 for the labels it lacks.
        let mut order: Vec<usize> = (0..ls.len()).collect();
        order.sort_by_key(|&d| all.iter().position(|l| *l == ls[d]));
        if order.iter().enumerate().any(|(i, &d)| i != d) {
            let perm: Vec<i64> = order.iter().map(|&d| d as i64).collect();
            let tdims: Vec<usize> = order.iter().map(|&d| dims[d]).collect();
            v = bld.transpose(&format!("x{k}.t"), v, &perm, &tdims);
            ls = order.iter().map(|&d| ls[d]).collect();
            dims = tdims;
        }
        let wide: Vec<usize> = all
            .iter()
            .map(|l| ls.iter().position(|m| m == l).map_or(1, |d| dims[d]))
            .collect();
        if wide != dims {
            v = bld.reshape(&format!("x{k}.broadcast"), v, &wide);
        }
        factors.push((v, wide));
    }
    let (mut acc, mut adims) = factors.remove(0);
    for (k, (v, dims)) in factors.into_iter().enumerate() {
        let Some(bd) = super::broadcast(&adims, &dims) else {
            return;
        };
        acc = bld.add(&format!("product{k}"), Op::Mul {}, vec![acc, v], cdt, &bd);
        adims = bd;
    }
    // The summed labels trail; the output's lead in order.
    let n_out = out_labels.len();
    let summed: Vec<i64> = (n_out..all.len())
        .filter(|&d| adims[d] != 1)
        .map(|d| d as i64)
        .collect();
    if !summed.is_empty() {
        let a = bld.constant(
            "sum.axes",
            Tensor::from_vec(&[summed.len()], summed.clone()).expect("size"),
        );
        let rdims: Vec<usize> = (0..adims.len())
            .filter(|&d| !summed.contains(&(d as i64)))
            .map(|d| adims[d])
            .collect();
        let op = Op::ReduceSum {
            keepdims: 0,
            noop_with_empty_axes: 0,
        };
        acc = bld.add("sum", op, vec![acc, a], cdt, &rdims);
    }
    // Every output label's size is some operand's, so the product already has it; summed
    // labels of size 1 are left to the Reshape.
    let s = bld.shape("y.shape", &out_shape);
    if cdt == dt {
        become_last_step(bld.g, id, Op::Reshape { allowzero: 0 }, vec![acc, s], &[]);
    } else {
        let op = Op::Reshape { allowzero: 0 };
        let acc = bld.add("y.wide", op, vec![acc, s], cdt, &out_shape);
        become_last_step(bld.g, id, cast(dt), vec![acc], &[]);
    }
}
