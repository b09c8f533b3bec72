//! A tiny well-formedness checker for the SVGs: balanced, properly nested tags with one root,
//! quoted attributes, and no raw `<` or unknown `&` entities in text.

/// Checks `doc`; returns the root element's name.
pub(crate) fn check_well_formed(doc: &str) -> Result<String, String> {
    let mut stack: Vec<String> = Vec::new();
    let mut root = None;
    let mut rest = doc;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open])?;
        let after = &rest[open + 1..];
        let close = after.find('>').ok_or("unterminated tag")?;
        let tag = &after[..close];
        rest = &after[close + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack
                .pop()
                .ok_or(format!("</{name}> without an open tag"))?;
            if top != name.trim() {
                return Err(format!("</{name}> closes <{top}>"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name: String = body.chars().take_while(|c| !c.is_whitespace()).collect();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
        {
            return Err(format!("bad tag name in <{tag}>"));
        }
        if !body.matches('"').count().is_multiple_of(2) {
            return Err(format!("unbalanced quotes in <{tag}>"));
        }
        check_text(body)?;
        if stack.is_empty() {
            if root.is_some() {
                return Err(format!("second root element <{name}>"));
            }
            root = Some(name.clone());
        }
        if !self_closing {
            stack.push(name);
        }
    }
    check_text(rest)?;
    if let Some(open) = stack.pop() {
        return Err(format!("<{open}> never closed"));
    }
    root.ok_or_else(|| "no root element".to_string())
}

fn check_text(t: &str) -> Result<(), String> {
    if t.contains('<') {
        return Err(format!("raw < in {t:?}"));
    }
    let mut parts = t.split('&');
    parts.next();
    for p in parts {
        let ent = p.split(';').next().unwrap_or("");
        if !p.contains(';') || !matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos") {
            return Err(format!("bad entity in {t:?}"));
        }
    }
    Ok(())
}

#[test]
fn the_checker_rejects_malformed_documents() {
    assert_eq!(
        check_well_formed("<svg><g/><text>a &amp; b</text></svg>").unwrap(),
        "svg"
    );
    assert!(check_well_formed("<svg><g></svg>").is_err());
    assert!(check_well_formed("<svg></svg><svg></svg>").is_err());
    assert!(check_well_formed("<svg><text>a & b</text></svg>").is_err());
    assert!(check_well_formed("<svg x=\"1></svg>").is_err());
    assert!(check_well_formed("<svg>").is_err());
}
