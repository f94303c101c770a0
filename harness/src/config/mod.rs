//! Reading scenario and profile files: YAML into closed types, then semantic validation. Every
//! problem found is returned at once, each with its file, line, column and field path.

pub mod dist;
pub mod envelope;
pub mod gates;
pub mod ids;
pub mod profile;
pub mod scenario;
pub mod units;
pub mod validate;
pub mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use profile::Profile;
pub use scenario::Scenario;
pub use yaml::Pos;

/// One problem in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub pos: Pos,
    /// Field path such as `fleet.classes[1].rate`; empty for the file as a whole.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.pos, self.message)
        } else {
            write!(f, "{}:{}: {}: {}", self.file, self.pos, self.path, self.message)
        }
    }
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_invalid(.file, .diagnostics))]
    Invalid { file: String, diagnostics: Vec<Diagnostic> },
}

fn render_invalid(file: &str, diagnostics: &[Diagnostic]) -> String {
    let n = diagnostics.len();
    let mut out = format!("{file}: {n} problem{}", if n == 1 { "" } else { "s" });
    for d in diagnostics {
        out.push_str("\n  ");
        out.push_str(&d.to_string());
    }
    out
}

impl ConfigError {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Invalid { diagnostics, .. } => diagnostics,
            ConfigError::Io { .. } => &[],
        }
    }
}

/// A parsed config together with where it came from.
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    pub value: T,
    pub file: PathBuf,
    /// The file's text as read, for fingerprints and for echoing into reports.
    pub source: String,
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io { file: path.display().to_string(), source })
}

fn diagnostics(file: &str, errors: Vec<yaml::YamlError>) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_string(),
        diagnostics: errors
            .into_iter()
            .map(|e| Diagnostic { file: file.to_string(), pos: e.pos, path: e.path, message: e.message })
            .collect(),
    }
}

fn decode<T: DeserializeOwned>(file: &str, root: &yaml::Node) -> Result<T, ConfigError> {
    yaml::from_node(root).map_err(|errs| diagnostics(file, errs))
}

fn located(root: &yaml::Node, problems: Vec<(String, String)>) -> Vec<yaml::YamlError> {
    let index = yaml::path_index(root);
    problems
        .into_iter()
        .map(|(path, message)| yaml::YamlError { pos: yaml::locate(&index, &path), path, message })
        .collect()
}

/// Problems found outside a file's own validation (against a profile, or after command-line
/// overrides), located in the file's text so that they read like any other diagnostic.
pub fn locate_problems(file: &str, src: &str, problems: Vec<(String, String)>) -> Vec<Diagnostic> {
    let errors = match yaml::parse(src) {
        Ok(root) => located(&root, problems),
        Err(_) => problems
            .into_iter()
            .map(|(path, message)| yaml::YamlError { pos: yaml::Pos::default(), path, message })
            .collect(),
    };
    errors
        .into_iter()
        .map(|e| Diagnostic { file: file.to_string(), pos: e.pos, path: e.path, message: e.message })
        .collect()
}

fn semantic(file: &str, root: &yaml::Node, problems: Vec<(String, String)>) -> Result<(), ConfigError> {
    if problems.is_empty() {
        return Ok(());
    }
    let mut errors = located(root, problems);
    errors.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.path.cmp(&b.path)));
    Err(diagnostics(file, errors))
}

/// Parse and validate scenario text; `file` names it in diagnostics. Cross-references are
/// checked on the document itself, so they are reported even when type errors stop the rest.
pub fn parse_scenario(file: &str, src: &str) -> Result<Scenario, ConfigError> {
    let root = yaml::parse(src).map_err(|e| diagnostics(file, vec![e]))?;
    let references = validate::references(&root);
    match yaml::from_node::<Scenario>(&root) {
        Ok(scenario) => {
            let mut problems = references;
            problems.extend(validate::scenario(&scenario));
            semantic(file, &root, problems)?;
            Ok(scenario)
        }
        Err(mut errors) => {
            errors.extend(located(&root, references));
            errors.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.path.cmp(&b.path)));
            Err(diagnostics(file, errors))
        }
    }
}

/// Parse and validate profile text, expanding `${VAR}` references with `env`.
pub fn parse_profile(file: &str, src: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Profile, ConfigError> {
    parse_profile_with(file, src, env, false)
}

/// With `lenient`, unset variables are not errors (for `validate` on a machine without the
/// secrets): they become placeholders, and checks of the fields that held them are skipped.
fn parse_profile_with(
    file: &str,
    src: &str,
    env: &dyn Fn(&str) -> Option<String>,
    lenient: bool,
) -> Result<Profile, ConfigError> {
    let mut root = yaml::parse(src).map_err(|e| diagnostics(file, vec![e]))?;
    let mut env_errors = Vec::new();
    let mut unresolved = Vec::new();
    root.for_each_scalar_mut("", &mut |path, pos, text| {
        if text.contains('$') {
            let placeholder = |name: &str| env(name).or_else(|| lenient.then(|| format!("<{name}>")));
            match profile::interpolate(text, &placeholder) {
                Ok(v) => {
                    if v.contains('<') && profile::interpolate(text, env).is_err() {
                        unresolved.push(path.to_string());
                    }
                    *text = v;
                }
                Err(message) => env_errors.push(yaml::YamlError { pos, path: path.to_string(), message }),
            }
        }
    });
    if !env_errors.is_empty() {
        return Err(diagnostics(file, env_errors));
    }
    let profile: Profile = decode(file, &root)?;
    let problems = validate::profile(&profile).into_iter().filter(|(path, _)| !unresolved.contains(path)).collect();
    semantic(file, &root, problems)?;
    Ok(profile)
}

/// A `--gates` file: `gates: [...]`, checked for shape here and against the scenario when the
/// run starts.
pub fn load_gates(path: &Path) -> Result<Vec<scenario::GateSpec>, ConfigError> {
    #[derive(serde::Deserialize)]
    struct GatesFile {
        gates: Vec<scenario::GateSpec>,
    }
    let source = read(path)?;
    let file = path.display().to_string();
    let root = yaml::parse(&source).map_err(|e| diagnostics(&file, vec![e]))?;
    decode::<GatesFile>(&file, &root).map(|g| g.gates)
}

pub fn load_scenario(path: &Path) -> Result<Loaded<Scenario>, ConfigError> {
    let source = read(path)?;
    let value = parse_scenario(&path.display().to_string(), &source)?;
    Ok(Loaded { value, file: path.to_path_buf(), source })
}

pub fn load_profile(path: &Path) -> Result<Loaded<Profile>, ConfigError> {
    let source = read(path)?;
    let env = |name: &str| std::env::var(name).ok();
    let value = parse_profile(&path.display().to_string(), &source, &env)?;
    Ok(Loaded { value, file: path.to_path_buf(), source })
}

/// What kind of file `validate` was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Scenario,
    Profile,
    /// A `--gates` file (checked for shape; its metrics are checked against a scenario at run time).
    Gates,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Scenario => "scenario",
            FileKind::Profile => "profile",
            FileKind::Gates => "gates",
        })
    }
}

/// Validate a file of either kind: a mapping with a `kind` key (and no `fleet`) is a profile.
pub fn validate_file(path: &Path) -> Result<FileKind, ConfigError> {
    let source = read(path)?;
    let file = path.display().to_string();
    let root = yaml::parse(&source).ok();
    let is_profile = root.as_ref().is_some_and(|r| r.get("kind").is_some() && r.get("fleet").is_none());
    let is_gates = root
        .as_ref()
        .is_some_and(|r| matches!(&r.kind, yaml::Kind::Map(e) if e.len() == 1) && r.get("gates").is_some());
    if is_gates {
        load_gates(path).map(|_| FileKind::Gates)
    } else if is_profile {
        // Unset variables are not an error when only validating: the shape is what matters.
        let env = |name: &str| std::env::var(name).ok();
        parse_profile_with(&file, &source, &env, true).map(|_| FileKind::Profile)
    } else {
        parse_scenario(&file, &source).map(|_| FileKind::Scenario)
    }
}
