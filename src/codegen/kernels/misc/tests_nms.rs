//! Tests of the NonMaxSuppression kernel against the reference evaluator: seeded clusters of
//! overlapping boxes (duplicates, flipped corners, empty and negative sizes, NaN), scores
//! with ties, both box formats, and every optional input absent, constant, empty or read at
//! run time.

use graphc_passes::ir::{DType, Tensor};

use crate::codegen::testing::{same_as_reference, Lcg};

/// `[nb, ns, 4]` boxes around a few cluster centres on a quarter grid (so IoUs like 1/2 and 1
/// happen exactly), some duplicated; corner format with some corners flipped, or centre
/// format with some empty or negative sizes; a few NaN coordinates when `nan`.
fn boxes(rng: &mut Lcg, nb: usize, ns: usize, center: bool, nan: bool) -> Vec<f32> {
    let mut v: Vec<f32> = Vec::new();
    for _ in 0..nb {
        let centres: Vec<(f32, f32)> = (0..1 + rng.below(3))
            .map(|_| (rng.below(12) as f32 * 0.5, rng.below(12) as f32 * 0.5))
            .collect();
        let start = v.len();
        for i in 0..ns {
            if i > 0 && rng.unit() < 0.15 {
                let j = start + 4 * rng.below(i);
                let copy: Vec<f32> = v[j..j + 4].to_vec();
                v.extend(copy);
                continue;
            }
            let (cy, cx) = centres[rng.below(centres.len())];
            let cy = cy + rng.below(5) as f32 * 0.25;
            let cx = cx + rng.below(5) as f32 * 0.25;
            let mut h = (1 + rng.below(8)) as f32 * 0.25;
            let mut w = (1 + rng.below(8)) as f32 * 0.25;
            let mut b = if center {
                if rng.unit() < 0.05 {
                    h = 0.0;
                }
                if rng.unit() < 0.05 {
                    w = -w;
                }
                [cx, cy, w, h]
            } else {
                let mut b = [cy - h / 2.0, cx - w / 2.0, cy + h / 2.0, cx + w / 2.0];
                if rng.unit() < 0.3 {
                    b.swap(0, 2);
                }
                if rng.unit() < 0.3 {
                    b.swap(1, 3);
                }
                b
            };
            if nan && rng.unit() < 0.1 {
                b[rng.below(4)] = f32::NAN;
            }
            v.extend(b);
        }
    }
    v
}

/// `n` scores in multiples of 1/8 from 0 to 1 (many ties).
fn scores(rng: &mut Lcg, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.below(9) as f32 / 8.0).collect()
}

/// How an optional input is given.
#[derive(Clone, Copy, Debug)]
enum Arg {
    Absent,
    /// A constant with this value.
    Const(f64),
    /// A constant with no elements.
    Empty,
    /// A graph input, given this value at run time.
    Run(f64),
}

/// The one-node graph: boxes `[nb, ns, 4]`, scores `[nb, nc, ns]`, the optional inputs as
/// `args` (max_output_boxes_per_class, iou_threshold, score_threshold), and the run-time
/// inputs' tensors.
fn graph(
    nb: usize,
    nc: usize,
    ns: usize,
    center: bool,
    args: [Arg; 3],
) -> (String, Vec<Option<Tensor>>) {
    let mut params = vec![
        format!("%b: f32[{nb},{ns},4]"),
        format!("%s: f32[{nb},{nc},{ns}]"),
    ];
    let mut body = Vec::new();
    let mut run = Vec::new();
    let mut refs = vec!["%b".to_string(), "%s".to_string()];
    for (k, (arg, name)) in args.iter().zip(["m", "iou", "st"]).enumerate() {
        let dt = if k == 0 { DType::I64 } else { DType::F32 };
        let lit = |v: f64| {
            if k == 0 {
                format!("{}", v as i64)
            } else {
                format!("{v:?}")
            }
        };
        match *arg {
            Arg::Absent => refs.push("_".into()),
            Arg::Const(v) => {
                body.push(format!(
                    "  %{name}: {dt}[1] = constant {{value: {dt}[1] [{}]}}",
                    lit(v)
                ));
                refs.push(format!("%{name}"));
            }
            Arg::Empty => {
                body.push(format!(
                    "  %{name}: {dt}[0] = constant {{value: {dt}[0] []}}"
                ));
                refs.push(format!("%{name}"));
            }
            Arg::Run(v) => {
                params.push(format!("%{name}: {dt}[1]"));
                refs.push(format!("%{name}"));
                run.push(Some(Tensor::from_vec(&[1], vec![v]).unwrap().cast(dt)));
            }
        }
    }
    let text = format!(
        "graph \"g\" ({}) {{\n{}\n  %y: i64[?,3] = non_max_suppression {{center_point_box: {}}} ({})\n  return %y\n}}\n",
        params.join(", "),
        body.join("\n"),
        center as i64,
        refs.join(", ")
    );
    (text, run)
}

/// Runs NonMaxSuppression on `b`, `s` with the kernel (asserting there is one) and with the
/// reference, compares exactly, shapes included, and returns the result.
fn nms_as_reference(
    (nb, nc, ns): (usize, usize, usize),
    center: bool,
    args: [Arg; 3],
    b: &[f32],
    s: &[f32],
) -> Tensor {
    let (text, run) = graph(nb, nc, ns, center, args);
    let mut inputs = vec![
        Some(Tensor::from_vec(&[nb, ns, 4], b.to_vec()).unwrap()),
        Some(Tensor::from_vec(&[nb, nc, ns], s.to_vec()).unwrap()),
    ];
    inputs.extend(run);
    let ctx = format!("{text}boxes {b:?}\nscores {s:?}");
    let want = same_as_reference(&text, &inputs).unwrap_or_else(|e| panic!("{e}\n{ctx}"));
    want.into_iter().next().unwrap()
}

#[test]
fn nms_matches_the_reference_on_random_clusters() {
    let mut rng = Lcg(5);
    let sizes = [
        (1, 1, 1),
        (1, 1, 7),
        (2, 1, 9),
        (1, 3, 6),
        (2, 3, 12),
        (3, 2, 20),
        (2, 2, 0),
    ];
    let maxes = [None, Some(0), Some(1), Some(2), Some(100), Some(-3)];
    let ious = [None, Some(0.0), Some(0.5), Some(1.0), Some(0.3)];
    let score_ths = [None, Some(0.5), Some(-1.0)];
    let mut case = 0usize;
    let mut selected = 0usize;
    for &(nb, nc, ns) in &sizes {
        for center in [false, true] {
            for &m in &maxes {
                for &iou in &ious {
                    for &st in &score_ths {
                        case += 1;
                        // Each present input a constant or a run-time input, by the case
                        // number's bits.
                        let arg = |v: Option<f64>, bit: usize| match v {
                            None => Arg::Absent,
                            Some(v) if case >> bit & 1 == 0 => Arg::Const(v),
                            Some(v) => Arg::Run(v),
                        };
                        let args = [arg(m.map(|m| m as f64), 0), arg(iou, 1), arg(st, 2)];
                        let b = boxes(&mut rng, nb, ns, center, case % 5 == 0);
                        let s = scores(&mut rng, nb * nc * ns);
                        let y = nms_as_reference((nb, nc, ns), center, args, &b, &s);
                        selected += y.shape()[0];
                    }
                }
            }
        }
    }
    // The cases select boxes (and suppress some: the boundary tests pin that down).
    assert!(selected > 1000, "{selected}");
}

/// IoUs exactly at the threshold: kept (the test is `iou > threshold`); identical boxes are
/// kept at threshold 1, suppressed below it.
#[test]
fn nms_iou_threshold_boundary() {
    // Box 1 covers half of box 0 (IoU exactly 1/2); box 2 is box 0 again (IoU 1); flipped.
    let b = [
        0.0f32, 0.0, 2.0, 2.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 0.0, 0.0,
    ];
    let s = [0.9f32, 0.8, 0.7];
    let m = Arg::Const(10.0);
    let run = |iou: f64, runtime: bool| {
        let t = if runtime {
            Arg::Run(iou)
        } else {
            Arg::Const(iou)
        };
        let y = nms_as_reference((1, 1, 3), false, [m, t, Arg::Absent], &b, &s);
        y.to_i64_vec().unwrap()
    };
    for runtime in [false, true] {
        assert_eq!(run(0.5, runtime), [0, 0, 0, 0, 0, 1]);
        assert_eq!(run(0.49, runtime), [0, 0, 0]);
        assert_eq!(run(1.0, runtime), [0, 0, 0, 0, 0, 1, 0, 0, 2]);
        assert_eq!(run(0.99, runtime), [0, 0, 0, 0, 0, 1]);
    }
    // The same in centre format: (xc, yc, w, h).
    let c = [
        1.0f32, 1.0, 2.0, 2.0, 1.0, 0.5, 2.0, 1.0, 1.0, 1.0, 2.0, 2.0,
    ];
    let y = nms_as_reference((1, 1, 3), true, [m, Arg::Const(0.5), Arg::Absent], &c, &s);
    assert_eq!(y.to_i64_vec().unwrap(), [0, 0, 0, 0, 0, 1]);
}

/// Equal scores are taken by increasing index; the score threshold is strict; the cap
/// counts kept boxes per batch and class.
#[test]
fn nms_ties_threshold_and_cap() {
    // Four identical boxes and one apart; scores tie.
    let mut b = Vec::new();
    for _ in 0..4 {
        b.extend([0.0f32, 0.0, 1.0, 1.0]);
    }
    b.extend([5.0f32, 5.0, 6.0, 6.0]);
    let s = [0.5f32, 0.75, 0.75, 0.5, 0.25];
    let iou = Arg::Const(0.5);
    let y = |m: Arg, st: Arg| {
        nms_as_reference((1, 1, 5), false, [m, iou, st], &b, &s)
            .to_i64_vec()
            .unwrap()
    };
    assert_eq!(y(Arg::Const(5.0), Arg::Absent), [0, 0, 1, 0, 0, 4]);
    assert_eq!(y(Arg::Run(5.0), Arg::Run(0.25)), [0, 0, 1]);
    assert_eq!(y(Arg::Run(1.0), Arg::Absent), [0, 0, 1]);
    // No suppression (threshold 1 keeps identical boxes): the cap decides.
    let y = |m: Arg| {
        nms_as_reference((1, 1, 5), false, [m, Arg::Const(1.0), Arg::Absent], &b, &s)
            .to_i64_vec()
            .unwrap()
    };
    assert_eq!(y(Arg::Const(3.0)), [0, 0, 1, 0, 0, 2, 0, 0, 0]);
    assert_eq!(y(Arg::Run(2.0)), [0, 0, 1, 0, 0, 2]);
    assert_eq!(y(Arg::Run(-1.0)), Vec::<i64>::new());
    assert_eq!(y(Arg::Run(0.0)), Vec::<i64>::new());
}

/// Empty optional inputs mean their defaults (nothing selected without a maximum).
#[test]
fn nms_empty_optional_inputs() {
    let mut rng = Lcg(17);
    let (nb, nc, ns) = (2, 2, 8);
    for center in [false, true] {
        let b = boxes(&mut rng, nb, ns, center, false);
        let s = scores(&mut rng, nb * nc * ns);
        let sizes = (nb, nc, ns);
        let y = nms_as_reference(
            sizes,
            center,
            [Arg::Empty, Arg::Absent, Arg::Absent],
            &b,
            &s,
        );
        assert_eq!(y.shape(), &[0, 3]);
        let m = Arg::Const(4.0);
        nms_as_reference(sizes, center, [m, Arg::Empty, Arg::Empty], &b, &s);
        nms_as_reference(sizes, center, [m, Arg::Const(0.4), Arg::Empty], &b, &s);
        nms_as_reference(sizes, center, [m, Arg::Empty, Arg::Run(0.3)], &b, &s);
    }
}
