//! The syntax parser: tokens to a [`GraphDecl`] tree, one statement per line.
//!
//! Grammar (`NL` is an end of line; blank and comment-only lines may appear between
//! statements):
//! ```text
//! file   := "graph" AT "(" [input ("," input)*] ")" "{" NL
//!           (node NL)* "return" [output ("," output)*] NL "}" EOF
//! input  := VALUE ":" type trailer
//! node   := VALUE "=" WORD ["(" [VALUE ("," VALUE)*] ")"] [STRING] ["{" attr ("," attr)* "}"]
//!           ":" type trailer
//! attr   := WORD ["=" (WORD | "[" [WORD ("," WORD)*] "]")]
//! type   := WORD "[" [WORD ("," WORD)*] "]"
//! trailer:= [AT] ["stage" "=" WORD] ["recompute"]
//! output := VALUE ":" VALUE
//! ```
//! Types are checked for size here (see [`check_shape`]) so that no later arithmetic on
//! extents can overflow.

use super::ast::{Attr, AttrValue, GraphDecl, InputDecl, NodeDecl, OutputDecl, Trailer, ValueKey};
use super::lex::{Lexer, Pos, Tok, Token};
use super::ParseError;
use crate::dtype::DType;
use crate::types::TensorType;
use std::borrow::Cow;

/// The largest extent of one axis the parser accepts.
pub(crate) const MAX_EXTENT: u64 = 1 << 32;
/// The largest element count of one tensor the parser accepts.
pub(crate) const MAX_ELEMENTS: u64 = 1 << 48;

/// Checks that every extent is at most [`MAX_EXTENT`] and the element count at most
/// [`MAX_ELEMENTS`]; `what` names the shape in the message.
pub(crate) fn check_shape(shape: &[usize], what: &str, pos: Pos) -> Result<(), ParseError> {
    let mut n: u64 = 1;
    for &d in shape {
        let d64 = u64::try_from(d).unwrap_or(u64::MAX);
        if d64 > MAX_EXTENT {
            return Err(pos.error(format!(
                "{what}: extent {d} exceeds the limit of {MAX_EXTENT}"
            )));
        }
        n = n.saturating_mul(d64);
    }
    if n > MAX_ELEMENTS {
        return Err(pos.error(format!("{what}: more than {MAX_ELEMENTS} elements")));
    }
    Ok(())
}

/// Parses the text into a syntax tree.
pub(crate) fn parse_syntax(text: &str) -> Result<GraphDecl<'_>, ParseError> {
    let mut lexer = Lexer::new(text);
    let first = lexer.next_token()?;
    let mut p = Parser { lexer, tok: first };
    p.file()
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    tok: Token<'a>,
}

impl<'a> Parser<'a> {
    fn advance(&mut self) -> Result<Token<'a>, ParseError> {
        let next = self.lexer.next_token()?;
        Ok(std::mem::replace(&mut self.tok, next))
    }

    fn unexpected<T>(&self, expected: &str) -> Result<T, ParseError> {
        Err(self.tok.pos.error(format!(
            "expected {expected}, found {}",
            self.tok.tok.describe()
        )))
    }

    fn is_punct(&self, c: char) -> bool {
        self.tok.tok == Tok::Punct(c)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.tok.tok, Tok::Word(x) if x == w)
    }

    fn punct(&mut self, c: char) -> Result<Pos, ParseError> {
        if self.is_punct(c) {
            Ok(self.advance()?.pos)
        } else {
            self.unexpected(&format!("`{c}`"))
        }
    }

    fn eat_punct(&mut self, c: char) -> Result<bool, ParseError> {
        let yes = self.is_punct(c);
        if yes {
            self.advance()?;
        }
        Ok(yes)
    }

    fn word(&mut self, expected: &str) -> Result<(&'a str, Pos), ParseError> {
        match self.tok.tok {
            Tok::Word(w) => Ok((w, self.advance()?.pos)),
            _ => self.unexpected(expected),
        }
    }

    /// A `%name` token's text.
    fn name(&mut self, expected: &str) -> Result<(Cow<'a, str>, bool, Pos), ParseError> {
        if !matches!(self.tok.tok, Tok::Value { .. }) {
            return self.unexpected(expected);
        }
        match self.advance()? {
            Token {
                tok: Tok::Value { text, quoted },
                pos,
            } => Ok((text, quoted, pos)),
            t => Err(t.pos.error(format!("expected {expected}"))),
        }
    }

    fn value(&mut self, expected: &str) -> Result<(ValueKey<'a>, Pos), ParseError> {
        let (text, quoted, pos) = self.name(expected)?;
        let key = match text {
            Cow::Borrowed(t) if !quoted && t.bytes().all(|b| b.is_ascii_digit()) => {
                ValueKey::Numbered(t)
            }
            t => ValueKey::Named(t),
        };
        Ok((key, pos))
    }

    fn skip_newlines(&mut self) -> Result<(), ParseError> {
        while self.tok.tok == Tok::Newline {
            self.advance()?;
        }
        Ok(())
    }

    fn end_of_line(&mut self, what: &str) -> Result<(), ParseError> {
        match self.tok.tok {
            Tok::Newline => {
                self.advance()?;
                Ok(())
            }
            _ => Err(self.tok.pos.error(format!(
                "unexpected {} after {what} (expected end of line)",
                self.tok.tok.describe()
            ))),
        }
    }

    fn file(&mut self) -> Result<GraphDecl<'a>, ParseError> {
        self.skip_newlines()?;
        if !self.is_word("graph") {
            return self.unexpected("`graph @name(...)`");
        }
        self.advance()?;
        let name = match self.advance()? {
            Token {
                tok: Tok::At(n), ..
            } => n,
            t => {
                return Err(t.pos.error(format!(
                    "expected the graph name `@name`, found {}",
                    t.tok.describe()
                )))
            }
        };
        self.punct('(')?;
        let mut inputs = Vec::new();
        self.skip_newlines()?;
        if !self.is_punct(')') {
            loop {
                self.skip_newlines()?;
                inputs.push(self.input()?);
                self.skip_newlines()?;
                if !self.eat_punct(',')? {
                    break;
                }
            }
        }
        self.punct(')')?;
        self.punct('{')?;
        self.end_of_line("`{`")?;
        let mut nodes = Vec::new();
        let outputs = loop {
            self.skip_newlines()?;
            match &self.tok.tok {
                Tok::Value { .. } => {
                    nodes.push(self.node()?);
                    self.end_of_line("the node")?;
                }
                Tok::Word("return") => {
                    self.advance()?;
                    let outs = self.outputs()?;
                    self.end_of_line("the return list")?;
                    break outs;
                }
                Tok::Punct('}') | Tok::Eof => {
                    return Err(self
                        .tok
                        .pos
                        .error("missing `return` at the end of the graph"))
                }
                _ => return self.unexpected("a node `%name = ...` or `return`"),
            }
        };
        self.skip_newlines()?;
        self.punct('}')?;
        self.skip_newlines()?;
        if self.tok.tok != Tok::Eof {
            return Err(self.tok.pos.error(format!(
                "trailing {} after the end of the graph",
                self.tok.tok.describe()
            )));
        }
        Ok(GraphDecl {
            name,
            inputs,
            nodes,
            outputs,
        })
    }

    fn input(&mut self) -> Result<InputDecl<'a>, ParseError> {
        let (name, _, pos) = self.name("a graph input `%name: type`")?;
        self.punct(':')?;
        let (ty, _) = self.ty()?;
        let trailer = self.trailer()?;
        Ok(InputDecl {
            name,
            pos,
            ty,
            trailer,
        })
    }

    fn node(&mut self) -> Result<NodeDecl<'a>, ParseError> {
        let (result, pos) = self.value("a value name")?;
        self.punct('=')?;
        let (op, op_pos) = self.word("an op name")?;
        let mut operands = Vec::new();
        if self.eat_punct('(')? && !self.eat_punct(')')? {
            loop {
                operands.push(self.value("an operand `%name`")?);
                if !self.eat_punct(',')? {
                    break;
                }
            }
            self.punct(')')?;
        }
        let literal = if matches!(self.tok.tok, Tok::Str(_)) {
            match self.advance()? {
                Token {
                    tok: Tok::Str(s),
                    pos,
                } => Some((s, pos)),
                _ => None,
            }
        } else {
            None
        };
        let mut attrs = Vec::new();
        if self.eat_punct('{')? && !self.eat_punct('}')? {
            loop {
                attrs.push(self.attr()?);
                if !self.eat_punct(',')? {
                    break;
                }
            }
            self.punct('}')?;
        }
        if !self.is_punct(':') {
            return self.unexpected("`:` and the result type");
        }
        self.advance()?;
        let (ty, ty_pos) = self.ty()?;
        let trailer = self.trailer()?;
        Ok(NodeDecl {
            result,
            pos,
            op,
            op_pos,
            operands,
            literal,
            attrs,
            ty,
            ty_pos,
            trailer,
        })
    }

    fn attr(&mut self) -> Result<Attr<'a>, ParseError> {
        let (name, pos) = self.word("an attribute name")?;
        let value = if self.eat_punct('=')? {
            if self.eat_punct('[')? {
                AttrValue::List(self.word_list("a list element")?)
            } else {
                AttrValue::Word(self.word("an attribute value")?.0)
            }
        } else {
            AttrValue::Flag
        };
        Ok(Attr { name, value, pos })
    }

    /// Words up to and including `]` (the `[` already eaten).
    fn word_list(&mut self, what: &str) -> Result<Vec<&'a str>, ParseError> {
        let mut out = Vec::new();
        if self.eat_punct(']')? {
            return Ok(out);
        }
        loop {
            out.push(self.word(what)?.0);
            if !self.eat_punct(',')? {
                break;
            }
        }
        self.punct(']')?;
        Ok(out)
    }

    fn ty(&mut self) -> Result<(TensorType, Pos), ParseError> {
        let (d, pos) = self.word("a type such as `f32[2,3]`")?;
        let dtype: DType = d.parse().map_err(|e| pos.error(format!("bad type: {e}")))?;
        if !self.is_punct('[') {
            return self.unexpected("`[` and the shape of the type");
        }
        self.advance()?;
        let mut shape = Vec::new();
        if !self.eat_punct(']')? {
            loop {
                let (w, _) = self.word("an extent")?;
                let d = w
                    .parse::<usize>()
                    .map_err(|_| pos.error(format!("bad type: extent `{w}` is not an integer")))?;
                shape.push(d);
                if !self.eat_punct(',')? {
                    break;
                }
            }
            self.punct(']')?;
        }
        check_shape(&shape, "type", pos)?;
        Ok((TensorType::new(dtype, shape), pos))
    }

    fn trailer(&mut self) -> Result<Trailer<'a>, ParseError> {
        let mut t = Trailer::default();
        if matches!(self.tok.tok, Tok::At(_)) {
            if let Tok::At(s) = self.advance()?.tok {
                t.scope = s;
            }
        }
        if self.is_word("stage") {
            self.advance()?;
            self.punct('=')?;
            let (w, pos) = self.word("a stage number")?;
            let n = w
                .parse::<u32>()
                .map_err(|_| pos.error(format!("bad stage `{w}`: expected an integer")))?;
            t.stage = Some(n);
        }
        if self.is_word("recompute") {
            self.advance()?;
            t.recompute = true;
        }
        Ok(t)
    }

    fn outputs(&mut self) -> Result<Vec<OutputDecl<'a>>, ParseError> {
        let mut out = Vec::new();
        if self.tok.tok == Tok::Newline {
            return Ok(out);
        }
        loop {
            let (name, _, pos) = self.name("an output `%name: %value`")?;
            self.punct(':')?;
            let (value, value_pos) = self.value("the output's value `%name`")?;
            out.push(OutputDecl {
                name,
                value,
                pos,
                value_pos,
            });
            if !self.eat_punct(',')? {
                return Ok(out);
            }
        }
    }
}
