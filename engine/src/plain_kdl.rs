//! A fast reader for plain KDL: the subset pipelines are written in (identifiers, quoted
//! strings without escapes, decimal numbers, `#true`/`#false`/`#null`, properties, children
//! blocks, `;`, `\` line continuations; comments are already cut by [`crate::prescan`]). It builds the same `kdl` document the crate's parser would, spans included,
//! in a single pass and about two allocations per node, where the crate spends ~1 µs and ten
//! allocations per byte (it builds an error context for every character it tries): 10 MB of
//! stages took 12 s of CPU.
//!
//! It never decides what is valid: on anything outside the subset (escapes, raw or
//! multi-line strings, type annotations, slashdash, hex numbers, `#inf`, non-ASCII outside
//! strings, `\r`, a syntax error) it returns `None` and the `kdl` crate parses the text, with
//! its own errors. `tests::agrees_with_the_kdl_crate` holds the two to the same documents.

use kdl::{KdlDocument, KdlEntry, KdlIdentifier, KdlNode, KdlValue};

/// Children blocks nested deeper than this are left to the crate.
const MAX_DEPTH: usize = 64;

/// The document `text` is, if it is plain KDL; `None` means: ask the `kdl` crate.
pub fn read(text: &str) -> Option<KdlDocument> {
    let mut r = Reader {
        text,
        b: text.as_bytes(),
        i: 0,
    };
    let nodes = r.nodes(0)?;
    (r.i == r.b.len()).then(|| document(nodes, 0..text.len()))
}

fn document(nodes: Vec<KdlNode>, span: std::ops::Range<usize>) -> KdlDocument {
    let mut doc = KdlDocument::new();
    *doc.nodes_mut() = nodes;
    doc.set_span(span);
    doc
}

struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

/// What a token is, before it is known to be a name or a value.
enum Token {
    Ident(String),
    Quoted(String),
    Value(KdlValue),
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Spaces, tabs and line continuations (`\` then spaces and a newline).
    fn spaces(&mut self) -> usize {
        let start = self.i;
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.i += 1,
                Some(b'\\') => {
                    let mut j = self.i + 1;
                    while matches!(self.b.get(j), Some(b' ' | b'\t')) {
                        j += 1;
                    }
                    if self.b.get(j) != Some(&b'\n') {
                        break;
                    }
                    self.i = j + 1;
                }
                _ => break,
            }
        }
        self.i - start
    }

    /// Nodes up to the end of the text (depth 0) or up to a `}` (left for the caller).
    fn nodes(&mut self, depth: usize) -> Option<Vec<KdlNode>> {
        let mut nodes = Vec::new();
        loop {
            self.spaces();
            match self.peek() {
                None => return (depth == 0).then_some(nodes),
                Some(b'\n') => self.i += 1,
                Some(b'}') => return (depth > 0).then_some(nodes),
                Some(_) => nodes.push(self.node(depth)?),
            }
        }
    }

    /// One node, its span from its name to the spaces before what ends it (a newline, `;`,
    /// `}` or the end of the text); a `;` or newline that ends it is consumed.
    fn node(&mut self, depth: usize) -> Option<KdlNode> {
        let start = self.i;
        let name = match self.token()? {
            Token::Ident(s) | Token::Quoted(s) => s,
            Token::Value(_) => return None,
        };
        let mut ident = KdlIdentifier::from(name);
        ident.set_span(start..self.i);
        let mut node = KdlNode::new(ident);
        loop {
            let gap = self.spaces();
            match self.peek() {
                None | Some(b'}') => break,
                Some(b'\n' | b';') => {
                    node.set_span(start..self.i);
                    self.i += 1;
                    return Some(node);
                }
                Some(b'{') if gap > 0 && depth < MAX_DEPTH => {
                    let open = self.i;
                    self.i += 1;
                    let children = self.nodes(depth + 1)?;
                    self.i += 1; // the `}` that `nodes` stopped at
                    node.set_children(document(children, open..self.i));
                    self.spaces();
                    if !matches!(self.peek(), None | Some(b'\n' | b';' | b'}')) {
                        return None;
                    }
                    break;
                }
                Some(_) if gap > 0 => {
                    let entry = self.entry()?;
                    node.push(entry);
                }
                Some(_) => return None,
            }
        }
        node.set_span(start..self.i);
        if matches!(self.peek(), Some(b'\n' | b';')) {
            self.i += 1;
        }
        Some(node)
    }

    /// An argument or a `key=value` property.
    fn entry(&mut self) -> Option<KdlEntry> {
        let start = self.i;
        let first = self.token()?;
        let mut entry = if self.peek() == Some(b'=') {
            let key_end = self.i;
            let key = match first {
                Token::Ident(s) | Token::Quoted(s) => s,
                Token::Value(_) => return None,
            };
            self.i += 1;
            let value = match self.token()? {
                Token::Value(v) => v,
                Token::Quoted(s) | Token::Ident(s) => KdlValue::String(s),
            };
            let mut key = KdlIdentifier::from(key);
            key.set_span(start..key_end);
            KdlEntry::new_prop(key, value)
        } else {
            KdlEntry::new(match first {
                Token::Value(v) => v,
                Token::Quoted(s) | Token::Ident(s) => KdlValue::String(s),
            })
        };
        entry.set_span(start..self.i);
        Some(entry)
    }

    /// A string, identifier, number or keyword, followed by a delimiter.
    fn token(&mut self) -> Option<Token> {
        let start = self.i;
        let token = match self.peek()? {
            b'"' => Token::Quoted(self.quoted()?),
            b'#' => {
                let end = self.word_end();
                self.i = end;
                Token::Value(match &self.text[start..end] {
                    "#true" => KdlValue::Bool(true),
                    "#false" => KdlValue::Bool(false),
                    "#null" => KdlValue::Null,
                    _ => return None,
                })
            }
            c if c.is_ascii_digit() => Token::Value(self.number()?),
            b'-' | b'+' if self.b.get(start + 1).is_some_and(u8::is_ascii_digit) => {
                Token::Value(self.number()?)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let end = self.word_end();
                let word = &self.text[start..end];
                if matches!(word, "true" | "false" | "null" | "inf" | "nan") {
                    return None;
                }
                self.i = end;
                Token::Ident(word.to_string())
            }
            _ => return None,
        };
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\n' | b';' | b'}' | b'=') => Some(token),
            _ => None,
        }
    }

    /// Where a run of identifier characters (ASCII letters, digits, `_`, `-`, `.`) ends.
    fn word_end(&self) -> usize {
        let mut end = self.i + 1;
        while self
            .b
            .get(end)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        {
            end += 1;
        }
        end
    }

    /// `"..."` without escapes, newlines or other control or non-ASCII characters (which
    /// KDL restricts in ways the crate knows), and not `"""`.
    fn quoted(&mut self) -> Option<String> {
        let start = self.i + 1;
        let len = self.b[start..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || !(b' '..=b'~').contains(&c))?;
        let end = start + len;
        if self.b[end] != b'"' || (len == 0 && self.b.get(end + 1) == Some(&b'"')) {
            return None;
        }
        self.i = end + 1;
        Some(self.text[start..end].to_string())
    }

    /// A decimal number: `[+-]digits[_digits]` optionally with `.digits` and an exponent.
    fn number(&mut self) -> Option<KdlValue> {
        let start = self.i;
        let mut i = start;
        if matches!(self.b[i], b'+' | b'-') {
            i += 1;
        }
        let digits = |i: &mut usize| {
            let from = *i;
            if !self.b.get(*i).is_some_and(u8::is_ascii_digit) {
                return false;
            }
            while self
                .b
                .get(*i)
                .is_some_and(|c| c.is_ascii_digit() || *c == b'_')
            {
                *i += 1;
            }
            *i > from
        };
        if !digits(&mut i) {
            return None;
        }
        let mut float = false;
        if self.b.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
            float = true;
        }
        if matches!(self.b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(self.b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
            float = true;
        }
        self.i = i;
        let clean: String = self.text[start..i].chars().filter(|&c| c != '_').collect();
        if float {
            let x: f64 = clean.parse().ok()?;
            x.is_finite().then_some(KdlValue::Float(x))
        } else {
            clean.parse::<i128>().ok().map(KdlValue::Integer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the pipeline reads of a document: names, entries, values, spans.
    fn same(a: &KdlDocument, b: &KdlDocument, text: &str) {
        assert_eq!(a.nodes().len(), b.nodes().len(), "{text:?}");
        for (x, y) in a.nodes().iter().zip(b.nodes()) {
            assert_eq!(x.name().value(), y.name().value(), "{text:?}");
            assert_eq!(x.name().span(), y.name().span(), "name span in {text:?}");
            assert_eq!(
                x.span(),
                y.span(),
                "span of {} in {text:?}",
                x.name().value()
            );
            assert_eq!(x.entries().len(), y.entries().len(), "{text:?}");
            for (e, f) in x.entries().iter().zip(y.entries()) {
                assert_eq!(
                    e.name().map(|n| n.value()),
                    f.name().map(|n| n.value()),
                    "{text:?}"
                );
                assert_eq!(e.value(), f.value(), "{text:?}");
                assert_eq!(e.span(), f.span(), "entry span in {text:?}");
            }
            match (x.children(), y.children()) {
                (Some(c), Some(d)) => same(c, d, text),
                (None, None) => {}
                _ => panic!("children differ in {text:?}"),
            }
        }
    }

    /// What the fast reader accepts, the crate parses to the same document; what it
    /// declines, it declines (the crate decides).
    fn check(text: &str) -> bool {
        let kdl = KdlDocument::parse(text);
        match read(text) {
            Some(fast) => {
                let kdl = kdl.unwrap_or_else(|e| panic!("kdl rejects {text:?}: {e}"));
                same(&fast, &kdl, text);
                true
            }
            None => false,
        }
    }

    #[test]
    fn agrees_with_the_kdl_crate() {
        let plain = [
            "pipeline \"q\"\nstage \"a\" {\n    kind \"x\"  \n    prune \"gmp\" sparsity=0.95 start=0.2 end=0.8\n    steps 60_000 ; b 1.5e3 #true #null -7 +3 1e-3 2E+2 0.0 -0.5\n    w { c 1 }   \n}\n  node2 a=1\n",
            "a",
            "a\n",
            "",
            "\n\n  \n",
            "a 1;b 2",
            "a { }",
            "a {\n}\n",
            "a {\n  b {\n    c d e=f\n  }\n}",
            "\"quoted name\" \"x y\"=\"\" key=\"v\"",
            "stage s0 {\n kind \"test/echo\"\n value \"v0\"\n}\nstage s1 {\n kind \"test/echo\"\n needs s0\n value \"v1\"\n}\n",
            "n 1_000 1_000.5_0 123456789012345678901234567890",
            "a\t1\t\n",
            "a.b-c_d 1",
            "a { b 1; }",
            "a 1 \\\n  2 \\  \n 3\nb",
        ];
        for text in plain {
            assert!(check(text), "declined plain KDL {text:?}");
        }
        // Outside the subset or invalid: left to the crate (whatever it makes of it).
        let other = [
            "a \"\\n\"",
            "a #\"raw\"#",
            "a \"\"\"\nx\n\"\"\"",
            "a (u8)1",
            "/-a 1",
            "a 0xff",
            "a #inf",
            "a\r\n",
            "é 1",
            "a 1.",
            "a .5",
            "a true",
            "a{",
            "a {",
            "}",
            "a 1 {b}x",
            "a=1",
            "a 1=2",
            "a \"x\"y",
            "a b{ }",
            "a \"é\"",
            "a 1e",
            "a --1",
        ];
        for text in other {
            assert!(!check(text), "read {text:?}, which is not plain KDL");
        }
    }

    /// Random texts of pipeline-like pieces: whatever the reader accepts, the crate parses
    /// to the same document.
    #[test]
    fn random_texts_read_alike() {
        let pieces = [
            "a", "b.c-d", "_x", "\"s t\"", "\"\"", "1", "-2", "+3", "1.5", "1e3", "2_0", "#true",
            "#null", "k=1", "k=\"v\"", "k=w", " {", "{", "}", ";", "\n", " ", " ", "\t", " \\\n",
            "=", ".", "0x1", "#inf", "true", "-", "1.", "é", "(t)", "/-", "\\",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let len = 1 + next(24);
            let text: String = (0..len).map(|_| pieces[next(pieces.len())]).collect();
            accepted += check(&text) as usize;
        }
        assert!(accepted > 300, "only {accepted} random texts were plain");
    }

    #[test]
    fn shipped_pipelines_are_plain_and_read_alike() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines");
        let mut stack = vec![dir];
        let mut read_plain = 0;
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "kdl") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let pre = crate::prescan::prescan(&text);
                    read_plain += check(&pre.text) as usize;
                }
            }
        }
        assert!(
            read_plain >= 6,
            "only {read_plain} shipped pipelines are plain KDL"
        );
    }
}
