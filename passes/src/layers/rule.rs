//! Which scopes form a layer: [`LayerRule`].
//!
//! Recomputation and pipeline placement work on *layers*, the module instances a user
//! thinks in (`lxmert.encoder.layer.3`), not on single nodes. A rule maps a node's module
//! scope (its scope without pass markers, see [`super::module_scope`]) to the name of its
//! layer, which is always a prefix of the scope. Two kinds of rule exist:
//!
//! - **patterns** ([`LayerRule::from_patterns`]): dotted patterns whose components are
//!   literals, `#` (a number component) or `*` (any one component); the first pattern that
//!   matches the beginning of the scope gives the layer, named by the matched components.
//!   [`LayerRule::lxmert`] lists LXMERT's module instances this way.
//! - **numbered** ([`LayerRule::numbered`]), for any model: the shortest prefix of the
//!   scope that ends in a number component (`enc.layers.7`), otherwise the first two
//!   components (`model.embeddings`).
//!
//! A scope no rule matches (an empty scope, a helper computation at the model's top
//! level) has no layer of its own; [`super::Units`] attaches such nodes to a neighbour.

/// Why a layer pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayerRuleError {
    /// The pattern is empty or has an empty component (`a..b`).
    #[error("layer pattern `{0}` has an empty component")]
    EmptyComponent(String),
}

/// One component of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Exactly this text.
    Literal(String),
    /// Any component made of ASCII digits (`#`).
    Number,
    /// Any one component (`*`).
    Any,
}

impl Part {
    fn matches(&self, component: &str) -> bool {
        match self {
            Part::Literal(s) => s == component,
            Part::Number => is_number(component),
            Part::Any => true,
        }
    }
}

/// True when `component` is a non-empty run of ASCII digits (a module-list index).
pub fn is_number(component: &str) -> bool {
    !component.is_empty() && component.bytes().all(|b| b.is_ascii_digit())
}

/// How module scopes map to layers; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRule {
    /// Patterns tried in order; empty for the numbered rule.
    patterns: Vec<Vec<Part>>,
    /// Use the numbered rule when no pattern matches.
    numbered: bool,
}

impl Default for LayerRule {
    /// The numbered rule.
    fn default() -> Self {
        LayerRule::numbered()
    }
}

impl LayerRule {
    /// The generic rule: the shortest scope prefix ending in a number component, else the
    /// first two components.
    pub fn numbered() -> Self {
        LayerRule {
            patterns: Vec::new(),
            numbered: true,
        }
    }

    /// A rule made of dotted patterns (`#` = a number component, `*` = any component),
    /// tried in order; scopes none of them matches have no layer.
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Self, LayerRuleError> {
        let mut parsed = Vec::with_capacity(patterns.len());
        for p in patterns {
            let p = p.as_ref();
            let mut parts = Vec::new();
            for c in p.split('.') {
                parts.push(match c {
                    "" => return Err(LayerRuleError::EmptyComponent(p.to_string())),
                    "#" => Part::Number,
                    "*" => Part::Any,
                    lit => Part::Literal(lit.to_string()),
                });
            }
            parsed.push(parts);
        }
        Ok(LayerRule {
            patterns: parsed,
            numbered: false,
        })
    }

    /// LXMERT's module instances, in transformers' names: the text embeddings, the visual
    /// projection, each language, object-relationship and cross-modality layer, the pooler,
    /// the answer head and the loss.
    pub fn lxmert() -> Self {
        let patterns = [
            "lxmert.embeddings",
            "lxmert.encoder.visn_fc",
            "lxmert.encoder.layer.#",
            "lxmert.encoder.r_layers.#",
            "lxmert.encoder.x_layers.#",
            "lxmert.pooler",
            "answer_head",
            "loss",
        ];
        LayerRule {
            patterns: patterns
                .iter()
                .map(|p| {
                    p.split('.')
                        .map(|c| match c {
                            "#" => Part::Number,
                            lit => Part::Literal(lit.to_string()),
                        })
                        .collect()
                })
                .collect(),
            numbered: false,
        }
    }

    /// The layer of a module scope (a prefix of it), or `None` when the rule does not
    /// cover the scope.
    pub fn layer_of<'s>(&self, scope: &'s str) -> Option<&'s str> {
        if scope.is_empty() {
            return None;
        }
        for pattern in &self.patterns {
            let mut comps = scope.split('.');
            let ok = pattern
                .iter()
                .all(|part| comps.next().is_some_and(|c| part.matches(c)));
            if ok {
                return Some(prefix(scope, pattern.len()));
            }
        }
        if !self.numbered {
            return None;
        }
        for (i, c) in scope.split('.').enumerate() {
            if i > 0 && is_number(c) {
                return Some(prefix(scope, i + 1));
            }
        }
        Some(prefix(scope, 2))
    }
}

/// The first `n` dot-separated components of `scope` (all of it if it has fewer).
pub fn prefix(scope: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    match scope.match_indices('.').nth(n - 1) {
        Some((i, _)) => &scope[..i],
        None => scope,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lxmert_rule_names_module_instances() {
        let r = LayerRule::lxmert();
        let cases = [
            (
                "lxmert.embeddings.word_embeddings",
                Some("lxmert.embeddings"),
            ),
            (
                "lxmert.encoder.visn_fc.box_fc",
                Some("lxmert.encoder.visn_fc"),
            ),
            (
                "lxmert.encoder.layer.8.attention.self.query",
                Some("lxmert.encoder.layer.8"),
            ),
            (
                "lxmert.encoder.x_layers.4.visual_attention.att",
                Some("lxmert.encoder.x_layers.4"),
            ),
            ("answer_head.logit_fc.3", Some("answer_head")),
            ("loss", Some("loss")),
            // The attention-mask arithmetic at the model's top level has no layer.
            ("lxmert", None),
            ("lxmert.encoder.layer.x", None),
            ("", None),
        ];
        for (scope, want) in cases {
            assert_eq!(r.layer_of(scope), want, "{scope}");
        }
    }

    #[test]
    fn numbered_rule_takes_the_shortest_numbered_prefix() {
        let r = LayerRule::numbered();
        assert_eq!(
            r.layer_of("enc.blocks.12.mlp.fc1"),
            Some("enc.blocks.12"),
            "first number component ends the layer"
        );
        assert_eq!(
            r.layer_of("model.embeddings.word"),
            Some("model.embeddings")
        );
        assert_eq!(r.layer_of("head"), Some("head"));
        // A leading number is a name, not a list index.
        assert_eq!(r.layer_of("0.a.b"), Some("0.a"));
        assert_eq!(r.layer_of(""), None);
    }

    #[test]
    fn patterns_with_wildcards() {
        let r = LayerRule::from_patterns(&["net.*.#", "head"]).unwrap();
        assert_eq!(r.layer_of("net.down.3.conv"), Some("net.down.3"));
        assert_eq!(r.layer_of("net.down.x.conv"), None);
        assert_eq!(r.layer_of("head.fc"), Some("head"));
        assert_eq!(r.layer_of("net"), None, "shorter than the pattern");
        let e = LayerRule::from_patterns(&["a..b"]).unwrap_err();
        assert_eq!(e.to_string(), "layer pattern `a..b` has an empty component");
    }

    #[test]
    fn prefix_counts_components() {
        assert_eq!(prefix("a.b.c", 2), "a.b");
        assert_eq!(prefix("a.b.c", 5), "a.b.c");
        assert_eq!(prefix("a.b.c", 0), "");
        assert!(is_number("17") && !is_number("") && !is_number("1a"));
    }
}
