//! Unit tests of the nn family. The ONNX node tests for these ops run in the conformance
//! suite (`tests/it/conformance.rs`).

use super::*;

// ---- unit tests ----
// Values marked "onnx.reference" were computed with numpy 2.4 / onnx 1.21's ReferenceEvaluator
// in /tmp/venv and pasted here; the others are derived by hand.

fn t32(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_vec(shape, v.to_vec()).unwrap()
}

fn ev(op: Op, inputs: &[Option<&Tensor>], n: usize) -> Vec<Tensor> {
    eval(&op, inputs, n).unwrap()
}

#[track_caller]
fn close(t: &Tensor, shape: &[usize], want: &[f64]) {
    assert_eq!(t.shape(), shape);
    let got = t.to_f64_vec();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 + 1e-5 * w.abs(),
            "element {i}: got {g}, want {w}\n{got:?}"
        );
    }
}

fn conv_op(group: i64, strides: &[i64], pads: &[i64], dilations: &[i64]) -> Op {
    Op::Conv {
        auto_pad: AutoPad::NotSet,
        dilations: dilations.to_vec(),
        group,
        kernel_shape: vec![],
        pads: pads.to_vec(),
        strides: strides.to_vec(),
    }
}

#[test]
fn matmul_promotes_1d_and_broadcasts_batches() {
    // a: [2, 1, 2, 3], b: [3] -> [2, 1, 2].
    let a = t32(
        &[2, 1, 2, 3],
        &[1., 2., 3., 4., 5., 6., 0., 1., 0., -1., 0., 1.],
    );
    let b = t32(&[3], &[1., 10., 100.]);
    close(
        &ev(Op::MatMul {}, &[Some(&a), Some(&b)], 1)[0],
        &[2, 1, 2],
        &[321., 654., 10., 99.],
    );
    // [3] x [2, 3, 1] -> [2, 1]; batch broadcast [1, 2, 2] x [3, 2, 1]... with ints.
    let x = Tensor::from_vec(&[1, 2, 2], vec![1i32, 2, 3, 4]).unwrap();
    let y = Tensor::from_vec(&[3, 2, 1], vec![1i32, 1, 2, 0, 0, -1]).unwrap();
    let z = &ev(Op::MatMul {}, &[Some(&x), Some(&y)], 1)[0];
    assert_eq!(
        z,
        &Tensor::from_vec(&[3, 2, 1], vec![3i32, 7, 2, 6, -2, -4]).unwrap()
    );
    let bad = t32(&[4], &[0.; 4]);
    assert!(eval(&Op::MatMul {}, &[Some(&a), Some(&bad)], 1).is_err());
}

#[test]
fn gemm_transposes_scales_and_broadcasts_c() {
    // A' = A^T (2x3 -> 3x2... A is [2, 3], transA gives [3, 2]); B [2, 2]; C a row vector.
    let a = t32(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
    let b = t32(&[2, 2], &[1., 0., 0., 1.]);
    let c = t32(&[2], &[10., 20.]);
    let op = Op::Gemm {
        alpha: 2.0,
        beta: 0.5,
        trans_a: 1,
        trans_b: 0,
    };
    let y = &ev(op.clone(), &[Some(&a), Some(&b), Some(&c)], 1)[0];
    close(y, &[3, 2], &[7., 18., 9., 20., 11., 22.]);
    let y = &ev(op, &[Some(&a), Some(&b)], 1)[0];
    close(y, &[3, 2], &[2., 8., 4., 10., 6., 12.]);
}

#[test]
fn einsum_diagonal_implicit_and_ellipsis() {
    let m = t32(&[3, 3], &(0..9).map(|v| v as f32).collect::<Vec<_>>());
    let op = |e: &str| Op::Einsum { equation: e.into() };
    close(&ev(op("ii->i"), &[Some(&m)], 1)[0], &[3], &[0., 4., 8.]);
    close(&ev(op("ii"), &[Some(&m)], 1)[0], &[], &[12.]);
    // onnx.reference: ij,jk on arange(6).reshape(2,3), arange(12).reshape(3,4).
    let a = t32(&[2, 3], &(0..6).map(|v| v as f32).collect::<Vec<_>>());
    let b = t32(&[3, 4], &(0..12).map(|v| v as f32).collect::<Vec<_>>());
    close(
        &ev(op("ij,jk"), &[Some(&a), Some(&b)], 1)[0],
        &[2, 4],
        &[20., 23., 26., 29., 56., 68., 80., 92.],
    );
    // Ellipsis with broadcasting: [1, 2, 3] x [3] over "...j,j->...".
    let x = t32(&[1, 2, 3], &[1., 2., 3., 4., 5., 6.]);
    let v = t32(&[3], &[1., 1., 1.]);
    close(
        &ev(op("...j,j->..."), &[Some(&x), Some(&v)], 1)[0],
        &[1, 2],
        &[6., 15.],
    );
    assert!(eval(&op("ij,jk"), &[Some(&a), Some(&a)], 1).is_err());
}

#[test]
fn conv_grouped_strided_dilated_padded_batched() {
    // onnx.reference: x = (arange(280).reshape(2,4,5,7) % 11 - 5), w = (arange(72).reshape(6,2,3,2) % 7 - 3),
    // group 2, strides [2,3], pads [1,0,2,1], dilations [1,2].
    let x: Vec<f32> = (0..280).map(|i| (i % 11) as f32 - 5.).collect();
    let w: Vec<f32> = (0..72).map(|i| (i % 7) as f32 - 3.).collect();
    let (x, w) = (t32(&[2, 4, 5, 7], &x), t32(&[6, 2, 3, 2], &w));
    let b = t32(&[6], &[0.5, -1., 2., 0., 1., -2.]);
    let y = &ev(
        conv_op(2, &[2, 3], &[1, 0, 2, 1], &[1, 2]),
        &[Some(&x), Some(&w), Some(&b)],
        1,
    )[0];
    #[rustfmt::skip]
    let want = [17.5, -4.5, 8.5, -28.5, -24.5, 14.5, 9.0, 4.0, 14.0, -22.0, -26.0, -17.0, -9.0, -11.0, -11.0, 31.0, 26.0, -16.0,
        -24.0, 0.0, 24.0, 24.0, 0.0, -24.0, -7.0, -9.0, -24.0, 11.0, 11.0, 24.0, 27.0, -15.0, -27.0, -13.0, 11.0, 5.0,
        -4.5, 17.5, 12.5, 8.5, 13.5, -24.5, 3.0, 9.0, 17.0, 14.0, 9.0, -26.0, 15.0, -9.0, -9.0, -11.0, 2.0, 26.0,
        18.0, -24.0, -42.0, 24.0, 24.0, 0.0, 17.0, -7.0, -15.0, -24.0, -24.0, 11.0, -30.0, 27.0, 36.0, -27.0, -27.0, 11.0];
    close(y, &[2, 6, 3, 2], &want);
    // The same in f64 and in f16 (computed through f32).
    let y64 = &ev(
        conv_op(2, &[2, 3], &[1, 0, 2, 1], &[1, 2]),
        &[
            Some(&x.cast(DType::F64)),
            Some(&w.cast(DType::F64)),
            Some(&b.cast(DType::F64)),
        ],
        1,
    )[0];
    assert_eq!(y64.dtype(), DType::F64);
    close(y64, &[2, 6, 3, 2], &want);
    let y16 = &ev(
        conv_op(2, &[2, 3], &[1, 0, 2, 1], &[1, 2]),
        &[
            Some(&x.cast(DType::F16)),
            Some(&w.cast(DType::F16)),
            Some(&b.cast(DType::F16)),
        ],
        1,
    )[0];
    assert_eq!(y16.dtype(), DType::F16);
    close(y16, &[2, 6, 3, 2], &want);
    // Channels that do not split into groups are an error, not a panic.
    assert!(eval(&conv_op(3, &[], &[], &[]), &[Some(&x), Some(&w)], 1).is_err());
}

#[test]
fn conv_depthwise_1d_same_lower() {
    // onnx.reference: kernel 4 (even) pads 2 at the start, 1 at the end.
    let x = t32(&[1, 2, 5], &[1., 2., 3., 4., 5., 0., -1., 2., -3., 4.]);
    let w = t32(&[2, 1, 4], &[1., 0., -1., 2., 0.5, 0.5, 0.5, 0.5]);
    let op = Op::Conv {
        auto_pad: AutoPad::SameLower,
        dilations: vec![],
        group: 2,
        kernel_shape: vec![4],
        pads: vec![],
        strides: vec![],
    };
    close(
        &ev(op, &[Some(&x), Some(&w)], 1)[0],
        &[1, 2, 5],
        &[3., 4., 6., 8., -2., -0.5, 0.5, -1., 1., 1.5],
    );
}

#[test]
fn conv_1x1_fast_path_matches_definition() {
    // [1, 2, 1, 3] x [3, 2, 1, 1]: each output channel mixes the two input channels.
    let x = t32(&[1, 2, 1, 3], &[1., 2., 3., 10., 20., 30.]);
    let w = t32(&[3, 2, 1, 1], &[1., 0., 0., 1., 1., -1.]);
    close(
        &ev(conv_op(1, &[], &[], &[]), &[Some(&x), Some(&w)], 1)[0],
        &[1, 3, 1, 3],
        &[1., 2., 3., 10., 20., 30., -9., -18., -27.],
    );
}

#[test]
fn conv_transpose_strided_padded_output_padding() {
    // onnx.reference: x = arange(12).reshape(1,2,3,2) - 4, w = arange(36).reshape(2,3,2,3) % 5 - 2,
    // strides [2,2], output_padding [1,0], pads [0,1,1,0].
    let x = t32(
        &[1, 2, 3, 2],
        &(0..12).map(|v| v as f32 - 4.).collect::<Vec<_>>(),
    );
    let w = t32(
        &[2, 3, 2, 3],
        &(0..36).map(|v| (v % 5) as f32 - 2.).collect::<Vec<_>>(),
    );
    let op = Op::ConvTranspose {
        auto_pad: AutoPad::NotSet,
        dilations: vec![],
        group: 1,
        kernel_shape: vec![],
        output_padding: vec![1, 0],
        output_shape: vec![],
        pads: vec![0, 1, 1, 0],
        strides: vec![2, 2],
    };
    #[rustfmt::skip]
    let want = [8.0, 5.0, 9.0, -6.0, -8.0, 4.0, -6.0, 9.0, 10.0, -1.0, 11.0, -10.0, -4.0, 2.0, -2.0, 7.0, 12.0, -7.0, 13.0, -14.0, 0.0, 0.0, 2.0, 5.0,
        -4.0, 3.0, -6.0, -6.0, 10.0, 2.0, 9.0, 9.0, -8.0, 5.0, -10.0, -6.0, 8.0, 8.0, 7.0, 11.0, -12.0, 7.0, -14.0, -6.0, 6.0, 14.0, 5.0, 13.0,
        -6.0, -14.0, -6.0, -6.0, 8.0, 5.0, 9.0, -6.0, -6.0, -14.0, -6.0, -2.0, 10.0, -1.0, 11.0, -10.0, -6.0, -14.0, -6.0, 2.0, 12.0, -7.0, 13.0, -14.0];
    close(&ev(op, &[Some(&x), Some(&w)], 1)[0], &[1, 3, 6, 4], &want);
}

fn pool_input() -> Tensor {
    t32(
        &[1, 1, 4, 5],
        &[
            3., 1., 4., 1., 5., 9., 2., 6., 5., 3., 5., 8., 9., 7., 9., 3., 2., 3., 8., 4.,
        ],
    )
}

#[test]
fn max_pool_ceil_mode_padding_and_column_major_indices() {
    // onnx.reference: kernel 2x2, strides 2, pads [1,0,0,0], ceil_mode, storage_order 1.
    let x = pool_input();
    let op = Op::MaxPool {
        auto_pad: AutoPad::NotSet,
        ceil_mode: 1,
        dilations: vec![],
        kernel_shape: vec![2, 2],
        pads: vec![1, 0, 0, 0],
        storage_order: 1,
        strides: vec![2, 2],
    };
    let out = ev(op, &[Some(&x)], 2);
    close(
        &out[0],
        &[1, 1, 3, 3],
        &[3., 4., 5., 9., 9., 9., 3., 8., 4.],
    );
    assert_eq!(
        out[1],
        Tensor::from_vec(&[1, 1, 3, 3], vec![0i64, 8, 16, 1, 10, 18, 3, 15, 19]).unwrap()
    );
    // Integer input stays integer.
    let xi = x.cast(DType::U8);
    let op = Op::MaxPool {
        auto_pad: AutoPad::Valid,
        ceil_mode: 0,
        dilations: vec![],
        kernel_shape: vec![4, 5],
        pads: vec![],
        storage_order: 0,
        strides: vec![],
    };
    assert_eq!(
        ev(op, &[Some(&xi)], 1)[0],
        Tensor::from_vec(&[1, 1, 1, 1], vec![9u8]).unwrap()
    );
}

#[test]
fn average_pool_count_include_pad_and_ceil_overhang() {
    let x = pool_input();
    let op = |incl: i64, ceil: i64| Op::AveragePool {
        auto_pad: AutoPad::NotSet,
        ceil_mode: ceil,
        count_include_pad: incl,
        dilations: vec![],
        kernel_shape: vec![3, 3],
        pads: vec![1, 1, 1, 1],
        strides: vec![2, 2],
    };
    // onnx.reference for both.
    close(
        &ev(op(1, 0), &[Some(&x)], 1)[0],
        &[1, 1, 2, 3],
        &[1.6666666, 2.1111111, 1.5555556, 3.2222222, 5.5555553, 4.0],
    );
    close(
        &ev(op(0, 1), &[Some(&x)], 1)[0],
        &[1, 1, 3, 3],
        &[
            3.75, 3.1666667, 3.5, 4.8333335, 5.5555553, 6.0, 2.5, 4.3333335, 6.0,
        ],
    );
}

#[test]
fn global_pools_and_lp_pool() {
    let x = t32(&[1, 2, 1, 2], &[3., -4., 1., 1.]);
    close(
        &ev(Op::GlobalAveragePool {}, &[Some(&x)], 1)[0],
        &[1, 2, 1, 1],
        &[-0.5, 1.],
    );
    close(
        &ev(Op::GlobalMaxPool {}, &[Some(&x)], 1)[0],
        &[1, 2, 1, 1],
        &[3., 1.],
    );
    close(
        &ev(Op::GlobalLpPool { p: 2 }, &[Some(&x)], 1)[0],
        &[1, 2, 1, 1],
        &[5., 2f64.sqrt()],
    );
}

#[test]
fn batch_norm_inference_and_training() {
    // Inference: (x - 1) / sqrt(4 + 0) * 2 + 3 per channel 0; channel 1 is identity-ish.
    let x = t32(&[1, 2, 2], &[1., 5., 0., 2.]);
    let inputs = [
        t32(&[2], &[2., 1.]),
        t32(&[2], &[3., 0.]),
        t32(&[2], &[1., 0.]),
        t32(&[2], &[4., 1.]),
    ];
    let op = Op::BatchNormalization {
        epsilon: 0.0,
        momentum: 0.9,
        training_mode: 0,
    };
    let args: Vec<Option<&Tensor>> = std::iter::once(Some(&x))
        .chain(inputs.iter().map(Some))
        .collect();
    close(&ev(op, &args, 1)[0], &[1, 2, 2], &[3., 7., 0., 2.]);
    // onnx.reference: training mode, momentum 0.8.
    let x = t32(&[2, 1, 2], &[1., 2., 5., -2.]);
    let p = [
        t32(&[1], &[2.]),
        t32(&[1], &[1.]),
        t32(&[1], &[0.5]),
        t32(&[1], &[2.]),
    ];
    let args: Vec<Option<&Tensor>> = std::iter::once(Some(&x))
        .chain(p.iter().map(Some))
        .collect();
    let out = ev(
        Op::BatchNormalization {
            epsilon: 1e-5,
            momentum: 0.8,
            training_mode: 1,
        },
        &args,
        3,
    );
    close(
        &out[0],
        &[2, 1, 2],
        &[0.6000003, 1.3999997, 3.7999978, -1.7999978],
    );
    close(&out[1], &[1], &[0.7]);
    close(&out[2], &[1], &[2.85]);
}

#[test]
fn layer_norm_with_statistics_outputs() {
    // onnx.reference.
    let x = t32(&[2, 3], &[1., 2., 4., -1., 0., 7.]);
    let s = t32(&[3], &[1., 0.5, 2.]);
    let b = t32(&[3], &[0., 1., -1.]);
    let out = ev(
        Op::LayerNormalization {
            axis: -1,
            epsilon: 1e-5,
            stash_type: 1,
        },
        &[Some(&x), Some(&s), Some(&b)],
        3,
    );
    close(
        &out[0],
        &[2, 3],
        &[
            -1.0690414, 0.86636984, 1.6726036, -0.8429269, 0.71902436, 1.8097563,
        ],
    );
    close(&out[1], &[2, 1], &[2.3333333, 2.0]);
    close(&out[2], &[2, 1], &[0.80178106, 0.28097564]);
    assert!(eval(
        &Op::LayerNormalization {
            axis: 2,
            epsilon: 1e-5,
            stash_type: 1
        },
        &[Some(&x), Some(&s)],
        1
    )
    .is_err());
}

#[test]
fn group_norm_lrn_lp_and_mvn() {
    // onnx.reference: 2 groups over 4 channels of length 2, epsilon 0.
    let x = t32(&[1, 4, 2], &(0..8).map(|v| v as f32).collect::<Vec<_>>());
    let s = t32(&[4], &[1., 2., 1., 1.]);
    let b = t32(&[4], &[0., 0., 1., 0.]);
    let y = &ev(
        Op::GroupNormalization {
            epsilon: 0.0,
            num_groups: 2,
            stash_type: 1,
        },
        &[Some(&x), Some(&s), Some(&b)],
        1,
    )[0];
    close(
        y,
        &[1, 4, 2],
        &[
            -1.3416407, -0.4472136, 0.8944272, 2.6832814, -0.3416407, 0.5527864, 0.4472136,
            1.3416407,
        ],
    );
    // LRN by hand: channel 1 of [0, 1, 2, 3] with size 3 sums 0 + 1 + 4.
    let x = t32(&[1, 4, 1, 1], &[0., 1., 2., 3.]);
    let y = &ev(
        Op::Lrn {
            alpha: 0.3,
            beta: 1.0,
            bias: 1.0,
            size: 3,
        },
        &[Some(&x)],
        1,
    )[0];
    close(y, &[1, 4, 1, 1], &[0., 1. / 1.5, 2. / 2.4, 3. / 2.3]);
    // LpNormalization: L1 along axis 0, with a zero column.
    let x = t32(&[2, 2], &[3., 0., -1., 0.]);
    close(
        &ev(Op::LpNormalization { axis: 0, p: 1 }, &[Some(&x)], 1)[0],
        &[2, 2],
        &[0.75, 0., -0.25, 0.],
    );
    // MVN over axis 1 of [[1, 3]]: mean 2, std 1.
    let x = t32(&[1, 2], &[1., 3.]);
    close(
        &ev(
            Op::MeanVarianceNormalization { axes: vec![1] },
            &[Some(&x)],
            1,
        )[0],
        &[1, 2],
        &[-1., 1.],
    );
}

#[test]
fn resize_modes() {
    let x = t32(&[1, 1, 2, 2], &[1., 2., 3., 4.]);
    let base = |mode: &str, coord: &str| Op::Resize {
        antialias: 0,
        axes: None,
        coordinate_transformation_mode: coord.into(),
        cubic_coeff_a: -0.75,
        exclude_outside: 0,
        extrapolation_value: 0.0,
        keep_aspect_ratio_policy: "stretch".into(),
        mode: mode.into(),
        nearest_mode: "ceil".into(),
    };
    // onnx.reference: linear half_pixel with scales [1, 1, 2, 1.5].
    let scales = t32(&[4], &[1., 1., 2., 1.5]);
    let y = &ev(
        base("linear", "half_pixel"),
        &[Some(&x), None, Some(&scales)],
        1,
    )[0];
    close(
        y,
        &[1, 1, 4, 3],
        &[1., 1.5, 2., 1.5, 2., 2.5, 2.5, 3., 3.5, 3., 3.5, 4.],
    );
    // onnx.reference: nearest asymmetric ceil with scales [1, 1, 1.5, 3].
    let scales = t32(&[4], &[1., 1., 1.5, 3.]);
    let y = &ev(
        base("nearest", "asymmetric"),
        &[Some(&x), None, Some(&scales)],
        1,
    )[0];
    close(
        y,
        &[1, 1, 3, 6],
        &[
            1., 2., 2., 2., 2., 2., 3., 4., 4., 4., 4., 4., 3., 4., 4., 4., 4., 4.,
        ],
    );
    // onnx.reference: cubic align_corners to sizes [3, 5] on axes [2, 3].
    let x = t32(
        &[1, 1, 4, 4],
        &(0..16).map(|v| v as f32).collect::<Vec<_>>(),
    );
    let sizes = Tensor::from_vec(&[2], vec![3i64, 5]).unwrap();
    let mut op = base("cubic", "align_corners");
    if let Op::Resize { axes, .. } = &mut op {
        *axes = Some(vec![2, 3]);
    }
    let y = &ev(op, &[Some(&x), None, None, Some(&sizes)], 1)[0];
    #[rustfmt::skip]
    close(y, &[1, 1, 3, 5], &[0.0, 0.66796875, 1.5, 2.33203125, 3.0, 6.0, 6.66796875, 7.5, 8.33203125, 9.0, 12.0, 12.66796875, 13.5, 14.33203125, 15.0]);
    // onnx.reference: antialiased linear downsampling of arange(10) to 4.
    let x = t32(&[1, 10], &(0..10).map(|v| v as f32).collect::<Vec<_>>());
    let sizes = Tensor::from_vec(&[2], vec![1i64, 4]).unwrap();
    let mut op = base("linear", "half_pixel");
    if let Op::Resize { antialias, .. } = &mut op {
        *antialias = 1;
    }
    close(
        &ev(op, &[Some(&x), None, None, Some(&sizes)], 1)[0],
        &[1, 4],
        &[0.88, 3.24, 5.76, 8.12],
    );
}

#[test]
fn quantize_dequantize_round_trip() {
    // onnx.reference: round half to even, saturate to i8.
    let x = t32(&[7], &[-1.5, -0.5, 0.5, 1.5, 2.5, 300., -300.]);
    let s = Tensor::scalar(1f32);
    let z = Tensor::scalar(0i8);
    let op = Op::QuantizeLinear {
        axis: 1,
        saturate: 1,
        block_size: 0,
        output_dtype: 0,
        precision: 0,
    };
    let q = &ev(op, &[Some(&x), Some(&s), Some(&z)], 1)[0];
    assert_eq!(
        q,
        &Tensor::from_vec(&[7], vec![-2i8, 0, 0, 2, 2, 127, -128]).unwrap()
    );
    // Per-axis dequantization along axis 1 with u8 zero points.
    let q = Tensor::from_vec(&[2, 2], vec![10u8, 20, 30, 40]).unwrap();
    let s = t32(&[2], &[0.5, 2.]);
    let z = Tensor::from_vec(&[2], vec![10u8, 0]).unwrap();
    let op = Op::DequantizeLinear {
        axis: 1,
        block_size: 0,
        output_dtype: 0,
    };
    close(
        &ev(op, &[Some(&q), Some(&s), Some(&z)], 1)[0],
        &[2, 2],
        &[0., 40., 10., 80.],
    );
    // Blocked quantization: blocks of 2 along axis 0 with scales [2, 1] per column block.
    let x = t32(&[3, 1], &[4., 6., 9.]);
    let s = t32(&[2, 1], &[2., 1.]);
    let op = Op::QuantizeLinear {
        axis: 0,
        saturate: 1,
        block_size: 2,
        output_dtype: 0,
        precision: 0,
    };
    assert_eq!(
        ev(op, &[Some(&x), Some(&s)], 1)[0],
        Tensor::from_vec(&[3, 1], vec![2u8, 3, 9]).unwrap()
    );
}

#[test]
fn det_and_dropout() {
    let m = t32(&[2, 2, 2], &[1., 2., 3., 4., 2., 0., 0., 3.]);
    close(&ev(Op::Det {}, &[Some(&m)], 1)[0], &[2], &[-2., 6.]);
    let x = t32(&[2], &[1., 2.]);
    let out = ev(Op::Dropout { seed: None }, &[Some(&x)], 2);
    assert_eq!(out[0], x);
    assert_eq!(out[1], Tensor::from_vec(&[2], vec![true, true]).unwrap());
    let ratio = Tensor::scalar(0.5f32);
    let yes = Tensor::scalar(true);
    assert!(eval(
        &Op::Dropout { seed: None },
        &[Some(&x), Some(&ratio), Some(&yes)],
        1
    )
    .is_err());
}

#[test]
fn col2im_sums_overlapping_blocks() {
    // 1 channel, image [1, 3], block [1, 2], stride 1: two columns overlap at the middle pixel.
    let x = t32(&[1, 2, 2], &[1., 10., 2., 20.]);
    let image = Tensor::from_vec(&[2], vec![1i64, 3]).unwrap();
    let block = Tensor::from_vec(&[2], vec![1i64, 2]).unwrap();
    let op = Op::Col2Im {
        dilations: vec![],
        pads: vec![],
        strides: vec![],
    };
    close(
        &ev(op, &[Some(&x), Some(&image), Some(&block)], 1)[0],
        &[1, 1, 1, 3],
        &[1., 12., 20.],
    );
}

/// A ResNet-50-sized 3x3 convolution, timed when `NN_BENCH` is set.
#[test]
fn conv_speed() {
    if std::env::var("NN_BENCH").is_err() {
        return;
    }
    let x = t32(&[1, 64, 56, 56], &vec![0.5; 64 * 56 * 56]);
    let w = t32(&[64, 64, 3, 3], &vec![0.25; 64 * 64 * 9]);
    let t = std::time::Instant::now();
    for _ in 0..10 {
        ev(
            conv_op(1, &[], &[1, 1, 1, 1], &[]),
            &[Some(&x), Some(&w)],
            1,
        );
    }
    println!("10 convs 64x56x56 3x3: {:?}", t.elapsed());
}
