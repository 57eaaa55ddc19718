//! The recurrent ops LSTM, GRU and RNN: one time loop shared by the three cells, all
//! directions, both layouts, `sequence_lens`, initial states, peepholes, activation lists
//! with their alpha/beta, `clip`, `input_forget` and `linear_before_reset`.

use ndarray::{s, Array2, Array3, Array4, ArrayD, Axis, Ix3};

use super::{c, from_real, real_input, real_opt, with_real, Real};
use crate::eval::util::{checked_size, opt, req};
use crate::ir::{Op, Tensor};

/// Which cell, with its cell-specific attributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    /// LSTM; `input_forget` couples the forget gate to the input gate (`f = 1 - i`).
    Lstm {
        /// The `input_forget` attribute.
        input_forget: bool,
    },
    /// GRU; `linear_before_reset` applies the reset gate after the recurrent product.
    Gru {
        /// The `linear_before_reset` attribute.
        linear_before_reset: bool,
    },
    /// The plain RNN.
    Rnn,
}

impl Cell {
    /// Gates per hidden unit (rows of W per direction, in units of hidden_size).
    pub fn gates(self) -> usize {
        match self {
            Cell::Lstm { .. } => 4,
            Cell::Gru { .. } => 3,
            Cell::Rnn => 1,
        }
    }

    /// Activation functions per direction, and their defaults.
    fn default_acts(self) -> &'static [&'static str] {
        match self {
            Cell::Lstm { .. } => &["sigmoid", "tanh", "tanh"],
            Cell::Gru { .. } => &["sigmoid", "tanh"],
            Cell::Rnn => &["tanh"],
        }
    }
}

/// An activation function of the recurrent ops, with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `a·x + b`.
    Affine(f64, f64),
    /// `x`, or `a·x` below 0.
    LeakyRelu(f64),
    /// `x` above `a`, else 0.
    ThresholdedRelu(f64),
    /// `a·tanh(b·x)`.
    ScaledTanh(f64, f64),
    /// `clamp(a·x + b, 0, 1)`.
    HardSigmoid(f64, f64),
    /// `x`, or `a·(e^x - 1)` below 0.
    Elu(f64),
    /// `x / (1 + |x|)`.
    Softsign,
    /// `ln(1 + e^x)`.
    Softplus,
}

impl Act {
    fn apply<F: Real>(self, x: F) -> F {
        let one = F::one();
        let p = |v: f64| c::<F>(v);
        match self {
            Act::Relu => x.max(F::zero()),
            Act::Tanh => x.tanh(),
            Act::Sigmoid => one / (one + (-x).exp()),
            Act::Affine(a, b) => p(a) * x + p(b),
            Act::LeakyRelu(a) => {
                if x >= F::zero() {
                    x
                } else {
                    p(a) * x
                }
            }
            Act::ThresholdedRelu(a) => {
                if x > p(a) {
                    x
                } else {
                    F::zero()
                }
            }
            Act::ScaledTanh(a, b) => p(a) * (p(b) * x).tanh(),
            Act::HardSigmoid(a, b) => (p(a) * x + p(b)).max(F::zero()).min(one),
            Act::Elu(a) => {
                if x >= F::zero() {
                    x
                } else {
                    p(a) * (x.exp() - one)
                }
            }
            Act::Softsign => x / (one + x.abs()),
            Act::Softplus => (one + x.exp()).ln(),
        }
    }
}

/// Parses activation names, consuming `alphas`/`betas` in order by the functions that take
/// them (defaults are those of the corresponding ONNX ops).
fn parse_acts(names: &[String], alphas: &[f32], betas: &[f32]) -> Result<Vec<Act>, String> {
    let (mut ai, mut bi) = (
        alphas.iter().map(|&v| v as f64),
        betas.iter().map(|&v| v as f64),
    );
    names
        .iter()
        .map(|n| {
            Ok(match n.to_ascii_lowercase().as_str() {
                "relu" => Act::Relu,
                "tanh" => Act::Tanh,
                "sigmoid" => Act::Sigmoid,
                "affine" => Act::Affine(ai.next().unwrap_or(1.0), bi.next().unwrap_or(0.0)),
                "leakyrelu" => Act::LeakyRelu(ai.next().unwrap_or(0.01)),
                "thresholdedrelu" => Act::ThresholdedRelu(ai.next().unwrap_or(1.0)),
                "scaledtanh" => Act::ScaledTanh(ai.next().unwrap_or(1.0), bi.next().unwrap_or(1.0)),
                "hardsigmoid" => {
                    Act::HardSigmoid(ai.next().unwrap_or(0.2), bi.next().unwrap_or(0.5))
                }
                "elu" => Act::Elu(ai.next().unwrap_or(1.0)),
                "softsign" => Act::Softsign,
                "softplus" => Act::Softplus,
                other => return Err(format!("unknown activation function '{other}'")),
            })
        })
        .collect()
}

/// Attributes shared by the three ops.
pub struct Config {
    /// The cell.
    pub cell: Cell,
    /// `hidden_size`.
    pub hidden: usize,
    /// Activations for each direction.
    pub acts: Vec<Vec<Act>>,
    /// `clip`, the bound of the gates' pre-activations.
    pub clip: Option<f64>,
    /// 1 forward, 1 reverse, or 2 bidirectional.
    pub num_dir: usize,
    /// `direction` is "reverse".
    pub reverse_only: bool,
    /// `layout`: 0 time-major, 1 batch-major.
    pub layout: i64,
}

/// The checked attributes of an LSTM, GRU or RNN op (activation lists expanded per direction
/// with their defaults).
pub fn config(op: &Op) -> Result<Config, String> {
    let (cell, alpha, beta, acts, clip, direction, hidden, layout) = match op {
        Op::Lstm {
            activation_alpha,
            activation_beta,
            activations,
            clip,
            direction,
            hidden_size,
            input_forget,
            layout,
        } => (
            Cell::Lstm {
                input_forget: *input_forget != 0,
            },
            activation_alpha,
            activation_beta,
            activations,
            clip,
            direction,
            hidden_size,
            layout,
        ),
        Op::Gru {
            activation_alpha,
            activation_beta,
            activations,
            clip,
            direction,
            hidden_size,
            layout,
            linear_before_reset,
        } => (
            Cell::Gru {
                linear_before_reset: *linear_before_reset != 0,
            },
            activation_alpha,
            activation_beta,
            activations,
            clip,
            direction,
            hidden_size,
            layout,
        ),
        Op::Rnn {
            activation_alpha,
            activation_beta,
            activations,
            clip,
            direction,
            hidden_size,
            layout,
        } => (
            Cell::Rnn,
            activation_alpha,
            activation_beta,
            activations,
            clip,
            direction,
            hidden_size,
            layout,
        ),
        _ => return Err("not a recurrent op".into()),
    };
    let (num_dir, reverse_only) = match direction.as_str() {
        "forward" => (1, false),
        "reverse" => (1, true),
        "bidirectional" => (2, false),
        d => return Err(format!("unknown direction '{d}'")),
    };
    if *hidden <= 0 {
        return Err(format!("hidden_size must be positive, got {hidden}"));
    }
    if *layout != 0 && *layout != 1 {
        return Err(format!("layout must be 0 or 1, got {layout}"));
    }
    let per_dir = cell.default_acts().len();
    let names: Vec<String> = if acts.is_empty() {
        (0..num_dir)
            .flat_map(|_| cell.default_acts().iter().map(|s| s.to_string()))
            .collect()
    } else if acts.len() == per_dir * num_dir {
        acts.clone()
    } else if acts.len() == per_dir {
        // One list given for a bidirectional op: both directions use it.
        (0..num_dir).flat_map(|_| acts.iter().cloned()).collect()
    } else {
        return Err(format!(
            "expected {} activations, got {}",
            per_dir * num_dir,
            acts.len()
        ));
    };
    let parsed = parse_acts(&names, alpha, beta)?;
    let acts = parsed.chunks(per_dir).map(|c| c.to_vec()).collect();
    if let Some(cl) = clip {
        if cl.is_nan() || *cl < 0.0 {
            return Err(format!("clip must be non-negative, got {cl}"));
        }
    }
    Ok(Config {
        cell,
        hidden: *hidden as usize,
        acts,
        clip: clip.map(|v| v as f64),
        num_dir,
        reverse_only,
        layout: *layout,
    })
}

/// Evaluates LSTM, GRU or RNN.
pub fn eval(op: &Op, inputs: &[Option<&Tensor>], n_outputs: usize) -> Result<Vec<Tensor>, String> {
    let cfg = config(op)?;
    let max_out = if matches!(cfg.cell, Cell::Lstm { .. }) {
        3
    } else {
        2
    };
    if n_outputs > max_out {
        return Err(format!(
            "{} outputs requested, the op has at most {max_out}",
            n_outputs
        ));
    }
    let x = req(inputs, 0)?;
    let dtype = x.dtype();
    with_real!(dtype, F => {
        let outs = run::<F>(&cfg, inputs)?;
        Ok(outs.into_iter().take(n_outputs).map(|a| from_real(a, dtype)).collect())
    })
}

fn dim3<F: Real>(a: ArrayD<F>, what: &str, want: [usize; 3]) -> Result<Array3<F>, String> {
    if a.shape() != want {
        return Err(format!(
            "{what} has shape {:?}, expected {want:?}",
            a.shape()
        ));
    }
    Ok(a.into_dimensionality::<Ix3>().expect("rank checked"))
}

/// A state input (initial_h / initial_c) as [num_dir, batch, hidden], or zeros.
fn state<F: Real>(
    a: Option<ArrayD<F>>,
    what: &str,
    cfg: &Config,
    batch: usize,
) -> Result<Array3<F>, String> {
    let (nd, h) = (cfg.num_dir, cfg.hidden);
    match a {
        None => Ok(Array3::zeros((nd, batch, h))),
        Some(a) if cfg.layout == 0 => dim3(a, what, [nd, batch, h]),
        Some(a) => Ok(dim3(a, what, [batch, nd, h])?
            .permuted_axes([1, 0, 2])
            .to_owned()),
    }
}

/// Computes [Y, Y_h, Y_c] (Y_c only for LSTM) in the working precision.
fn run<F: Real>(cfg: &Config, inputs: &[Option<&Tensor>]) -> Result<Vec<ArrayD<F>>, String> {
    let x = real_input::<F>(inputs, 0)?;
    if x.ndim() != 3 {
        return Err(format!("X must have rank 3, got shape {:?}", x.shape()));
    }
    let mut x = x.into_dimensionality::<Ix3>().expect("rank checked");
    if cfg.layout == 1 {
        x = x.permuted_axes([1, 0, 2]);
    }
    let (seq, batch, input) = x.dim();
    let (nd, h, g) = (cfg.num_dir, cfg.hidden, cfg.cell.gates());
    checked_size(&[nd, g * h, input.max(h)])?;
    checked_size(&[seq, nd, batch, h])?;
    let w = dim3(real_input::<F>(inputs, 1)?, "W", [nd, g * h, input])?;
    let r = dim3(real_input::<F>(inputs, 2)?, "R", [nd, g * h, h])?;
    let b = match real_opt::<F>(inputs, 3)? {
        None => Array2::zeros((nd, 2 * g * h)),
        Some(b) if b.shape() == [nd, 2 * g * h] => b.into_dimensionality().expect("rank checked"),
        Some(b) => {
            return Err(format!(
                "B has shape {:?}, expected {:?}",
                b.shape(),
                [nd, 2 * g * h]
            ))
        }
    };
    let lens: Vec<usize> = match opt(inputs, 4) {
        None => vec![seq; batch],
        Some(t) => {
            let v = t.to_i64_vec()?;
            if v.len() != batch {
                return Err(format!(
                    "sequence_lens has {} entries, expected {batch}",
                    v.len()
                ));
            }
            v.iter()
                .map(|&l| {
                    usize::try_from(l)
                        .ok()
                        .filter(|&l| l <= seq)
                        .ok_or_else(|| format!("sequence length {l} is outside 0..={seq}"))
                })
                .collect::<Result<_, _>>()?
        }
    };
    let mut hs = state(real_opt::<F>(inputs, 5)?, "initial_h", cfg, batch)?;
    let is_lstm = matches!(cfg.cell, Cell::Lstm { .. });
    let mut cs = if is_lstm {
        state(real_opt::<F>(inputs, 6)?, "initial_c", cfg, batch)?
    } else {
        Array3::zeros((0, 0, 0))
    };
    let p = match (is_lstm, real_opt::<F>(inputs, 7)?) {
        (true, Some(p)) if p.shape() == [nd, 3 * h] => {
            p.into_dimensionality().expect("rank checked")
        }
        (true, Some(p)) => {
            return Err(format!(
                "P has shape {:?}, expected {:?}",
                p.shape(),
                [nd, 3 * h]
            ))
        }
        _ => Array2::<F>::zeros((nd, 3 * h)),
    };

    let mut y = Array4::<F>::zeros((seq, nd, batch, h));
    for d in 0..nd {
        let reverse = cfg.reverse_only || d == 1;
        let wt = w.index_axis(Axis(0), d).t().to_owned();
        let rt = r.index_axis(Axis(0), d).t().to_owned();
        let wb = b.slice(s![d, ..g * h]).to_owned();
        let rb = b.slice(s![d, g * h..]).to_owned();
        let acts = &cfg.acts[d];
        let mut ht = hs.index_axis(Axis(0), d).to_owned();
        let mut ct = if is_lstm {
            cs.index_axis(Axis(0), d).to_owned()
        } else {
            Array2::zeros((0, 0))
        };
        for t in 0..seq {
            // The time index each batch row reads at this step (None past its length).
            let idx: Vec<Option<usize>> = lens
                .iter()
                .map(|&l| (t < l).then(|| if reverse { l - 1 - t } else { t }))
                .collect();
            if idx.iter().all(Option::is_none) {
                break;
            }
            let mut xt = Array2::<F>::zeros((batch, input));
            for (bi, i) in idx.iter().enumerate() {
                if let Some(i) = i {
                    xt.row_mut(bi).assign(&x.slice(s![*i, bi, ..]));
                }
            }
            let xw = xt.dot(&wt) + &wb;
            let hr = ht.dot(&rt) + &rb;
            let clip = |v: F| match cfg.clip {
                Some(cl) => v.max(c(-cl)).min(c(cl)),
                None => v,
            };
            let (new_h, new_c) = match cfg.cell {
                Cell::Rnn => (
                    Array2::from_shape_fn((batch, h), |(i, j)| {
                        acts[0].apply(clip(xw[[i, j]] + hr[[i, j]]))
                    }),
                    None,
                ),
                Cell::Gru {
                    linear_before_reset,
                } => {
                    let pre = |i: usize, j: usize, k: usize| {
                        clip(xw[[i, k * h + j]] + hr[[i, k * h + j]])
                    };
                    let z = Array2::from_shape_fn((batch, h), |(i, j)| acts[0].apply(pre(i, j, 0)));
                    let rg =
                        Array2::from_shape_fn((batch, h), |(i, j)| acts[0].apply(pre(i, j, 1)));
                    let cand = if linear_before_reset {
                        Array2::from_shape_fn((batch, h), |(i, j)| {
                            acts[1]
                                .apply(clip(xw[[i, 2 * h + j]] + rg[[i, j]] * hr[[i, 2 * h + j]]))
                        })
                    } else {
                        let rh =
                            (&rg * &ht).dot(&rt.slice(s![.., 2 * h..])) + rb.slice(s![2 * h..]);
                        Array2::from_shape_fn((batch, h), |(i, j)| {
                            acts[1].apply(clip(xw[[i, 2 * h + j]] + rh[[i, j]]))
                        })
                    };
                    let one = F::one();
                    (
                        Array2::from_shape_fn((batch, h), |(i, j)| {
                            (one - z[[i, j]]) * cand[[i, j]] + z[[i, j]] * ht[[i, j]]
                        }),
                        None,
                    )
                }
                Cell::Lstm { input_forget } => {
                    // Gate order in W, R, B: input, output, forget, cell; in P: input, output, forget.
                    let pre =
                        |i: usize, j: usize, k: usize| xw[[i, k * h + j]] + hr[[i, k * h + j]];
                    let mut nh = Array2::zeros((batch, h));
                    let mut nc = Array2::zeros((batch, h));
                    for i in 0..batch {
                        for j in 0..h {
                            let cprev = ct[[i, j]];
                            let ig = acts[0].apply(clip(pre(i, j, 0) + p[[d, j]] * cprev));
                            let fg = if input_forget {
                                F::one() - ig
                            } else {
                                acts[0].apply(clip(pre(i, j, 2) + p[[d, 2 * h + j]] * cprev))
                            };
                            let cg = acts[1].apply(clip(pre(i, j, 3)));
                            let cnew = fg * cprev + ig * cg;
                            let og = acts[0].apply(clip(pre(i, j, 1) + p[[d, h + j]] * cnew));
                            nc[[i, j]] = cnew;
                            nh[[i, j]] = og * acts[2].apply(cnew);
                        }
                    }
                    (nh, Some(nc))
                }
            };
            for (bi, i) in idx.iter().enumerate() {
                if let Some(i) = i {
                    ht.row_mut(bi).assign(&new_h.row(bi));
                    if let Some(nc) = &new_c {
                        ct.row_mut(bi).assign(&nc.row(bi));
                    }
                    y.slice_mut(s![*i, d, bi, ..]).assign(&new_h.row(bi));
                }
            }
        }
        hs.index_axis_mut(Axis(0), d).assign(&ht);
        if is_lstm {
            cs.index_axis_mut(Axis(0), d).assign(&ct);
        }
    }
    let (y, hs, cs) = if cfg.layout == 1 {
        (
            y.permuted_axes([2, 0, 1, 3])
                .as_standard_layout()
                .to_owned(),
            hs.permuted_axes([1, 0, 2]).as_standard_layout().to_owned(),
            cs.permuted_axes([1, 0, 2]).as_standard_layout().to_owned(),
        )
    } else {
        (y, hs, cs)
    };
    let mut out = vec![y.into_dyn(), hs.into_dyn()];
    if is_lstm {
        out.push(cs.into_dyn());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Tensor;

    fn t32(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape, v.to_vec()).unwrap()
    }

    fn close(t: &Tensor, want: &[f64], tol: f64) {
        let got = t.to_f64_vec();
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= tol, "{got:?} vs {want:?}");
        }
    }

    fn rnn_op(direction: &str, hidden: i64, layout: i64) -> Op {
        Op::Rnn {
            activation_alpha: vec![],
            activation_beta: vec![],
            activations: vec![],
            clip: None,
            direction: direction.into(),
            hidden_size: hidden,
            layout,
        }
    }

    #[test]
    fn rnn_bidirectional_with_lengths() {
        // seq 2, batch 2, input 1, hidden 1: W = 0.5, R = 0.25, no bias.
        // Batch 0 has length 2, batch 1 length 1.
        let x = t32(&[2, 2, 1], &[1.0, 2.0, 3.0, 4.0]);
        let w = t32(&[2, 1, 1], &[0.5, 0.5]);
        let r = t32(&[2, 1, 1], &[0.25, 0.25]);
        let lens = Tensor::from_vec(&[2], vec![2i32, 1]).unwrap();
        let op = rnn_op("bidirectional", 1, 0);
        let out = eval(&op, &[Some(&x), Some(&w), Some(&r), None, Some(&lens)], 2).unwrap();
        // forward b0: h1 = tanh(0.5), h2 = tanh(1.5 + 0.25 h1); b1: h1 = tanh(1.0)
        // reverse b0: t=1 first: g1 = tanh(1.5), then t=0: g0 = tanh(0.5 + 0.25 g1); b1: tanh(1.0)
        let f1 = 0.5f64.tanh();
        let f2 = (1.5 + 0.25 * f1).tanh();
        let g1 = 1.5f64.tanh();
        let g0 = (0.5 + 0.25 * g1).tanh();
        let t1 = 1.0f64.tanh();
        // Y: [seq, dir, batch, hidden]
        close(&out[0], &[f1, t1, g0, t1, f2, 0.0, g1, 0.0], 1e-6);
        assert_eq!(out[0].shape(), &[2, 2, 2, 1]);
        close(&out[1], &[f2, t1, g0, t1], 1e-6);
    }

    #[test]
    fn lstm_matches_numpy() {
        // Values from numpy (hand-written LSTM equations, float64), seq 2, batch 1, input 2,
        // hidden 1, with bias and peepholes:
        // W=[.1,.2, .3,.4, .5,.6, .7,.8] (i,o,f,c), R=[.1,.2,.3,.4], B=[.01..0.08], P=[.1,.2,.3]
        let x = t32(&[2, 1, 2], &[1.0, 2.0, -1.0, 0.5]);
        let w = t32(&[1, 4, 2], &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]);
        let r = t32(&[1, 4, 1], &[0.1, 0.2, 0.3, 0.4]);
        let b = t32(&[1, 8], &[0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08]);
        let p = t32(&[1, 3], &[0.1, 0.2, 0.3]);
        let op = Op::Lstm {
            activation_alpha: vec![],
            activation_beta: vec![],
            activations: vec![],
            clip: None,
            direction: "forward".into(),
            hidden_size: 1,
            input_forget: 0,
            layout: 0,
        };
        let out = eval(
            &op,
            &[
                Some(&x),
                Some(&w),
                Some(&r),
                Some(&b),
                None,
                None,
                None,
                Some(&p),
            ],
            3,
        )
        .unwrap();
        close(&out[0], &[0.43711543878170944, 0.1770817670512887], 1e-6);
        close(&out[1], &[0.1770817670512887], 1e-6);
        close(&out[2], &[0.34461670484166573], 1e-6);
    }

    #[test]
    fn gru_linear_before_reset_and_layout1() {
        // batch 1, seq 1, input 1, hidden 1, initial_h = 0.5, layout 1.
        // W = [z .1, r .2, h .3], R = [.4, .5, .6], Rb_h = 0.1 (others 0), x = 1.
        // numpy: z = sig(.1+.2), r = sig(.2+.25), h~ = tanh(.3 + r*(.3+.1)), H = (1-z)h~ + z*.5
        let x = t32(&[1, 1, 1], &[1.0]);
        let w = t32(&[1, 3, 1], &[0.1, 0.2, 0.3]);
        let r = t32(&[1, 3, 1], &[0.4, 0.5, 0.6]);
        let b = t32(&[1, 6], &[0.0, 0.0, 0.0, 0.0, 0.0, 0.1]);
        let h0 = t32(&[1, 1, 1], &[0.5]);
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let z = sig(0.1 + 0.2);
        let rr = sig(0.2 + 0.25);
        let hb = |lbr: bool| {
            let cand = if lbr {
                (0.3 + rr * (0.3 + 0.1)).tanh()
            } else {
                (0.3 + rr * 0.5 * 0.6 + 0.1f64).tanh()
            };
            (1.0 - z) * cand + z * 0.5
        };
        for lbr in [0, 1] {
            let op = Op::Gru {
                activation_alpha: vec![],
                activation_beta: vec![],
                activations: vec![],
                clip: None,
                direction: "forward".into(),
                hidden_size: 1,
                layout: 1,
                linear_before_reset: lbr,
            };
            let out = eval(
                &op,
                &[Some(&x), Some(&w), Some(&r), Some(&b), None, Some(&h0)],
                2,
            )
            .unwrap();
            close(&out[0], &[hb(lbr == 1)], 1e-6);
            close(&out[1], &[hb(lbr == 1)], 1e-6);
        }
    }

    #[test]
    fn activations_and_clip() {
        let acts = parse_acts(
            &[
                "LeakyRelu".into(),
                "HardSigmoid".into(),
                "Affine".into(),
                "Elu".into(),
            ],
            &[0.1, 0.4, 2.0],
            &[0.3, -1.0],
        )
        .unwrap();
        assert_eq!(
            acts,
            vec![
                Act::LeakyRelu(0.1f32 as f64),
                Act::HardSigmoid(0.4f32 as f64, 0.3f32 as f64),
                Act::Affine(2.0, -1.0),
                Act::Elu(1.0)
            ]
        );
        assert_eq!(Act::ThresholdedRelu(1.0).apply(1.0f64), 0.0);
        assert_eq!(Act::Softsign.apply(1.0f64), 0.5);
        assert!((Act::Softplus.apply(0.0f64) - 2f64.ln()).abs() < 1e-12);
        assert!(parse_acts(&["Swish".into()], &[], &[]).is_err());
        // clip bounds the pre-activation: relu(clip(10)) with clip 2 gives 2.
        let mut op = rnn_op("forward", 1, 0);
        if let Op::Rnn {
            clip, activations, ..
        } = &mut op
        {
            *clip = Some(2.0);
            *activations = vec!["Relu".into()];
        }
        let x = t32(&[1, 1, 1], &[10.0]);
        let w = t32(&[1, 1, 1], &[1.0]);
        let r = t32(&[1, 1, 1], &[0.0]);
        let out = eval(&op, &[Some(&x), Some(&w), Some(&r)], 1).unwrap();
        close(&out[0], &[2.0], 0.0);
    }

    #[test]
    fn f16_and_errors() {
        let x = Tensor::F16(ndarray::ArrayD::from_elem(
            ndarray::IxDyn(&[1, 1, 1]),
            half::f16::from_f32(1.0),
        ));
        let w = Tensor::F16(ndarray::ArrayD::from_elem(
            ndarray::IxDyn(&[1, 1, 1]),
            half::f16::from_f32(1.0),
        ));
        let r = w.clone();
        let out = eval(&rnn_op("forward", 1, 0), &[Some(&x), Some(&w), Some(&r)], 2).unwrap();
        assert_eq!(out[0].dtype(), crate::ir::DType::F16);
        let yh = out[1].as_array::<half::f16>().unwrap();
        assert!((yh[[0, 0, 0]].to_f32() as f64 - 1f64.tanh()).abs() < 1e-3);
        // wrong W shape, bad direction, bad length
        let bad = t32(&[1, 2, 1], &[1.0, 1.0]);
        assert!(eval(
            &rnn_op("forward", 1, 0),
            &[Some(&x), Some(&bad), Some(&r)],
            1
        )
        .is_err());
        assert!(eval(
            &rnn_op("sideways", 1, 0),
            &[Some(&x), Some(&w), Some(&r)],
            1
        )
        .is_err());
        let lens = Tensor::from_vec(&[1], vec![5i32]).unwrap();
        assert!(eval(
            &rnn_op("forward", 1, 0),
            &[Some(&x), Some(&w), Some(&r), None, Some(&lens)],
            1
        )
        .is_err());
        assert!(eval(&rnn_op("forward", 1, 0), &[Some(&x), Some(&w), Some(&r)], 3).is_err());
    }
}
