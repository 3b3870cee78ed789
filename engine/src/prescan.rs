//! One linear pass over pipeline text before the `kdl` crate parses it: comments are cut out
//! (the crate spends microseconds per byte on them: a 10 MB file of `//` lines took 40 s),
//! and the text is cut into chunks of whole top-level nodes, so that the crate's document
//! (with its formatting, ~150 bytes per source byte) exists for a few chunks at a time.
//! Chunks are parsed on up to four threads ([`parse`]): the crate costs ~1 µs per byte,
//! linear in chunk size (it allocates ~10 times per byte, building error contexts per
//! character), so 10 MB of stages took ~11 s on one core.
//!
//! Cutting comments moves offsets; [`OffsetMap`] takes a span in the cut text back to the
//! original, so diagnostics still point at the right line and column.

use std::ops::Range;

use kdl::{KdlDocument, KdlError};
use miette::SourceSpan;

/// Chunks end at the first top-level node boundary after this many bytes.
const CHUNK: usize = 64 << 10;

/// At most this many chunks are parsed at once, so at most ~256 KiB of text has a document.
const MAX_THREADS: usize = 4;

/// The text without comments, its top-level chunks, and the way back to original offsets.
pub struct Prescanned {
    pub text: String,
    /// Byte ranges of `text`, in order, each made of whole top-level nodes.
    pub chunks: Vec<Range<usize>>,
    pub map: OffsetMap,
}

/// Where bytes were cut: `(offset in the cut text, bytes cut there and before)`, ascending.
#[derive(Debug, Clone, Default)]
pub struct OffsetMap(Vec<(usize, usize)>);

impl OffsetMap {
    /// A span of the cut text as a span of the original: text cut at its start precedes it,
    /// text cut at its end does not belong to it.
    pub fn original(&self, span: SourceSpan) -> SourceSpan {
        let (start, end) = (span.offset(), span.offset() + span.len());
        let before = |off: usize, inclusive: bool| {
            let n = self
                .0
                .partition_point(|&(at, _)| if inclusive { at <= off } else { at < off });
            if n == 0 { 0 } else { self.0[n - 1].1 }
        };
        let s = start + before(start, true);
        let e = (end + before(end, false)).max(s);
        SourceSpan::new(s.into(), e - s)
    }

    fn cut(&mut self, at: usize, bytes: usize) {
        let total = self.0.last().map_or(0, |&(_, t)| t) + bytes;
        match self.0.last_mut() {
            Some(last) if last.0 == at => last.1 = total,
            _ => self.0.push((at, total)),
        }
    }
}

/// Strips comments and finds chunk boundaries. Text it cannot follow (an unterminated
/// string or comment) is kept as it is, for the parser to report.
pub fn prescan(src: &str) -> Prescanned {
    scan(src, CHUNK)
}

/// [`prescan`] with chunks of at least `chunk` bytes.
fn scan(src: &str, chunk: usize) -> Prescanned {
    let b = src.as_bytes();
    let mut out = Prescanned {
        text: String::with_capacity(src.len()),
        chunks: Vec::new(),
        map: OffsetMap::default(),
    };
    let (mut i, mut copied, mut chunk_start) = (0, 0, 0);
    let mut depth = 0usize;
    // After `\` (escline) or `/-` (slashdash) a newline does not end the node.
    let mut continued = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'#' => match string_end(b, i) {
                Some(end) => {
                    i = end;
                    continued = false;
                    continue;
                }
                None if c == b'"' => break,
                None => continued = false, // `#true`, `#inf`
            },
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = line_end(b, i);
                out.text.push_str(&src[copied..i]);
                out.map.cut(out.text.len(), end - i);
                (i, copied) = (end, end);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let Some(end) = block_comment_end(b, i) else {
                    break;
                };
                out.text.push_str(&src[copied..i]);
                out.text.push(' '); // a comment separates what is around it
                out.map.cut(out.text.len(), end - i - 1);
                (i, copied) = (end, end);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'-') => {
                continued = true;
                i += 2;
                continue;
            }
            b'\\' => continued = true,
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b'\n' | b';' if depth == 0 && !continued => {
                let here = out.text.len() + (i + 1 - copied);
                if here - chunk_start >= chunk {
                    out.chunks.push(chunk_start..here);
                    chunk_start = here;
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => continued = false,
        }
        i += 1;
    }
    out.text.push_str(&src[copied..]);
    if chunk_start < out.text.len() || out.chunks.is_empty() {
        out.chunks.push(chunk_start..out.text.len());
    }
    out
}

/// Each chunk's start and document, in order. A window of chunks, one per core, is parsed
/// at once, each on its own thread; the next window only once the caller has taken this one.
pub fn parse<'a>(
    text: &'a str,
    chunks: &'a [Range<usize>],
) -> impl Iterator<Item = (usize, Result<KdlDocument, KdlError>)> + 'a {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    chunks
        .chunks(threads.clamp(1, MAX_THREADS))
        .flat_map(move |window| parse_window(text, window))
}

/// The window's chunks parsed in parallel: the first on this thread, the others on threads
/// with a main thread's usual stack (the crate's parser recurses into children), or here
/// if no thread can be had.
fn parse_window(
    text: &str,
    window: &[Range<usize>],
) -> Vec<(usize, Result<KdlDocument, KdlError>)> {
    let parse = |r: &Range<usize>| {
        let chunk = &text[r.clone()];
        let doc = crate::plain_kdl::read(chunk).map_or_else(|| KdlDocument::parse(chunk), Ok);
        (r.start, doc)
    };
    std::thread::scope(|s| {
        let others: Vec<_> = window[1..]
            .iter()
            .map(|r| {
                let thread = std::thread::Builder::new().stack_size(8 << 20);
                (r, thread.spawn_scoped(s, move || parse(r)).ok())
            })
            .collect();
        let mut docs = vec![parse(&window[0])];
        for (r, handle) in others {
            docs.push(match handle {
                Some(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
                None => parse(r),
            });
        }
        docs
    })
}

/// The end of the string starting at `i` (`"..."`, `"""..."""`, `#"..."#`, `##"""..."""##`),
/// or `None` if `i` starts none (`#true`) or it is unterminated.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let hashes = b[i..].iter().take_while(|&&c| c == b'#').count();
    let open = i + hashes;
    if b.get(open) != Some(&b'"') {
        return None;
    }
    let triple = b[open..].starts_with(b"\"\"\"");
    let body = open + if triple { 3 } else { 1 };
    let mut close = vec![b'"'; if triple { 3 } else { 1 }];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let mut j = body;
    while j < b.len() {
        if hashes == 0 && b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j..].starts_with(&close) {
            return Some(j + close.len());
        }
        j += 1;
    }
    None
}

/// Where a `//` comment at `i` ends: at its newline (kept) or the end of the text.
fn line_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 2;
    while j < b.len() {
        match b[j] {
            b'\n' | b'\r' | 0x0B | 0x0C => return j,
            0xC2 if b.get(j + 1) == Some(&0x85) => return j,
            0xE2 if b.get(j + 1) == Some(&0x80) && matches!(b.get(j + 2), Some(0xA8 | 0xA9)) => {
                return j;
            }
            _ => j += 1,
        }
    }
    j
}

/// The end of the (nested) `/* */` comment at `i`, if it is closed.
fn block_comment_end(b: &[u8], i: usize) -> Option<usize> {
    let (mut depth, mut j) = (0usize, i);
    while j + 1 < b.len() {
        match (b[j], b[j + 1]) {
            (b'/', b'*') => {
                depth += 1;
                j += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => j += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(s: usize, len: usize) -> SourceSpan {
        SourceSpan::new(s.into(), len)
    }

    #[test]
    fn comments_go_strings_stay() {
        let src = "a \"x//y\" #\"/*\"# // gone\nb /* c /* d */ */ e\n";
        let p = prescan(src);
        assert_eq!(p.text, "a \"x//y\" #\"/*\"# \nb   e\n");
        assert_eq!(p.chunks, vec![0..p.text.len()]);
    }

    #[test]
    fn spans_map_back_to_the_original() {
        let src = "// one\na /* two */ b\n";
        let p = prescan(src);
        assert_eq!(p.text, "\na   b\n");
        let b = p.text.find('b').unwrap();
        assert_eq!(p.map.original(span(b, 1)), span(src.find('b').unwrap(), 1));
        let a = p.text.find('a').unwrap();
        assert_eq!(p.map.original(span(a, 1)), span(src.find('a').unwrap(), 1));
        // A span over the comment covers it; one ending at it does not.
        assert_eq!(
            p.map.original(span(a, b + 1 - a)).len(),
            "a /* two */ b".len()
        );
        assert_eq!(
            p.map.original(span(a, 2)),
            span(7, 2),
            "not the comment after it"
        );
        assert_eq!(
            p.map.original(span(0, 1)),
            span(6, 1),
            "the newline after `// one`"
        );
    }

    #[test]
    fn chunks_end_between_top_level_nodes() {
        let node = "stage s {\n kind \"test/echo\"\n value \"a;b}\"\n}\n";
        let src = format!("{node}{node}x \\\n y; z\nw /-\n v\n");
        let p = scan(&src, 1);
        let chunks: Vec<&str> = p.chunks.iter().map(|c| &p.text[c.clone()]).collect();
        assert_eq!(chunks, [node, node, "x \\\n y;", " z\n", "w /-\n v\n"]);
        for chunk in chunks {
            kdl::KdlDocument::parse(chunk).expect("a chunk is a document");
        }
        let big = node.repeat(2 * CHUNK / node.len());
        assert_eq!(prescan(&big).chunks.len(), 2);
    }

    #[test]
    fn unterminated_text_is_kept() {
        for src in ["a \"open", "a /* open", "a #\"open\" b"] {
            assert_eq!(prescan(src).text, src);
        }
    }
}
