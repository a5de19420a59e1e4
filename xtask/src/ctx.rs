//! What every command runs with: the project's shell, the effective
//! configuration, how output is drawn, and whether this is a dry run; and
//! the one place where a command's plan is printed or executed.

use anyhow::Result;
use xshell::Shell;

use crate::config::Config;
use crate::step::Plan;
use crate::ui::Ui;

/// Whether plans run or are only shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    /// `--dry-run`: nothing is written and nothing is run; lookups that need
    /// the network or a missing tool are shown as unresolved instead.
    DryRun,
}

/// Built once by `main` and passed to every command.
pub struct Ctx {
    /// Rooted at the workspace, which is also the process's directory.
    pub sh: Shell,
    /// Defaults, then `--config FILE`, then the global flags (`--engine`).
    pub config: Config,
    pub ui: Ui,
    pub mode: Mode,
}

/// What became of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// It ran to the end.
    Ran,
    /// It was printed (a dry run); nothing ran.
    Shown,
}

impl Ctx {
    pub fn dry_run(&self) -> bool {
        self.mode == Mode::DryRun
    }

    /// Prints `plan` (a dry run) or executes it: the only place either happens.
    pub fn carry_out(&self, plan: Plan<'_>) -> Result<Done> {
        match self.mode {
            Mode::DryRun => {
                print!("{}", plan.render());
                Ok(Done::Shown)
            }
            Mode::Run => plan.execute(&self.ui).map(|()| Done::Ran),
        }
    }
}
