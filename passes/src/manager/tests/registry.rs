//! Pipeline strings and pass creation.

use crate::manager::*;

#[test]
fn parses_names_with_spaces() {
    assert_eq!(
        parse_pipeline(" loss , autodiff,dce ").unwrap(),
        ["loss", "autodiff", "dce"]
    );
    assert!(parse_pipeline("").unwrap().is_empty());
    assert!(parse_pipeline("  ").unwrap().is_empty());
}

#[test]
fn empty_items_are_errors_with_their_position() {
    let e = parse_pipeline("loss,,autodiff").unwrap_err();
    assert_eq!(
        e.to_string(),
        "empty pass name at position 2 of pipeline `loss,,autodiff`"
    );
    let e = parse_pipeline("loss,").unwrap_err();
    assert_eq!(
        e,
        PipelineParseError::EmptyItem {
            position: 2,
            spec: "loss,".into()
        }
    );
}

#[test]
fn unknown_names_list_the_known_passes_and_suggest() {
    let e = parse_pipeline("loss,autodif").unwrap_err().to_string();
    assert!(
        e.starts_with("unknown pass `autodif`; did you mean `autodiff`?"),
        "{e}"
    );
    for name in PASSES.iter().map(|p| p.name) {
        assert!(e.contains(name), "{e} should list {name}");
    }
    let e = parse_pipeline("frobnicate").unwrap_err().to_string();
    assert!(!e.contains("did you mean"), "{e}");
    assert!(
        e.contains(
            "(known passes: mixed-precision, loss, autodiff, fold-casts, dce, recompute, pipeline)"
        ),
        "{e}"
    );
}

#[test]
fn every_listed_pass_can_be_built_under_its_name() {
    let opts = PassOptions::default();
    for info in PASSES {
        let pass = create_pass(info.name, &opts).unwrap();
        assert_eq!(pass.name(), info.name);
    }
    let pm = build_pipeline(&["loss", "autodiff"], &opts).unwrap();
    assert_eq!(pm.pipeline_string(), "loss,autodiff");
    assert!(build_pipeline(&["los"], &opts).is_err());
}

#[test]
fn default_pipelines() {
    assert!(default_pipeline(false, false).is_empty());
    assert_eq!(default_pipeline(true, false), ["loss", "autodiff"]);
    assert_eq!(default_pipeline(false, true), ["mixed-precision"]);
    assert_eq!(
        default_pipeline(true, true),
        ["mixed-precision", "loss", "autodiff"]
    );
}
