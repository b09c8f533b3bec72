//! Placing a model's layers on a replica's IPUs from `layers_per_ipu`.
//!
//! This is optimum-graphcore's `_expand_layers_per_ipu_wildcard`
//! (`optimum/graphcore/modeling_utils.py`), rule for rule:
//! - with one IPU per replica, every layer goes on it (the list is not consulted);
//! - `[-1]`, or `-1` on every IPU, splits the layers evenly, the remainder going to the last
//!   IPU (`[-1, -1]` with 9 layers gives `[4, 5]`);
//! - `-1` mixed with counts (one entry per IPU) shares what the counts leave among the `-1`
//!   entries the same way, the remainder to the last of them;
//! - otherwise the list must have one entry per IPU and sum to the model's layer count.
//!
//! It is a separate step from loading because only the model knows its layer count: the seed
//! run's `layers_per_ipu: [1]` is a legal file, and optimum's LXMERT ignored it.

use super::IpuConfig;
use crate::IpuConfigError;

impl IpuConfig {
    /// Layers on each IPU of a training replica for a model of `num_layers` layers.
    pub fn layers_per_ipu_for(&self, num_layers: usize) -> Result<Vec<usize>, IpuConfigError> {
        expand(
            &self.layers_per_ipu,
            self.ipus_per_replica,
            num_layers,
            ["layers_per_ipu", "ipus_per_replica"],
        )
    }

    /// Layers on each IPU of an inference replica for a model of `num_layers` layers.
    pub fn inference_layers_per_ipu_for(
        &self,
        num_layers: usize,
    ) -> Result<Vec<usize>, IpuConfigError> {
        expand(
            &self.inference_layers_per_ipu,
            self.inference_ipus_per_replica,
            num_layers,
            ["inference_layers_per_ipu", "inference_ipus_per_replica"],
        )
    }
}

/// `n` layers over `parts` places, evenly, the remainder on the last place.
fn even(n: usize, parts: usize) -> Vec<usize> {
    let mut out = vec![n / parts; parts];
    if let Some(last) = out.last_mut() {
        *last += n % parts;
    }
    out
}

fn expand(
    layers: &[i64],
    ipus: usize,
    num_layers: usize,
    keys: [&str; 2],
) -> Result<Vec<usize>, IpuConfigError> {
    let fail = |reason: String| IpuConfigError::LayerPlacement {
        keys: keys.iter().map(|k| k.to_string()).collect(),
        num_layers,
        reason,
    };
    if ipus == 0 {
        return Err(fail(format!("`{}` is 0", keys[1])));
    }
    if let Some(bad) = layers.iter().find(|&&n| n < -1) {
        return Err(fail(format!("entry {bad} is below -1")));
    }
    if ipus == 1 {
        return Ok(vec![num_layers]);
    }
    let wildcards: Vec<usize> = (0..layers.len()).filter(|&i| layers[i] == -1).collect();
    let all_wild = wildcards.len() == layers.len();
    if all_wild && (layers.len() == 1 || layers.len() == ipus) {
        return Ok(even(num_layers, ipus));
    }
    if layers.len() != ipus {
        return Err(fail(format!(
            "{:?} has {} entries for {ipus} IPUs",
            layers,
            layers.len()
        )));
    }
    // Entries are ≥ -1, so every non-wildcard converts to usize.
    let fixed: Vec<usize> = layers
        .iter()
        .map(|&n| usize::try_from(n).unwrap_or(0))
        .collect();
    let placed = fixed
        .iter()
        .try_fold(0usize, |acc, &n| acc.checked_add(n))
        .ok_or_else(|| fail(format!("the entries of {layers:?} overflow when summed")))?;
    if wildcards.is_empty() {
        if placed != num_layers {
            return Err(fail(format!(
                "{layers:?} places {placed} layers, but the model has {num_layers}"
            )));
        }
        return Ok(fixed);
    }
    let rest = num_layers.checked_sub(placed).ok_or_else(|| {
        fail(format!(
            "the counts of {layers:?} already place {placed} layers, \
             more than the model's {num_layers}"
        ))
    })?;
    let mut out = fixed;
    for (&i, share) in wildcards.iter().zip(even(rest, wildcards.len())) {
        out[i] = share;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(layers: &[i64], ipus: usize) -> IpuConfig {
        IpuConfig {
            layers_per_ipu: layers.to_vec(),
            ipus_per_replica: ipus,
            ..IpuConfig::default()
        }
    }

    #[test]
    fn fill_splits_evenly_with_the_remainder_last() {
        // optimum's own docstring example: [-1, -1] with 9 layers → [4, 5].
        assert_eq!(cfg(&[-1, -1], 2).layers_per_ipu_for(9).unwrap(), vec![4, 5]);
        assert_eq!(
            cfg(&[-1], 4).layers_per_ipu_for(19).unwrap(),
            vec![4, 4, 4, 7]
        );
        assert_eq!(cfg(&[-1; 4], 4).layers_per_ipu_for(8).unwrap(), vec![2; 4]);
        // Fewer layers than IPUs: the first IPUs get none, as in optimum.
        assert_eq!(cfg(&[-1], 3).layers_per_ipu_for(2).unwrap(), vec![0, 0, 2]);
    }

    #[test]
    fn fill_mixed_with_counts() {
        // optimum's docstring: [1, 2, -1, -1]; 19 layers → the two -1 share 16 → 8 and 8.
        assert_eq!(
            cfg(&[1, 2, -1, -1], 4).layers_per_ipu_for(19).unwrap(),
            vec![1, 2, 8, 8]
        );
        assert_eq!(
            cfg(&[-1, 3, -1], 3).layers_per_ipu_for(10).unwrap(),
            vec![3, 3, 4]
        );
        let e = cfg(&[5, 6, -1], 3).layers_per_ipu_for(10).unwrap_err();
        assert!(e.to_string().contains("already place 11"), "{e}");
    }

    #[test]
    fn explicit_counts_must_sum_to_the_model() {
        assert_eq!(
            cfg(&[6, 5, 5, 7], 4).layers_per_ipu_for(23).unwrap(),
            vec![6, 5, 5, 7]
        );
        let e = cfg(&[6, 5, 5, 7], 4).layers_per_ipu_for(24).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("`layers_per_ipu`") && msg.contains("places 23"),
            "{msg}"
        );
    }

    #[test]
    fn a_single_count_for_several_ipus_is_rejected_for_a_model() {
        // The seed file: [1] on 4 IPUs loads, but cannot place LXMERT's 19 layers.
        let e = cfg(&[1], 4).layers_per_ipu_for(19).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("`layers_per_ipu`, `ipus_per_replica`") && msg.contains("1 entries for 4"),
            "{msg}"
        );
    }

    #[test]
    fn one_ipu_takes_everything() {
        assert_eq!(cfg(&[3, 4], 1).layers_per_ipu_for(12).unwrap(), vec![12]);
    }

    #[test]
    fn inference_uses_its_own_keys() {
        let c = IpuConfig {
            inference_layers_per_ipu: vec![2, 2],
            inference_ipus_per_replica: 2,
            ..IpuConfig::default()
        };
        assert_eq!(c.inference_layers_per_ipu_for(4).unwrap(), vec![2, 2]);
        let e = c.inference_layers_per_ipu_for(5).unwrap_err();
        assert!(e.to_string().contains("`inference_layers_per_ipu`"), "{e}");
    }

    #[test]
    fn zero_ipus_or_bad_entries_are_errors() {
        assert!(cfg(&[-1], 0).layers_per_ipu_for(3).is_err());
        assert!(cfg(&[-2, 1], 2).layers_per_ipu_for(3).is_err());
    }
}
