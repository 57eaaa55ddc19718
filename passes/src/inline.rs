//! Subgraph inlining: the nodes of a branch or loop body copied into the enclosing graph, and
//! the `inline-if` pass that replaces an If whose condition is a constant by the branch it
//! takes.
//!
//! Exported function bodies often test shapes (`If(Shape(x)[0] == 1)`); once `simplify` has
//! folded such a condition, the branch not taken is dead and the branch taken can be
//! optimized with the rest of the graph, which also resolves the shapes the If hid.

use std::collections::HashMap;

use crate::ir::{Graph, Node, NodeId, Op, ValueInfo, ValueRef};

/// Copies the nodes of `body` into `g`, binding its inputs to `args`; returns the values of
/// its outputs, or `None` when the arguments do not fit (nodes added before that stay, dead).
/// Value names of the copies are `{prefix}.{name}`, so that copies do not collide.
pub fn inline_subgraph(
    g: &mut Graph,
    prefix: &str,
    body: &Graph,
    args: &[ValueRef],
) -> Option<Vec<ValueRef>> {
    if body.inputs.len() != args.len() {
        return None;
    }
    let bound: HashMap<NodeId, ValueRef> = body
        .inputs
        .iter()
        .copied()
        .zip(args.iter().copied())
        .collect();
    let mut map: HashMap<NodeId, NodeId> = HashMap::new();
    let resolve = |map: &HashMap<NodeId, NodeId>, v: ValueRef| -> Option<ValueRef> {
        match bound.get(&v.node) {
            Some(&a) => Some(a),
            None => Some(ValueRef {
                node: *map.get(&v.node)?,
                port: v.port,
            }),
        }
    };
    // A graph's nodes are kept in a topological order.
    for &id in body.node_ids() {
        if bound.contains_key(&id) {
            continue;
        }
        let n = body.node(id);
        let ins: Vec<Option<ValueRef>> = n
            .inputs
            .iter()
            .map(|v| match v {
                None => Some(None),
                Some(v) => resolve(&map, *v).map(Some),
            })
            .collect::<Option<_>>()?;
        let new = g.add_node(Node {
            name: String::new(),
            op: n.op.clone(),
            inputs: Vec::new(),
            outputs: n
                .outputs
                .iter()
                .map(|o| ValueInfo {
                    name: format!("{prefix}.{}", o.name),
                    ty: o.ty.clone(),
                })
                .collect(),
        });
        for (slot, v) in ins.into_iter().enumerate() {
            g.set_input(new, slot, v);
        }
        map.insert(id, new);
    }
    body.outputs
        .iter()
        .map(|o| resolve(&map, o.value))
        .collect()
}

/// The value of a constant condition: its single element is non-zero.
fn constant_condition(g: &Graph, cond: ValueRef) -> Option<bool> {
    match &g.node(cond.node).op {
        Op::Constant { value } if value.len() == 1 => value.to_f64_vec().first().map(|&c| c != 0.0),
        _ => None,
    }
}

/// `g` with every If whose condition is a constant replaced by the branch it takes (and dead
/// nodes removed), or `None` when there is no such If. Nested Ifs of an inlined branch are
/// left for the next round, after their conditions may have been folded.
pub fn inline_constant_ifs(g: &Graph) -> Option<Graph> {
    let ifs: Vec<(NodeId, bool)> = g
        .nodes()
        .filter_map(|(id, n)| {
            let Op::If { .. } = n.op else {
                return None;
            };
            Some((id, constant_condition(g, n.inputs.first().copied()??)?))
        })
        .collect();
    if ifs.is_empty() {
        return None;
    }
    let mut out = g.clone();
    let mut any = false;
    for (id, taken) in ifs {
        let node = out.node(id).clone();
        let Op::If {
            then_branch,
            else_branch,
        } = &node.op
        else {
            continue;
        };
        let (tag, branch) = if taken {
            ("then", then_branch)
        } else {
            ("else", else_branch)
        };
        let Some(captures) = node.inputs[1..].iter().copied().collect::<Option<Vec<_>>>() else {
            continue;
        };
        if branch.outputs.len() != node.outputs.len() {
            continue;
        }
        let prefix = format!(
            "{}.{tag}",
            node.outputs.first().map_or("if", |o| o.name.as_str())
        );
        let Some(values) = inline_subgraph(&mut out, &prefix, branch, &captures) else {
            continue;
        };
        for (port, v) in values.into_iter().enumerate() {
            out.redirect(id, port as u32, v);
        }
        any = true;
    }
    out.remove_dead_nodes();
    // The copies were appended after their readers' old producer.
    out.toposort().ok()?;
    any.then_some(out)
}
