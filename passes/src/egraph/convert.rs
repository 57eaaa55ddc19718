//! Conversion between a [`Graph`] and the e-graph.
//!
//! Graph -> e-graph: graph inputs become `input.i` leaves, absent inputs `_` leaves (trailing
//! ones dropped), a node with one output one e-node, and a node with other than one output a
//! tuple e-node plus one `get.i` node per output. The value names are remembered per class.
//!
//! Selection -> graph: the template's inputs (names, types, defaults) are kept, every chosen
//! node is emitted once in dependency order, value names are reused where they are free
//! (graph outputs keep their names), and the result is re-inferred and verified. Node names
//! are not kept: a rewritten node has no single origin.

use std::collections::{HashMap, HashSet};

use egg::Id;

use super::analysis::{GraphAnalysis, EG};
use super::extract::Choice;
use super::lang::{ENode, Head, KeyedOp};
use super::OptimizeError;
use crate::ir::{Graph, GraphOutput, Node, NodeId, Op, TypeInfo, ValueInfo, ValueRef};

/// A graph converted to an e-graph.
pub struct Converted {
    /// The e-graph (rebuilt).
    pub egraph: EG,
    /// The class of each graph output, in signature order.
    pub roots: Vec<Id>,
    /// The original value name of each class (first one wins).
    pub names: HashMap<Id, String>,
}

fn knowledge(t: &TypeInfo) -> usize {
    t.shape
        .dims()
        .map_or(0, |d| 1 + d.iter().filter(|d| d.known().is_some()).count())
}

/// Converts a graph (with types inferred) into an e-graph.
pub fn to_egraph(g: &Graph) -> Result<Converted, OptimizeError> {
    let inputs: Vec<TypeInfo> = g
        .inputs
        .iter()
        .map(|&id| g.node(id).outputs[0].ty.clone())
        .collect();
    let defaults = g
        .inputs
        .iter()
        .map(|&id| match &g.node(id).op {
            Op::Input { default: Some(t) } => Some(KeyedOp::constant(t.clone())),
            _ => None,
        })
        .collect();
    let mut eg = EG::new(GraphAnalysis { inputs, defaults });
    let mut values: HashMap<ValueRef, Id> = HashMap::new();
    let mut names: HashMap<Id, String> = HashMap::new();
    let absent = eg.add(ENode::leaf(Head::Absent));
    for (id, node) in g.nodes() {
        let vr = |port: usize| ValueRef {
            node: id,
            port: port as u32,
        };
        let mut note = |eg: &mut EG, class: Id, info: &ValueInfo| {
            // Graph types may be more precise than what inference finds on its own (declared
            // by the model): keep the better one.
            let d = &mut eg[class].data;
            match &mut d.types {
                Some(t)
                    if t.len() == 1
                        && knowledge(&info.ty) > knowledge(&t[0])
                        && t[0].dtype == info.ty.dtype =>
                {
                    t[0] = info.ty.clone()
                }
                None if !d.tuple => d.types = Some(vec![info.ty.clone()]),
                _ => {}
            }
            names
                .entry(eg.find(class))
                .or_insert_with(|| info.name.clone());
        };
        if let Op::Input { .. } = node.op {
            let i = g.inputs.iter().position(|x| *x == id).ok_or_else(|| {
                OptimizeError::Convert(format!(
                    "input node '{}' is not a graph input",
                    node.display_name()
                ))
            })?;
            let c = eg.add(ENode::leaf(Head::Input(i)));
            note(&mut eg, c, &node.outputs[0]);
            values.insert(vr(0), c);
            continue;
        }
        let mut kids = Vec::with_capacity(node.inputs.len());
        for v in &node.inputs {
            match v {
                None => kids.push(absent),
                Some(v) => kids.push(*values.get(v).ok_or_else(|| {
                    OptimizeError::Convert(format!(
                        "node '{}' reads a value defined after it",
                        node.display_name()
                    ))
                })?),
            }
        }
        while kids.last() == Some(&absent) {
            kids.pop();
        }
        let n_out = node.outputs.len();
        let c = eg.add(ENode {
            head: Head::Op(KeyedOp::new(node.op.clone(), n_out)),
            children: kids,
        });
        if n_out == 1 {
            note(&mut eg, c, &node.outputs[0]);
            values.insert(vr(0), c);
        } else {
            if eg[c].data.types.is_none() {
                eg[c].data.types = Some(node.outputs.iter().map(|o| o.ty.clone()).collect());
            }
            for (port, info) in node.outputs.iter().enumerate() {
                let p = eg.add(ENode {
                    head: Head::Get(port),
                    children: vec![c],
                });
                note(&mut eg, p, info);
                values.insert(vr(port), p);
            }
        }
    }
    let roots = g
        .outputs
        .iter()
        .map(|o| {
            values.get(&o.value).copied().ok_or_else(|| {
                OptimizeError::Convert(format!("output '{}' has no producer", o.name))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    eg.rebuild();
    let names = names.into_iter().map(|(k, v)| (eg.find(k), v)).collect();
    Ok(Converted {
        egraph: eg,
        roots,
        names,
    })
}

enum Emitted {
    Value(ValueRef),
    Tuple(NodeId),
    Absent,
}

/// Builds the graph a selection describes. `template` gives the name, the inputs and the
/// output names; `roots` are the output classes.
pub fn from_choice(
    template: &Graph,
    eg: &EG,
    choice: &Choice,
    roots: &[Id],
    names: &HashMap<Id, String>,
) -> Result<Graph, OptimizeError> {
    let err = |m: String| OptimizeError::Convert(m);
    let mut out = Graph::new(template.name.clone());
    let mut used: HashSet<String> = HashSet::new();
    for &id in &template.inputs {
        let n = template.node(id);
        let nid = out.add_input(n.outputs[0].name.clone(), n.outputs[0].ty.clone());
        out.node_mut(nid).op = n.op.clone();
        used.insert(n.outputs[0].name.clone());
    }
    // Output classes prefer their export name.
    let mut preferred: HashMap<Id, String> = names
        .iter()
        .map(|(k, v)| (eg.find(*k), v.clone()))
        .collect();
    for (o, r) in template.outputs.iter().zip(roots).rev() {
        preferred.insert(eg.find(*r), o.name.clone());
    }
    let mut fresh = 0usize;
    let mut name_for = |used: &mut HashSet<String>, want: Option<&String>| -> String {
        if let Some(w) = want {
            if used.insert(w.clone()) {
                return w.clone();
            }
        }
        loop {
            fresh += 1;
            let s = format!("v{fresh}");
            if used.insert(s.clone()) {
                return s;
            }
        }
    };
    let mut done: HashMap<Id, Emitted> = HashMap::new();
    let mut stack: Vec<(Id, bool)> = roots.iter().rev().map(|r| (eg.find(*r), false)).collect();
    while let Some((c, expanded)) = stack.pop() {
        if done.contains_key(&c) {
            continue;
        }
        let n = choice
            .get(&c)
            .ok_or_else(|| err(format!("no node chosen for e-class {c}")))?;
        if !expanded {
            stack.push((c, true));
            for k in n.children.iter().rev() {
                let k = eg.find(*k);
                if !done.contains_key(&k) {
                    stack.push((k, false));
                }
            }
            continue;
        }
        let emitted = match &n.head {
            Head::Input(i) => {
                let node = *out
                    .inputs
                    .get(*i)
                    .ok_or_else(|| err(format!("input {i} out of range")))?;
                Emitted::Value(ValueRef { node, port: 0 })
            }
            Head::Absent => Emitted::Absent,
            Head::Pattern(name, _) => {
                return Err(err(format!(
                    "e-class {c}: pattern-only op '{name}' was extracted"
                )))
            }
            Head::Get(i) => match done.get(&eg.find(n.children[0])) {
                Some(Emitted::Tuple(node)) => Emitted::Value(ValueRef {
                    node: *node,
                    port: *i as u32,
                }),
                _ => return Err(err(format!("get.{i} of e-class {c} does not read a tuple"))),
            },
            Head::Op(k) => {
                let mut inputs = Vec::with_capacity(n.children.len());
                for kid in &n.children {
                    match done.get(&eg.find(*kid)) {
                        Some(Emitted::Value(v)) => inputs.push(Some(*v)),
                        Some(Emitted::Absent) => inputs.push(None),
                        _ => {
                            return Err(err(format!(
                                "e-class {c}: an input is a tuple or missing (a cycle)"
                            )))
                        }
                    }
                }
                let types = eg[c]
                    .data
                    .types
                    .clone()
                    .ok_or_else(|| err(format!("e-class {c} has no known type")))?;
                if types.len() != k.n_out {
                    return Err(err(format!(
                        "e-class {c}: {} types for {} outputs",
                        types.len(),
                        k.n_out
                    )));
                }
                let outputs = types
                    .into_iter()
                    .enumerate()
                    .map(|(port, ty)| {
                        let want = if k.n_out == 1 {
                            preferred.get(&c)
                        } else {
                            let get = ENode {
                                head: Head::Get(port),
                                children: vec![c],
                            };
                            eg.lookup(get).and_then(|g| preferred.get(&g))
                        };
                        ValueInfo {
                            name: name_for(&mut used, want),
                            ty,
                        }
                    })
                    .collect();
                let node = out.add_node(Node {
                    name: String::new(),
                    op: k.op.clone(),
                    inputs,
                    outputs,
                });
                if k.n_out == 1 {
                    Emitted::Value(ValueRef { node, port: 0 })
                } else {
                    Emitted::Tuple(node)
                }
            }
        };
        done.insert(c, emitted);
    }
    for (o, r) in template.outputs.iter().zip(roots) {
        match done.get(&eg.find(*r)) {
            Some(Emitted::Value(v)) => out.outputs.push(GraphOutput {
                name: o.name.clone(),
                value: *v,
            }),
            _ => return Err(err(format!("output '{}' is not a value", o.name))),
        }
    }
    crate::infer::infer_graph(&mut out)?;
    crate::ir::verify::verify(&out)?;
    Ok(out)
}
