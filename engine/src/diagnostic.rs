//! Pipeline errors as miette diagnostics: every problem points at the offending span of its
//! source file and says how to fix it, and all problems found in one pass are reported
//! together (like a compiler, not one at a time).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};

use crate::prescan::OffsetMap;

/// The pipeline's source files (the main file and its includes), indexed by [`Loc::file`].
#[derive(Debug, Clone, Default)]
pub struct Sources(Vec<SourceFile>);

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<String>,
    /// From spans in the text the parser saw (comments cut out) to spans in `text`.
    map: OffsetMap,
}

impl SourceFile {
    /// A span of a [`Loc`] in this file, as a span of its text.
    pub fn span(&self, loc: Loc) -> SourceSpan {
        self.map.original(loc.span)
    }
}

impl Sources {
    pub fn add(&mut self, path: &Path, text: String) -> usize {
        self.add_mapped(path, text, OffsetMap::default())
    }

    /// A file whose locations are in a text cut from it (see [`crate::prescan`]).
    pub(crate) fn add_mapped(&mut self, path: &Path, text: String, map: OffsetMap) -> usize {
        self.0.push(SourceFile {
            path: path.to_path_buf(),
            text: Arc::new(text),
            map,
        });
        self.0.len() - 1
    }

    pub fn get(&self, file: usize) -> &SourceFile {
        &self.0[file]
    }

    pub fn files(&self) -> &[SourceFile] {
        &self.0
    }

    /// 1-based line of a location, for plain-text messages.
    pub fn line(&self, loc: Loc) -> usize {
        let file = &self.0[loc.file];
        let text = &file.text;
        let end = file.span(loc).offset().min(text.len());
        text[..end].bytes().filter(|&b| b == b'\n').count() + 1
    }
}

/// A place in a source file: `span` is in the text the parser saw, which
/// [`SourceFile::span`] maps back to the file's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loc {
    pub file: usize,
    pub span: SourceSpan,
}

impl Loc {
    pub fn new(file: usize, span: SourceSpan) -> Self {
        Loc { file, span }
    }
}

/// One problem in a pipeline: a message, the span it is about (with a label), an optional
/// secondary span (e.g. the other end of a cycle) and a hint.
#[derive(Debug, Clone)]
pub struct Problem {
    pub message: String,
    pub loc: Loc,
    pub label: String,
    pub help: Option<String>,
    pub also: Option<(Loc, String)>,
}

impl Problem {
    pub fn new(loc: Loc, message: impl Into<String>, label: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            loc,
            label: label.into(),
            help: None,
            also: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn also(mut self, loc: Loc, label: impl Into<String>) -> Self {
        self.also = Some((loc, label.into()));
        self
    }
}

/// Collects problems during parsing and lowering, so one pass reports everything it can.
#[derive(Debug, Default)]
pub struct Problems {
    list: Vec<Problem>,
    /// What was already reported, so a problem found once per sweep instance shows once.
    seen: std::collections::HashSet<(usize, usize, usize, String)>,
}

impl Problems {
    /// Records a problem once (lowering may find the same one for many sweep instances).
    pub fn push(&mut self, p: Problem) {
        let id = (
            p.loc.file,
            p.loc.span.offset(),
            p.loc.span.len(),
            p.message.clone(),
        );
        if self.seen.insert(id) {
            self.list.push(p);
        }
    }

    /// Records the `kdl` crate's syntax errors with its labels and hints, located by `at`.
    pub fn syntax(&mut self, at: impl Fn(SourceSpan) -> Loc, e: kdl::KdlError) {
        for d in e.diagnostics {
            let message = d.message.unwrap_or_else(|| "not valid KDL 2.0".into());
            let mut p = Problem::new(
                at(d.span),
                format!("KDL syntax error: {message}"),
                d.label.unwrap_or_else(|| "here".into()),
            );
            p = p.help(d.help.unwrap_or_else(|| {
                "pipelines are KDL 2.0: strings in \"quotes\", booleans #true/#false, `//` comments"
                    .into()
            }));
            self.push(p);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The problems as one report, or `Ok` if there are none.
    pub fn into_result(self, sources: &Sources) -> Result<(), PipelineError> {
        if self.is_empty() {
            return Ok(());
        }
        let count = self.len();
        let mut related: Vec<Box<dyn Diagnostic + Send + Sync>> = Vec::new();
        let mut list = self.list;
        list.sort_by_key(|p| (p.loc.file, p.loc.span.offset()));
        for mut p in list {
            let file = sources.get(p.loc.file);
            p.loc.span = file.span(p.loc);
            if let Some((loc, _)) = &mut p.also
                && loc.file == p.loc.file
            {
                loc.span = file.span(*loc);
            }
            related.push(Box::new(Located {
                src: NamedSource::new(file.path.display().to_string(), file.text.clone()),
                problem: p,
            }));
        }
        Err(PipelineError { count, related })
    }
}

/// Every problem found in a pipeline; rendered by miette with source snippets.
#[derive(Debug)]
pub struct PipelineError {
    count: usize,
    related: Vec<Box<dyn Diagnostic + Send + Sync>>,
}

impl PipelineError {
    /// The individual problems' messages (for tests and plain-text output).
    pub fn messages(&self) -> Vec<String> {
        self.related.iter().map(|d| d.to_string()).collect()
    }

    /// A single problem that is not about a span (e.g. the pipeline file cannot be read).
    pub fn plain(message: impl Into<String>, help: impl Into<String>) -> Self {
        PipelineError {
            count: 1,
            related: vec![Box::new(Plain(message.into(), help.into()))],
        }
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.count {
            1 => write!(f, "the pipeline has an error"),
            n => write!(f, "the pipeline has {n} errors"),
        }
    }
}

impl std::error::Error for PipelineError {}

impl Diagnostic for PipelineError {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(
            self.related.iter().map(|d| &**d as &dyn Diagnostic),
        ))
    }
}

#[derive(Debug)]
struct Located {
    src: NamedSource<Arc<String>>,
    problem: Problem,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for Located {}

impl Diagnostic for Located {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.src)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let p = &self.problem;
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            Some(p.label.clone()),
            p.loc.span,
        )];
        if let Some((loc, label)) = &p.also
            && loc.file == p.loc.file
        {
            labels.push(LabeledSpan::new_with_span(Some(label.clone()), loc.span));
        }
        Some(Box::new(labels.into_iter()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}

#[derive(Debug)]
struct Plain(String, String);

impl fmt::Display for Plain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Plain {}

impl Diagnostic for Plain {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.1.is_empty()).then(|| Box::new(&self.1) as Box<dyn fmt::Display>)
    }
}

/// "did you mean `x`?" for a misspelt name among `candidates`.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    // Few edits (transpositions count as one), or a shared prefix for long names.
    let edits = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::osa_distance(name, c),
                strsim::jaro_winkler(name, c),
                c,
            )
        })
        .filter(|&(d, jw, _)| d <= edits || jw > 0.8)
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, c)| format!("did you mean `{c}`?"))
}
