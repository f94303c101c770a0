//! Exit codes, decided here and nowhere else.

use std::process::ExitCode;

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything ran and every gate passed.
    Ok,
    /// A gate failed.
    GateFailed,
    /// A scenario, profile or argument is invalid.
    InvalidInput,
    /// The target was unreachable or lost, or the run could not start.
    Target,
    /// The run ended but its report could not be written.
    Output,
    /// Interrupted by Ctrl-C or SIGTERM (the report was still written).
    Interrupted,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::GateFailed => 1,
            Exit::InvalidInput => 2,
            Exit::Target => 3,
            Exit::Output => 4,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}
