//! The sharded optimizer graph (replicated tensor sharding's row slices) against the
//! unsharded one: every shard's results are the unsharded results' rows, bit for bit.

use super::*;

/// Sharded state inputs: rows [`shard_rows`] of each whole moment.
fn sharded_inputs(ps: &[OptimParam], s: &State, shards: usize) -> HashMap<String, Tensor> {
    let mut inputs = HashMap::from([
        ("step".to_string(), Tensor::scalar_f32(3.0)),
        ("loss_scale".to_string(), Tensor::scalar_f32(4.0)),
    ]);
    for (i, p) in ps.iter().enumerate() {
        inputs.insert(
            format!("grad_sum.{}", p.name),
            Tensor::from_f32(p.ty.shape.clone(), s.grad_sum[i].clone()).unwrap(),
        );
        let rows = p.ty.shape[0];
        let row: usize = p.ty.shape[1..].iter().product();
        for (kind, whole) in [("adam_m", &s.m[i]), ("adam_v", &s.v[i])] {
            for k in 0..shards {
                let (r0, r1) = shard_rows(rows, shards, k);
                let mut shape = p.ty.shape.to_vec();
                shape[0] = r1 - r0;
                let part = whole[r0 * row..r1 * row].to_vec();
                inputs.insert(
                    shard_name(&format!("{kind}.{}", p.name), k),
                    Tensor::from_f32(shape, part).unwrap(),
                );
            }
        }
    }
    inputs
}

#[test]
fn shards_give_the_unsharded_rows_exactly() {
    let ps = vec![
        OptimParam {
            name: "table".into(),
            ty: TensorType::new(DType::F32, vec![7, 3]),
            weight_decay: true,
        },
        OptimParam {
            name: "bias".into(),
            ty: TensorType::new(DType::F32, vec![5]),
            weight_decay: false,
        },
    ];
    let c = AdamWConfig {
        max_grad_norm: Some(0.5),
        ..cfg()
    };
    let s = state(&ps, 4.0, 11);
    let whole = {
        let g = build_optimizer_graph(&ps, &c).unwrap();
        let mut inputs = sharded_inputs(&ps, &s, 1);
        for (i, p) in ps.iter().enumerate() {
            for (kind, v) in [("adam_m", &s.m[i]), ("adam_v", &s.v[i])] {
                let t = Tensor::from_f32(p.ty.shape.clone(), v.clone()).unwrap();
                inputs.insert(format!("{kind}.{}", p.name), t);
            }
        }
        let params = ps
            .iter()
            .zip(&s.w)
            .map(|(p, w)| {
                let t = Tensor::from_f32(p.ty.shape.clone(), w.clone()).unwrap();
                (p.name.clone(), t)
            })
            .collect::<HashMap<_, _>>();
        (evaluate(&g, &inputs, &params).unwrap(), params)
    };
    let (want, params) = whole;
    let shards = 3;
    let g = build_optimizer_graph_sharded(&ps, &c, &OptimPrecision::default(), shards).unwrap();
    verify(&g).unwrap();
    let got = evaluate(&g, &sharded_inputs(&ps, &s, shards), &params).unwrap();
    for p in &ps {
        let row: usize = p.ty.shape[1..].iter().product();
        for kind in ["param", "adam_m", "adam_v"] {
            let base = format!("{kind}.{}", p.name);
            let whole = want[&base].to_f32_vec();
            assert!(!got.contains_key(&base), "{base} is sharded");
            for k in 0..shards {
                let (r0, r1) = shard_rows(p.ty.shape[0], shards, k);
                let part = got[&shard_name(&base, k)].to_f32_vec();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&part), bits(&whole[r0 * row..r1 * row]), "{base}@{k}");
            }
        }
    }
    // The norm still covers every gradient whole.
    assert_eq!(
        want["grad_norm"].to_f32_vec(),
        got["grad_norm"].to_f32_vec()
    );
    // A weight with fewer rows than shards stays whole.
    let few = build_optimizer_graph_sharded(&ps, &c, &OptimPrecision::default(), 6).unwrap();
    let names: Vec<&str> = few.outputs().iter().map(|o| o.name.as_str()).collect();
    assert!(names.contains(&"param.table@5") && names.contains(&"param.bias"));
    let more = build_optimizer_graph_sharded(&ps, &c, &OptimPrecision::default(), 8).unwrap();
    let names: Vec<&str> = more.outputs().iter().map(|o| o.name.as_str()).collect();
    assert!(names.contains(&"param.table") && names.contains(&"param.bias"));
}

#[test]
fn shard_rows_cover_every_row_once() {
    for rows in [1usize, 5, 7, 768, 30522] {
        for shards in [1usize, 2, 3, 4] {
            let mut next = 0;
            for k in 0..shards {
                let (a, b) = shard_rows(rows, shards, k);
                assert_eq!(a, next);
                next = b;
            }
            assert_eq!(next, rows);
        }
    }
    assert_eq!(
        split_shard_name("adam_m.x.weight@12"),
        Some(("adam_m.x.weight", 12))
    );
    assert_eq!(split_shard_name("adam_m.x.weight"), None);
    assert_eq!(shard_name("param.w", 3), "param.w@3");
}
