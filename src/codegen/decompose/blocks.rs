//! DepthToSpace and SpaceToDepth as Reshape, Transpose and Reshape (copy kernels, any
//! element type):
//!
//! ```text
//! DepthToSpace DCR  [n, b, b, co, h, w] -> perm [0, 3, 4, 1, 5, 2] -> [n, co, h·b, w·b]
//! DepthToSpace CRD  [n, co, b, b, h, w] -> perm [0, 1, 4, 2, 5, 3] -> [n, co, h·b, w·b]
//! SpaceToDepth      [n, c, h, b, w, b]  -> perm [0, 3, 5, 1, 2, 4] -> [n, b·b·c, h, w]
//! ```
//!
//! the index maps of the reference evaluator (`passes/src/eval/shape/layout.rs`).

use graphc_passes::ir::{DType, Graph, NodeId, Op};

use super::{become_last_step, known, Builder};

/// Rewrites a DepthToSpace or SpaceToDepth node `id`; leaves other forms as they are.
pub fn decompose(g: &mut Graph, id: NodeId) {
    let node = g.node(id);
    let Some(x) = node.inputs.first().copied().flatten() else {
        return;
    };
    let (Some(xs), Some(ys)) = (known(g, x), node.outputs[0].ty.shape.as_known()) else {
        return;
    };
    let dtype = g.dtype(x);
    let &[n, c, h, w] = xs.as_slice() else {
        return;
    };
    if node.outputs.len() != 1 || dtype == DType::String {
        return;
    }
    let (split, perm): ([usize; 6], [i64; 6]) = match &node.op {
        Op::DepthToSpace { blocksize, mode } => {
            let Some(b) = usize::try_from(*blocksize)
                .ok()
                .filter(|&b| b > 0 && c % (b * b) == 0)
            else {
                return;
            };
            let co = c / (b * b);
            match mode.as_str() {
                "DCR" => ([n, b, b, co, h, w], [0, 3, 4, 1, 5, 2]),
                "CRD" => ([n, co, b, b, h, w], [0, 1, 4, 2, 5, 3]),
                _ => return,
            }
        }
        Op::SpaceToDepth { blocksize } => {
            let Some(b) = usize::try_from(*blocksize)
                .ok()
                .filter(|&b| b > 0 && h % b == 0 && w % b == 0)
            else {
                return;
            };
            ([n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4])
        }
        _ => return,
    };
    let moved: Vec<usize> = perm.iter().map(|&p| split[p as usize]).collect();
    if moved.iter().product::<usize>() != ys.iter().product::<usize>() {
        return;
    }
    let mut bld = Builder::for_node(g, id);
    let six = bld.reshape("split", x, &split);
    let perm = Some(perm.to_vec());
    let t = bld.add("moved", Op::Transpose { perm }, vec![six], dtype, &moved);
    let s = bld.shape("y.shape", &ys);
    become_last_step(bld.g, id, Op::Reshape { allowzero: 0 }, vec![t, s], &[]);
}
