//! The syntax tree of one text-IR file, with the source position of every part.
//!
//! Parsing is split in two: [`super::parse::parse_syntax`] checks the syntax and builds this tree, then
//! [`super::build::build`] resolves names and creates the graph through the checked API. The
//! split lets the builder tell "used before its definition" from "unknown value", since it
//! sees every definition before it resolves the first use.

use super::lex::Pos;
use crate::types::TensorType;
use std::borrow::Cow;

/// A reference to a value: `%12` (numbered) or `%name` / `%"name"` (named).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ValueKey<'a> {
    /// `%` followed by digits only.
    Numbered(&'a str),
    /// Any other name.
    Named(Cow<'a, str>),
}

impl ValueKey<'_> {
    /// The value as the printer spells it.
    pub(crate) fn display(&self) -> String {
        match self {
            ValueKey::Numbered(d) => format!("%{d}"),
            ValueKey::Named(n) => super::names::input_value_name(n),
        }
    }
}

/// An `@scope` and the annotations (`stage=N`, `recompute`) ending a line.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Trailer<'a> {
    /// The scope, empty when absent.
    pub scope: Cow<'a, str>,
    /// `stage=N`.
    pub stage: Option<u32>,
    /// `recompute`.
    pub recompute: bool,
}

/// `%name: type` in the graph header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InputDecl<'a> {
    /// The input's feed name.
    pub name: Cow<'a, str>,
    /// Where the name is.
    pub pos: Pos,
    /// Declared type.
    pub ty: TensorType,
    /// Scope and annotations.
    pub trailer: Trailer<'a>,
}

/// The value of an attribute.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AttrValue<'a> {
    /// A bare attribute name: a true flag.
    Flag,
    /// `name=word`.
    Word(&'a str),
    /// `name=[w, ...]`.
    List(Vec<&'a str>),
}

/// One attribute inside `{...}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attr<'a> {
    /// Attribute name.
    pub name: &'a str,
    /// Its value.
    pub value: AttrValue<'a>,
    /// Where the name is.
    pub pos: Pos,
}

/// `%k = op(operands) "literal" {attrs} : type @scope annotations`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeDecl<'a> {
    /// The defined value.
    pub result: ValueKey<'a>,
    /// Where the result name is.
    pub pos: Pos,
    /// The op's name.
    pub op: &'a str,
    /// Where the op name is.
    pub op_pos: Pos,
    /// Operands with their positions.
    pub operands: Vec<(ValueKey<'a>, Pos)>,
    /// A string literal after the operands (the name of a `param`).
    pub literal: Option<(Cow<'a, str>, Pos)>,
    /// Attributes.
    pub attrs: Vec<Attr<'a>>,
    /// Declared result type.
    pub ty: TensorType,
    /// Where the type is.
    pub ty_pos: Pos,
    /// Scope and annotations.
    pub trailer: Trailer<'a>,
}

/// `%name: %value` in the `return` line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OutputDecl<'a> {
    /// Output name.
    pub name: Cow<'a, str>,
    /// The value.
    pub value: ValueKey<'a>,
    /// Where the name is.
    pub pos: Pos,
    /// Where the value is.
    pub value_pos: Pos,
}

/// A whole file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GraphDecl<'a> {
    /// The graph's name.
    pub name: Cow<'a, str>,
    /// Graph inputs, in header order.
    pub inputs: Vec<InputDecl<'a>>,
    /// Nodes, in textual order.
    pub nodes: Vec<NodeDecl<'a>>,
    /// Named outputs.
    pub outputs: Vec<OutputDecl<'a>>,
}
