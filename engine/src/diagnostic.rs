//! Pipeline errors as miette diagnostics: every problem points at the offending span of its
//! source file and says how to fix it, and all problems found in one pass are reported
//! together (like a compiler, not one at a time).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};

/// The pipeline's source files (the main file and its includes), indexed by [`Loc::file`].
#[derive(Debug, Clone, Default)]
pub struct Sources(Vec<SourceFile>);

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<String>,
}

impl Sources {
    pub fn add(&mut self, path: &Path, text: String) -> usize {
        self.0.push(SourceFile {
            path: path.to_path_buf(),
            text: Arc::new(text),
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
        let text = &self.0[loc.file].text;
        let end = loc.span.offset().min(text.len());
        text[..end].bytes().filter(|&b| b == b'\n').count() + 1
    }
}

/// A place in a source file.
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
    /// Raw KDL syntax errors, kept as the `kdl` crate reports them (they carry their source).
    syntax: Vec<kdl::KdlError>,
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

    pub fn syntax(&mut self, e: kdl::KdlError) {
        self.syntax.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty() && self.syntax.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
            + self
                .syntax
                .iter()
                .map(|e| e.diagnostics.len().max(1))
                .sum::<usize>()
    }

    /// The problems as one report, or `Ok` if there are none.
    pub fn into_result(self, sources: &Sources) -> Result<(), PipelineError> {
        if self.is_empty() {
            return Ok(());
        }
        let count = self.len();
        let mut related: Vec<Box<dyn Diagnostic + Send + Sync>> = Vec::new();
        for e in self.syntax {
            related.push(Box::new(SyntaxError(e)));
        }
        let mut list = self.list;
        list.sort_by_key(|p| (p.loc.file, p.loc.span.offset()));
        for p in list {
            let file = sources.get(p.loc.file);
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

/// A KDL syntax error, passed through with the `kdl` crate's own labels and hints.
#[derive(Debug)]
struct SyntaxError(kdl::KdlError);

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.0.diagnostics.first().and_then(|d| d.message.clone());
        write!(
            f,
            "KDL syntax error: {}",
            first.unwrap_or_else(|| "the file is not valid KDL 2.0".into())
        )
    }
}

impl std::error::Error for SyntaxError {}

impl Diagnostic for SyntaxError {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.0.source_code()
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        self.0.related()
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(
            "pipelines are KDL 2.0: strings in \"quotes\", booleans #true/#false, `//` comments",
        ))
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
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}
