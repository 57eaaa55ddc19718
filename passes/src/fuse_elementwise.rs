//! The `fuse-elementwise` pass: chains of elementwise ops become one `fused_elementwise` node
//! whose body is the chain, so that a kernel computes the whole expression per element with
//! no intermediate tensor.
//!
//! A node joins its consumer's group when it is a fusable elementwise op on floats, its only
//! use is that consumer (not a graph output), the consumer is fusable too, and its output has
//! the consumer's shape (an intermediate that broadcasts would be recomputed per element).
//! Groups of two or more nodes are replaced; everything else is left alone. Runs after
//! extraction, on the chosen graph, since which chains exist depends on the other fusions.

use std::collections::{HashMap, HashSet};

use crate::ir::{Graph, GraphOutput, Node, NodeId, Op, ValueInfo, ValueRef};

/// Whether an op is an elementwise op the pass may put into a fused body.
pub fn fusable(op: &Op) -> bool {
    matches!(
        op,
        Op::Abs {}
            | Op::Neg {}
            | Op::Exp {}
            | Op::Log {}
            | Op::Sqrt {}
            | Op::Reciprocal {}
            | Op::Floor {}
            | Op::Ceil {}
            | Op::Tanh {}
            | Op::Sigmoid {}
            | Op::Erf {}
            | Op::Relu {}
            | Op::Softplus {}
            | Op::Softsign {}
            | Op::HardSwish {}
            | Op::LeakyRelu { .. }
            | Op::Elu { .. }
            | Op::Selu { .. }
            | Op::Celu { .. }
            | Op::HardSigmoid { .. }
            | Op::Gelu { .. }
            | Op::Swish { .. }
            | Op::Clip {}
            | Op::Add {}
            | Op::Sub {}
            | Op::Mul {}
            | Op::Div {}
            | Op::Pow {}
            | Op::Max {}
            | Op::Min {}
            | Op::PRelu {}
    )
}

/// A node whose op is fusable and whose inputs and output are all of one float type.
fn fusable_node(g: &Graph, id: NodeId) -> bool {
    let n = g.node(id);
    if !fusable(&n.op) || n.outputs.len() != 1 {
        return false;
    }
    let dt = n.outputs[0].ty.dtype;
    crate::rules::is_float(dt)
        && n.outputs[0].ty.shape.as_known().is_some()
        && n.inputs.iter().flatten().all(|v| g.dtype(*v) == dt)
}

/// Runs the pass. The result keeps the signature and value names of `g`.
pub fn fuse_elementwise(g: &Graph) -> Result<Graph, String> {
    // Uses of each node's output: consuming nodes, plus one per graph output.
    let mut uses: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for (id, n) in g.nodes() {
        for v in n.inputs.iter().flatten() {
            uses.entry(v.node).or_default().push(id);
        }
    }
    let outputs: HashSet<NodeId> = g.outputs.iter().map(|o| o.value.node).collect();
    // Consumers come after producers in the node order: walk it backwards so a consumer's
    // group is known when its producers are visited.
    let mut root_of: HashMap<NodeId, NodeId> = HashMap::new();
    for &id in g.node_ids().iter().rev() {
        if !fusable_node(g, id) {
            continue;
        }
        let joined = match uses.get(&id).map(Vec::as_slice) {
            Some([c]) if !outputs.contains(&id) => root_of.get(c).copied().filter(|_| {
                g.shape(ValueRef { node: id, port: 0 }) == &g.node(*c).outputs[0].ty.shape
            }),
            _ => None,
        };
        root_of.insert(id, joined.unwrap_or(id));
    }
    let mut groups: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for &id in g.node_ids() {
        if let Some(r) = root_of.get(&id) {
            groups.entry(*r).or_default().push(id);
        }
    }
    let mut out = g.clone();
    let mut changed = false;
    // Roots come in node order, so a group's producers are replaced before it; `replaced`
    // maps their old values to the fused nodes' (node ids of removed nodes are reused).
    let mut replaced: HashMap<ValueRef, ValueRef> = HashMap::new();
    for &root in g.node_ids() {
        let Some(members) = groups.get(&root) else {
            continue;
        };
        if members.len() < 2 {
            continue;
        }
        let new = replace_group(&mut out, g, root, members, &replaced);
        replaced.insert(
            ValueRef {
                node: root,
                port: 0,
            },
            new,
        );
        changed = true;
    }
    if changed {
        out.toposort()?;
    }
    Ok(out)
}

/// Replaces `members` (in node order, `root` last) by one `fused_elementwise` node and
/// returns its value.
fn replace_group(
    out: &mut Graph,
    g: &Graph,
    root: NodeId,
    members: &[NodeId],
    replaced: &HashMap<ValueRef, ValueRef>,
) -> ValueRef {
    let inside: HashSet<NodeId> = members.iter().copied().collect();
    let mut body = Graph::new(format!("{}_body", g.node(root).outputs[0].name));
    let mut map: HashMap<ValueRef, ValueRef> = HashMap::new();
    let mut externals: Vec<ValueRef> = Vec::new();
    for &m in members {
        for v in g.node(m).inputs.iter().flatten() {
            if !inside.contains(&v.node) && !map.contains_key(v) {
                let id = body.add_input(format!("x{}", externals.len()), g.ty(*v).clone());
                map.insert(*v, ValueRef { node: id, port: 0 });
                externals.push(*v);
            }
        }
    }
    for &m in members {
        let n = g.node(m);
        let inputs = n.inputs.iter().map(|v| v.map(|v| map[&v])).collect();
        let id = body.add_node(Node {
            name: n.name.clone(),
            op: n.op.clone(),
            inputs,
            outputs: n.outputs.clone(),
        });
        map.insert(
            ValueRef { node: m, port: 0 },
            ValueRef { node: id, port: 0 },
        );
    }
    let root_node = g.node(root);
    body.outputs.push(GraphOutput {
        name: root_node.outputs[0].name.clone(),
        value: map[&ValueRef {
            node: root,
            port: 0,
        }],
    });
    let fused = out.add_node(Node {
        name: root_node.name.clone(),
        op: Op::FusedElementwise {
            body: Box::new(body),
        },
        inputs: externals
            .iter()
            .map(|v| Some(replaced.get(v).copied().unwrap_or(*v)))
            .collect(),
        outputs: vec![ValueInfo {
            name: root_node.outputs[0].name.clone(),
            ty: root_node.outputs[0].ty.clone(),
        }],
    });
    let new = ValueRef {
        node: fused,
        port: 0,
    };
    for (consumer, slot, _) in out.consumers(root) {
        out.set_input(consumer, slot as usize, Some(new));
    }
    for o in &mut out.outputs {
        if o.value.node == root {
            o.value = new;
        }
    }
    for &m in members {
        out.remove_node(m);
    }
    new
}
