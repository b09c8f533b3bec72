//! The lexer of the text IR: turns source text into tokens with 1-based line and column.
//!
//! Tokens are produced on demand, so errors come out in textual order. Newlines are tokens
//! (the format has one statement per line); blanks and `//` comments are skipped. A `%` or
//! `@` sigil is lexed together with the bare word or quoted string that follows it.

use super::names::is_word_char;
use super::ParseError;
use std::borrow::Cow;

/// A position in the source: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Pos {
    /// An error at this position.
    pub(crate) fn error(self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }
}

/// What a token is. Words and escape-free names borrow from the source text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok<'a> {
    /// `%name`, `%12` or `%"quoted"`; `quoted` tells the last form apart.
    Value { text: Cow<'a, str>, quoted: bool },
    /// `@name` or `@"quoted"`.
    At(Cow<'a, str>),
    /// A double-quoted string literal (escapes resolved).
    Str(Cow<'a, str>),
    /// A bare word: identifier, number or dotted path.
    Word(&'a str),
    /// One of `( ) { } [ ] , : =`.
    Punct(char),
    /// End of a line.
    Newline,
    /// End of the input.
    Eof,
}

impl Tok<'_> {
    /// How the token is named in "expected X, found Y" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Value {
                text,
                quoted: false,
            } => format!("`%{text}`"),
            Tok::Value { text, quoted: true } => format!("`%{text:?}`"),
            Tok::At(s) => format!("`@{s}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Word(w) => format!("`{w}`"),
            Tok::Punct(c) => format!("`{c}`"),
            Tok::Newline => "end of line".to_string(),
            Tok::Eof => "end of input".to_string(),
        }
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token<'a> {
    /// The token.
    pub tok: Tok<'a>,
    /// Its first character.
    pub pos: Pos,
}

/// An on-demand tokenizer over one source text.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    at: usize,
    line: usize,
    column: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `text`.
    pub(crate) fn new(text: &'a str) -> Self {
        Lexer {
            src: text,
            at: 0,
            line: 1,
            column: 1,
        }
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.at..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        match self.src.as_bytes().get(self.at) {
            Some(&b) if b.is_ascii() => Some(char::from(b)),
            Some(_) => self.rest().chars().next(),
            None => None,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    /// The next token, or an error for a character or literal the format does not have.
    pub(crate) fn next_token(&mut self) -> Result<Token<'a>, ParseError> {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r') => {
                    // Blanks are ASCII: one byte, one column each.
                    self.at += 1;
                    self.column += 1;
                }
                Some('/') => {
                    let pos = self.pos();
                    self.bump();
                    if self.peek() != Some('/') {
                        return Err(pos.error("unexpected `/` (comments start with `//`)"));
                    }
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.bump();
                    }
                }
                _ => break,
            }
        }
        let pos = self.pos();
        let tok = match self.peek() {
            None => Tok::Eof,
            Some('\n') => {
                self.bump();
                Tok::Newline
            }
            Some(c @ ('(' | ')' | '{' | '}' | '[' | ']' | ',' | ':' | '=')) => {
                self.at += 1;
                self.column += 1;
                Tok::Punct(c)
            }
            Some('"') => Tok::Str(self.string()?),
            Some('%') => {
                self.bump();
                match self.peek() {
                    Some('"') => Tok::Value {
                        text: self.string()?,
                        quoted: true,
                    },
                    Some(c) if is_word_char(c) => Tok::Value {
                        text: Cow::Borrowed(self.word()),
                        quoted: false,
                    },
                    _ => return Err(pos.error("expected a value name after `%`")),
                }
            }
            Some('@') => {
                self.bump();
                match self.peek() {
                    Some('"') => Tok::At(self.string()?),
                    Some(c) if is_word_char(c) => Tok::At(Cow::Borrowed(self.word())),
                    _ => return Err(pos.error("expected a name after `@`")),
                }
            }
            Some(c) if is_word_char(c) => Tok::Word(self.word()),
            Some(c) => return Err(pos.error(format!("unexpected character {c:?}"))),
        };
        Ok(Token { tok, pos })
    }

    /// A run of word characters (all ASCII, so bytes = columns).
    fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let n = rest
            .bytes()
            .position(|b| !is_word_char(char::from(b)))
            .unwrap_or(rest.len());
        self.at += n;
        self.column += n;
        rest.get(..n).unwrap_or("")
    }

    /// A string literal starting at the current `"`; borrowed when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, ParseError> {
        let start = self.pos();
        self.bump();
        let body = self.rest();
        let plain = body
            .find(['"', '\\', '\n'])
            .filter(|&i| body.get(i..).is_some_and(|r| r.starts_with('"')));
        if let Some(end) = plain {
            let s = body.get(..end).unwrap_or("");
            self.column += s.chars().count() + 1;
            self.at += end + 1;
            return Ok(Cow::Borrowed(s));
        }
        let mut s = String::new();
        loop {
            let here = self.pos();
            match self.bump() {
                None | Some('\n') => return Err(start.error("unterminated string literal")),
                Some('"') => return Ok(Cow::Owned(s)),
                Some('\\') => s.push(self.escape(here)?),
                Some(c) => s.push(c),
            }
        }
    }

    fn escape(&mut self, at: Pos) -> Result<char, ParseError> {
        match self.bump() {
            Some('"') => Ok('"'),
            Some('\\') => Ok('\\'),
            Some('n') => Ok('\n'),
            Some('r') => Ok('\r'),
            Some('t') => Ok('\t'),
            Some('u') => {
                if self.bump() != Some('{') {
                    return Err(at.error("bad `\\u` escape: expected `\\u{hex}`"));
                }
                let mut hex = String::new();
                loop {
                    match self.bump() {
                        Some('}') => break,
                        Some(c) if c.is_ascii_hexdigit() && hex.len() < 6 => hex.push(c),
                        _ => return Err(at.error("bad `\\u` escape: expected `\\u{hex}`")),
                    }
                }
                u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| at.error(format!("`\\u{{{hex}}}` is not a character")))
            }
            Some(c) => Err(at.error(format!("unknown escape `\\{c}` in string"))),
            None => Err(at.error("unterminated string literal")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok<'_>> {
        let mut lx = Lexer::new(text);
        let mut out = Vec::new();
        loop {
            let t = lx.next_token().unwrap();
            if t.tok == Tok::Eof {
                return out;
            }
            out.push(t.tok);
        }
    }

    #[test]
    fn tokens_and_positions() {
        let w = Tok::Word;
        assert_eq!(
            toks("%3 = full {value=-1e-12} : f32[] @a.b // c\n"),
            vec![
                Tok::Value {
                    text: "3".into(),
                    quoted: false
                },
                Tok::Punct('='),
                w("full"),
                Tok::Punct('{'),
                w("value"),
                Tok::Punct('='),
                w("-1e-12"),
                Tok::Punct('}'),
                Tok::Punct(':'),
                w("f32"),
                Tok::Punct('['),
                Tok::Punct(']'),
                Tok::At("a.b".into()),
                Tok::Newline,
            ]
        );
        let mut lx = Lexer::new("a\n  %\"x y\"");
        lx.next_token().unwrap();
        lx.next_token().unwrap();
        let t = lx.next_token().unwrap();
        assert_eq!(t.pos, Pos { line: 2, column: 3 });
        assert_eq!(
            t.tok,
            Tok::Value {
                text: "x y".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            toks(r#""a\"b\\c\n\u{e9}""#),
            vec![Tok::Str("a\"b\\c\né".into())]
        );
    }

    #[test]
    fn errors_have_positions() {
        let err = |s: &str| {
            let mut lx = Lexer::new(s);
            loop {
                match lx.next_token() {
                    Ok(t) if t.tok == Tok::Eof => panic!("no error in {s:?}"),
                    Ok(_) => {}
                    Err(e) => return (e.line, e.column, e.message),
                }
            }
        };
        assert_eq!(err("a\n  \"abc").0, 2);
        assert_eq!(err("a\n  \"abc").1, 3);
        assert!(err("x $").2.contains("unexpected character '$'"));
        assert!(err("% x").2.contains("after `%`"));
        assert!(err(r#""\q""#).2.contains("unknown escape"));
        assert!(err(r#""\u{110000}""#).2.contains("not a character"));
        assert!(err("a / b").2.contains("`//`"));
    }
}
