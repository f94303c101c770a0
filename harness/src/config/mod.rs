//! Reading scenario and profile files: YAML into closed types, then semantic validation. Every
//! problem found is returned at once, each with its file, line, column and field path.

pub mod dist;
pub mod envelope;
pub mod gates;
pub mod ids;
pub mod profile;
pub mod scenario;
pub mod target_metric;
pub mod units;
pub mod validate;
pub mod yaml;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use gates::Gate;
pub use profile::Profile;
use scenario::GateSpec;
pub use scenario::Scenario;
use units::Dur;
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

/// Where the fields of a file are: its name and the position of every field path, taken from
/// the parsed document once, when the file is read, so that problems found later (after
/// command-line overrides, against a profile) are located without reading the file again. A
/// subtree may come from another file (`run --gates G` replaces `gates`): its paths are located
/// there.
#[derive(Clone, Debug, Default)]
pub struct Locator {
    file: String,
    index: HashMap<String, Pos>,
    grafts: Vec<(String, Locator)>,
}

impl Locator {
    fn new(file: &str, root: &yaml::Node) -> Locator {
        Locator { file: file.to_string(), index: yaml::path_index(root), grafts: Vec::new() }
    }

    /// For a config that has no text (the default embedded profile): everything is at 1:1.
    fn unlocated(file: &str) -> Locator {
        Locator { file: file.to_string(), ..Locator::default() }
    }

    /// Locate the paths under `prefix` in `other` from now on.
    fn graft(&mut self, prefix: &str, other: Locator) {
        self.grafts.retain(|(p, _)| p != prefix);
        self.grafts.push((prefix.to_string(), other));
    }

    fn under(path: &str, prefix: &str) -> bool {
        path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    }

    /// Which file a path is in (0: this one, then the grafts in order), and its diagnostic.
    fn diagnostic(&self, path: String, message: String) -> (usize, Diagnostic) {
        for (i, (prefix, other)) in self.grafts.iter().enumerate() {
            if Locator::under(&path, prefix) {
                return (i + 1, other.diagnostic(path, message).1);
            }
        }
        let pos = yaml::locate(&self.index, &path);
        (0, Diagnostic { file: self.file.clone(), pos, path, message })
    }

    /// `(field path, message)` problems as diagnostics, in file order, each problem once.
    pub fn locate(&self, problems: impl IntoIterator<Item = (String, String)>) -> Vec<Diagnostic> {
        let mut located: Vec<(usize, Diagnostic)> =
            problems.into_iter().map(|(path, message)| self.diagnostic(path, message)).collect();
        located
            .sort_by(|(fa, a), (fb, b)| fa.cmp(fb).then_with(|| a.pos.cmp(&b.pos)).then_with(|| a.path.cmp(&b.path)));
        located.dedup_by(|(_, a), (_, b)| a == b);
        located.into_iter().map(|(_, d)| d).collect()
    }

    fn invalid(&self, problems: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
        let diagnostics = self.locate(problems);
        if diagnostics.is_empty() { Ok(()) } else { Err(ConfigError::Invalid { file: self.file.clone(), diagnostics }) }
    }
}

/// A parsed config together with where it came from.
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    /// The checked value. For a scenario, change it through [`Loaded::replace_gates`] and
    /// [`Loaded::prepare`], which check again what changes; its gates were parsed with it.
    pub value: T,
    pub file: PathBuf,
    /// The file's text as read, for fingerprints and for echoing into reports.
    pub source: String,
    locator: Locator,
    /// A scenario's gates, parsed against it when it was checked (empty for other files).
    gates: Vec<Gate>,
}

impl<T> Loaded<T> {
    /// A config that was not read from a file, such as the default embedded profile.
    pub fn builtin(value: T, name: &str) -> Loaded<T> {
        Loaded { value, file: name.into(), source: String::new(), locator: Locator::unlocated(name), gates: Vec::new() }
    }

    /// Locate problems found after loading, by their field paths.
    pub fn locate(&self, problems: impl IntoIterator<Item = (String, String)>) -> Vec<Diagnostic> {
        self.locator.locate(problems)
    }
}

/// `--duration` and `--seed` from the command line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides {
    pub duration: Option<Dur>,
    pub seed: Option<u64>,
}

impl Overrides {
    pub fn any(&self) -> bool {
        self.duration.is_some() || self.seed.is_some()
    }
}

impl Loaded<Scenario> {
    /// Replace the scenario's gates with those of a gates file (`run --gates G`), checked against
    /// the scenario; their problems, now and after overrides, are located in G.
    pub fn replace_gates(&mut self, file: Loaded<Vec<GateSpec>>) -> Result<(), ConfigError> {
        let (gates, problems) = gates::parse_all(&file.value, &self.value);
        file.locator.invalid(problems.into_iter().map(|(i, e)| (format!("gates[{i}]"), e.to_string())))?;
        self.value.gates = file.value;
        self.gates = gates;
        self.locator.graft("gates", file.locator);
        Ok(())
    }

    /// The scenario as it will run: the overrides applied and, if they changed what the file
    /// says, checked again (one pass, the gates parsed in it); every problem located in the
    /// files. The caller adds what it checks against its target, then calls
    /// [`Prepared::finish`].
    pub fn prepare(&self, overrides: Overrides) -> Prepared {
        let mut scenario = self.value.clone();
        let shortened = overrides.duration.map(|d| scenario.shorten(d)).unwrap_or_default();
        if let Some(seed) = overrides.seed {
            scenario.seed = seed;
        }
        let (gates, problems) = match overrides.duration {
            Some(_) => validate::checked(&scenario),
            None => (self.gates.clone(), Vec::new()),
        };
        let mut prepared = Prepared {
            scenario,
            gates,
            notes: shortened.notes.clone(),
            problems: Vec::new(),
            locator: self.locator.clone(),
            shortened,
        };
        prepared.add(problems);
        prepared
    }
}

/// A scenario with the command line's overrides applied, its gates parsed against it, and the
/// problems found so far (see [`Loaded::prepare`]).
#[derive(Clone, Debug)]
pub struct Prepared {
    pub scenario: Scenario,
    pub gates: Vec<Gate>,
    /// What the overrides changed (e.g. a fault after the shortened end is skipped).
    pub notes: Vec<String>,
    /// By field path in the files.
    problems: Vec<(String, String)>,
    locator: Locator,
    shortened: scenario::Shortened,
}

impl Prepared {
    /// Add problems of the scenario as it will run (e.g. against the target), by field path.
    pub fn add(&mut self, problems: impl IntoIterator<Item = (String, String)>) {
        let shortened = &self.shortened;
        self.problems.extend(problems.into_iter().map(|(path, m)| (shortened.original_path(&path), m)));
    }

    /// Locate problems (or warnings) of the scenario as it will run.
    pub fn locate(&self, problems: impl IntoIterator<Item = (String, String)>) -> Vec<Diagnostic> {
        self.locator.locate(problems.into_iter().map(|(path, m)| (self.shortened.original_path(&path), m)))
    }

    /// The scenario and its gates, or every problem found, located.
    pub fn finish(self) -> Result<(Scenario, Vec<Gate>), ConfigError> {
        self.locator.invalid(self.problems)?;
        Ok((self.scenario, self.gates))
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io { file: file.clone(), source })?;
    String::from_utf8(bytes).map_err(|e| {
        // Say once, and where: the line and column of the first byte that is not UTF-8.
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let col = good.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        let (line, col) = (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(col).unwrap_or(u32::MAX));
        let byte = e.as_bytes().get(good.len()).copied().unwrap_or(0);
        ConfigError::Invalid {
            file: file.clone(),
            diagnostics: vec![Diagnostic {
                file,
                pos: Pos { line, col },
                path: String::new(),
                message: format!("not UTF-8 text (byte 0x{byte:02x}): save the file as UTF-8"),
            }],
        }
    })
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

/// Parse and validate scenario text; `file` names it in diagnostics. One pass: type errors and
/// cross-references (checked on the document itself, so they are reported even when type errors
/// stop the rest), then, if the document has the scenario's shape, every other rule and the gates.
pub fn scenario_from_text(file: &str, source: String) -> Result<Loaded<Scenario>, ConfigError> {
    let root = yaml::parse(&source).map_err(|e| diagnostics(file, vec![e]))?;
    let locator = Locator::new(file, &root);
    let references = validate::references(&root);
    match yaml::from_node::<Scenario>(&root) {
        Ok(value) => {
            let (gates, problems) = validate::checked(&value);
            locator.invalid(references.into_iter().chain(problems))?;
            Ok(Loaded { value, file: file.into(), source, locator, gates })
        }
        Err(mut errors) => {
            errors.extend(locator.locate(references).into_iter().map(|d| yaml::YamlError {
                pos: d.pos,
                path: d.path,
                message: d.message,
            }));
            errors.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.path.cmp(&b.path)));
            Err(diagnostics(file, errors))
        }
    }
}

/// Parse and validate scenario text; `file` names it in diagnostics.
pub fn parse_scenario(file: &str, src: &str) -> Result<Scenario, ConfigError> {
    scenario_from_text(file, src.to_string()).map(|l| l.value)
}

/// Parse and validate profile text, expanding `${VAR}` references with `env`.
pub fn parse_profile(file: &str, src: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Profile, ConfigError> {
    profile_from_text(file, src.to_string(), env, false).map(|l| l.value)
}

/// With `lenient`, unset variables are not errors (for `validate` on a machine without the
/// secrets): they become placeholders, and checks of the fields that held them are skipped.
pub fn profile_from_text(
    file: &str,
    source: String,
    env: &dyn Fn(&str) -> Option<String>,
    lenient: bool,
) -> Result<Loaded<Profile>, ConfigError> {
    let mut root = yaml::parse(&source).map_err(|e| diagnostics(file, vec![e]))?;
    let mut env_errors = Vec::new();
    let mut unresolved = Vec::new();
    let mut secrets = Vec::new();
    root.for_each_scalar_mut("", &mut |path, pos, text| {
        if text.contains('$') {
            let placeholder = |name: &str| env(name).or_else(|| lenient.then(|| format!("<{name}>")));
            // Values from the environment go into a command template shell-quoted; values of
            // secret-looking variables, or put into secret-looking properties, are secrets.
            let quote = is_command_template(path);
            let key = path.rsplit(['.', ']']).next().unwrap_or(path);
            let mut note = |name: &str, value: &str| {
                if env(name).is_some() && (profile::is_secret_var(name) || profile::is_secret_key(key)) {
                    secrets.push(value.to_string());
                }
            };
            // A placeholder only where the environment and the reference's own default both
            // leave a variable unset: `${VAR:-default}` takes its default under `validate` too.
            let expanded = match profile::interpolate_noting(text, env, quote, &mut note) {
                Err(_) if lenient => profile::interpolate_noting(text, &placeholder, quote, &mut note),
                other => other,
            };
            match expanded {
                Ok(v) => {
                    if v.contains('<') && profile::interpolate(text, env).is_err() {
                        unresolved.push(path.to_string());
                    }
                    *text = v;
                }
                Err(e) => env_errors.push(yaml::YamlError { pos, path: path.to_string(), message: e.to_string() }),
            }
        }
    });
    // Every diagnostic below passes the profile's secrets: a secret in the wrong field (say
    // `connect_timeout: ${KAFKA_PASSWORD}`) is named by its field, never printed.
    let redactor = profile::Redactor::of_values(secrets.iter().cloned());
    let scrub = |e: ConfigError| match e {
        ConfigError::Invalid { file, diagnostics } => ConfigError::Invalid {
            file,
            diagnostics: diagnostics
                .into_iter()
                .map(|d| Diagnostic { message: redactor.scrub(&d.message), ..d })
                .collect(),
        },
        other => other,
    };
    if !env_errors.is_empty() {
        return Err(scrub(diagnostics(file, env_errors)));
    }
    let mut value: Profile = yaml::from_node(&root).map_err(|errs| scrub(diagnostics(file, errs)))?;
    let locator = Locator::new(file, &root);
    locator
        .invalid(validate::profile(&value).into_iter().filter(|(path, _)| !unresolved.contains(path)))
        .map_err(scrub)?;
    value.secrets = secrets;
    Ok(Loaded { value, file: file.into(), source, locator, gates: Vec::new() })
}

/// Whether a profile field is a shell command template (`faults.command.<action>`,
/// `faults.process.restart`).
fn is_command_template(path: &str) -> bool {
    path == "faults.process.restart"
        || path.strip_prefix("faults.command.").is_some_and(|rest| !rest.contains('.') && rest != "timeout")
}

/// A `--gates` file, `gates: [...]`: its shape, with the positions of its gates, to be checked
/// against a scenario by [`Loaded::replace_gates`].
pub fn read_gates(path: &Path) -> Result<Loaded<Vec<GateSpec>>, ConfigError> {
    let source = read(path)?;
    let file = path.display().to_string();
    let root = yaml::parse(&source).map_err(|e| diagnostics(&file, vec![e]))?;
    let value = yaml::from_node::<gates::GatesFile>(&root).map_err(|errs| diagnostics(&file, errs))?.gates;
    let locator = Locator::new(&file, &root);
    Ok(Loaded { value, file: path.to_path_buf(), source, locator, gates: Vec::new() })
}

/// The gates of a `--gates` file, checked for shape only.
pub fn load_gates(path: &Path) -> Result<Vec<GateSpec>, ConfigError> {
    read_gates(path).map(|g| g.value)
}

pub fn load_scenario(path: &Path) -> Result<Loaded<Scenario>, ConfigError> {
    let source = read(path)?;
    let mut loaded = scenario_from_text(&path.display().to_string(), source)?;
    loaded.file = path.to_path_buf();
    Ok(loaded)
}

pub fn load_profile(path: &Path) -> Result<Loaded<Profile>, ConfigError> {
    let source = read(path)?;
    let env = |name: &str| std::env::var(name).ok();
    let mut loaded = profile_from_text(&path.display().to_string(), source, &env, false)?;
    loaded.file = path.to_path_buf();
    Ok(loaded)
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
        profile_from_text(&file, source, &env, true).map(|_| FileKind::Profile)
    } else {
        scenario_from_text(&file, source).map(|_| FileKind::Scenario)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAULTS: &str = "name: s\nseed: 1\nduration: 60s\ntopics: [{name: t}]\nfleet:\n  devices: 10\n  classes: [{name: a, topic: t, rate: 1/5s}]\nfaults:\n  - {name: early, at: 1s, kind: broker_kill}\n  - {name: late, at: 50s, kind: broker_kill}\n  - {name: soon, at: 2s, kind: broker_kill}\n";

    fn loaded(text: &str) -> Loaded<Scenario> {
        scenario_from_text("s.yaml", text.to_string()).unwrap()
    }

    #[test]
    fn validate_takes_a_references_default_and_a_placeholder_only_for_what_has_none() {
        // Regression: the lenient placeholder (`<VAR>`) used to win over `${VAR:-default}`, so
        // `validate` refused a bootstrap list whose default was valid.
        let text = "name: p\nkind: kafka\nbootstrap_servers: ${NOPE_BOOT:-127.0.0.1:1}\nlibrdkafka:\n  sasl.password: ${NOPE_PASS}\n";
        let p = profile_from_text("p.yaml", text.to_string(), &|_| None, true).unwrap();
        assert_eq!(p.value.bootstrap_servers.map(|s| s.joined()).as_deref(), Some("127.0.0.1:1"));
        assert_eq!(p.value.librdkafka.get("sasl.password").map(String::as_str), Some("<NOPE_PASS>"));
        assert!(profile_from_text("p.yaml", text.to_string(), &|_| None, false).is_err());
    }

    #[test]
    fn a_problem_in_a_shortened_scenario_is_located_where_the_file_has_it() {
        // `--duration 10s` drops the second fault: the shortened scenario's `faults[1]` is the
        // file's `faults[2]`, on line 11.
        let mut p = loaded(FAULTS).prepare(Overrides { duration: Some("10s".parse().unwrap()), seed: None });
        assert_eq!(p.notes, ["fault `late` at 50s skipped: after the end of the shortened load (10s)"]);
        p.add([("faults[1].kind".to_string(), "not here".to_string())]);
        let e = p.finish().unwrap_err();
        let d = &e.diagnostics()[0];
        assert_eq!((d.path.as_str(), d.pos.line), ("faults[2].kind", 11), "{e}");
    }

    #[test]
    fn without_a_duration_override_the_scenario_is_not_checked_again() {
        let p = loaded(FAULTS).prepare(Overrides { duration: None, seed: Some(9) });
        assert_eq!(p.scenario.seed, 9);
        assert!(p.notes.is_empty() && p.problems.is_empty());
    }

    #[test]
    fn gates_from_a_gates_file_are_located_there_also_after_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let g = dir.path().join("g.yaml");
        std::fs::write(&g, "gates:\n  - audit.lost == 0\n  - faults.soon.recovered < 30s\n").unwrap();
        let mut sc = loaded(FAULTS);
        sc.replace_gates(read_gates(&g).unwrap()).unwrap();
        assert_eq!(sc.gates.len(), 2);
        // `--duration 1s` drops the fault the second gate names.
        let e = sc.prepare(Overrides { duration: Some("1s".parse().unwrap()), seed: None }).finish().unwrap_err();
        let d: Vec<String> = e.diagnostics().iter().map(ToString::to_string).collect();
        assert_eq!(
            d,
            [format!(
                "{}:3:5: gates[1]: unknown fault in `soon.recovered`: the scenario declares no fault",
                g.display()
            )]
        );
    }

    #[test]
    fn a_gates_file_that_does_not_fit_the_scenario_is_refused_with_its_positions() {
        let dir = tempfile::tempdir().unwrap();
        let g = dir.path().join("g.yaml");
        std::fs::write(&g, "gates:\n  - waves.*.dropped == 0\n").unwrap();
        let mut sc = loaded(FAULTS);
        let e = sc.replace_gates(read_gates(&g).unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{0}: 1 problem\n  {0}:2:5: gates[0]: `*` matches no wave: the scenario declares none",
                g.display()
            )
        );
        assert!(sc.value.gates.is_empty(), "the scenario keeps its own gates");
    }
}
