//! Memory plan tests: hand-written graphs with arena sizes derived by hand, a validator that
//! rejects corrupted plans, and seeded random graphs checked with [`check`].
//!
//! In the hand cases `f32[16]` is 64 bytes, exactly one [`ALIGN`] unit; steps count every
//! node, inputs and constants included.

use super::*;
use crate::ir::text::parse;

fn planned(text: &str) -> (Graph, MemoryPlan) {
    let g = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let p = plan(&g).unwrap_or_else(|e| panic!("{e}\n{text}"));
    check(&p, &g).unwrap_or_else(|e| panic!("{e}\n{text}\n{p:?}"));
    assert!(p.arena_bytes >= p.live_peak_bytes, "{p:?}");
    (g, p)
}

fn value(g: &Graph, name: &str) -> ValueRef {
    g.nodes()
        .flat_map(|(id, n)| n.outputs.iter().enumerate().map(move |(p, o)| (id, p, o)))
        .find(|(_, _, o)| o.name == name)
        .map(|(id, p, _)| ValueRef {
            node: id,
            port: p as u32,
        })
        .unwrap_or_else(|| panic!("no value {name}"))
}

fn in_place_names(g: &Graph, p: &MemoryPlan) -> Vec<(String, String)> {
    p.in_place
        .iter()
        .map(|i| {
            (
                g.value(i.input).name.clone(),
                g.value(i.output).name.clone(),
            )
        })
        .collect()
}

#[test]
fn in_place_chain_uses_one_buffer() {
    // a = exp(x) cannot reuse the graph input; b and c reuse a's buffer.
    let (g, p) = planned(
        r#"graph "g" (%x: f32[16]) {
  %a: f32[16] = exp (%x)
  %b: f32[16] = log (%a)
  %c: f32[16] = sqrt (%b)
  return %c
}"#,
    );
    assert_eq!(p.arena_bytes, 64);
    assert_eq!(p.total_intermediate_bytes, 192);
    assert_eq!(
        in_place_names(&g, &p),
        [("a".into(), "b".into()), ("b".into(), "c".into())]
    );
    assert_eq!(p.offsets[&value(&g, "c")], (0, 64));
    assert_eq!(p.schedule, g.node_ids());
    assert_eq!(
        p.to_string(),
        "arena 64 B (peak), intermediates 192 B in total, 2 in place"
    );
}

#[test]
fn chain_without_in_place_alternates_two_buffers() {
    // a [1,2], b [2,3], c [3,end]: a and c never meet.
    let (g, p) = planned(
        r#"graph "g" (%x: f32[16]) {
  %a: f32[16] = softmax (%x)
  %b: f32[16] = softmax (%a)
  %c: f32[16] = softmax (%b)
  return %c
}"#,
    );
    assert_eq!(p.arena_bytes, 128);
    assert_eq!(p.live_peak_bytes, 128);
    assert!(p.in_place.is_empty());
    assert_eq!(p.offsets[&value(&g, "a")].0, p.offsets[&value(&g, "c")].0);
}

#[test]
fn diamond() {
    // a [1,3], b [2,4], c [3,4], d [4,end] in place of b: three buffers meet at step 3.
    let (g, p) = planned(
        r#"graph "g" (%x: f32[16]) {
  %a: f32[16] = softmax (%x)
  %b: f32[16] = softmax (%a)
  %c: f32[16] = softmax (%a)
  %d: f32[16] = add (%b, %c)
  return %d
}"#,
    );
    assert_eq!(p.arena_bytes, 192);
    assert_eq!(p.total_intermediate_bytes, 256);
    assert_eq!(in_place_names(&g, &p), [("b".into(), "d".into())]);
}

#[test]
fn several_consumers_delay_in_place() {
    // b cannot overwrite a (c still reads it); c can, and d overwrites b.
    let (g, p) = planned(
        r#"graph "g" (%x: f32[16]) {
  %a: f32[16] = softmax (%x)
  %b: f32[16] = relu (%a)
  %c: f32[16] = relu (%a)
  %d: f32[16] = add (%b, %c)
  return %d
}"#,
    );
    assert_eq!(p.arena_bytes, 128);
    assert_eq!(
        in_place_names(&g, &p),
        [("a".into(), "c".into()), ("b".into(), "d".into())]
    );
}

#[test]
fn split_outputs_and_best_fit() {
    // a [1,2] 128 B, b [2,3] 128 B, c and d [3,4] 64 B each, e in place of c to the end.
    // By size: a at 0, b at 128 (meets a), c in the 128-byte gap at 0, d in the gap at 64.
    let (g, p) = planned(
        r#"graph "g" (%x: f32[16]) {
  %a: f32[32] = concat {axis: 0} (%x, %x)
  %b: f32[32] = softmax (%a)
  %c: f32[16], %d: f32[16] = split {axis: 0, num_outputs: 2} (%b)
  %e: f32[16] = add (%c, %d)
  return %e
}"#,
    );
    assert_eq!(p.arena_bytes, 256);
    assert_eq!(p.live_peak_bytes, 256);
    assert_eq!(p.total_intermediate_bytes, 128 + 128 + 64 * 3);
    assert_eq!(p.offsets[&value(&g, "a")], (0, 128));
    assert_eq!(p.offsets[&value(&g, "b")], (128, 128));
    assert_eq!(p.offsets[&value(&g, "c")], (0, 64));
    assert_eq!(p.offsets[&value(&g, "d")], (64, 64));
    assert_eq!(p.offsets[&value(&g, "e")], (0, 64));
}

#[test]
fn split_outputs_die_at_different_steps() {
    // s1 [1,2], s2 [1,3], a+e [2,end] (e in place of a), b [3,4]: peak 3 buffers; b reuses s1.
    let (g, p) = planned(
        r#"graph "g" (%x: f32[32]) {
  %s1: f32[16], %s2: f32[16] = split {num_outputs: 2} (%x)
  %a: f32[16] = softmax (%s1)
  %b: f32[16] = softmax (%s2)
  %e: f32[16] = add (%a, %b)
  return %e
}"#,
    );
    assert_eq!(p.arena_bytes, 192);
    assert_eq!(p.offsets[&value(&g, "b")].0, p.offsets[&value(&g, "s1")].0);
}

#[test]
fn graph_outputs_live_to_the_end_and_are_never_overwritten() {
    // a is returned and also read by b: relu may not write over it.
    let (g, p) = planned(
        r#"graph "g" (%x: f32[16]) {
  %a: f32[16] = softmax (%x)
  %b: f32[16] = relu (%a)
  %c: f32[16] = softmax (%b)
  return %a, %c
}"#,
    );
    // a [1,end], b [2,3], c [3,end].
    assert_eq!(p.arena_bytes, 192);
    assert!(p.in_place.is_empty(), "{:?}", in_place_names(&g, &p));
}

#[test]
fn inputs_constants_and_unused_values_stay_out_or_take_one_step() {
    // The constant and x are not in the arena; the unused u still needs room at its step.
    let (g, p) = planned(
        r#"graph "g" (%x: f32[16]) {
  %k: f32[16] = constant {value: f32[16] [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0]}
  %a: f32[16] = add (%x, %k)
  %u: f32[64] = concat {axis: 0} (%a, %a, %a, %a)
  %b: f32[16] = relu (%a)
  return %b
}"#,
    );
    assert_eq!(p.offsets.len(), 3);
    assert!(!p.offsets.contains_key(&value(&g, "k")));
    // a [2,4] with u [3,3]: 64 + 256; b then reuses a in place.
    assert_eq!(p.arena_bytes, 320);
    assert_eq!(in_place_names(&g, &p), [("a".into(), "b".into())]);
}

#[test]
fn in_place_needs_equal_shape_and_element_size() {
    // y broadcasts x up (no in-place over x'); the comparison writes bools (1 byte, not 4).
    let (g, p) = planned(
        r#"graph "g" (%x: f32[1,16], %z: f32[4,16]) {
  %a: f32[1,16] = relu (%x)
  %b: f32[4,16] = add (%a, %z)
  %c: bool[4,16] = less (%b, %z)
  %d: f32[4,16] = where (%c, %b, %z)
  return %d
}"#,
    );
    // a [2,3] 64; b [3,5] 256; c [4,5] 64; d in place of b (same shape and dtype).
    assert_eq!(in_place_names(&g, &p), [("b".into(), "d".into())]);
    assert_eq!(p.arena_bytes, 320);
}

#[test]
fn alignment_rounds_every_buffer_up() {
    // f32[5] is 20 bytes but takes 64; a [1,2] and b [2,end] meet at step 2.
    let (g, p) = planned(
        r#"graph "g" (%x: f32[5]) {
  %a: f32[5] = softmax (%x)
  %b: f32[5] = softmax (%a)
  return %b
}"#,
    );
    assert_eq!(p.arena_bytes, 128);
    assert_eq!(p.total_intermediate_bytes, 40);
    assert_eq!(p.offsets[&value(&g, "a")].1, 20);
}

#[test]
fn empty_values_take_no_room() {
    let (_, p) = planned(
        r#"graph "g" (%x: f32[0,3]) {
  %a: f32[0,3] = softmax (%x)
  %b: f32[0,3] = relu (%a)
  return %b
}"#,
    );
    assert_eq!(p.arena_bytes, 0);
    assert_eq!(p.total_intermediate_bytes, 0);
    assert!(p.in_place.is_empty());
}

#[test]
fn refuses_dynamic_shapes() {
    let g = parse(
        r#"graph "g" (%x: f32[N,16]) {
  %a: f32[N,16] = relu (%x)
  return %a
}"#,
    )
    .unwrap();
    let err = plan(&g).unwrap_err();
    assert!(
        err.contains("'a'") && err.contains("f32[N,16]") && err.contains("static"),
        "{err}"
    );
    let g =
        parse("graph \"g\" (%x: f32[16]) {\n  %a: f32[..] = relu (%x)\n  return %a\n}").unwrap();
    assert!(plan(&g).unwrap_err().contains("'a'"));
}

#[test]
fn check_rejects_corrupted_plans() {
    let text = r#"graph "g" (%x: f32[16]) {
  %a: f32[16] = softmax (%x)
  %b: f32[16] = softmax (%x)
  %c: f32[16] = add (%a, %b)
  return %c
}"#;
    let (g, p) = planned(text);
    let (a, b, c) = (value(&g, "a"), value(&g, "b"), value(&g, "c"));
    assert_eq!(in_place_names(&g, &p), [("a".into(), "c".into())]);

    let mut bad = p.clone();
    bad.offsets.insert(b, bad.offsets[&a]);
    assert!(check(&bad, &g).unwrap_err().contains("overlap"));

    let mut bad = p.clone();
    bad.offsets.insert(b, (32, 64));
    assert!(check(&bad, &g).unwrap_err().contains("multiple of 64"));

    let mut bad = p.clone();
    bad.arena_bytes = 64;
    assert!(check(&bad, &g).unwrap_err().contains("overruns"));

    // Claiming c reuses b (which also dies there) needs b and c in the same place.
    let mut bad = p.clone();
    bad.in_place[0].input = b;
    assert!(check(&bad, &g).unwrap_err().contains("illegal in-place"));

    // Without the in-place record, a and c sharing bytes at step 3 is an overlap.
    let mut bad = p.clone();
    bad.in_place.clear();
    assert!(check(&bad, &g).unwrap_err().contains("overlap"));

    let mut bad = p.clone();
    bad.offsets.remove(&c);
    assert!(check(&bad, &g).is_err());

    let mut bad = p.clone();
    bad.schedule.swap(1, 3);
    assert!(check(&bad, &g).unwrap_err().contains("before its input"));
}

/// xorshift64: a tiny deterministic generator for the random graphs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A random graph over values `f32[5k]` (20k bytes, so alignment matters), 1 <= k <= 8:
/// elementwise unary and binary ops (in-place candidates), softmax, split, concat; a few
/// values besides the last are returned.
fn random_graph(rng: &mut Rng) -> String {
    let mut vals: Vec<(String, usize)> = vec![("x0".into(), 2), ("x1".into(), 1), ("x2".into(), 4)];
    let mut body = String::new();
    let mut outputs = Vec::new();
    let n = 3 + rng.below(40);
    let pick = |rng: &mut Rng, vals: &[(String, usize)]| {
        if rng.below(2) == 0 {
            vals.len() - 1 - rng.below(vals.len().min(4))
        } else {
            rng.below(vals.len())
        }
    };
    for i in 0..n {
        let v = pick(rng, &vals);
        let (vn, k) = vals[v].clone();
        let same: Vec<usize> = (0..vals.len()).filter(|&j| vals[j].1 == k).collect();
        let w = same[rng.below(same.len())];
        let wn = vals[w].0.clone();
        let name = format!("v{i}");
        match rng.below(7) {
            0 | 1 => {
                let op = ["relu", "sigmoid", "identity", "neg"][rng.below(4)];
                body += &format!("  %{name}: f32[{}] = {op} (%{vn})\n", 5 * k);
                vals.push((name, k));
            }
            2 => {
                body += &format!("  %{name}: f32[{}] = softmax (%{vn})\n", 5 * k);
                vals.push((name, k));
            }
            3 | 4 => {
                let op = ["add", "mul", "max"][rng.below(3)];
                body += &format!("  %{name}: f32[{}] = {op} (%{vn}, %{wn})\n", 5 * k);
                vals.push((name, k));
            }
            5 if k % 2 == 0 => {
                let h = k / 2;
                body += &format!(
                    "  %{name}a: f32[{}], %{name}b: f32[{}] = split {{num_outputs: 2}} (%{vn})\n",
                    5 * h,
                    5 * h
                );
                vals.push((format!("{name}a"), h));
                if rng.below(4) != 0 {
                    vals.push((format!("{name}b"), h));
                }
            }
            _ => {
                let (un, uk) = vals[rng.below(vals.len())].clone();
                if k + uk <= 8 {
                    body += &format!(
                        "  %{name}: f32[{}] = concat {{axis: 0}} (%{vn}, %{un})\n",
                        5 * (k + uk)
                    );
                    vals.push((name, k + uk));
                } else {
                    body += &format!("  %{name}: f32[{}] = tanh (%{vn})\n", 5 * k);
                    vals.push((name, k));
                }
            }
        }
        if rng.below(6) == 0 {
            outputs.push(format!("%{}", vals[vals.len() - 1].0));
        }
    }
    let last = format!("%{}", vals[vals.len() - 1].0);
    if !outputs.contains(&last) {
        outputs.push(last);
    }
    format!(
        "graph \"r\" (%x0: f32[10], %x1: f32[5], %x2: f32[20]) {{\n{body}  return {}\n}}\n",
        outputs.join(", ")
    )
}

#[test]
fn random_graphs_validate() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut in_place, mut saved) = (0, 0);
    for _ in 0..300 {
        let text = random_graph(&mut rng);
        let (g, p) = planned(&text);
        let aligned: usize = p
            .offsets
            .values()
            .map(|&(_, s)| s.div_ceil(ALIGN) * ALIGN)
            .sum();
        assert!(p.arena_bytes <= aligned, "{p:?}\n{text}");
        assert_eq!(p.schedule, g.node_ids());
        // Deterministic: planning again gives the same plan.
        assert_eq!(plan(&g).unwrap(), p);
        in_place += p.in_place.len();
        saved += aligned - p.arena_bytes;
    }
    assert!(
        in_place > 100 && saved > 0,
        "{in_place} in place, {saved} bytes saved"
    );
}
