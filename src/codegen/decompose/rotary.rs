//! RotaryEmbedding (opset 23) as Gather, Slice, elementwise and Concat ops.
//!
//! With `position_ids`, the cos/sin rows are gathered from the caches (`[max_pos, half]` ->
//! `[batch, seq, half]`); without, the caches are `[batch, seq, half]` already. A 3-D input
//! `[batch, seq, heads * head]` is viewed as `[batch, seq, heads, head]`. The first
//! `rotary_embedding_dim` lanes of each head are rotated in pairs `(x1, x2)`: the two halves
//! of those lanes, or even and odd lanes when `interleaved`:
//!
//! ```text
//! y1 = cos · x1 - sin · x2        y2 = sin · x1 + cos · x2
//! ```
//!
//! and the remaining lanes pass through. As the reference evaluator computes it
//! (`passes/src/eval/misc/attention.rs`), except that a position id outside the cache reads
//! no row (the Gather kernel's zero block) where the evaluator reports an error.

use graphc_passes::ir::{DType, Graph, NodeId, Op, ValueRef};

use super::{become_last_step, known, Builder};

struct Plan {
    x: ValueRef,
    cos: ValueRef,
    sin: ValueRef,
    pos: Option<ValueRef>,
    /// x's shape, and the 4-D view the rotation works on.
    xs: Vec<usize>,
    x4: [usize; 4],
    /// The cos/sin rows broadcast against `x4` (`half` last).
    c4: [usize; 4],
    /// Rotated lanes per head.
    rd: usize,
    interleaved: bool,
}

fn plan(g: &Graph, id: NodeId) -> Option<Plan> {
    let node = g.node(id);
    let Op::RotaryEmbedding {
        interleaved,
        num_heads,
        rotary_embedding_dim,
    } = node.op
    else {
        return None;
    };
    let input = |i: usize| node.inputs.get(i).copied().flatten();
    let (x, cos, sin, pos) = (input(0)?, input(1)?, input(2)?, input(3));
    if node.outputs.len() != 1 || node.inputs.len() > 4 {
        return None;
    }
    if [x, cos, sin].iter().any(|&v| g.dtype(v) != DType::F32) {
        return None;
    }
    let xs = known(g, x)?;
    let (b, sq, hs, x4) = match *xs.as_slice() {
        [b, h, s, d] => (b, s, d, [b, h, s, d]),
        [b, s, hidden] => {
            let h = usize::try_from(num_heads?)
                .ok()
                .filter(|&h| h > 0 && hidden % h == 0)?;
            (b, s, hidden / h, [b, s, h, hidden / h])
        }
        _ => return None,
    };
    let rd = match rotary_embedding_dim {
        0 => hs,
        r => usize::try_from(r).ok()?,
    };
    if rd > hs || rd % 2 != 0 || rd == 0 {
        return None;
    }
    let half = rd / 2;
    let (cs, ss) = (known(g, cos)?, known(g, sin)?);
    if cs != ss {
        return None;
    }
    match pos {
        Some(p) => {
            if g.dtype(p) != DType::I64 || known(g, p)? != [b, sq] || cs.len() != 2 || cs[1] != half
            {
                return None;
            }
        }
        None => {
            if cs != [b, sq, half] {
                return None;
            }
        }
    }
    let c4 = if xs.len() == 4 {
        [b, 1, sq, half]
    } else {
        [b, sq, 1, half]
    };
    Some(Plan {
        x,
        cos,
        sin,
        pos,
        xs,
        x4,
        c4,
        rd,
        interleaved: interleaved != 0,
    })
}

/// Rewrites RotaryEmbedding node `id` into kernel-backed ops (see the module docs); leaves it
/// whole when its form is not covered.
pub fn decompose(g: &mut Graph, id: NodeId) {
    let Some(p) = plan(g, id) else {
        return;
    };
    let mut bld = Builder::for_node(g, id);
    let x4 = p.x4;
    let hs = x4[3];
    let half = p.rd / 2;
    let x = if p.xs.len() == 3 {
        bld.reshape("heads", p.x, &x4)
    } else {
        p.x
    };
    let rows = |bld: &mut Builder, what: &str, cache: ValueRef| {
        let [b, _, _, _] = x4;
        let sq = if p.xs.len() == 4 { x4[2] } else { x4[1] };
        let rows = match p.pos {
            Some(pos) => bld.f32(
                &format!("{what}.rows"),
                Op::Gather { axis: 0 },
                vec![cache, pos],
                &[b, sq, half],
            ),
            None => cache,
        };
        bld.reshape(&format!("{what}.view"), rows, &p.c4)
    };
    let cos = rows(&mut bld, "cos", p.cos);
    let sin = rows(&mut bld, "sin", p.sin);

    // The rotated lanes as (x1, x2) and their shape; `axis` is where pairs are split.
    let rotated = if p.rd < hs {
        bld.range("rotated", x, 3, 0, p.rd)
    } else {
        x
    };
    let mut r4 = x4;
    r4[3] = p.rd;
    let (x1, x2, cos, sin, pair_dims, axis) = if p.interleaved {
        let pairs = [x4[0], x4[1], x4[2], half, 2];
        let xp = bld.reshape("pairs", rotated, &pairs);
        let x1 = bld.range("x1", xp, 4, 0, 1);
        let x2 = bld.range("x2", xp, 4, 1, 2);
        let c5 = [p.c4[0], p.c4[1], p.c4[2], half, 1];
        let cos = bld.reshape("cos.pairs", cos, &c5);
        let sin = bld.reshape("sin.pairs", sin, &c5);
        (x1, x2, cos, sin, vec![x4[0], x4[1], x4[2], half, 1], 4)
    } else {
        let x1 = bld.range("x1", rotated, 3, 0, half);
        let x2 = bld.range("x2", rotated, 3, half, p.rd);
        (x1, x2, cos, sin, vec![x4[0], x4[1], x4[2], half], 3)
    };
    let cx1 = bld.f32("cos.x1", Op::Mul {}, vec![cos, x1], &pair_dims);
    let sx2 = bld.f32("sin.x2", Op::Mul {}, vec![sin, x2], &pair_dims);
    let sx1 = bld.f32("sin.x1", Op::Mul {}, vec![sin, x1], &pair_dims);
    let cx2 = bld.f32("cos.x2", Op::Mul {}, vec![cos, x2], &pair_dims);
    let y1 = bld.f32("y1", Op::Sub {}, vec![cx1, sx2], &pair_dims);
    let y2 = bld.f32("y2", Op::Add {}, vec![sx1, cx2], &pair_dims);
    let mut joined = pair_dims.clone();
    joined[axis] *= 2;
    let mut y = bld.f32(
        "rotated.y",
        Op::Concat { axis: axis as i64 },
        vec![y1, y2],
        &joined,
    );
    if p.interleaved {
        y = bld.reshape("rotated.lanes", y, &r4);
    }
    let (op, inputs) = if p.rd < hs {
        let rest = bld.range("rest", x, 3, p.rd, hs);
        if p.xs.len() == 3 {
            let y4 = bld.f32("y4", Op::Concat { axis: 3 }, vec![y, rest], &x4);
            let s = bld.shape("y.shape", &p.xs);
            (Op::Reshape { allowzero: 0 }, vec![y4, s])
        } else {
            (Op::Concat { axis: 3 }, vec![y, rest])
        }
    } else {
        let s = bld.shape("y.shape", &p.xs);
        (Op::Reshape { allowzero: 0 }, vec![y, s])
    };
    become_last_step(bld.g, id, op, inputs, &[]);
}
