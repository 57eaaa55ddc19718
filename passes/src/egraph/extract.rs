//! Extraction: choosing one e-node per needed e-class.
//!
//! First a greedy bottom-up pass (like egg's `Extractor`) picks in each class the node of
//! least *tree* cost (its own cost plus its children's). Tree cost counts a shared subgraph
//! once per use, which misjudges real graphs; so a second, DAG-aware pass does local search:
//! for each reachable class with alternatives, it tries every other node and keeps the change
//! when the *DAG* cost of the whole selection (each reachable class counted once) drops.
//!
//! Limitation: the local search changes one class at a time (at most [`MAX_PASSES`] sweeps),
//! so it can miss improvements that need several classes to switch together; an exact
//! (ILP-style) extractor is future work.

use std::collections::{HashMap, HashSet};

use egg::Id;

use super::analysis::EG;
use super::cost::op_cost;
use super::lang::{ENode, Head};

/// Sweeps of the DAG-aware local search.
pub const MAX_PASSES: usize = 2;

/// The chosen node of each needed class (canonical ids).
pub type Choice = HashMap<Id, ENode>;

/// The cost of one node in its class (see `cost`).
pub fn node_cost(eg: &EG, class: Id, n: &ENode) -> f64 {
    match &n.head {
        Head::Op(k) => {
            let ins: Vec<_> = n.children.iter().map(|c| eg[*c].data.ty()).collect();
            match &eg[class].data.types {
                Some(outs) => op_cost(&k.op, &ins, outs),
                None => op_cost(&k.op, &ins, &[]),
            }
        }
        // Pattern-only nodes cannot be emitted.
        Head::Pattern(..) => f64::INFINITY,
        _ => 0.0,
    }
}

/// The DAG cost of a selection from `roots`, or `None` when it has a cycle or misses a class.
pub fn dag_cost(eg: &EG, choice: &Choice, roots: &[Id]) -> Option<f64> {
    // 0 = unseen, 1 = on the stack, 2 = done.
    let mut state: HashMap<Id, u8> = HashMap::new();
    let mut total = 0.0;
    let mut stack: Vec<(Id, bool)> = roots.iter().map(|r| (eg.find(*r), false)).collect();
    while let Some((c, expanded)) = stack.pop() {
        if expanded {
            state.insert(c, 2);
            continue;
        }
        match state.get(&c) {
            Some(2) => continue,
            Some(1) => return None,
            _ => {}
        }
        state.insert(c, 1);
        let n = choice.get(&c)?;
        total += node_cost(eg, c, n);
        stack.push((c, true));
        for k in &n.children {
            let k = eg.find(*k);
            match state.get(&k) {
                Some(1) => return None,
                Some(2) => {}
                _ => stack.push((k, false)),
            }
        }
    }
    Some(total)
}

/// Extracts a selection for `roots`: greedy, then DAG-aware local search.
pub fn extract(eg: &EG, roots: &[Id]) -> Result<Choice, String> {
    let mut best: HashMap<Id, (f64, ENode)> = HashMap::new();
    loop {
        let mut changed = false;
        for class in eg.classes() {
            for n in class.iter() {
                let Some(kids) = n
                    .children
                    .iter()
                    .map(|c| best.get(&eg.find(*c)).map(|b| b.0))
                    .collect::<Option<Vec<f64>>>()
                else {
                    continue;
                };
                let mut cost = node_cost(eg, class.id, n) + kids.iter().sum::<f64>();
                if !cost.is_finite() {
                    cost = f64::MAX;
                }
                let better = match best.get(&class.id) {
                    None => true,
                    Some((old, _)) => cost < *old,
                };
                if better {
                    best.insert(class.id, (cost, n.clone()));
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    let mut choice: Choice = best.into_iter().map(|(k, (_, n))| (k, n)).collect();
    let mut current =
        dag_cost(eg, &choice, roots).ok_or("no acyclic term for the graph outputs")?;
    for _ in 0..MAX_PASSES {
        let mut improved = false;
        let reachable = reachable(eg, &choice, roots);
        for c in reachable {
            let class = &eg[c];
            if class.nodes.len() < 2 {
                continue;
            }
            for n in class.iter() {
                if choice.get(&c) == Some(n)
                    || n.children
                        .iter()
                        .any(|k| !choice.contains_key(&eg.find(*k)))
                {
                    continue;
                }
                let old = choice
                    .insert(c, n.clone())
                    .expect("reachable classes are chosen");
                match dag_cost(eg, &choice, roots) {
                    Some(cost) if cost < current => {
                        current = cost;
                        improved = true;
                    }
                    _ => {
                        choice.insert(c, old);
                    }
                }
            }
        }
        if !improved {
            break;
        }
    }
    Ok(choice)
}

/// Classes reachable from `roots` through the selection, in discovery order.
fn reachable(eg: &EG, choice: &Choice, roots: &[Id]) -> Vec<Id> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut stack: Vec<Id> = roots.iter().map(|r| eg.find(*r)).collect();
    while let Some(c) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        out.push(c);
        if let Some(n) = choice.get(&c) {
            stack.extend(n.children.iter().map(|k| eg.find(*k)));
        }
    }
    out
}
